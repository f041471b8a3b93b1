use std::borrow::Cow;
use std::path::PathBuf;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use secrecy::ExposeSecret;
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{info, instrument};

use crate::StorageError;
use crate::config::{PgConfig, PgSslMode};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Arbitrary constant for `pg_advisory_lock`: two processes starting at once
/// (a test run and `just deploy-local`) must not apply migrations concurrently.
const MIGRATION_LOCK: i64 = 0x6372_7970_746f; // "crypto"

/// The Postgres side of storage: a connection pool and the queries.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    target: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("target", &self.target).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Builds the pool and checks one connection, so a wrong URL or a stopped
    /// database fails here with a clear message instead of at the first query.
    /// TLS follows the URL's `sslmode`, else the config's ([`ConnectOptions`]).
    pub async fn connect(config: &PgConfig) -> Result<Self, StorageError> {
        let options = ConnectOptions::new(config)?;
        let target = describe(&options.config);
        let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match options.tls()? {
            None => Manager::from_config(options.config, NoTls, recycling),
            Some(tls) => Manager::from_config(options.config, tls, recycling),
        };
        let pool = Pool::builder(manager).max_size(8).build().map_err(|e| StorageError::Connect {
            target: target.clone(),
            hint: UP,
            source: e.into(),
        })?;
        let store = Self { pool, target };
        drop(store.client().await?);
        Ok(store)
    }

    /// `host:port/database`, never the credentials.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A pooled connection: for a caller that holds a transaction or a
    /// session lock across several of storage's statements (the transform, the
    /// site's snapshot), and for tests and the bench on scratch databases. The
    /// pipeline's SQL itself is in `inputs`, `outputs` and `runs`.
    pub async fn client(&self) -> Result<Object, StorageError> {
        self.pool.get().await.map_err(|e| {
            let hint = match &e {
                deadpool_postgres::PoolError::Backend(pg) => connect_hint(pg),
                _ => UP,
            };
            StorageError::Connect { target: self.target.clone(), hint, source: e.into() }
        })
    }
}

/// A connection URL, parsed, and how to secure the connection.
///
/// `sslmode` (from the URL, else `PGSSLMODE` of [`PgConfig`], else `prefer`) takes libpq's values:
/// - `disable`: plaintext;
/// - `prefer`: TLS if the server offers it, else plaintext (a local Postgres
///   without TLS); a server that offers TLS must still present a trusted certificate;
/// - `require`, `verify-ca`, `verify-full`: TLS or no connection.
///
/// Whenever TLS is used the certificate chain **and** the host name are
/// verified, as libpq's `verify-full` does: unlike libpq, `require` and
/// `verify-ca` do not weaken that, because this project never turns
/// verification off. Trusted roots are the system's (as the AWS SDK's client
/// uses) plus the PEM file `sslrootcert=PATH` (else `PGSSLROOTCERT`) names: the
/// RDS CA bundle, which public root stores lack. `sslrootcert=system` means
/// the system's alone, as in libpq.
#[derive(Debug)]
pub(crate) struct ConnectOptions {
    pub(crate) config: tokio_postgres::Config,
    root_cert: Option<PathBuf>,
}

impl ConnectOptions {
    pub(crate) fn new(config: &PgConfig) -> Result<Self, StorageError> {
        Self::parse(config.database_url.expose_secret(), config.ssl_mode, config.ssl_root_cert.as_deref())
            .map_err(StorageError::Config)
    }

