//! Secret values read from AWS Secrets Manager at cold start.
//!
//! On AWS the functions get `DATABASE_SECRET_ARN` (and ingest
//! `COINGECKO_API_KEY_SECRET_ARN`, and the consumer `KAFKA_SASL_SECRET_ARN`
//! with SCRAM or PLAIN, and transform and notify `ALERT_WEBHOOKS_SECRET_ARN`)
//! instead of `DATABASE_URL`, `COINGECKO_API_KEY`,
//! `KAFKA_SASL_USERNAME`/`KAFKA_SASL_PASSWORD` and `ALERT_WEBHOOKS` (see `template.yaml`). [`resolve`] reads the secret an
//! ARN variable names when its plain variable is unset, and returns the plain
//! variables' values; [`environment`], which the functions' mains call, lays
//! them over the process environment the configuration is then loaded from.
//! Only the mains depend on this crate: no library reads Secrets Manager. The
//! fetch sits behind [`SecretSource`], so the resolution is tested with a fake.
//!
//! Secret values never reach a log or an error message: errors name the
//! variable, the ARN and what is wrong.

mod aws;
mod error;
mod parse;

use std::future::Future;

use secrecy::{ExposeSecret, SecretString};
use tracing::info;

pub use aws::SecretsManager;
pub use error::{Problem, SecretsError};
pub use parse::{api_key, database_url, kafka_password, kafka_username};

