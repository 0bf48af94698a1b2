//! HTTP pieces every adapter of an HTTP service shares.

use std::path::Path;
use std::time::Duration;

use super::AdapterError;

/// An HTTP client that trusts the public roots and, if given, a private CA
/// (`tls_ca_file`), with a 10 s connect timeout and Nagle off.
pub fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, AdapterError> {
    client_with(reqwest::Client::builder(), ca_file)
}

/// [`client`], from a builder the adapter has set up further (a user agent).
pub fn client_with(
    builder: reqwest::ClientBuilder,
    ca_file: Option<&Path>,
) -> Result<reqwest::Client, AdapterError> {
    let mut b = builder
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| AdapterError::Config(format!("tls_ca_file {}: {e}", ca.display())))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| AdapterError::Config(format!("tls_ca_file {}: {e}", ca.display())))?;
        b = b.add_root_certificate(cert);
    }
    b.build()
        .map_err(|e| AdapterError::Config(format!("HTTP client: {e}")))
}

/// Read a response body of at most `cap` bytes, chunk by chunk, stopping at the first
/// chunk past the cap (a file above the media cap is never held whole). `what` names the
/// request in errors: a dropped body is a link down (the URL left out, since some carry
/// a token), a body past the cap refuses this one file.
pub async fn read_capped(
    resp: &mut reqwest::Response,
    what: &str,
    cap: u64,
) -> Result<Vec<u8>, AdapterError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| AdapterError::Link(format!("{what}: {}", e.without_url())))?
    {
        if out.len() as u64 + chunk.len() as u64 > cap {
            return Err(AdapterError::Refused(format!(
                "{what}: larger than the {cap}-byte cap"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
