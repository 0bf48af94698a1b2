//! The webhook channel: `POST /message` with a bearer token or an HMAC-SHA256 signature of
//! the body. The reply comes back in the response when it arrives within `wait_ms`;
//! otherwise it is kept and served by `GET /message/{id}/reply`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::client::{connect, BusHandle, ChannelIdentity};
use crate::protocol::Inbound;
use crate::ChannelError;

/// Environment variable with the address to listen on.
pub const ENV_LISTEN: &str = "CLAWOS_WEBHOOK_LISTEN";
/// Environment variable with the shared secret.
pub const ENV_SECRET: &str = "CLAWOS_WEBHOOK_SECRET";
/// Longest a request may wait for its reply.
pub const MAX_WAIT: Duration = Duration::from_secs(120);
/// Replies kept for `GET /message/{id}/reply`.
const KEPT_REPLIES: usize = 1024;

/// Body of `POST /message`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// The caller's id for the message; re-posting the same id is a no-op (dedupe).
    pub id: Option<String>,
    /// Sender, e.g. `alice@example.com`; the address becomes `webhook:alice@example.com`.
    pub from: String,
    /// Chat or group.
    pub chat: Option<String>,
    /// Text.
    pub text: String,
    /// In a group chat: whether the message addresses the agent (default true; false
    /// lets the group policy decide, and a `mention` policy only logs it as context).
    pub mentioned: Option<bool>,
    /// How long to wait for the reply in milliseconds (default 30000, 0 = don't wait).
    pub wait_ms: Option<u64>,
    /// Where to POST the reply (`{"id", "reply"}`, signed with `X-Clawos-Signature`)
    /// instead of waiting for it; the response then comes at once.
    pub callback_url: Option<String>,
}

/// Response of `POST /message`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PostResponse {
    /// The message id (given or generated).
    pub id: String,
    /// Seq of the message in the log.
    pub seq: u64,
    /// It had been posted before.
    pub duplicate: bool,
    /// The reply, if it arrived in time.
    pub reply: Option<String>,
}

#[derive(Default)]
struct Replies {
    waiting: HashMap<String, Vec<oneshot::Sender<String>>>,
    callbacks: HashMap<String, String>,
    kept: HashMap<String, String>,
    order: VecDeque<String>,
}

#[derive(Clone)]
struct AppState {
    bus: BusHandle,
    secret: Arc<Vec<u8>>,
    replies: Arc<Mutex<Replies>>,
}

fn authorized(headers: &HeaderMap, body: &[u8], secret: &[u8]) -> bool {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        if let Some(token) = v.strip_prefix("Bearer ") {
            return bool::from(token.as_bytes().ct_eq(secret));
        }
    }
    if let Some(v) = headers
        .get("x-clawos-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
    {
        let Ok(sig) = hex::decode(v) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return false;
        };
        mac.update(body);
        return mac.verify_slice(&sig).is_ok();
    }
    false
}

/// Hex HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn post_message(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers, &body, &app.secret) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token / X-Clawos-Signature",
        );
    }
    let msg: PostMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad JSON body: {e}")),
    };
    if msg.text.trim().is_empty() || msg.from.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "`from` and `text` must not be empty",
        );
    }
    let id = msg.id.clone().unwrap_or_else(|| Uuid::now_v7().to_string());
    if let Some(url) = &msg.callback_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return error(
                StatusCode::BAD_REQUEST,
                "callback_url must be an http(s) URL",
            );
        }
        app.replies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .callbacks
            .insert(id.clone(), url.clone());
    }
    let wait = if msg.callback_url.is_some() {
        Duration::ZERO
    } else {
        Duration::from_millis(msg.wait_ms.unwrap_or(30_000)).min(MAX_WAIT)
    };
    let rx = {
        let mut r = app.replies.lock().unwrap_or_else(|p| p.into_inner());
        let (tx, rx) = oneshot::channel();
        match r.kept.get(&id) {
            // A re-post of a message already answered: the kernel still says which seq it
            // is (and that it is a duplicate); the kept reply answers at once.
            Some(kept) => {
                let _ = tx.send(kept.clone());
            }
            None => r.waiting.entry(id.clone()).or_default().push(tx),
        }
        rx
    };
    let ack = match app
        .bus
        .send_inbound(Inbound {
            external_id: id.clone(),
            sender: format!("webhook:{}", msg.from),
            chat: msg.chat,
            text: msg.text,
            attachments: vec![],
            mentioned: msg.mentioned.unwrap_or(true),
            sent_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        })
        .await
    {
        Ok(a) => a,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let reply = if wait.is_zero() {
        None
    } else {
        tokio::time::timeout(wait, rx)
            .await
            .ok()
            .and_then(|r| r.ok())
    };
    Json(PostResponse {
        id,
        seq: ack.seq,
        duplicate: ack.duplicate,
        reply,
    })
    .into_response()
}

