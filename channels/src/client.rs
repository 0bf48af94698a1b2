//! The channel client library: what every channel process uses to talk to the kernel.
//!
//! It keeps one WebSocket to `/bus`, says hello with the token from its environment,
//! re-sends every inbound message until the kernel acks it (also across reconnects),
//! sends heartbeats, and hands deliveries to the channel adapter.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::protocol::{
    decode, encode, ChannelFrame, Delivery, ErrorCode, Inbound, KernelFrame, ENV_BUS_URL,
    ENV_CHANNEL_NAME, ENV_CHANNEL_TOKEN, PROTOCOL_VERSION,
};
use crate::ChannelError;

/// How often the client sends a heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// Where and who a channel process is.
#[derive(Debug, Clone)]
pub struct ChannelIdentity {
    /// `ws://127.0.0.1:PORT/bus`.
    pub bus_url: String,
    /// Channel instance name.
    pub name: String,
    /// Channel kind.
    pub kind: String,
    /// Per-process token.
    pub token: String,
}

impl ChannelIdentity {
    /// Read the bus URL, name and token the supervisor put in the environment.
    pub fn from_env(kind: &str) -> Result<Self, ChannelError> {
        let get = |k: &str| std::env::var(k).map_err(|_| ChannelError::MissingEnv(k.to_string()));
        Ok(ChannelIdentity {
            bus_url: get(ENV_BUS_URL)?,
            name: get(ENV_CHANNEL_NAME)?,
            kind: kind.to_string(),
            token: get(ENV_CHANNEL_TOKEN)?,
        })
    }
}

/// What the kernel sends a channel adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A reply to deliver (ack it with [`BusHandle::delivered`]).
    Deliver(Delivery),
    /// A reply still being written: the whole text so far.
    Partial {
        /// External id of the inbound message it answers.
        in_reply_to: String,
        /// Recipient address.
        to: String,
        /// Chat or group, `None` for a direct message.
        chat: Option<String>,
        /// The reply so far.
        text: String,
    },
    /// The agent began answering `in_reply_to` (show a typing indicator).
    Typing {
        /// External id of the inbound message it answers.
        in_reply_to: String,
        /// Recipient address.
        to: String,
        /// Chat or group, `None` for a direct message.
        chat: Option<String>,
    },
}

/// What the kernel said about an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundAck {
    /// Its seq in the log.
    pub seq: u64,
    /// It was already there.
    pub duplicate: bool,
}

enum Command {
    Inbound(Inbound, oneshot::Sender<InboundAck>),
    Delivered(Uuid),
    Link { up: bool, detail: String },
}

/// A handle to send through the bus. Cheap to clone.
#[derive(Clone)]
pub struct BusHandle {
    commands: mpsc::Sender<Command>,
}

impl BusHandle {
    /// Send an inbound message; resolves when the kernel committed it. It is re-sent across
    /// reconnects until then.
    pub async fn send_inbound(&self, inbound: Inbound) -> Result<InboundAck, ChannelError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Inbound(inbound, tx))
            .await
            .map_err(|_| ChannelError::Closed)?;
        rx.await.map_err(|_| ChannelError::Closed)
    }

    /// Queue an inbound message without waiting for the kernel: it is sent in the order
    /// queued and re-sent until acked; the receiver resolves on the ack.
    pub async fn post_inbound(
        &self,
        inbound: Inbound,
    ) -> Result<oneshot::Receiver<InboundAck>, ChannelError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Inbound(inbound, tx))
            .await
            .map_err(|_| ChannelError::Closed)?;
        Ok(rx)
    }

    /// Tell the kernel the link to the outside service came up or went down, and why.
    pub async fn link(&self, up: bool, detail: impl Into<String>) -> Result<(), ChannelError> {
        self.commands
            .send(Command::Link {
                up,
                detail: detail.into(),
            })
            .await
            .map_err(|_| ChannelError::Closed)
    }

    /// Tell the kernel a reply was delivered.
    pub async fn delivered(&self, delivery_id: Uuid) -> Result<(), ChannelError> {
        self.commands
            .send(Command::Delivered(delivery_id))
            .await
            .map_err(|_| ChannelError::Closed)
    }
}

/// Connect (and keep reconnecting) to the bus. Deliveries (and reply fragments) arrive on
/// the returned receiver.
/// A refused hello (bad token, wrong protocol) ends the client with an error on the
/// returned join handle, since retrying cannot help.
pub fn connect(
    identity: ChannelIdentity,
) -> (
    BusHandle,
    mpsc::Receiver<Incoming>,
    tokio::task::JoinHandle<Result<(), ChannelError>>,
) {
    let (cmd_tx, cmd_rx) = mpsc::channel(1024);
    let (del_tx, del_rx) = mpsc::channel(1024);
    let task = tokio::spawn(run(identity, cmd_rx, del_tx));
    (BusHandle { commands: cmd_tx }, del_rx, task)
}

struct Pending {
    inbound: Inbound,
    waiters: Vec<oneshot::Sender<InboundAck>>,
}