    /// Parses `url`; `ssl_mode` and `root_cert` (`PGSSLMODE` and
    /// `PGSSLROOTCERT`) apply where it has no `sslmode` or `sslrootcert`. tokio-postgres
    /// knows only `disable`, `prefer` and `require` and no `sslrootcert`, so
    /// those are taken out of the query before it parses the rest.
    ///
    /// The query is split here rather than by `url::Url`, which refuses the
    /// multi-host URLs tokio-postgres takes (`postgres://u@h1:5432,h2:5433/db`)
    /// and decodes `+` as a space where tokio-postgres keeps a plus: the pairs
    /// it reads must reach it as written.
    fn parse(url: &str, ssl_mode: Option<PgSslMode>, root_cert_path: Option<&str>) -> Result<Self, String> {
        let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let (mut sslmode, mut root_cert, mut kept) = (None, None, Vec::new());
        let base = match url.split_once('?') {
            Some((base, query)) if is_url => {
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    match &*decode(key) {
                        "sslmode" => sslmode = Some(decode(value).into_owned()),
                        "sslrootcert" => root_cert = Some(decode(value).into_owned()),
                        _ => kept.push(pair),
                    }
                }
                base
            }
            _ => url,
        };
        let stripped = if kept.is_empty() {
            Cow::Borrowed(base)
        } else {
            Cow::Owned(format!("{base}?{}", kept.join("&")))
        };
        let mut config: tokio_postgres::Config =
            stripped.parse().map_err(|e: tokio_postgres::Error| format!("it does not parse: {e}"))?;
        // A key=value string keeps the sslmode tokio-postgres parsed in it.
        if is_url {
            let mode = match sslmode {
                Some(raw) => PgSslMode::parse(&raw).ok_or_else(|| {
                    format!("sslmode={raw:?} is not supported: use disable, prefer, require, verify-ca or verify-full")
                })?,
                None => ssl_mode.unwrap_or(PgSslMode::Prefer),
            };
            config.ssl_mode(match mode {
                PgSslMode::Prefer => SslMode::Prefer,
                PgSslMode::Disable => SslMode::Disable,
                PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => SslMode::Require,
            });
        }
        let root_cert = root_cert.filter(|p| !p.is_empty()).or_else(|| root_cert_path.map(str::to_owned));
        Ok(Self { config, root_cert: root_cert.filter(|p| p != "system").map(PathBuf::from) })
    }

    /// The TLS connector, or `None` for `sslmode=disable`.
    pub(crate) fn tls(&self) -> Result<Option<MakeRustlsConnect>, StorageError> {
        if self.config.get_ssl_mode() == SslMode::Disable {
            return Ok(None);
        }
        let target = describe(&self.config);
        let fail = |problem| StorageError::Config(format!("TLS to {target}: {problem}"));
        let roots = crate::tls::roots(self.root_cert.as_deref())
            .map_err(|problem| fail(format!("{problem} (sslrootcert / PGSSLROOTCERT)")))?;
        if roots.is_empty() && self.config.get_ssl_mode() == SslMode::Require {
            return Err(fail(String::from(
                "sslmode requires TLS but no CA certificate is trusted: the system has none; \
                 set sslrootcert=PATH in the URL or PGSSLROOTCERT to a PEM bundle",
            )));
        }
        let config = crate::tls::client_config(roots).map_err(fail)?;
        Ok(Some(MakeRustlsConnect::new(config)))
    }
}

/// Percent-decoding of a URL query part, as tokio-postgres does.
fn decode(raw: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy()
}

/// What to try when a connection fails: the default, or, when the server's
/// certificate was refused, how to make it trusted.
pub(crate) const UP: &str = "(is the local stack up? run `just up`)";

pub(crate) fn connect_hint(err: &tokio_postgres::Error) -> &'static str {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        // tokio-rustls hands rustls' error over inside an io::Error.
        let tls = cause
            .downcast_ref::<rustls::Error>()
            .or_else(|| cause.downcast_ref::<std::io::Error>()?.get_ref()?.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(reason)) = tls {
            return match reason {
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. } => {
                    "(the certificate is not for this host name: connect with a name it lists, \
                     for RDS the instance or cluster endpoint)"
                }
                _ => {
                    "(the server's certificate is not trusted: set sslrootcert=PATH in the URL, or \
                     PGSSLROOTCERT, to its CA's PEM bundle, for RDS AWS's global-bundle.pem; \
                     verification is never turned off, but sslmode=disable skips TLS for a local server)"
                }
            };
        }
        source = cause.source();
    }
    UP
}

fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => String::from("localhost"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("postgres"))
}

