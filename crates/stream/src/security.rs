//! How every Kafka client of the project connects: one [`ClientConfig`] built
//! from [`KafkaConfig`]'s security settings, one [`KafkaContext`] that keeps
//! the first authentication or TLS failure librdkafka reports (so a start-up
//! check can fail at once with it instead of timing out), and signs MSK IAM
//! tokens when librdkafka asks for one.
//!
//! Certificate verification, host name included, is always on: librdkafka's
//! `ssl.endpoint.identification.algorithm=https` is set explicitly and nothing
//! here can turn it off.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::region::Region;
use rdkafka::client::{Client, OAuthToken};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer as _};
use rdkafka::{ClientConfig, ClientContext};
use secrecy::ExposeSecret;
use tracing::{error, info};

use crate::{AuthenticationFailure, KafkaConfig, SaslMechanism, SecurityProtocol, StreamError, TlsFailure};

/// What librdkafka reported that no retry will cure.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// The brokers refused the credentials (librdkafka's `_AUTHENTICATION`).
    Authentication(String),
    /// The TLS handshake failed: an unknown CA, a certificate for another host…
    Tls(String),
}

/// The context of every client of the project (producers, consumers, admin).
#[derive(Debug, Clone, Default)]
pub struct KafkaContext {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    refusal: Mutex<Option<Refusal>>,
    msk_iam: Option<MskIam>,
}

impl KafkaContext {
    fn new(kafka: &KafkaConfig) -> Self {
        let msk_iam = (kafka.sasl_mechanism == Some(SaslMechanism::AwsMskIam)).then(MskIam::default);
        Self { inner: Arc::new(Inner { refusal: Mutex::new(None), msk_iam }) }
    }

    /// The first authentication or TLS failure reported since the client started.
    fn refusal(&self) -> Option<Refusal> {
        self.inner.refusal.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ClientContext for KafkaContext {
    // librdkafka raises the refresh event only with sasl.mechanism=OAUTHBEARER,
    // so turning it on for every client costs the others nothing.
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: KafkaError, reason: &str) {
        let refusal = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication) => Some(Refusal::Authentication(reason.to_owned())),
            Some(RDKafkaErrorCode::SSL) => Some(Refusal::Tls(reason.to_owned())),
            _ => None,
        };
        if let Some(refusal) = refusal {
            self.inner.refusal.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(refusal);
        }
        // librdkafka's reasons name brokers and states, never credentials.
        error!(target: "librdkafka", "librdkafka: {error}: {reason}");
    }

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let msk_iam = self
            .inner
            .msk_iam
            .as_ref()
            .ok_or("OAUTHBEARER is used only with KAFKA_SASL_MECHANISM=AWS_MSK_IAM")?;
        Ok(msk_iam.token()?)
    }
}

impl ConsumerContext for KafkaContext {}

/// Signs MSK IAM tokens: a SigV4-presigned `kafka-cluster:Connect` URL, valid
/// 15 minutes, from the standard AWS credentials chain and `AWS_REGION`.
#[derive(Debug, Default)]
struct MskIam {
    aws: OnceLock<(Region, SharedCredentialsProvider)>,
}

impl MskIam {
    /// librdkafka calls this from its own threads, outside any Tokio runtime,
    /// and waits for the answer: loading the AWS configuration (the first
    /// time) and signing run on a thread of their own with a runtime of their
    /// own, within a timeout.
    fn token(&self) -> Result<OAuthToken, String> {
        let sign = async {
            let (region, credentials) = match self.aws.get() {
                Some(aws) => aws.clone(),
                None => {
                    let loaded = load_aws().await?;
                    self.aws.get_or_init(|| loaded).clone()
                }
            };
            aws_msk_iam_sasl_signer::generate_auth_token_from_credentials_provider(region, credentials)
                .await
                .map_err(|e| format!("cannot sign the MSK IAM token: {e}"))
        };
        let (token, lifetime_ms) = std::thread::scope(|s| {
            s.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start a runtime to sign the MSK IAM token: {e}"))?;
                // The timer is made inside the runtime: a Sleep needs its reactor.
                runtime
                    .block_on(async { tokio::time::timeout(Duration::from_secs(10), sign).await })
                    .map_err(|_| {
                        String::from(
                            "signing the MSK IAM token took more than 10 s (AWS credentials unreachable?)",
                        )
                    })?
            })
            .join()
            .map_err(|_| String::from("signing the MSK IAM token panicked"))?
        })?;
        info!(expires_ms = lifetime_ms, "MSK IAM token signed");
        Ok(OAuthToken { token, principal_name: String::new(), lifetime_ms })
    }
}

