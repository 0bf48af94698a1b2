//! `/ws`: JSON text frames for UI clients and nodes, in the shape OpenClaw's Gateway
//! protocol uses, so its clients can be supported later.
//!
//! - client → `{"type":"req","id","method","params"}`
//! - kernel → `{"type":"res","id","ok":true,"payload"}` or `{"type":"res","id","ok":false,"error":{"code","message"}}`
//! - kernel → `{"type":"event","event","payload","seq"}`
//!
//! The first request must be `connect` with `params.token` (the admin token); the answer is
//! `hello-ok` with the protocol version and the methods offered.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use clawos_channels::protocol::Inbound;
use clawos_events::EventPayload;
use clawos_projections::views;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::gateway::Gateway;

/// Version of the `/ws` protocol.
pub const WS_PROTOCOL: u32 = 1;
/// Methods offered after `connect`.
pub const METHODS: &[&str] = &[
    "health",
    "status",
    "chat.send",
    "chat.history",
    "sessions.list",
    "events.subscribe",
];
/// The channel name under which `/ws` chat messages are recorded.
pub const WS_CHANNEL: &str = "webchat";
/// Largest text frame accepted.
const MAX_WS_FRAME: usize = 1 << 20;

#[derive(Deserialize)]
struct Request {
    #[serde(rename = "type")]
    kind: String,
    id: Value,
    method: String,
    #[serde(default)]
    params: Value,
}

fn ok(id: &Value, payload: Value) -> Value {
    json!({"type": "res", "id": id, "ok": true, "payload": payload})
}

fn err(id: &Value, code: &str, message: impl Into<String>) -> Value {
    json!({"type": "res", "id": id, "ok": false, "error": {"code": code, "message": message.into()}})
}

/// Upgrade `/ws` requests.
pub async fn ws_handler(State(gw): State<Arc<Gateway>>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_WS_FRAME)
        .on_upgrade(move |socket| connection(gw, socket))
}

async fn connection(gw: Arc<Gateway>, socket: WebSocket) {
    let (mut sink, mut source) = socket.split();
    let (out, mut out_rx) = mpsc::channel::<Value>(1024);
    let writer = tokio::spawn(async move {
        while let Some(v) = out_rx.recv().await {
            if sink
                .send(Message::Text(v.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });
    let mut connected = false;
    let mut tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    while let Some(Ok(msg)) = source.next().await {
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => break,
            _ => continue,
        };
        let req: Request = match serde_json::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                let _ = out
                    .send(err(
                        &Value::Null,
                        "bad_request",
                        format!("not a request frame: {e}"),
                    ))
                    .await;
                continue;
            }
        };
        if req.kind != "req" {
            let _ = out
                .send(err(&req.id, "bad_request", "expected type \"req\""))
                .await;
            continue;
        }
        if !connected {
            if req.method != "connect" {
                let _ = out
                    .send(err(
                        &req.id,
                        "unauthorized",
                        "the first request must be `connect`",
                    ))
                    .await;
                break;
            }
            let token = req
                .params
                .get("token")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !gw.admits_admin(token) {
                tracing::warn!("/ws connect refused: wrong token");
                gw.metrics().auth_refused("ws");
                let _ = out
                    .send(err(&req.id, "unauthorized", "wrong or missing token"))
                    .await;
                break;
            }
            connected = true;
            let _ = out
                .send(ok(
                    &req.id,
                    json!({"type": "hello-ok", "protocol": WS_PROTOCOL, "methods": METHODS}),
                ))
                .await;
            continue;
        }
        if matches!(req.method.as_str(), "sessions.list" | "chat.history") {
            // Read your own writes: the projections first catch up with the log.
            gw.projected_through(gw.log().head()).await;
        }
        let reply = match req.method.as_str() {
            "health" => ok(&req.id, json!({"ok": true, "seq": gw.log().head()})),
            "status" => match views::channel_status(gw.read_models()).await {
                Ok(c) => ok(
                    &req.id,
                    json!({"seq": gw.log().head(), "projected": gw.projected(), "channels": c}),
                ),
                Err(e) => err(&req.id, "unavailable", e.to_string()),
            },
            "sessions.list" => match views::load_sessions(gw.read_models()).await {
                Ok(s) => ok(&req.id, json!({"sessions": s})),
                Err(e) => err(&req.id, "unavailable", e.to_string()),
            },
            "chat.history" => history(&gw, &req).await,
            "chat.send" => {
                let (reply, task) = chat_send(&gw, &req, out.clone()).await;
                tasks.extend(task);
                reply
            }
            "events.subscribe" => {
                let from = req
                    .params
                    .get("fromSeq")
                    .and_then(Value::as_u64)
                    .unwrap_or(gw.log().head() + 1);
                tasks.push(tokio::spawn(fan_out(gw.clone(), from, out.clone())));
                ok(&req.id, json!({"fromSeq": from}))
            }
            "connect" => err(&req.id, "bad_request", "already connected"),
            other => err(
                &req.id,
                "unknown_method",
                format!("unknown method `{other}`; offered: {}", METHODS.join(", ")),
            ),
        };
        if out.send(reply).await.is_err() {
            break;
        }
    }
    for t in tasks {
        t.abort();
    }
    drop(out);
    let _ = writer.await;
}

