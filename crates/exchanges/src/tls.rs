//! TLS for the websocket connections: the pipeline's one rustls set-up
//! (`storage::tls`: system roots plus `FEED_CA_BUNDLE`, always verified).

use std::path::Path;
use std::sync::Arc;

use crate::ExchangeError;

pub(crate) fn client_config(ca_bundle: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ExchangeError> {
    let roots = storage::tls::roots(ca_bundle)
        .map_err(|problem| ExchangeError::Config { variable: "FEED_CA_BUNDLE", problem })?;
    let config = storage::tls::client_config(roots)
        .map_err(|e| ExchangeError::Setup { what: "TLS client", source: e.into() })?;
    Ok(Arc::new(config))
}
