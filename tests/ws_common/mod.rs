//! A `/ws` client written from OpenClaw's protocol documentation: the challenge, `connect`
//! with an Ed25519 device identity signing the `v3` payload, requests, events, and the
//! node side (`node.invoke.request` → `node.invoke.result`).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An Ed25519 device identity.
#[derive(Clone)]
pub struct Device {
    key: SigningKey,
}

impl Device {
    /// A device from a 32-byte seed (tests pick distinct seeds).
    pub fn from_seed(seed: u8) -> Self {
        Device {
            key: SigningKey::from_bytes(&[seed; 32]),
        }
    }

    /// Its public key, base64url.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes())
    }

    /// Its id: hex SHA-256 of the public key.
    pub fn id(&self) -> String {
        hex(&Sha256::digest(self.key.verifying_key().as_bytes()))
    }

    /// Sign `payload`, base64url.
    pub fn sign(&self, payload: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.key.sign(payload.as_bytes()).to_bytes())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// How to connect.
#[derive(Clone)]
pub struct Opts {
    /// `auth.token` (the shared admin token), if any.
    pub token: Option<String>,
    /// `auth.deviceToken`, if any.
    pub device_token: Option<String>,
    /// `auth.bootstrapToken` (a setup code), if any.
    pub bootstrap: Option<String>,
    /// The device identity, if any.
    pub device: Option<Device>,
    /// Role.
    pub role: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Protocol range.
    pub protocol: (u32, u32),
    /// `client.id` and `client.mode`.
    pub client: (String, String),
    /// Node commands.
    pub commands: Vec<String>,
    /// What to change in the device proof, to test refusals.
    pub tamper: Tamper,
}

/// A deliberately wrong device proof.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub enum Tamper {
    /// None.
    #[default]
    None,
    /// Signed three minutes ago.
    Stale,
    /// Signed another nonce.
    OtherNonce,
    /// Signature over other scopes.
    BadSignature,
}

impl Opts {
    /// An operator with the shared token and these scopes, no device.
    pub fn operator(token: &str, scopes: &[&str]) -> Self {
        Opts {
            token: Some(token.to_string()),
            device_token: None,
            bootstrap: None,
            device: None,
            role: "operator".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            protocol: (3, 4),
            client: ("test".into(), "test".into()),
            commands: Vec::new(),
            tamper: Tamper::None,
        }
    }

    /// With a device identity.
    pub fn with_device(mut self, d: &Device) -> Self {
        self.device = Some(d.clone());
        self
    }

    /// A node offering `commands`, with the shared token and a device.
    pub fn node(token: &str, d: &Device, commands: &[&str]) -> Self {
        Opts {
            role: "node".into(),
            scopes: Vec::new(),
            client: ("node-host".into(), "node".into()),
            commands: commands.iter().map(|s| s.to_string()).collect(),
            ..Opts::operator(token, &[])
        }
        .with_device(d)
    }
}

/// A connected (or refused) client.
pub struct Client {
    ws: Stream,
    /// Events received while waiting for responses.
    pub events: Vec<Value>,
    next_id: u64,
}

/// A socket that has received its challenge (returned) and sent nothing.
pub async fn challenged(url: &str) -> (Client, Value) {
    challenged_via(url, None).await
}

/// [`challenged`] over `wss://` with this TLS configuration (see [`pinned`]).
pub async fn challenged_via(
    url: &str,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> (Client, Value) {
    let connector = tls.map(tokio_tungstenite::Connector::Rustls);
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector)
        .await
        .expect("connect /ws");
    let mut c = Client {
        ws,
        events: Vec::new(),
        next_id: 0,
    };
    let challenge = c.frame().await.expect("a challenge first");
    assert_eq!(challenge["event"], "connect.challenge", "{challenge}");
    assert!(challenge.get("seq").is_none(), "the challenge has no seq");
    (c, challenge)
}

/// The outcome of a connect: the client and the `connect` response (hello-ok or error).
pub async fn connect(url: &str, o: &Opts) -> (Client, Value) {
    connect_via(url, o, None).await
}

