//! Secret values into the plain variables' values. Messages complete "its
//! value …" and never quote the value: it may be, or hold, a password.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::Lookup;

/// Everything but RFC 3986's unreserved characters is encoded, so any user,
/// password or database name survives the URL (tokio-postgres decodes them).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

const DEFAULT_PORT: u16 = 5432;

/// A Postgres URL from a database secret. The secret holds either the URL
/// itself or RDS-style JSON `{username, password, host, port, dbname}`. Secrets
/// that RDS manages for a master user hold only `username` and `password`: the
/// rest then comes from `DATABASE_HOST`, `DATABASE_PORT` (default 5432) and
/// `DATABASE_NAME`.
pub fn database_url(value: &str, lookup: Lookup<'_>) -> Result<SecretString, String> {
    let value = value.trim();
    if value.starts_with("postgres://") || value.starts_with("postgresql://") {
        return Ok(SecretString::from(value.to_owned()));
    }
    if !value.starts_with('{') {
        return Err(String::from(
            "is neither a postgres:// URL nor JSON {username, password, host, port, dbname}",
        ));
    }
    let fields = json_object(value)?;
    let text = |name: &str| -> Result<Option<&str>, String> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("has a {name:?} that is not a string")),
        }
    };
    // A variable set but blank is a mistake, reported as such rather than taken for unset.
    let env = |field: &str, name: &str| -> Result<Option<String>, String> {
        match lookup(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Err(format!("has no {field:?} and {name} is set but empty")),
            Some(v) => Ok(Some(v.trim().to_owned())),
        }
    };

    let user = text("username")?.ok_or("has no \"username\"")?;
    let password = text("password")?;

    // Collect every missing part, so one failed cold start tells all.
    let mut missing = Vec::new();
    let host = match text("host")? {
        Some(host) => Some(host.to_owned()),
        None => env("host", "DATABASE_HOST")?.or_else(|| {
            missing.push(("host", "DATABASE_HOST"));
            None
        }),
    };
    let dbname = match text("dbname")? {
        Some(name) => Some(name.to_owned()),
        None => env("dbname", "DATABASE_NAME")?.or_else(|| {
            missing.push(("dbname", "DATABASE_NAME"));
            None
        }),
    };
    let (Some(host), Some(dbname)) = (host, dbname) else {
        let fields: Vec<_> = missing.iter().map(|(f, _)| format!("{f:?}")).collect();
        let vars: Vec<_> = missing.iter().map(|(_, v)| *v).collect();
        return Err(format!(
            "has no {} and {} unset: add the field to the secret or set the variable \
             (secrets RDS manages for a master user hold only username and password)",
            fields.join(" nor "),
            match vars.as_slice() {
                [one] => format!("{one} is"),
                many => format!("{} are", many.join(", ")),
            },
        ));
    };
    let port = match fields.get("port") {
        None | Some(Value::Null) => Some(match env("port", "DATABASE_PORT")? {
            Some(raw) => port_number(&raw).ok_or_else(|| {
                format!("has no \"port\" and DATABASE_PORT={raw:?} is not a port number (1-65535)")
            })?,
            None => DEFAULT_PORT,
        }),
        // RDS writes a number; people often write a string.
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()).filter(|&n| n > 0),
        Some(Value::String(s)) => port_number(s),
        Some(_) => None,
    }
    .ok_or("has a \"port\" that is not a port number (1-65535)")?;

    let host = host_for_url(&host)?;
    let user = utf8_percent_encode(user, COMPONENT);
    let dbname = utf8_percent_encode(&dbname, COMPONENT);
    let url = match password {
        Some(password) => {
            format!("postgres://{user}:{}@{host}:{port}/{dbname}", utf8_percent_encode(password, COMPONENT))
        }
        None => format!("postgres://{user}@{host}:{port}/{dbname}"),
    };
    Ok(SecretString::from(url))
}

