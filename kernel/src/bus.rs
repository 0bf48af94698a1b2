//! The `/bus` endpoint: one WebSocket per channel process. Hello first (protocol version,
//! channel name, token), then inbound messages acked after commit, heartbeats, and the
//! frames of the channel's deliveries. This module speaks frames only: ingest and
//! delivery are the Gateway's (`gateway/ingest.rs`, `gateway/delivery.rs`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use clawos_channels::protocol::{
    decode, encode, ChannelFrame, ErrorCode, KernelFrame, MAX_FRAME_BYTES, PROTOCOL_VERSION,
};
use clawos_events::{stream, ChannelLinkChanged, ExpectedVersion, NewEvent};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use crate::gateway::Gateway;

/// How long a new connection has to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Upgrade `/bus` requests.
pub async fn bus_handler(State(gw): State<Arc<Gateway>>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| connection(gw, socket))
}

fn frame(f: &KernelFrame) -> Message {
    Message::Binary(encode(f).into())
}

async fn refuse(mut socket: WebSocket, code: ErrorCode, message: String) {
    tracing::warn!(?code, %message, "bus connection refused");
    let _ = socket
        .send(frame(&KernelFrame::Error { code, message }))
        .await;
    let _ = socket.send(Message::Close(None)).await;
}

async fn connection(gw: Arc<Gateway>, mut socket: WebSocket) {
    // 1. Hello.
    let first = tokio::time::timeout(HELLO_TIMEOUT, socket.recv()).await;
    let bytes = match first {
        Ok(Some(Ok(Message::Binary(b)))) => b,
        Ok(Some(Ok(_))) => {
            return refuse(
                socket,
                ErrorCode::HelloRequired,
                "the first frame must be a binary hello".into(),
            )
            .await
        }
        _ => return,
    };
    let (channel, kind) = match decode::<ChannelFrame>(&bytes) {
        Ok(ChannelFrame::Hello {
            protocol,
            channel,
            kind,
            token,
        }) => {
            if protocol != PROTOCOL_VERSION {
                return refuse(
                    socket,
                    ErrorCode::UnsupportedProtocol,
                    format!("protocol {protocol} is not supported; this Gateway speaks {PROTOCOL_VERSION}"),
                )
                .await;
            }
            if !gw.connections().opens(&channel, &token) {
                tracing::warn!(%channel, "/bus hello refused: the token does not open this channel");
                gw.metrics().auth_refused("bus");
                return refuse(
                    socket,
                    ErrorCode::Unauthorized,
                    format!("token does not open channel `{channel}`"),
                )
                .await;
            }
            (channel, kind)
        }
        Ok(_) => {
            return refuse(
                socket,
                ErrorCode::HelloRequired,
                "the first frame must be a hello".into(),
            )
            .await
        }
        Err(e) => return refuse(socket, ErrorCode::MalformedFrame, e.to_string()).await,
    };
    tracing::info!(%channel, %kind, "channel connected");
    if socket
        .send(frame(&KernelFrame::Welcome {
            protocol: PROTOCOL_VERSION,
        }))
        .await
        .is_err()
    {
        return;
    }
    gw.connections().seen(&channel);

    // 2. One writer task owns the socket's send half; everyone else queues frames.
    let (mut sink, mut source) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<KernelFrame>(1024);
    let writer = tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            if sink.send(frame(&f)).await.is_err() {
                break;
            }
        }
    });
    let deliveries = tokio::spawn(gw.clone().deliveries(channel.clone(), out_tx.clone()));
    // Delivery acks are recorded off the read loop, concurrently, so they share group
    // commits instead of holding up the next inbound message.
    let (ack_tx, ack_rx) = mpsc::channel::<uuid::Uuid>(4096);
    let acks = tokio::spawn(record_acks(
        gw.clone(),
        channel.clone(),
        ack_rx,
        out_tx.clone(),
    ));

    // 3. Frames from the channel.
    let mut last_link: Option<(bool, String)> = None;
    while let Some(msg) = source.next().await {
        let bytes = match msg {
            Ok(Message::Binary(b)) => b,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        gw.connections().seen(&channel);
        let reply = match decode::<ChannelFrame>(&bytes) {
            Err(e) => Some(KernelFrame::Error {
                code: ErrorCode::MalformedFrame,
                message: e.to_string(),
            }),
            Ok(ChannelFrame::Hello { .. }) => Some(KernelFrame::Error {
                code: ErrorCode::MalformedFrame,
                message: "hello was already accepted".into(),
            }),
            Ok(ChannelFrame::Heartbeat { nonce }) => Some(KernelFrame::HeartbeatAck { nonce }),
            Ok(ChannelFrame::Inbound(m)) => {
                let external_id = m.external_id.clone();
                match gw.ingest(&channel, m).await {
                    Ok(i) => Some(KernelFrame::InboundAck {
                        external_id,
                        seq: i.seq,
                        duplicate: i.duplicate,
                    }),
                    Err(e) => Some(KernelFrame::Error {
                        code: ErrorCode::Unavailable,
                        message: format!("message {external_id} not recorded: {e}"),
                    }),
                }
            }
            Ok(ChannelFrame::Link { up, detail }) => {
                // Only changes are recorded: a link retrying with the same error says so once.
                if last_link.as_ref() != Some(&(up, detail.clone())) {
                    record_link(&gw, &channel, up, &detail).await;
                    last_link = Some((up, detail));
                }
                None
            }
            Ok(ChannelFrame::Delivered { delivery_id }) => {
                if ack_tx.send(delivery_id).await.is_err() {
                    break;
                }
                None
            }
        };
        if let Some(r) = reply {
            if out_tx.send(r).await.is_err() {
                break;
            }
        }
    }
    deliveries.abort();
    drop(ack_tx);
    let _ = acks.await;
    drop(out_tx);
    let _ = writer.await;
    tracing::info!(%channel, "channel disconnected");
}

async fn record_link(gw: &Gateway, channel: &str, up: bool, detail: &str) {
    let event = NewEvent::new(ChannelLinkChanged {
        channel: channel.to_string(),
        up,
        detail: detail.chars().take(500).collect(),
    });
    if let Err(e) = gw
        .log()
        .append(&stream::channel(channel), ExpectedVersion::Any, vec![event])
        .await
    {
        tracing::error!(%channel, error = %e, "cannot record the channel's link state");
    }
}

async fn record_acks(
    gw: Arc<Gateway>,
    channel: String,
    mut rx: mpsc::Receiver<uuid::Uuid>,
    out: mpsc::Sender<KernelFrame>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        let results = futures::future::join_all(batch.drain(..).map(|id| {
            let gw = gw.clone();
            let channel = channel.clone();
            async move { gw.delivered(&channel, id).await }
        }))
        .await;
        for r in results {
            if let Err(e) = r {
                // Not recorded: the reply stays pending and is delivered again on reconnect.
                let _ = out
                    .send(KernelFrame::Error {
                        code: ErrorCode::Unavailable,
                        message: format!("delivery ack not recorded: {e}"),
                    })
                    .await;
            }
        }
    }
}