/// Reads the variables of the environment (or of a test).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A plain variable, the variable naming the secret that may hold its value
/// instead, and how to turn the secret's value into the plain variable's.
struct SecretVariable {
    plain: &'static str,
    arn: &'static str,
    parse: fn(&str, Lookup<'_>) -> Result<SecretString, String>,
}

const SECRET_VARIABLES: &[SecretVariable] = &[
    SecretVariable { plain: "DATABASE_URL", arn: "DATABASE_SECRET_ARN", parse: database_url },
    SecretVariable {
        plain: "COINGECKO_API_KEY",
        arn: "COINGECKO_API_KEY_SECRET_ARN",
        parse: |v, _| api_key(v),
    },
    // One secret, two variables: it is read once (see `resolve`).
    SecretVariable {
        plain: "KAFKA_SASL_USERNAME",
        arn: "KAFKA_SASL_SECRET_ARN",
        parse: |v, _| kafka_username(v),
    },
    SecretVariable {
        plain: "KAFKA_SASL_PASSWORD",
        arn: "KAFKA_SASL_SECRET_ARN",
        parse: |v, _| kafka_password(v),
    },
    // The alert webhooks: their URLs are their credentials. The value, or JSON with one string field.
    SecretVariable { plain: "ALERT_WEBHOOKS", arn: "ALERT_WEBHOOKS_SECRET_ARN", parse: |v, _| api_key(v) },
];

/// Where secret values come from: Secrets Manager ([`SecretsManager`]), or a fake.
pub trait SecretSource {
    /// The current string value of the secret `arn`.
    fn secret_string(&self, arn: &str) -> impl Future<Output = Result<SecretString, Problem>> + Send;
}

/// Values read from secrets, by the name of the plain variable they stand for.
#[derive(Debug, Default)]
pub struct Resolved(Vec<(&'static str, SecretString)>);

impl Resolved {
    /// The value of plain variable `name` (`DATABASE_URL`, `COINGECKO_API_KEY`), if read from a secret.
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The names of the variables read from secrets.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|(n, _)| *n)
    }
}

/// The secrets to read: the ARN of each ARN variable that is set while its
/// plain variable is not. A plain variable that is set always wins, even
/// empty (its configuration then says so), so a local `.env` never calls AWS;
/// an ARN variable set but empty is an error.
fn wanted(lookup: Lookup<'_>) -> Result<Vec<(&'static SecretVariable, String)>, SecretsError> {
    let mut wanted = Vec::new();
    for var in SECRET_VARIABLES {
        if lookup(var.plain).is_some() {
            continue;
        }
        let Some(arn) = lookup(var.arn) else { continue };
        let arn = arn.trim();
        if arn.is_empty() {
            return Err(SecretsError { variable: var.arn, arn: String::new(), problem: Problem::Empty });
        }
        wanted.push((var, arn.to_owned()));
    }
    Ok(wanted)
}

/// Whether [`resolve`] would read any secret. Without one, no AWS client is needed.
pub fn needed(lookup: Lookup<'_>) -> Result<bool, SecretsError> {
    Ok(!wanted(lookup)?.is_empty())
}

/// The process environment with the secrets' values laid over it: what a
/// function's main loads its configuration from. Without an ARN to read
/// (locally), no AWS client is built.
pub async fn environment() -> Result<settings::Env, SecretsError> {
    let mut env = settings::Env::from_process();
    if needed(&|name| env.get(name).map(str::to_owned))? {
        overlay(&mut env, &SecretsManager::from_env().await).await?;
    }
    Ok(env)
}

/// Lays the values of the secrets [`resolve`] reads over `env`, in their plain variables' places.
pub async fn overlay(env: &mut settings::Env, source: &impl SecretSource) -> Result<(), SecretsError> {
    let resolved = resolve(&|name| env.get(name).map(str::to_owned), source).await?;
    for (name, value) in resolved.0 {
        env.set(name, value.expose_secret());
    }
    Ok(())
}

/// Reads the secret of each ARN variable that is set and whose plain variable
/// is not.
pub async fn resolve(lookup: Lookup<'_>, source: &impl SecretSource) -> Result<Resolved, SecretsError> {
    let mut resolved = Resolved::default();
    let mut read: Vec<(String, SecretString)> = Vec::new();
    for (var, arn) in wanted(lookup)? {
        let fail = |problem| SecretsError { variable: var.arn, arn: arn.clone(), problem };
        let raw = match read.iter().find(|(a, _)| *a == arn) {
            Some((_, raw)) => raw.clone(),
            None => {
                let raw = source.secret_string(&arn).await.map_err(fail)?;
                read.push((arn.clone(), raw.clone()));
                raw
            }
        };
        let value =
            (var.parse)(raw.expose_secret(), lookup).map_err(|reason| fail(Problem::Value(reason)))?;
        info!(variable = var.plain, secret = %arn, "read from Secrets Manager");
        resolved.0.push((var.plain, value));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Secrets by ARN; records which ARNs were asked for.
    #[derive(Default)]
    struct Fake {
        secrets: HashMap<String, String>,
        asked: Mutex<Vec<String>>,
    }

    impl Fake {
        fn with(secrets: &[(&str, &str)]) -> Self {
            Self {
                secrets: secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                ..Self::default()
            }
        }
        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    impl SecretSource for Fake {
        async fn secret_string(&self, arn: &str) -> Result<SecretString, Problem> {
            self.asked.lock().unwrap().push(arn.to_owned());
            self.secrets.get(arn).map(|v| SecretString::from(v.clone())).ok_or_else(|| Problem::Fetch {
                hint: "",
                source: "ResourceNotFoundException: no such secret".into(),
            })
        }
    }

    const DB_ARN: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:crypto-pipeline/database-AbCdEf";
    const KEY_ARN: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:crypto-pipeline/cg-key-GhIjKl";

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[tokio::test]
    async fn secrets_fill_the_unset_plain_variables() {
        let fake = Fake::with(&[
            (
                DB_ARN,
                r#"{"username":"app","password":"p@ss/w:rd","host":"db.example.com","port":5432,"dbname":"crypto"}"#,
            ),
            (KEY_ARN, "CG-key"),
        ]);
        let lookup = env(&[("DATABASE_SECRET_ARN", DB_ARN), ("COINGECKO_API_KEY_SECRET_ARN", KEY_ARN)]);
        assert!(needed(&lookup).unwrap());
        let resolved = resolve(&lookup, &fake).await.unwrap();
        assert_eq!(
            resolved.get("DATABASE_URL").unwrap().expose_secret(),
            "postgres://app:p%40ss%2Fw%3Ard@db.example.com:5432/crypto"
        );
        assert_eq!(resolved.get("COINGECKO_API_KEY").unwrap().expose_secret(), "CG-key");
        assert_eq!(resolved.names().collect::<Vec<_>>(), ["DATABASE_URL", "COINGECKO_API_KEY"]);
        assert_eq!(fake.asked(), [DB_ARN, KEY_ARN]);
    }

    #[tokio::test]
    async fn a_kafka_sasl_secret_fills_username_and_password_with_one_read() {
        const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_pipeline-MnOpQr";
        let fake = Fake::with(&[(ARN, r#"{"username":"pipeline","password":"s3cr\"et"}"#)]);
        let resolved = resolve(&env(&[("KAFKA_SASL_SECRET_ARN", ARN)]), &fake).await.unwrap();
        assert_eq!(resolved.get("KAFKA_SASL_USERNAME").unwrap().expose_secret(), "pipeline");
        assert_eq!(resolved.get("KAFKA_SASL_PASSWORD").unwrap().expose_secret(), "s3cr\"et");
        assert_eq!(fake.asked(), [ARN], "read once for both variables");

        let fake = Fake::with(&[(ARN, r#"{"username":"pipeline"}"#)]);
        let err = resolve(&env(&[("KAFKA_SASL_SECRET_ARN", ARN)]), &fake).await.unwrap_err();
        assert_eq!(err.variable, "KAFKA_SASL_SECRET_ARN");
        let text = telemetry::failure::Chain(&err).to_string();
        assert!(text.contains("has no \"password\""), "{text}");
    }

    #[tokio::test]
    async fn a_plain_variable_wins_and_nothing_is_fetched() {
        let fake = Fake::default();
        let lookup = env(&[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:55432/crypto"),
            ("DATABASE_SECRET_ARN", DB_ARN),
            ("COINGECKO_API_KEY", "CG-key"),
            ("COINGECKO_API_KEY_SECRET_ARN", "  "),
        ]);
        assert!(!needed(&lookup).unwrap());
        let resolved = resolve(&lookup, &fake).await.unwrap();
        assert!(resolved.get("DATABASE_URL").is_none());
        // Even empty: the configuration then reports DATABASE_URL, instead of a secret standing in.
        assert!(!needed(&env(&[("DATABASE_URL", ""), ("DATABASE_SECRET_ARN", DB_ARN)])).unwrap());
        assert!(fake.asked().is_empty());
    }

    #[test]
    fn an_arn_variable_set_but_empty_is_an_error_naming_it() {
        let err = needed(&env(&[("COINGECKO_API_KEY_SECRET_ARN", " ")])).unwrap_err();
        assert_eq!(err.variable, "COINGECKO_API_KEY_SECRET_ARN");
        assert!(matches!(err.problem, Problem::Empty), "{err}");
    }

    #[tokio::test]
    async fn the_overlay_takes_the_plain_variables_places_and_hides_them() {
        let fake = Fake::with(&[(
            DB_ARN,
            r#"{"username":"app","password":"s3cr:t@","host":"db.example.com","dbname":"crypto"}"#,
        )]);
        let mut vars = settings::Env::from_pairs([("DATABASE_SECRET_ARN", DB_ARN), ("COINS", "bitcoin")]);
        overlay(&mut vars, &fake).await.unwrap();
        assert_eq!(vars.get("DATABASE_URL"), Some("postgres://app:s3cr%3At%40@db.example.com:5432/crypto"));
        assert_eq!(vars.get("COINS"), Some("bitcoin"));
        assert!(!format!("{vars:?}").contains("s3cr"));
        // Without an ARN to read, nothing is asked for.
        let mut vars = settings::Env::from_pairs([("COINS", "bitcoin")]);
        overlay(&mut vars, &Fake::default()).await.unwrap();
        assert_eq!(vars.get("DATABASE_URL"), None);
    }

    #[tokio::test]
    async fn the_rds_master_secret_takes_host_and_name_from_the_environment() {
        let fake = Fake::with(&[(DB_ARN, r#"{"username":"postgres","password":"pw"}"#)]);
        let lookup = env(&[
            ("DATABASE_SECRET_ARN", DB_ARN),
            ("DATABASE_HOST", "db.cluster-abc.eu-west-1.rds.amazonaws.com"),
            ("DATABASE_NAME", "crypto"),
        ]);
        let resolved = resolve(&lookup, &fake).await.unwrap();
        assert_eq!(
            resolved.get("DATABASE_URL").unwrap().expose_secret(),
            "postgres://postgres:pw@db.cluster-abc.eu-west-1.rds.amazonaws.com:5432/crypto"
        );
    }

    #[tokio::test]
    async fn errors_name_the_variable_and_arn_never_the_value() {
        let lookup = env(&[("DATABASE_SECRET_ARN", DB_ARN)]);

        let err = resolve(&lookup, &Fake::default()).await.unwrap_err();
        assert_eq!(err.variable, "DATABASE_SECRET_ARN");
        assert_eq!(err.arn, DB_ARN);
        assert!(matches!(err.problem, Problem::Fetch { .. }), "{err}");

        let fake = Fake::with(&[(DB_ARN, r#"{"username":"app","password":"hunter2"}"#)]);
        let err = resolve(&lookup, &fake).await.unwrap_err();
        let text = telemetry::failure::Chain(&err).to_string();
        assert!(
            text.contains(DB_ARN) && text.contains("DATABASE_HOST") && text.contains("DATABASE_NAME"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");

        let fake = Fake::with(&[(DB_ARN, "mysql://app:hunter2@db/crypto")]);
        let text = telemetry::failure::Chain(&resolve(&lookup, &fake).await.unwrap_err()).to_string();
        assert!(!text.contains("hunter2"), "{text}");
    }
}