async fn run(
    identity: ChannelIdentity,
    mut commands: mpsc::Receiver<Command>,
    deliveries: mpsc::Sender<Incoming>,
) -> Result<(), ChannelError> {
    // Unacked inbound messages by external id, re-sent on every (re)connect.
    let mut pending: BTreeMap<String, Pending> = BTreeMap::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        match session(&identity, &mut commands, &deliveries, &mut pending).await {
            Ok(SessionEnd::CommandsClosed) => return Ok(()),
            Ok(SessionEnd::Disconnected) => {
                backoff = Duration::from_millis(100);
            }
            Err(ChannelError::Refused { code, message }) => {
                return Err(ChannelError::Refused { code, message })
            }
            Err(e) => {
                tracing::warn!(error = %e, "bus connection failed; retrying in {backoff:?}");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

enum SessionEnd {
    CommandsClosed,
    Disconnected,
}

async fn session(
    identity: &ChannelIdentity,
    commands: &mut mpsc::Receiver<Command>,
    deliveries: &mpsc::Sender<Incoming>,
    pending: &mut BTreeMap<String, Pending>,
) -> Result<SessionEnd, ChannelError> {
    // Nagle off: a small frame must not wait for the kernel's delayed ACK (~40 ms).
    let (ws, _) =
        tokio_tungstenite::connect_async_with_config(identity.bus_url.as_str(), None, true)
            .await
            .map_err(|e| ChannelError::Connect(e.to_string()))?;
    let (mut tx, mut rx) = ws.split();
    let send = |f: &ChannelFrame| Message::Binary(encode(f).into());
    tx.send(send(&ChannelFrame::Hello {
        protocol: PROTOCOL_VERSION,
        channel: identity.name.clone(),
        kind: identity.kind.clone(),
        token: identity.token.clone(),
    }))
    .await
    .map_err(|e| ChannelError::Connect(e.to_string()))?;
    // Wait for the welcome.
    loop {
        match rx.next().await {
            Some(Ok(Message::Binary(b))) => match decode::<KernelFrame>(&b) {
                Ok(KernelFrame::Welcome { .. }) => break,
                Ok(KernelFrame::Error { code, message }) => {
                    return Err(ChannelError::Refused { code, message })
                }
                _ => {}
            },
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ChannelError::Connect(e.to_string())),
            None => return Err(ChannelError::Connect("closed before welcome".into())),
        }
    }
    for p in pending.values() {
        tx.send(send(&ChannelFrame::Inbound(p.inbound.clone())))
            .await
            .map_err(|e| ChannelError::Connect(e.to_string()))?;
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    let mut nonce = 0u64;
    loop {
        tokio::select! {
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { return Ok(SessionEnd::CommandsClosed) };
                let frame = match cmd {
                    Command::Inbound(inbound, waiter) => {
                        let entry = pending.entry(inbound.external_id.clone()).or_insert_with(|| Pending {
                            inbound: inbound.clone(), waiters: Vec::new() });
                        entry.waiters.push(waiter);
                        ChannelFrame::Inbound(inbound)
                    }
                    Command::Delivered(id) => ChannelFrame::Delivered { delivery_id: id },
                    Command::Link { up, detail } => ChannelFrame::Link { up, detail },
                };
                if tx.send(send(&frame)).await.is_err() {
                    return Ok(SessionEnd::Disconnected);
                }
            }
            msg = rx.next() => {
                let b = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(SessionEnd::Disconnected),
                    Some(Ok(_)) => continue,
                };
                match decode::<KernelFrame>(&b) {
                    Ok(KernelFrame::InboundAck { external_id, seq, duplicate }) => {
                        if let Some(p) = pending.remove(&external_id) {
                            for w in p.waiters { let _ = w.send(InboundAck { seq, duplicate }); }
                        }
                    }
                    Ok(KernelFrame::Deliver(d)) => {
                        if deliveries.send(Incoming::Deliver(d)).await.is_err() {
                            return Ok(SessionEnd::CommandsClosed);
                        }
                    }
                    Ok(KernelFrame::Partial { in_reply_to, to, chat, text }) => {
                        // Best effort: a slow adapter skips a step, never blocks the bus.
                        let _ = deliveries.try_send(Incoming::Partial { in_reply_to, to, chat, text });
                    }
                    Ok(KernelFrame::Typing { in_reply_to, to, chat }) => {
                        let _ = deliveries.try_send(Incoming::Typing { in_reply_to, to, chat });
                    }
                    Ok(KernelFrame::Error { code: ErrorCode::Unauthorized, message }) => {
                        return Err(ChannelError::Refused { code: ErrorCode::Unauthorized, message });
                    }
                    Ok(KernelFrame::Error { code, message }) => {
                        tracing::warn!(?code, %message, "kernel reported an error");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "undecodable frame from the kernel"),
                }
            }
            _ = heartbeat.tick() => {
                nonce += 1;
                if tx.send(send(&ChannelFrame::Heartbeat { nonce })).await.is_err() {
                    return Ok(SessionEnd::Disconnected);
                }
            }
        }
    }
}