/// Applies the migrations in `migrations/` that are not applied yet. Safe to
/// call from several processes at once and on every start.
#[instrument(skip_all, fields(target = store.target()))]
pub async fn migrate(store: &PgStore) -> Result<usize, StorageError> {
    let mut client = store.client().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| StorageError::query("take the migration lock", e))?;
    let result = embedded::migrations::runner().run_async(&mut **client).await;
    // Unlock whatever happened; the session ends with the connection anyway.
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await;
    let report = result.map_err(StorageError::Migrate)?;
    let applied = report.applied_migrations().len();
    info!(applied, "migrations up to date");
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use secrecy::SecretString;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// `url` with the TLS fallbacks a [`PgConfig`] loads from `env`.
    fn parse(url: &str, env: &[(&str, &str)]) -> Result<ConnectOptions, String> {
        let config: PgConfig =
            settings::Env::from_pairs(env.iter().copied()).load().map_err(|e| e.to_string())?;
        ConnectOptions::parse(url, config.ssl_mode, config.ssl_root_cert.as_deref())
    }

    fn mode(url: &str, env: &[(&str, &str)]) -> SslMode {
        parse(url, env).unwrap().config.get_ssl_mode()
    }

    #[test]
    fn a_url_without_sslmode_prefers_tls_and_keeps_everything_else() {
        let options = parse("postgres://postgres@127.0.0.1:55432/crypto", &[]).unwrap();
        assert_eq!(options.config.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(options.root_cert, None);
        assert_eq!(describe(&options.config), "127.0.0.1:55432/crypto");

        let options =
            parse("postgres://u:p%40ss@h:6432/db?connect_timeout=5&application_name=my%20app", &[]).unwrap();
        assert_eq!(options.config.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(options.config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(options.config.get_connect_timeout(), Some(&Duration::from_secs(5)));
        assert_eq!(options.config.get_application_name(), Some("my app"));
    }

    #[test]
    fn sslmode_takes_libpq_values_and_every_tls_mode_is_required() {
        assert_eq!(mode("postgres://u@h/d?sslmode=disable", &[]), SslMode::Disable);
        assert_eq!(mode("postgres://u@h/d?sslmode=prefer", &[]), SslMode::Prefer);
        for verified in ["require", "verify-ca", "verify-full"] {
            let url = format!("postgresql://u@h/d?application_name=x&sslmode={verified}&connect_timeout=3");
            let options = parse(&url, &[]).unwrap();
            assert_eq!(options.config.get_ssl_mode(), SslMode::Require, "{verified}");
            assert_eq!(options.config.get_application_name(), Some("x"));
            assert_eq!(options.config.get_connect_timeout(), Some(&Duration::from_secs(3)));
        }
        // A key=value string keeps what tokio-postgres read in it.
        assert_eq!(mode("host=h user=u sslmode=require", &[("PGSSLMODE", "disable")]), SslMode::Require);
    }

    #[test]
    fn sslrootcert_is_taken_out_and_decoded() {
        let options =
            parse("postgres://u@h/d?sslmode=verify-full&sslrootcert=/opt/rds/global-bundle.pem", &[])
                .unwrap();
        assert_eq!(options.root_cert, Some(PathBuf::from("/opt/rds/global-bundle.pem")));
        let options = parse("postgres://u@h/d?sslrootcert=%2Fetc%2Fmy%20ca.pem", &[]).unwrap();
        assert_eq!(options.root_cert, Some(PathBuf::from("/etc/my ca.pem")));
        // libpq's `system`: the system's roots only.
        assert_eq!(parse("postgres://u@h/d?sslrootcert=system", &[]).unwrap().root_cert, None);
    }

    #[test]
    fn the_url_wins_over_the_environment() {
        let env = [("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", "/env/ca.pem")];
        let options = parse("postgres://u@h/d", &env).unwrap();
        assert_eq!(options.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(options.root_cert, Some(PathBuf::from("/env/ca.pem")));
        let options = parse("postgres://u@h/d?sslmode=disable&sslrootcert=/url/ca.pem", &env).unwrap();
        assert_eq!(options.config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(options.root_cert, Some(PathBuf::from("/url/ca.pem")));
        // Set but blank is a mistake, not `prefer`.
        assert!(parse("postgres://u@h/d", &[("PGSSLMODE", " ")]).unwrap_err().contains("PGSSLMODE"));
    }

    #[test]
    fn bad_ssl_settings_are_named_without_the_password() {
        let err = parse("postgres://u:hunter2@h/d?sslmode=allow", &[]).unwrap_err();
        assert!(err.contains("sslmode=\"allow\"") && !err.contains("hunter2"), "{err}");
        let err = parse("postgres://u:hunter2@h/d", &[("PGSSLMODE", "verify_full")]).unwrap_err();
        assert!(
            err.contains("PGSSLMODE") && err.contains("verify_full") && !err.contains("hunter2"),
            "{err}"
        );
        let options = parse("postgres://u@h/d?sslmode=require&sslrootcert=/nonexistent/ca.pem", &[]).unwrap();
        let err = options.tls().err().unwrap().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    fn local_url(query: &str) -> SecretString {
        let config: PgConfig = settings::Env::from_process().load().unwrap();
        let url = config.database_url.expose_secret();
        let sep = if url.contains('?') { '&' } else { '?' };
        SecretString::from(format!("{url}{sep}{query}"))
    }

    /// The local stack's Postgres runs without TLS: `prefer` must fall back to
    /// plaintext there, as before TLS support.
    #[tokio::test]
    async fn prefer_connects_in_plaintext_to_a_server_without_tls() {
        let store =
            PgStore::connect(&PgConfig::from_url(local_url("application_name=tls-test"))).await.unwrap();
        let row = store
            .client()
            .await
            .unwrap()
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .unwrap();
        assert!(!row.get::<_, bool>(0));
    }

    #[tokio::test]
    async fn required_tls_never_falls_back_to_plaintext() {
        for mode in ["require", "verify-full"] {
            let err = connect_error(local_url(&format!("sslmode={mode}")).expose_secret().to_owned()).await;
            assert!(err.contains("server does not support TLS"), "{mode}: {err}");
        }
    }

    // A test CA and a certificate it signed for `localhost` (EC P-256, valid
    // 2020-2120), for the fake TLS server below. Test material only.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBdjCCAR2gAwIBAgIBATAKBggqhkjOPQQDAjAiMSAwHgYDVQQDDBdjcnlwdG8t
cGlwZWxpbmUgdGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAw
MFowIjEgMB4GA1UEAwwXY3J5cHRvLXBpcGVsaW5lIHRlc3QgQ0EwWTATBgcqhkjO
PQIBBggqhkjOPQMBBwNCAARPzDUALqiVCUBeBLGUCEfGn+pPvp2OwvZ5FWWwRh1y
hPJOGLSi7zsrSIwqlO4plLW3iTFjTEDryJd92qwFc92ao0IwQDAPBgNVHRMBAf8E
BTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUcZpcthugsJd26J3BIyNM
m0k0o8EwCgYIKoZIzj0EAwIDRwAwRAIgOIiJIJDUiA008foqzFKW17sKvs5yEM39
sInpl9pjtbICIHEDIRong5PdjGL5qw14BzD3+uj2xyD+AsfBi+zgF/9a
-----END CERTIFICATE-----
";
    const TEST_SERVER_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBtTCCAVqgAwIBAgIBAjAKBggqhkjOPQQDAjAiMSAwHgYDVQQDDBdjcnlwdG8t
cGlwZWxpbmUgdGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAw
MFowFDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD
QgAEn8TZEdxEg+z+VyQpphluBHFS02FNgbBjZc4Nfta3QpGHP9/rXXPJG07wZST9
Tq6iruN/lin6fwUxyaFwJ9mzU6OBjDCBiTAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB
/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAUBgNVHREEDTALgglsb2NhbGhv
c3QwHwYDVR0jBBgwFoAUcZpcthugsJd26J3BIyNMm0k0o8EwHQYDVR0OBBYEFPVN
sXLoKjaCmVmpVS691XyXM0BiMAoGCCqGSM49BAMCA0kAMEYCIQDux+r4lv9TqUoI
Vwk3NGPYwSL+xiKEa19fYUakap5vpQIhAIu0I92+7/t3+/ogYIm+J6utp/GMzVnf
bkE5802usl7N
-----END CERTIFICATE-----
";
    const TEST_SERVER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZGZkWK2gjHYKtNFm
h2gPrwCnmdq6KaoGTy7Kq+8goDqhRANCAASfxNkR3ESD7P5XJCmmGW4EcVLTYU2B
sGNlzg1+1rdCkYc/3+tdc8kbTvBlJP1OrqKu43+WKfp/BTHJoXAn2bNT
-----END PRIVATE KEY-----
";

    /// A server that speaks just enough of the protocol to test the client's
    /// TLS: it accepts the SSLRequest, completes the TLS handshake, and answers
    /// the startup message with a FATAL error whose text proves the handshake
    /// succeeded.
    async fn fake_tls_server() -> u16 {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(TEST_SERVER_CERT.as_bytes()).unwrap()],
                rustls::pki_types::PrivateKeyDer::from_pem_slice(TEST_SERVER_KEY.as_bytes()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 8];
                    socket.read_exact(&mut request).await.ok()?;
                    // Length 8, then the SSLRequest code 80877103.
                    assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47]);
                    socket.write_all(b"S").await.ok()?;
                    let mut tls = acceptor.accept(socket).await.ok()?;
                    let len = tls.read_u32().await.ok()?;
                    let mut startup = vec![0u8; len.checked_sub(4)? as usize];
                    tls.read_exact(&mut startup).await.ok()?;
                    let fields = b"SFATAL\0C28000\0Mtls ok: fake server\0\0";
                    let mut reply = vec![b'E'];
                    reply.extend_from_slice(&(4 + fields.len() as u32).to_be_bytes());
                    reply.extend_from_slice(fields);
                    tls.write_all(&reply).await.ok()?;
                    tls.shutdown().await.ok()
                });
            }
        });
        port
    }

    /// The test CA in a file of its own, removed when dropped.
    struct CaFile(PathBuf);

    impl CaFile {
        fn new(test: &str) -> Self {
            let path = std::env::temp_dir().join(format!("storage-{test}-{}.pem", std::process::id()));
            std::fs::write(&path, TEST_CA).unwrap();
            Self(path)
        }
    }

    impl Drop for CaFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    async fn connect_error(url: String) -> String {
        let config = PgConfig::from_url(SecretString::from(url));
        telemetry::failure::Chain(&PgStore::connect(&config).await.unwrap_err()).to_string()
    }

    #[tokio::test]
    async fn tls_verifies_the_server_with_the_extra_ca() {
        let port = fake_tls_server().await;
        let ca = CaFile::new("extra-ca");
        for mode in ["prefer", "require", "verify-ca", "verify-full"] {
            let err = connect_error(format!(
                "postgres://u:pw@localhost:{port}/d?sslmode={mode}&sslrootcert={}",
                ca.0.display()
            ))
            .await;
            assert!(err.contains("tls ok: fake server"), "{mode}: {err}");
        }
        // The same through PGSSLROOTCERT is covered by `the_url_wins_over_the_environment`.
    }

    #[tokio::test]
    async fn an_untrusted_certificate_is_refused_in_every_mode() {
        let port = fake_tls_server().await;
        for mode in ["prefer", "require", "verify-ca", "verify-full"] {
            let err = connect_error(format!("postgres://u:pw@localhost:{port}/d?sslmode={mode}")).await;
            assert!(err.contains("not trusted") && !err.contains("tls ok"), "{mode}: {err}");
        }
    }

    #[tokio::test]
    async fn the_host_name_is_checked_in_every_mode() {
        let port = fake_tls_server().await;
        let ca = CaFile::new("host-name");
        // The certificate names `localhost`, not 127.0.0.1.
        for mode in ["require", "verify-ca", "verify-full"] {
            let err = connect_error(format!(
                "postgres://u:pw@127.0.0.1:{port}/d?sslmode={mode}&sslrootcert={}",
                ca.0.display()
            ))
            .await;
            assert!(err.contains("not for this host name") && !err.contains("tls ok"), "{mode}: {err}");
        }
    }
}
