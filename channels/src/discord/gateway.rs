//! The Discord Gateway (API v10, JSON encoding) over tokio-tungstenite: HELLO, IDENTIFY
//! or RESUME, then a task that heartbeats with the last sequence number, checks each
//! HEARTBEAT_ACK, and hands every dispatch over a channel. A missing ack, a RECONNECT
//! (op 7), an INVALID_SESSION (op 9) or a dropped connection end the task with an error;
//! the adapter then connects again and resumes the session where it can, so the Gateway
//! replays what was missed.

use std::path::Path;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::platform::AdapterError;

/// GUILDS, GUILD_MESSAGES, DIRECT_MESSAGES and the privileged MESSAGE_CONTENT.
pub const INTENTS: u64 = (1 << 0) | (1 << 9) | (1 << 12) | (1 << 15);

/// A byte stream a WebSocket runs over (plain TCP, or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open Gateway connection.
pub type Ws = WebSocketStream<Box<dyn Io>>;

/// Where a session can be resumed: saved as the channel's cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session id from READY.
    pub session_id: String,
    /// The URL to resume on, from READY.
    pub resume_url: String,
    /// The last sequence number whose dispatch is handled.
    pub seq: u64,
    /// The bot's user id.
    pub bot_id: String,
}

/// What the reader task hands over.
#[derive(Debug)]
pub enum Event {
    /// A dispatch (op 0): its sequence number, type and data.
    Dispatch(u64, String, Value),
    /// The link ended; `true`: the session cannot be resumed.
    Failed(AdapterError, bool),
}

/// A failure, and whether the session is lost with it.
type Failure = (AdapterError, bool);

fn link(why: String) -> Failure {
    (AdapterError::Link(why), false)
}

/// What a close code means (Gateway docs, "Gateway Close Event Codes").
fn closed(code: u16, reason: &str) -> Failure {
    let why = format!("the Gateway closed the connection: {code} {reason}");
    match code {
        4004 => (
            AdapterError::AuthRefused(format!(
                "{why}: Discord refused the bot token; copy it again from the developer \
                 portal (your application, Bot, Reset Token) into the vault"
            )),
            true,
        ),
        4014 => (
            AdapterError::Config(format!(
                "{why}: enable the MESSAGE CONTENT intent in the developer portal \
                 (your application, Bot, Privileged Gateway Intents)"
            )),
            true,
        ),
        4010..=4013 => (AdapterError::Config(why), true),
        4007 | 4009 => (AdapterError::Link(why), true),
        _ => (AdapterError::Link(why), false),
    }
}

/// Open a WebSocket to a Gateway URL (`wss://…` or, for a local stand-in, `ws://…`).
pub async fn open(url: &str, ca: Option<&Path>) -> Result<Ws, AdapterError> {
    let mut u = reqwest::Url::parse(url)
        .map_err(|e| AdapterError::Protocol(format!("gateway url `{url}`: {e}")))?;
    u.set_query(Some("v=10&encoding=json"));
    let host = u
        .host_str()
        .ok_or_else(|| AdapterError::Protocol(format!("gateway url `{url}` has no host")))?
        .to_string();
    let tls = match u.scheme() {
        "wss" => true,
        "ws" => false,
        other => {
            return Err(AdapterError::Protocol(format!(
                "gateway url `{url}`: scheme {other}"
            )))
        }
    };
    let port = u.port().unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| AdapterError::Link(format!("cannot reach the Gateway {host}:{port}: timeout")))?
    .map_err(|e| AdapterError::Link(format!("cannot reach the Gateway {host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if tls {
        let config = crate::platform::tls::client_config(ca)?;
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|e| AdapterError::Config(format!("gateway host {host}: {e}")))?;
        let s = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| AdapterError::Link(format!("TLS with the Gateway {host}: {e}")))?;
        Box::new(s)
    } else {
        Box::new(tcp)
    };
    let (ws, _) = tokio_tungstenite::client_async(u.as_str(), stream)
        .await
        .map_err(|e| AdapterError::Link(format!("Gateway WebSocket handshake: {e}")))?;
    Ok(ws)
}

/// The next payload, as JSON.
async fn read(ws: &mut Ws) -> Result<Value, Failure> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str()).map_err(|e| {
                    let head: String = t.as_str().chars().take(60).collect();
                    (
                        AdapterError::Protocol(format!(
                            "gateway: a payload that is not JSON ({e}): {head:?}"
                        )),
                        false,
                    )
                })
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(match frame {
                    Some(f) => closed(f.code.into(), f.reason.as_str()),
                    None => link("the Gateway closed the connection".into()),
                })
            }
            Some(Ok(Message::Binary(_))) => {
                return Err((
                    AdapterError::Protocol("gateway: a binary payload (JSON asked)".into()),
                    false,
                ))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(link(format!("the Gateway connection dropped: {e}"))),
            None => return Err(link("the Gateway connection ended".into())),
        }
    }
}

async fn send(ws: &mut Ws, v: Value) -> Result<(), Failure> {
    ws.send(Message::text(v.to_string()))
        .await
        .map_err(|e| link(format!("cannot write to the Gateway: {e}")))
}

/// A pause of 1 to 5 seconds, as the docs ask before identifying after op 9.
fn jitter(from_ms: u64, spread_ms: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    Duration::from_millis(from_ms + nanos % spread_ms.max(1))
}

