//! TLS for adapters: rustls with the ring provider, the public web roots, plus the
//! certificates of a `tls_ca_file` (a self-hosted server's own CA or certificate).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::AdapterError;

/// The certificates of a PEM file; an error naming the file when it has none or cannot
/// be read.
pub fn ca_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, AdapterError> {
    let bad = |e: &dyn std::fmt::Display| {
        AdapterError::Config(format!("tls_ca_file {}: {e}", path.display()))
    };
    let mut out = Vec::new();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
        out.push(cert.map_err(|e| bad(&e))?);
    }
    if out.is_empty() {
        return Err(bad(&"no certificate in the file"));
    }
    Ok(out)
}

/// A client configuration trusting the public roots and the certificates in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, AdapterError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = ca_file {
        for cert in ca_certs(ca)? {
            roots
                .add(cert)
                .map_err(|e| AdapterError::Config(format!("tls_ca_file {}: {e}", ca.display())))?;
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| AdapterError::Config(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "nothing here").unwrap();
        let e = client_config(Some(&empty)).unwrap_err().to_string();
        assert!(e.contains("no certificate in the file"), "{e}");
        assert!(client_config(None).is_ok());
    }
}
