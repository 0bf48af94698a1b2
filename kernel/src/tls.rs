//! TLS for the Gateway's LAN listener (`[gateway.tls]`).
//!
//! Phones and other machines reach the Gateway over TLS: the person's own certificate, or
//! a self-signed one made on first start and kept in `tls/` of the state folder. Pairing
//! hands its SHA-256 fingerprint to the device (`clawos devices pair` prints it and puts it
//! in the setup code), so a client pins that certificate instead of trusting a CA. The
//! listener does each TLS handshake in its own task, with a deadline, so a slow or
//! silent client never holds up the accept loop.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
use crate::KernelError;

/// The self-signed certificate's file in the state folder.
pub const SELF_SIGNED_CERT: &str = "tls/gateway.crt";
/// Its private key (mode 0600).
pub const SELF_SIGNED_KEY: &str = "tls/gateway.key";
/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// Handshakes in flight at most; further connections are dropped until one ends.
pub const MAX_PENDING_HANDSHAKES: usize = 256;

/// The certificate the LAN listener serves, ready for rustls.
#[derive(Clone)]
pub struct GatewayTls {
    /// The server configuration (certificate chain and key).
    pub server: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate (DER), lowercase hex: what devices pin.
    pub fingerprint: String,
}

impl std::fmt::Debug for GatewayTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayTls")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Where the certificate and key of `cfg` live: the configured files, or the
/// self-signed pair in the state folder.
pub fn cert_paths(state_dir: &Path, cfg: &TlsConfig) -> Result<(PathBuf, PathBuf), KernelError> {
    match (&cfg.cert, &cfg.key) {
        (Some(c), Some(k)) => Ok((c.clone(), k.clone())),
        (None, None) => Ok((
            state_dir.join(SELF_SIGNED_CERT),
            state_dir.join(SELF_SIGNED_KEY),
        )),
        _ => Err(KernelError::Config(
            "[gateway.tls] needs both `cert` and `key`, or neither (a self-signed \
             certificate is then made)"
                .into(),
        )),
    }
}

/// Load the certificate of `cfg`, making the self-signed one first if it does not exist.
pub fn load_or_create(state_dir: &Path, cfg: &TlsConfig) -> Result<GatewayTls, KernelError> {
    let (cert_path, key_path) = cert_paths(state_dir, cfg)?;
    if cfg.cert.is_none() && !cert_path.exists() {
        make_self_signed(&cert_path, &key_path, &certificate_names(cfg))?;
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect())
        .map_err(|e| pem_error(&cert_path, e))?;
    let leaf = chain.first().ok_or_else(|| {
        KernelError::Config(format!(
            "{} holds no certificate (expected PEM `BEGIN CERTIFICATE`)",
            cert_path.display()
        ))
    })?;
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| pem_error(&key_path, e))?;
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| KernelError::Config(format!("TLS: {e}")))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| {
        KernelError::Config(format!(
            "TLS: the key {} does not fit the certificate {}: {e}",
            key_path.display(),
            cert_path.display()
        ))
    })?;
    Ok(GatewayTls {
        server: Arc::new(server),
        fingerprint,
    })
}

/// SHA-256 of a certificate's DER bytes, lowercase hex (OpenClaw's pinning form).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

/// A fingerprint as people compare it: upper-case byte pairs joined by `:`.
pub fn fingerprint_for_people(hex_fingerprint: &str) -> String {
    hex_fingerprint
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

/// This machine's address on its LAN: the source address the kernel would use towards
/// the outside (no packet is sent). `None` without a route, or when that is loopback.
pub fn lan_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("198.51.100.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

fn certificate_names(cfg: &TlsConfig) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !cfg.listen.ip().is_unspecified() {
        names.push(cfg.listen.ip().to_string());
    }
    if let Some(ip) = lan_address() {
        names.push(ip.to_string());
    }
    names.extend(cfg.names.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

fn make_self_signed(
    cert_path: &Path,
    key_path: &Path,
    names: &[String],
) -> Result<(), KernelError> {
    let made = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| KernelError::Config(format!("cannot make a TLS certificate: {e}")))?;
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| KernelError::io(format!("cannot create {}", dir.display()), e))?;
    }
    // The key first: a certificate without its key would never be replaced.
    crate::tokens::write_private(key_path, &made.signing_key.serialize_pem())?;
    std::fs::write(cert_path, made.cert.pem())
        .map_err(|e| KernelError::io(format!("cannot write {}", cert_path.display()), e))?;
    tracing::info!(
        cert = %cert_path.display(),
        "made a self-signed TLS certificate for {}",
        names.join(", ")
    );
    Ok(())
}

fn pem_error(path: &Path, e: rustls_pki_types::pem::Error) -> KernelError {
    KernelError::Config(format!("cannot read {} as PEM: {e}", path.display()))
}

/// A listener whose connections arrive with their TLS handshake done. It serves the same
/// router as the plain one (`axum::serve` takes it as is, with the peer address).
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Listen on `addr` and serve `tls`.
    pub async fn bind(addr: SocketAddr, tls: &GatewayTls) -> Result<TlsListener, KernelError> {
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|e| KernelError::io(format!("cannot listen on {addr} (TLS)"), e))?;
        let local = tcp
            .local_addr()
            .map_err(|e| KernelError::io("cannot read the TLS listening address", e))?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(tls.server.clone());
        let accept_loop = tokio::spawn(accept_loop(tcp, acceptor, tx));
        Ok(TlsListener {
            ready,
            local,
            accept_loop,
        })
    }
}

impl TlsListener {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "TLS listener cannot accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many TLS handshakes in flight; connection dropped");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TlsConfig {
        TlsConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert: None,
            key: None,
            names: vec!["clawos.lan".into()],
        }
    }

    #[test]
    fn the_self_signed_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config();
        let first = load_or_create(dir.path(), &cfg).unwrap();
        let second = load_or_create(dir.path(), &cfg).unwrap();
        assert_eq!(
            first.fingerprint, second.fingerprint,
            "made once, then read"
        );
        assert_eq!(first.fingerprint.len(), 64);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(SELF_SIGNED_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key is the owner's only");
    }

    #[test]
    fn a_certificate_without_its_key_or_a_broken_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config();
        cfg.cert = Some(dir.path().join("c.pem"));
        let err = load_or_create(dir.path(), &cfg).unwrap_err().to_string();
        assert!(err.contains("both `cert` and `key`"), "{err}");
        std::fs::write(dir.path().join("c.pem"), "not a certificate").unwrap();
        std::fs::write(dir.path().join("k.pem"), "not a key").unwrap();
        cfg.key = Some(dir.path().join("k.pem"));
        let err = load_or_create(dir.path(), &cfg).unwrap_err().to_string();
        assert!(err.contains("c.pem"), "names the file: {err}");
    }

    #[test]
    fn fingerprints_read_as_people_compare_them() {
        assert_eq!(fingerprint_for_people("ab01ff"), "AB:01:FF");
    }
}