async fn load_aws() -> Result<(Region, SharedCredentialsProvider), String> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let region =
        sdk.region().cloned().ok_or("KAFKA_SASL_MECHANISM=AWS_MSK_IAM needs a region: set AWS_REGION")?;
    let credentials =
        sdk.credentials_provider().ok_or("KAFKA_SASL_MECHANISM=AWS_MSK_IAM found no AWS credentials")?;
    Ok((region, credentials))
}

impl KafkaConfig {
    /// The settings every client shares (brokers, TLS, SASL) and the context
    /// to create it with; each client adds its own.
    pub fn client_config(&self) -> Result<(ClientConfig, KafkaContext), StreamError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        let tls = match self.security_protocol {
            SecurityProtocol::Plaintext => {
                if let Some(mechanism) = self.sasl_mechanism {
                    return Err(misconfigured(
                        "KAFKA_SASL_MECHANISM",
                        format!("{} needs KAFKA_SECURITY_PROTOCOL=sasl_ssl, not plaintext", mechanism.name()),
                    ));
                }
                if self.ssl_ca_location.is_some() {
                    return Err(misconfigured(
                        "KAFKA_SSL_CA_LOCATION",
                        "is set, but KAFKA_SECURITY_PROTOCOL=plaintext uses no TLS: set it to ssl or sasl_ssl",
                    ));
                }
                config.set("security.protocol", "plaintext");
                false
            }
            SecurityProtocol::Ssl => {
                if let Some(mechanism) = self.sasl_mechanism {
                    return Err(misconfigured(
                        "KAFKA_SASL_MECHANISM",
                        format!("{} needs KAFKA_SECURITY_PROTOCOL=sasl_ssl, not ssl", mechanism.name()),
                    ));
                }
                config.set("security.protocol", "ssl");
                true
            }
            SecurityProtocol::SaslSsl => {
                config.set("security.protocol", "sasl_ssl");
                self.sasl(&mut config)?;
                true
            }
        };
        if tls {
            config.set("ssl.endpoint.identification.algorithm", "https");
            match &self.ssl_ca_location {
                Some(path) => config.set("ssl.ca.location", path.display().to_string()),
                // OpenSSL is built into the binary, so its default CA folder is
                // not the system's: librdkafka looks in the usual places
                // (Debian's, Amazon Linux's /etc/pki/tls/certs…).
                None => config.set("ssl.ca.location", "probe"),
            };
        }
        Ok((config, KafkaContext::new(self)))
    }

    fn sasl(&self, config: &mut ClientConfig) -> Result<(), StreamError> {
        let mechanism = self.sasl_mechanism.ok_or_else(|| {
            misconfigured(
                "KAFKA_SASL_MECHANISM",
                "is needed with KAFKA_SECURITY_PROTOCOL=sasl_ssl: SCRAM-SHA-512, SCRAM-SHA-256, PLAIN or AWS_MSK_IAM",
            )
        })?;
        if mechanism == SaslMechanism::AwsMskIam {
            for (variable, set) in [
                ("KAFKA_SASL_USERNAME", self.sasl_username.is_some()),
                ("KAFKA_SASL_PASSWORD", self.sasl_password.is_some()),
            ] {
                if set {
                    return Err(misconfigured(
                        variable,
                        "is set, but AWS_MSK_IAM signs with AWS credentials: unset it",
                    ));
                }
            }
            config.set("sasl.mechanism", "OAUTHBEARER");
            return Ok(());
        }
        let why = || {
            format!(
                "is needed with KAFKA_SASL_MECHANISM={} (or KAFKA_SASL_SECRET_ARN on AWS)",
                mechanism.name()
            )
        };
        let username =
            self.sasl_username.as_ref().ok_or_else(|| misconfigured("KAFKA_SASL_USERNAME", why()))?;
        let password =
            self.sasl_password.as_ref().ok_or_else(|| misconfigured("KAFKA_SASL_PASSWORD", why()))?;
        config
            .set("sasl.mechanism", mechanism.name())
            .set("sasl.username", username)
            .set("sasl.password", password.expose_secret());
        Ok(())
    }

    /// What to check when the brokers refuse us, in the user's terms.
    fn refusal_error(&self, refusal: Refusal) -> StreamError {
        let brokers = self.brokers.clone();
        match refusal {
            Refusal::Authentication(reason) => StreamError::Authentication(Box::new(AuthenticationFailure {
                brokers,
                mechanism: self.sasl_mechanism.map_or("none", SaslMechanism::name),
                username: self.sasl_username.clone(),
                reason,
            })),
            Refusal::Tls(reason) => StreamError::Tls(Box::new(TlsFailure {
                brokers,
                ca: self
                    .ssl_ca_location
                    .as_ref()
                    .map_or_else(|| String::from("the system's trust store"), |p| p.display().to_string()),
                reason,
            })),
        }
    }

    /// Connects a short-lived producer and asks the brokers for `topics` (for
    /// their metadata only, when empty): wrong credentials, an untrusted
    /// certificate, unreachable brokers or a missing topic fail here, at
    /// start-up, with what to fix, rather than as a stalled first send.
    ///
    /// A producer, because its background thread serves the queue librdkafka
    /// reports errors on (an admin client or a consumer would not, before
    /// their first poll); a publisher checks through its own ([`crate::Publisher::connect_to`]).
    pub async fn check(&self, topics: &[&str]) -> Result<(), StreamError> {
        let (mut config, context) = self.client_config()?;
        let producer: FutureProducer<KafkaContext> =
            config.set("message.timeout.ms", "10000").create_with_context(context.clone()).map_err(
                |source| StreamError::Client { role: "producer", brokers: self.brokers.clone(), source },
            )?;
        self.check_with(producer, context, topics).await
    }

    /// [`KafkaConfig::check`] through `producer`, whose context is `context`.
    pub(crate) async fn check_with(
        &self,
        producer: FutureProducer<KafkaContext>,
        context: KafkaContext,
        topics: &[&str],
    ) -> Result<(), StreamError> {
        let kafka = self.clone();
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            if topics.is_empty() {
                return kafka.wait_for_metadata(producer.client(), &context, None);
            }
            topics
                .iter()
                .try_for_each(|topic| kafka.wait_for_metadata(producer.client(), &context, Some(topic)))
        })
        .await
        .map_err(|_| StreamError::Unreachable {
            brokers: self.brokers.clone(),
            source: KafkaError::Canceled,
        })?
    }

    fn wait_for_metadata(
        &self,
        client: &Client<impl ClientContext>,
        context: &KafkaContext,
        topic: Option<&str>,
    ) -> Result<(), StreamError> {
        let start = Instant::now();
        loop {
            let answer = client.fetch_metadata(topic, Duration::from_millis(500));
            if let Some(refusal) = context.refusal() {
                return Err(self.refusal_error(refusal));
            }
            match (answer, topic) {
                (Ok(_), None) => return Ok(()),
                (Ok(metadata), Some(topic)) => {
                    let found = metadata.topics().iter().find(|t| t.name() == topic);
                    return match found.map(|t| (t.error(), t.partitions().len())) {
                        Some((None, n)) if n > 0 => Ok(()),
                        _ => Err(StreamError::NoTopic {
                            topic: topic.to_owned(),
                            brokers: self.brokers.clone(),
                        }),
                    };
                }
                (Err(source), _) if start.elapsed() >= CHECK_DEADLINE => {
                    return Err(StreamError::Unreachable { brokers: self.brokers.clone(), source });
                }
                (Err(_), _) => {}
            }
        }
    }
}