/// [`connect`] over `wss://` with this TLS configuration (see [`pinned`]).
pub async fn connect_via(
    url: &str,
    o: &Opts,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> (Client, Value) {
    let (mut c, challenge) = challenged_via(url, tls).await;
    let nonce = challenge["payload"]["nonce"].as_str().unwrap().to_string();
    let ts = challenge["payload"]["ts"].as_i64().unwrap();
    let mut params = json!({
        "minProtocol": o.protocol.0, "maxProtocol": o.protocol.1,
        "client": {"id": o.client.0, "version": "1.0.0", "platform": "Linux",
                   "mode": o.client.1, "displayName": "test client"},
        "role": o.role, "scopes": o.scopes, "caps": [], "commands": o.commands,
        "auth": {}
    });
    if let Some(t) = &o.token {
        params["auth"]["token"] = json!(t);
    }
    if let Some(t) = &o.device_token {
        params["auth"]["deviceToken"] = json!(t);
    }
    if let Some(t) = &o.bootstrap {
        params["auth"]["bootstrapToken"] = json!(t);
    }
    if let Some(d) = &o.device {
        let signed_at = if o.tamper == Tamper::Stale {
            ts - 180_000
        } else {
            ts
        };
        let signed_nonce = if o.tamper == Tamper::OtherNonce {
            "another"
        } else {
            nonce.as_str()
        };
        let scopes = if o.tamper == Tamper::BadSignature {
            "operator.admin".to_string()
        } else {
            o.scopes.join(",")
        };
        let token = o
            .token
            .clone()
            .or(o.device_token.clone())
            .or(o.bootstrap.clone())
            .unwrap_or_default();
        let payload = format!(
            "v3|{}|{}|{}|{}|{}|{}|{}|{}|linux|",
            d.id(),
            o.client.0,
            o.client.1,
            o.role,
            scopes,
            signed_at,
            token,
            signed_nonce
        );
        params["device"] = json!({"id": d.id(), "publicKey": d.public_key(),
            "signature": d.sign(&payload), "signedAt": signed_at, "nonce": signed_nonce});
    }
    c.send(json!({"type": "req", "id": "connect", "method": "connect", "params": params}))
        .await;
    let res = c.response("connect").await;
    (c, res)
}

impl Client {
    /// Send one frame.
    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }

    /// Send raw text.
    pub async fn send_text(&mut self, t: &str) {
        self.ws
            .send(Message::Text(t.to_string().into()))
            .await
            .expect("send");
    }

    /// The next JSON frame, or `None` when the socket closes; panics after 15 s.
    pub async fn frame(&mut self) -> Option<Value> {
        self.frame_or_close().await.ok()
    }

    /// The next JSON frame, or the close code when the socket closes.
    pub async fn frame_or_close(&mut self) -> Result<Value, Option<u16>> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.ws.next())
                .await
                .expect("no frame within 15 s")
            {
                Some(Ok(Message::Text(t))) => {
                    return Ok(serde_json::from_str(&t).expect("JSON frame"))
                }
                Some(Ok(Message::Close(c))) => return Err(c.map(|c| u16::from(c.code))),
                None | Some(Err(_)) => return Err(None),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Frames until the socket closes; the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.frame_or_close().await {
                Ok(f) => self.events.push(f),
                Err(code) => return code,
            }
        }
    }

    /// Frames until the response `id`, keeping events.
    pub async fn response(&mut self, id: &str) -> Value {
        loop {
            let f = match self.frame_or_close().await {
                Ok(f) => f,
                Err(code) => panic!(
                    "socket closed ({code:?}) before the response {id}; events: {:#?}",
                    self.events
                ),
            };
            if f["type"] == "res" && f["id"] == id {
                return f;
            }
            self.events.push(f);
        }
    }

    /// Call `method` and wait for its response.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = format!("{}:{method}", self.next_id);
        self.send(json!({"type": "req", "id": id, "method": method, "params": params}))
            .await;
        self.response(&id).await
    }

    /// Wait until an event matching `pred` has arrived (kept in `events`); returns it.
    pub async fn event(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(e) = self.events.iter().find(|e| pred(e)) {
                return e.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {what} event: {:#?}",
                self.events
            );
            match self.frame_or_close().await {
                Ok(f) => self.events.push(f),
                Err(code) => panic!(
                    "socket closed ({code:?}) waiting for {what}; events: {:#?}",
                    self.events
                ),
            }
        }
    }

    /// Close politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The close code for a policy refusal.
pub const POLICY: u16 = 1008;
/// The close code for a protocol mismatch.
pub const PROTOCOL: u16 = 1002;

/// A TLS client that trusts one certificate: the one whose SHA-256 (DER, hex) is
/// `fingerprint`, as OpenClaw's apps pin the Gateway's certificate from the setup code.
/// No CA is consulted and the name is not checked; the handshake signature is.
pub fn pinned(fingerprint: &str) -> std::sync::Arc<rustls::ClientConfig> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertificate {
        fingerprint: fingerprint.to_lowercase(),
        provider: provider.clone(),
    };
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(verifier))
            .with_no_client_auth(),
    )
}

#[derive(Debug)]
struct PinnedCertificate {
    fingerprint: String,
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if hex::encode(Sha256::digest(end_entity.as_ref())) == self.fingerprint {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "certificate fingerprint does not match the pin".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
