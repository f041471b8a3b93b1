//! The pipeline's TLS clients outside reqwest and the AWS SDK (Postgres, the
//! exchanges' websockets): rustls with the aws-lc-rs provider (the one
//! reqwest and the AWS SDK use; named, so no process-wide default is needed),
//! trusting the system's CA certificates plus an optional PEM bundle.
//! Certificates and host names are always verified.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tracing::warn;

/// The system's CA certificates, read once per process.
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

/// The system's roots, plus every certificate of the PEM file `extra`. The
/// error says what is wrong with the file, naming it (the caller names the setting).
pub fn roots(extra: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(path) = extra {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| format!("cannot read the CA bundle {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| format!("a certificate in {} is unusable: {e}", path.display()))?;
        }
    }
    Ok(roots)
}

/// A client configuration trusting `roots`.
pub fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
