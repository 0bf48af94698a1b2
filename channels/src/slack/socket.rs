//! Socket Mode: `apps.connections.open` with the app-level token gives a single-use
//! WebSocket URL; Slack sends `hello`, then envelopes (`events_api`, …) each to be
//! acknowledged within 3 seconds by sending back `{"envelope_id": …}`, and `disconnect`
//! (`refresh_requested`, `link_disabled`, …) before it closes a connection.

use std::path::Path;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::api::Api;
use crate::platform::AdapterError;

/// What a WebSocket runs over: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// A Socket Mode connection.
pub type Ws = WebSocketStream<Box<dyn Io>>;

/// How long Slack takes at most to say `hello` after the handshake.
const HELLO_WITHIN: Duration = Duration::from_secs(15);
/// A connection silent for this long (Slack pings every few seconds) is taken as dropped.
pub const SILENCE: Duration = Duration::from_secs(120);

/// Ask for a URL with the app-level token, connect and wait for `hello`.
pub async fn connect(app: &Api, ca: Option<&Path>) -> Result<Ws, AdapterError> {
    let open = app.call("apps.connections.open", None).await?;
    let url = open["url"].as_str().ok_or_else(|| {
        AdapterError::Protocol("apps.connections.open: the answer has no url".into())
    })?;
    let mut ws = open_url(url, ca).await?;
    let hello = tokio::time::timeout(HELLO_WITHIN, read(&mut ws))
        .await
        .map_err(|_| AdapterError::Link("Socket Mode: no hello within 15 s".into()))??;
    match hello["type"].as_str() {
        Some("hello") => Ok(ws),
        Some("disconnect") => Err(disconnected(&hello)),
        _ => Err(AdapterError::Protocol(format!(
            "Socket Mode: the first message is not hello: {}",
            head(&hello.to_string())
        ))),
    }
}

/// The error of a `disconnect` message other than `refresh_requested`.
pub fn disconnected(v: &Value) -> AdapterError {
    match v["reason"].as_str().unwrap_or("") {
        "link_disabled" => AdapterError::Config(
            "Slack says link_disabled: Socket Mode was turned off for this app; turn it on \
             again under Settings › Socket Mode on api.slack.com"
                .into(),
        ),
        other => AdapterError::Link(format!("Slack closed the Socket Mode connection ({other})")),
    }
}

fn head(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Open a WebSocket to `wss://…` (or, for a local stand-in, `ws://…`).
async fn open_url(url: &str, ca: Option<&Path>) -> Result<Ws, AdapterError> {
    let u = reqwest::Url::parse(url)
        .map_err(|e| AdapterError::Protocol(format!("Socket Mode url: {e}")))?;
    let host = u
        .host_str()
        .ok_or_else(|| AdapterError::Protocol("Socket Mode url has no host".into()))?
        .to_string();
    let tls = match u.scheme() {
        "wss" => true,
        "ws" => false,
        other => {
            return Err(AdapterError::Protocol(format!(
                "Socket Mode url: scheme {other}"
            )))
        }
    };
    let port = u.port().unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| AdapterError::Link(format!("cannot reach {host}:{port}: timeout")))?
    .map_err(|e| AdapterError::Link(format!("cannot reach {host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if tls {
        let config = crate::platform::tls::client_config(ca)?;
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|e| AdapterError::Config(format!("Socket Mode host {host}: {e}")))?;
        let s = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| AdapterError::Link(format!("TLS with {host}: {e}")))?;
        Box::new(s)
    } else {
        Box::new(tcp)
    };
    let (ws, _) = tokio_tungstenite::client_async(u.as_str(), stream)
        .await
        .map_err(|e| AdapterError::Link(format!("Socket Mode WebSocket handshake: {e}")))?;
    Ok(ws)
}

/// The next message, as JSON (pings are answered by the WebSocket library).
pub async fn read(ws: &mut Ws) -> Result<Value, AdapterError> {
    loop {
        let next = tokio::time::timeout(SILENCE, ws.next())
            .await
            .map_err(|_| AdapterError::Link("Socket Mode: silent for 120 s".into()))?;
        match next {
            Some(Ok(Message::Text(t))) => {
                return match serde_json::from_str::<Value>(t.as_str()) {
                    Ok(v) if v.is_object() => Ok(v),
                    Ok(_) => Err(AdapterError::Protocol(format!(
                        "Socket Mode: a message that is not a JSON object: {:?}",
                        head(t.as_str())
                    ))),
                    Err(e) => Err(AdapterError::Protocol(format!(
                        "Socket Mode: a message that is not JSON ({e}): {:?}",
                        head(t.as_str())
                    ))),
                }
            }
            Some(Ok(Message::Binary(_))) => {
                return Err(AdapterError::Protocol(
                    "Socket Mode: a binary message (Slack sends JSON text)".into(),
                ))
            }
            Some(Ok(Message::Close(c))) => {
                let why = c
                    .map(|c| format!("{} {}", u16::from(c.code), c.reason))
                    .unwrap_or_default();
                return Err(AdapterError::Link(format!(
                    "Slack closed the Socket Mode connection {why}"
                )));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(AdapterError::Link(format!("Socket Mode: {e}"))),
            None => {
                return Err(AdapterError::Link(
                    "the Socket Mode connection dropped".into(),
                ))
            }
        }
    }
}

/// Acknowledge an envelope.
pub async fn ack(ws: &mut Ws, envelope_id: &str) -> Result<(), AdapterError> {
    let text = json!({ "envelope_id": envelope_id }).to_string();
    ws.send(Message::text(text))
        .await
        .map_err(|e| AdapterError::Link(format!("Socket Mode ack: {e}")))
}