async fn history(gw: &Gateway, req: &Request) -> Value {
    let Some(session) = req.params.get("sessionKey").and_then(Value::as_str) else {
        return err(
            &req.id,
            "bad_request",
            "params.sessionKey (a session id) is required",
        );
    };
    match views::load_session(gw.read_models(), session).await {
        Ok(t) => {
            let sessions = views::sessions(&t);
            let Some(s) = sessions.first() else {
                return err(&req.id, "not_found", format!("no session {session}"));
            };
            let messages = views::transcript(&t, session, &s.active_branch);
            ok(
                &req.id,
                json!({"sessionKey": session, "branch": s.active_branch, "messages": messages}),
            )
        }
        Err(e) => err(&req.id, "unavailable", e.to_string()),
    }
}

/// `chat.send`: record the message as coming from `webchat:<sessionKey>@local`, ack with a run
/// id, then send `chat` events: `final` with the reply, or `error`.
async fn chat_send(
    gw: &Arc<Gateway>,
    req: &Request,
    out: mpsc::Sender<Value>,
) -> (Value, Option<tokio::task::JoinHandle<()>>) {
    let Some(message) = req
        .params
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.trim().is_empty())
    else {
        return (
            err(&req.id, "bad_request", "params.message is required"),
            None,
        );
    };
    let key = req
        .params
        .get("sessionKey")
        .and_then(Value::as_str)
        .unwrap_or("main")
        .to_string();
    let idempotency = req
        .params
        .get("idempotencyKey")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let from_seq = gw.log().head() + 1;
    let mut deltas = gw.subscribe_deltas();
    let ingested = gw
        .ingest(
            WS_CHANNEL,
            Inbound {
                external_id: idempotency.clone(),
                sender: format!("webchat:{key}@local"),
                chat: None,
                text: message.to_string(),
                attachments: vec![],
                sent_at_ms: 0,
                mentioned: true,
            },
        )
        .await;
    let seq = match ingested {
        Ok(i) => i.seq,
        Err(e) => return (err(&req.id, "unavailable", e.to_string()), None),
    };
    let run_id = idempotency;
    let gw2 = gw.clone();
    let run = run_id.clone();
    let task = tokio::spawn(async move {
        let trigger = match gw2.log().get(seq).await {
            Ok(Some(t)) => t.id,
            _ => return,
        };
        let mut sub = gw2.log().subscribe(from_seq.min(seq));
        loop {
            let e = tokio::select! {
                e = sub.next() => e,
                d = deltas.recv() => {
                    if let Ok(d) = d {
                        if d.trigger_seq == seq && !d.text.is_empty() {
                            let _ = out
                                .send(json!({"type": "event", "event": "chat",
                                    "payload": {"runId": run, "sessionKey": key, "state": "delta",
                                                "message": {"role": "assistant", "text": d.text}}}))
                                .await;
                        }
                    }
                    continue;
                }
            };
            let Ok(e) = e else { return };
            if e.causation_id != Some(trigger) {
                continue;
            }
            match e.decode() {
                Ok(EventPayload::MessageSent(m)) => {
                    let _ = out
                        .send(json!({"type": "event", "event": "chat", "seq": e.seq,
                            "payload": {"runId": run, "sessionKey": key, "state": "final",
                                        "message": {"role": "assistant", "text": m.text}}}))
                        .await;
                    let _ = gw2.delivered(WS_CHANNEL, m.delivery_id).await;
                }
                Ok(EventPayload::AgentTurnFailed(f)) => {
                    let _ = out
                        .send(json!({"type": "event", "event": "chat", "seq": e.seq,
                            "payload": {"runId": run, "sessionKey": key, "state": "error",
                                        "error": f.reason}}))
                        .await;
                    return;
                }
                Ok(EventPayload::AgentTurnFinished(_)) => return,
                _ => {}
            }
        }
    });
    (
        ok(
            &req.id,
            json!({"runId": run_id, "seq": seq, "status": "accepted"}),
        ),
        Some(task),
    )
}

/// `events.subscribe`: every log event from `from`, live.
async fn fan_out(gw: Arc<Gateway>, from: u64, out: mpsc::Sender<Value>) {
    let mut sub = gw.log().subscribe(from);
    while let Ok(e) = sub.next().await {
        let payload = clawos_replay::export::event_json(&e);
        if out
            .send(json!({"type": "event", "event": "log", "seq": e.seq, "payload": payload}))
            .await
            .is_err()
        {
            return;
        }
    }
}