/// Log in on `url`: RESUME `saved` if given (dispatches replayed before RESUMED are
/// returned), else IDENTIFY. Returns the connection, the heartbeat interval, the session
/// and the replayed dispatches.
pub async fn handshake(
    url: &str,
    token: &str,
    saved: Option<Session>,
    ca: Option<&Path>,
) -> Result<(Ws, Duration, Session, Vec<Event>), Failure> {
    let mut ws = open(url, ca).await.map_err(|e| (e, false))?;
    let hello = read(&mut ws).await?;
    let interval = match (
        hello["op"].as_u64(),
        hello["d"]["heartbeat_interval"].as_u64(),
    ) {
        (Some(10), Some(ms)) if ms > 0 => Duration::from_millis(ms),
        _ => {
            return Err((
                AdapterError::Protocol(format!("gateway: expected HELLO, got {hello}")),
                false,
            ))
        }
    };
    let mut replayed = Vec::new();
    if let Some(mut session) = saved {
        send(
            &mut ws,
            json!({"op": 6, "d": {"token": token, "session_id": session.session_id,
                                  "seq": session.seq}}),
        )
        .await?;
        loop {
            let v = read(&mut ws).await?;
            match v["op"].as_u64() {
                Some(0) if v["t"] == "RESUMED" => {
                    if let Some(s) = v["s"].as_u64() {
                        replayed.push(Event::Dispatch(s, "RESUMED".into(), Value::Null));
                    }
                    tracing::info!(session = %session.session_id, replayed = replayed.len(), "Gateway session resumed");
                    session.resume_url = url.to_string();
                    return Ok((ws, interval, session, replayed));
                }
                Some(0) => {
                    let s = v["s"].as_u64().unwrap_or(session.seq);
                    let t = v["t"].as_str().unwrap_or_default().to_string();
                    replayed.push(Event::Dispatch(s, t, v["d"].clone()));
                }
                Some(1) => send(&mut ws, json!({"op": 1, "d": session.seq})).await?,
                Some(9) => {
                    tracing::info!("the Gateway cannot resume the session; identifying anew");
                    replayed.clear();
                    tokio::time::sleep(jitter(1000, 1500)).await;
                    break;
                }
                _ => {}
            }
        }
    }
    send(
        &mut ws,
        json!({"op": 2, "d": {"token": token, "intents": INTENTS,
            "properties": {"os": std::env::consts::OS, "browser": "clawos", "device": "clawos"}}}),
    )
    .await?;
    loop {
        let v = read(&mut ws).await?;
        match v["op"].as_u64() {
            Some(0) if v["t"] == "READY" => {
                let d = &v["d"];
                let (Some(id), Some(bot)) = (d["session_id"].as_str(), d["user"]["id"].as_str())
                else {
                    return Err((
                        AdapterError::Protocol("gateway: READY without session_id or user".into()),
                        true,
                    ));
                };
                let session = Session {
                    session_id: id.to_string(),
                    resume_url: d["resume_gateway_url"].as_str().unwrap_or(url).to_string(),
                    seq: v["s"].as_u64().unwrap_or(0),
                    bot_id: bot.to_string(),
                };
                tracing::info!(session = %session.session_id, "Gateway session ready");
                return Ok((ws, interval, session, replayed));
            }
            Some(9) => {
                tokio::time::sleep(jitter(1000, 4000)).await;
                return Err(link("the Gateway refused the IDENTIFY (op 9)".into()));
            }
            _ => {}
        }
    }
}

/// Run a connection: heartbeats, acks, and every dispatch into `tx`, until the link ends
/// or the receiver is dropped.
pub async fn pump(mut ws: Ws, interval: Duration, mut seq: u64, tx: mpsc::Sender<Event>) {
    let first = tokio::time::Instant::now() + interval.mul_f64(jitter(0, 1000).as_secs_f64());
    let mut beat = tokio::time::interval_at(first, interval);
    let mut acked = true;
    let failure = loop {
        tokio::select! {
            _ = tx.closed() => break None,
            _ = beat.tick() => {
                if !acked {
                    break Some(link("no HEARTBEAT_ACK from the Gateway: reconnecting".into()));
                }
                acked = false;
                if let Err(f) = send(&mut ws, json!({"op": 1, "d": seq})).await {
                    break Some(f);
                }
            }
            frame = read(&mut ws) => {
                let v = match frame {
                    Ok(v) => v,
                    Err(f) => break Some(f),
                };
                match v["op"].as_u64() {
                    Some(0) => {
                        if let Some(s) = v["s"].as_u64() {
                            seq = seq.max(s);
                        }
                        let t = v["t"].as_str().unwrap_or_default().to_string();
                        let ev = Event::Dispatch(v["s"].as_u64().unwrap_or(seq), t, v["d"].clone());
                        if tx.send(ev).await.is_err() {
                            break None;
                        }
                    }
                    Some(1) => {
                        if let Err(f) = send(&mut ws, json!({"op": 1, "d": seq})).await {
                            break Some(f);
                        }
                    }
                    Some(11) => acked = true,
                    Some(7) => break Some(link("the Gateway asked for a reconnect (op 7)".into())),
                    Some(9) => {
                        let resumable = v["d"].as_bool().unwrap_or(false);
                        break Some((
                            AdapterError::Link("the Gateway invalidated the session (op 9)".into()),
                            !resumable,
                        ));
                    }
                    Some(op) => tracing::debug!(op, "an unknown Gateway opcode; ignored"),
                    None => {
                        let head: String = v.to_string().chars().take(60).collect();
                        break Some((
                            AdapterError::Protocol(format!("gateway: a payload without an op: {head}")),
                            false,
                        ));
                    }
                }
            }
        }
    };
    // Not 1000/1001: those end the session, and we want to resume it.
    let _ = ws
        .close(Some(CloseFrame {
            code: CloseCode::from(4000),
            reason: "reconnecting".into(),
        }))
        .await;
    if let Some((e, forget)) = failure {
        let _ = tx.send(Event::Failed(e, forget)).await;
    }
}