/// How long a start-up check waits for brokers that neither answer nor refuse
/// (`StreamError::Unreachable` says it).
const CHECK_DEADLINE: Duration = Duration::from_secs(20);

fn misconfigured(variable: &'static str, problem: impl Into<String>) -> StreamError {
    StreamError::Config { variable, problem: problem.into() }
}

#[cfg(test)]
mod tests {
    use settings::Env;

    use super::*;

    fn kafka(vars: &[(&str, &str)]) -> KafkaConfig {
        Env::from_pairs(vars.iter().copied()).load().unwrap()
    }

    fn get(config: &ClientConfig, key: &str) -> Option<String> {
        config.get(key).map(str::to_owned)
    }

    #[test]
    fn plaintext_is_the_default_and_sets_no_tls() {
        let (config, _) = kafka(&[]).client_config().unwrap();
        assert_eq!(get(&config, "security.protocol").as_deref(), Some("plaintext"));
        assert_eq!(get(&config, "ssl.ca.location"), None);
    }

    #[test]
    fn tls_always_verifies_the_host_name() {
        for vars in [
            &[("KAFKA_SECURITY_PROTOCOL", "ssl")][..],
            &[
                ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
                ("KAFKA_SASL_MECHANISM", "PLAIN"),
                ("KAFKA_SASL_USERNAME", "key"),
                ("KAFKA_SASL_PASSWORD", "secret"),
            ],
            &[("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"), ("KAFKA_SASL_MECHANISM", "AWS_MSK_IAM")],
        ] {
            let (config, _) = kafka(vars).client_config().unwrap();
            assert_eq!(
                get(&config, "ssl.endpoint.identification.algorithm").as_deref(),
                Some("https"),
                "{vars:?}"
            );
            assert_eq!(get(&config, "ssl.ca.location").as_deref(), Some("probe"), "{vars:?}");
        }
    }