async fn get_reply(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers, b"", &app.secret) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let r = app.replies.lock().unwrap_or_else(|p| p.into_inner());
    match r.kept.get(&id) {
        Some(text) => Json(serde_json::json!({ "id": id, "reply": text })).into_response(),
        None => error(StatusCode::NOT_FOUND, "no reply yet"),
    }
}

/// Run the webhook channel on `listen` until the process is stopped.
pub async fn run(
    identity: ChannelIdentity,
    listen: SocketAddr,
    secret: String,
) -> Result<(), ChannelError> {
    if secret.len() < 16 {
        return Err(ChannelError::MissingEnv(format!(
            "{ENV_SECRET} (at least 16 characters)"
        )));
    }
    let (bus, mut deliveries, client) = connect(identity);
    let replies: Arc<Mutex<Replies>> = Arc::default();
    let app = AppState {
        bus: bus.clone(),
        secret: Arc::new(secret.into_bytes()),
        replies: replies.clone(),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| ChannelError::Connect(e.to_string()))?;
    let secret_bytes = app.secret.clone();
    tokio::spawn(async move {
        while let Some(incoming) = deliveries.recv().await {
            let crate::client::Incoming::Deliver(d) = incoming else {
                continue;
            };
            let key = d
                .in_reply_to
                .clone()
                .unwrap_or_else(|| d.delivery_id.to_string());
            let callback = replies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .callbacks
                .remove(&key);
            if let Some(url) = callback {
                let body = serde_json::json!({"id": key, "reply": d.text}).to_string();
                let sig = sign(&secret_bytes, body.as_bytes());
                let sent = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-clawos-signature", format!("sha256={sig}"))
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if !sent {
                    // Not acked: the kernel delivers it again after a reconnect.
                    tracing::warn!(%url, "callback failed; the reply stays pending");
                    continue;
                }
            }
            {
                let mut r = replies.lock().unwrap_or_else(|p| p.into_inner());
                for w in r.waiting.remove(&key).unwrap_or_default() {
                    let _ = w.send(d.text.clone());
                }
                if r.kept.insert(key.clone(), d.text.clone()).is_none() {
                    r.order.push_back(key);
                }
                while r.order.len() > KEPT_REPLIES {
                    if let Some(old) = r.order.pop_front() {
                        r.kept.remove(&old);
                    }
                }
            }
            let _ = bus.delivered(d.delivery_id).await;
        }
    });
    let router = Router::new()
        .route("/message", post(post_message))
        .route("/message/{id}/reply", get(get_reply))
        .with_state(app);
    // TCP_NODELAY: a small response must not wait for the client's delayed ACK.
    let listener = tokio::net::TcpListener::bind(listen).await?.tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    tracing::info!(%listen, "webhook channel listening");
    tokio::select! {
        r = axum::serve(listener, router) => r.map_err(ChannelError::Io),
        r = client => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ChannelError::Closed),
        },
    }
}
