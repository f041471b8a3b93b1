//! TLS for the websocket connections: the system's roots plus `FEED_CA_BUNDLE`,
//! certificates and host names always verified (rustls, aws-lc-rs as the rest
//! of the pipeline uses).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tracing::warn;

use crate::ExchangeError;

fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if let Some(first) = found.errors.first() {
            warn!(errors = found.errors.len(), loaded = found.certs.len(), "system CA certificates: {first}");
        }
        found.certs
    })
}

pub(crate) fn client_config(ca_bundle: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ExchangeError> {
    let mut roots = rustls::RootCertStore::empty();
    let (_, ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
    if ignored > 0 {
        warn!(ignored, "system CA certificates rustls cannot use");
    }
    if let Some(path) = ca_bundle {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| ExchangeError::Config {
                variable: "FEED_CA_BUNDLE",
                problem: format!("cannot read {}: {e}", path.display()),
            })?;
        if certs.is_empty() {
            return Err(ExchangeError::Config {
                variable: "FEED_CA_BUNDLE",
                problem: format!("{} holds no PEM certificate", path.display()),
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ExchangeError::Config {
                variable: "FEED_CA_BUNDLE",
                problem: format!("{}: {e}", path.display()),
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ExchangeError::Setup { what: "TLS client", source: Box::new(e) })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