    #[test]
    fn msk_iam_is_oauthbearer_and_scram_passes_the_credentials() {
        let (config, _) =
            kafka(&[("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"), ("KAFKA_SASL_MECHANISM", "AWS_MSK_IAM")])
                .client_config()
                .unwrap();
        assert_eq!(get(&config, "sasl.mechanism").as_deref(), Some("OAUTHBEARER"));
        assert_eq!(get(&config, "sasl.username"), None);
        let (config, _) = kafka(&[
            ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"),
            ("KAFKA_SASL_USERNAME", "alice"),
            ("KAFKA_SASL_PASSWORD", "pw"),
        ])
        .client_config()
        .unwrap();
        assert_eq!(get(&config, "sasl.mechanism").as_deref(), Some("SCRAM-SHA-256"));
        assert_eq!(
            (get(&config, "sasl.username").as_deref(), get(&config, "sasl.password").as_deref()),
            (Some("alice"), Some("pw"))
        );
    }

    #[test]
    fn inconsistent_settings_are_errors_naming_the_variable() {
        for (vars, variable) in [
            (&[("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")][..], "KAFKA_SASL_MECHANISM"),
            (&[("KAFKA_SASL_MECHANISM", "PLAIN")], "KAFKA_SASL_MECHANISM"),
            (
                &[("KAFKA_SECURITY_PROTOCOL", "ssl"), ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")],
                "KAFKA_SASL_MECHANISM",
            ),
            (
                &[("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"), ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")],
                "KAFKA_SASL_USERNAME",
            ),
            (
                &[
                    ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
                    ("KAFKA_SASL_MECHANISM", "PLAIN"),
                    ("KAFKA_SASL_USERNAME", "u"),
                ],
                "KAFKA_SASL_PASSWORD",
            ),
            (
                &[
                    ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
                    ("KAFKA_SASL_MECHANISM", "AWS_MSK_IAM"),
                    ("KAFKA_SASL_PASSWORD", "p"),
                ],
                "KAFKA_SASL_PASSWORD",
            ),
        ] {
            match kafka(vars).client_config() {
                Err(StreamError::Config { variable: v, problem }) => {
                    assert_eq!(v, variable, "{vars:?}: {problem}")
                }
                other => panic!("{vars:?}: expected an error naming {variable}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_tls_refusal_names_the_ca_file_and_keeps_librdkafkas_reason() {
        let config = kafka(&[("KAFKA_SECURITY_PROTOCOL", "ssl")]);
        let err = config.refusal_error(Refusal::Tls(String::from(
            "ssl://localhost:9093/bootstrap: certificate verify failed",
        )));
        let text = err.to_string();
        assert!(text.contains("localhost:9093") && text.contains("system's trust store"), "{text}");
        assert!(text.contains("KAFKA_SSL_CA_LOCATION"), "{text}");
    }

    #[tokio::test]
    async fn an_msk_iam_token_is_a_presigned_kafka_cluster_connect_url() {
        let credentials = aws_credential_types::Credentials::from_keys("AKIDEXAMPLE", "wJalrXUtnFEMI", None);
        let msk = MskIam::default();
        msk.aws
            .set((Region::new("eu-west-1"), SharedCredentialsProvider::new(credentials)))
            .expect("fresh signer");
        // Called as librdkafka calls it: from a thread outside any runtime.
        let token = std::thread::spawn(move || msk.token()).join().unwrap().unwrap();
        use base64::Engine as _;
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token.token).unwrap();
        let url = String::from_utf8(url).unwrap();
        assert!(
            url.starts_with("https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect"),
            "{url}"
        );
        assert!(
            url.contains("X-Amz-Credential=AKIDEXAMPLE%2F")
                && url.contains("%2Feu-west-1%2Fkafka-cluster%2Faws4_request"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Expires=900") && url.contains("X-Amz-Signature="), "{url}");
        let now_ms = chrono::Utc::now().timestamp_millis();
        assert!(
            (now_ms + 800_000..=now_ms + 901_000).contains(&token.lifetime_ms),
            "expires in ~15 min: {}",
            token.lifetime_ms
        );
    }
}