/// The CoinGecko API key from its secret: the key itself, or JSON with a
/// single string field such as `{"api_key": "…"}` (what the console's
/// key/value editor writes).
pub fn api_key(value: &str) -> Result<SecretString, String> {
    let value = value.trim();
    if !value.starts_with('{') {
        return match value {
            "" => Err(String::from("is empty")),
            key => Ok(SecretString::from(key.to_owned())),
        };
    }
    let fields = json_object(value)?;
    let strings: Vec<(&String, &str)> = fields
        .iter()
        .filter_map(|(k, v)| Some((k, v.as_str()?.trim())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    match strings.as_slice() {
        [(_, key)] => Ok(SecretString::from((*key).to_owned())),
        [] => Err(String::from(
            "is JSON without a non-empty string field: store the key itself, or JSON such as {\"api_key\": \"…\"}",
        )),
        many => Err(format!(
            "is JSON with several string fields ({}): keep one, such as {{\"api_key\": \"…\"}}, or store the key itself",
            many.iter().map(|(k, _)| format!("{k:?}")).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Parses a JSON object. serde_json's data errors may quote the offending
/// value, so only the position of a syntax error is reported.
/// A field of a Kafka SASL secret: JSON `{"username", "password"}`, the form
/// Lambda's Kafka event source mappings read, so one secret serves both the
/// trigger and the function's own clients.
fn kafka_field(value: &str, field: &str) -> Result<SecretString, String> {
    match json_object(value.trim())?.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(SecretString::from(s.clone())),
        Some(Value::String(_)) => Err(format!("has an empty {field:?}")),
        Some(_) => Err(format!("has a {field:?} that is not a string")),
        None => Err(format!("has no {field:?} (expected JSON {{\"username\", \"password\"}})")),
    }
}

/// `KAFKA_SASL_USERNAME` from a Kafka SASL secret.
pub fn kafka_username(value: &str) -> Result<SecretString, String> {
    kafka_field(value, "username")
}

/// `KAFKA_SASL_PASSWORD` from a Kafka SASL secret.
pub fn kafka_password(value: &str) -> Result<SecretString, String> {
    kafka_field(value, "password")
}

fn json_object(value: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(value) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(String::from("is JSON but not an object")),
        Err(e) => Err(format!("is not valid JSON (line {}, column {})", e.line(), e.column())),
    }
}

fn port_number(raw: &str) -> Option<u16> {
    raw.trim().parse::<u16>().ok().filter(|&n| n > 0)
}

/// A host name or address as it goes in a URL: IPv6 addresses in brackets.
fn host_for_url(host: &str) -> Result<String, String> {
    let host = host.trim();
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let bad = |c: char| c.is_whitespace() || c.is_control() || "/?#@[],%\\".contains(c);
    if bare.is_empty() || bare.contains(bad) {
        return Err(String::from(
            "has a host that is not a host name or IP address (check \"host\" or DATABASE_HOST)",
        ));
    }
    if !bare.contains(':') {
        return Ok(bare.to_owned());
    }
    match bare.parse::<std::net::Ipv6Addr>() {
        Ok(_) => Ok(format!("[{bare}]")),
        Err(_) => Err(String::from(
            "has a host with a ':' that is not an IPv6 address: put the port in \"port\" or DATABASE_PORT",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn url(value: &str, env: &[(&str, &str)]) -> Result<String, String> {
        let map: HashMap<&str, &str> = env.iter().copied().collect();
        database_url(value, &|k| map.get(k).map(|v| v.to_string())).map(|s| s.expose_secret().to_owned())
    }

    /// What tokio-postgres, which opens the connection, makes of a URL.
    fn parsed(url: &str) -> tokio_postgres::Config {
        url.parse().unwrap()
    }

    #[test]
    fn a_url_secret_is_used_as_it_is() {
        for value in [
            "postgres://app:pw@db.example.com:5432/crypto?sslmode=verify-full",
            "  postgresql://app@db/crypto\n",
        ] {
            assert_eq!(url(value, &[("DATABASE_HOST", "ignored")]).unwrap(), value.trim());
        }
    }

    #[test]
    fn an_rds_json_secret_becomes_a_url() {
        let json = r#"{"engine":"postgres","username":"app","password":"pw","host":"db.example.com",
                       "port":6432,"dbname":"crypto","dbInstanceIdentifier":"db-1"}"#;
        assert_eq!(url(json, &[]).unwrap(), "postgres://app:pw@db.example.com:6432/crypto");
        // The secret wins over the environment; a port may be a string.
        let json = r#"{"username":"app","password":"pw","host":"a","port":"5433","dbname":"d"}"#;
        let env = [("DATABASE_HOST", "b"), ("DATABASE_PORT", "1"), ("DATABASE_NAME", "e")];
        assert_eq!(url(json, &env).unwrap(), "postgres://app:pw@a:5433/d");
    }

    #[test]
    fn missing_parts_come_from_the_environment() {
        let json = r#"{"username":"postgres","password":"pw"}"#;
        let env = [("DATABASE_HOST", "db.example.com"), ("DATABASE_NAME", "crypto")];
        assert_eq!(url(json, &env).unwrap(), "postgres://postgres:pw@db.example.com:5432/crypto");
        let env =
            [("DATABASE_HOST", "db.example.com"), ("DATABASE_PORT", "6543"), ("DATABASE_NAME", "crypto")];
        assert_eq!(url(json, &env).unwrap(), "postgres://postgres:pw@db.example.com:6543/crypto");
        // No password: trust or peer authentication.
        let json = r#"{"username":"postgres","host":"h","dbname":"d","password":null}"#;
        assert_eq!(url(json, &[]).unwrap(), "postgres://postgres@h:5432/d");
    }

    #[test]
    fn missing_parts_are_named() {
        let json = r#"{"username":"postgres","password":"hunter2"}"#;
        let err = url(json, &[]).unwrap_err();
        assert!(
            err.contains("\"host\" nor \"dbname\"") && err.contains("DATABASE_HOST, DATABASE_NAME are unset"),
            "{err}"
        );
        let err = url(json, &[("DATABASE_HOST", "h")]).unwrap_err();
        assert!(err.contains("no \"dbname\" and DATABASE_NAME is unset"), "{err}");
        let err = url(json, &[("DATABASE_NAME", "d")]).unwrap_err();
        assert!(err.contains("no \"host\" and DATABASE_HOST is unset"), "{err}");
        let err = url(json, &[("DATABASE_NAME", "d"), ("DATABASE_HOST", " ")]).unwrap_err();
        assert!(err.contains("no \"host\" and DATABASE_HOST is set but empty"), "{err}");
        let err = url(r#"{"password":"hunter2","host":"h","dbname":"d"}"#, &[]).unwrap_err();
        assert!(err.contains("no \"username\""), "{err}");
        let err =
            url(json, &[("DATABASE_HOST", "h"), ("DATABASE_NAME", "d"), ("DATABASE_PORT", "x")]).unwrap_err();
        assert!(err.contains("DATABASE_PORT=\"x\""), "{err}");
        for bad in [
            r#"{"username":"u","password":"hunter2","host":"h","dbname":"d","port":0}"#,
            r#"{"username":"u","password":"hunter2","host":"h","dbname":"d","port":70000}"#,
            r#"{"username":"u","password":"hunter2","host":"h","dbname":"d","port":"x"}"#,
        ] {
            assert!(url(bad, &[]).unwrap_err().contains("\"port\""), "{bad}");
        }
    }

    #[test]
    fn errors_never_quote_the_value() {
        for bad in [
            "hunter2",
            "mysql://u:hunter2@h/d",
            r#"{"username":"u","password":"hunter2""#,
            r#"{"username":"u","password":12345678}"#,
            r#"["hunter2"]"#,
            r#"{"username":"u","password":"hunter2","host":"h@st","dbname":"d"}"#,
        ] {
            let err = url(bad, &[]).unwrap_err();
            assert!(!err.contains("hunter2") && !err.contains("12345678"), "{bad} → {err}");
        }
    }

    #[test]
    fn special_characters_survive_the_url() {
        let json = r#"{"username":"app user@corp","password":"p@ss/w:rd?#%&= é+","host":"db.example.com","dbname":"my db/x"}"#;
        let u = url(json, &[]).unwrap();
        assert_eq!(
            u,
            "postgres://app%20user%40corp:p%40ss%2Fw%3Ard%3F%23%25%26%3D%20%C3%A9%2B@db.example.com:5432/my%20db%2Fx"
        );
        let config = parsed(&u);
        assert_eq!(config.get_user(), Some("app user@corp"));
        assert_eq!(config.get_password(), Some("p@ss/w:rd?#%&= é+".as_bytes()));
        assert_eq!(config.get_dbname(), Some("my db/x"));
        assert_eq!(config.get_ports(), [5432]);
        assert_eq!(config.get_hosts(), [tokio_postgres::config::Host::Tcp("db.example.com".into())]);
    }

    #[test]
    fn ipv6_hosts_get_brackets() {
        let json = r#"{"username":"u","password":"p","host":"::1","dbname":"d"}"#;
        let u = url(json, &[]).unwrap();
        assert_eq!(u, "postgres://u:p@[::1]:5432/d");
        assert_eq!(parsed(&u).get_hosts(), [tokio_postgres::config::Host::Tcp("::1".into())]);
    }

    #[test]
    fn the_api_key_is_plain_or_one_json_field() {
        let key = |v: &str| api_key(v).map(|s| s.expose_secret().to_owned());
        assert_eq!(key(" CG-abc\n").unwrap(), "CG-abc");
        assert_eq!(key(r#"{"api_key": "CG-abc"}"#).unwrap(), "CG-abc");
        assert_eq!(key(r#"{"COINGECKO_API_KEY": "CG-abc", "rotated": 3}"#).unwrap(), "CG-abc");
        assert!(key("  ").unwrap_err().contains("empty"));
        let err = key(r#"{"api_key": "CG-abc", "old_key": "CG-def"}"#).unwrap_err();
        assert!(err.contains("\"api_key\", \"old_key\"") && !err.contains("CG-"), "{err}");
        let err = key(r#"{"api_key": ""}"#).unwrap_err();
        assert!(err.contains("without a non-empty string field"), "{err}");
        let err = key(r#"{"api_key": "CG-abc"#).unwrap_err();
        assert!(err.contains("not valid JSON") && !err.contains("CG-"), "{err}");
    }
}
