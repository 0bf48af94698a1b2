//! The webhook channel: `POST /message` with a bearer token or an HMAC-SHA256 signature of
//! the body. The reply comes back in the response when it arrives within `wait_ms`;
//! otherwise it is kept and served by `GET /message/{id}/reply`. Files go both ways as
//! base64 in the JSON (`attachments` in, `reply_attachments` out); their bytes are kept in
//! the media store and the log records their hash.

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

use clawos_events::Attachment;

use crate::client::{connect, BusHandle, ChannelIdentity};
use crate::media::{MediaError, MediaStore};
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
    /// Where to POST the reply (`{"id", "reply", "reply_attachments"}`, signed with
    /// `X-Clawos-Signature`) instead of waiting for it; the response then comes at once.
    pub callback_url: Option<String>,
    /// Files that come with the message.
    #[serde(default)]
    pub attachments: Vec<PostAttachment>,
}

/// A file posted with a message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostAttachment {
    /// File name.
    pub name: String,
    /// MIME type.
    pub mime: Option<String>,
    /// The bytes, base64 (standard alphabet, padded).
    pub data_base64: String,
}

/// A file that came with a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyAttachment {
    /// File name.
    pub name: String,
    /// MIME type.
    pub mime: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// blake3 hash of the bytes, as the log records it.
    pub blake3: String,
    /// The bytes, base64.
    pub data_base64: String,
}

/// A reply as the webhook hands it out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The text.
    pub reply: String,
    /// Its files.
    pub reply_attachments: Vec<ReplyAttachment>,
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
    /// The reply's files.
    #[serde(default)]
    pub reply_attachments: Vec<ReplyAttachment>,
}

#[derive(Default)]
struct Replies {
    waiting: HashMap<String, Vec<oneshot::Sender<Reply>>>,
    callbacks: HashMap<String, String>,
    kept: HashMap<String, Reply>,
    order: VecDeque<String>,
}

#[derive(Clone)]
struct AppState {
    bus: BusHandle,
    secret: Arc<Vec<u8>>,
    replies: Arc<Mutex<Replies>>,
    media: Option<MediaStore>,
}

/// Keep the posted files in the media store; the first refusal is the caller's error.
fn keep_files(
    media: Option<&MediaStore>,
    files: &[PostAttachment],
) -> Result<Vec<Attachment>, (StatusCode, String)> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for f in files {
        let Some(store) = media else {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "this webhook channel has no media store (CLAWOS_MEDIA_DIR is not set)".into(),
            ));
        };
        // Refuse before decoding: the decoded size follows from the base64 length.
        let data = f.data_base64.trim();
        let padding = data.bytes().rev().take_while(|b| *b == b'=').count() as u64;
        store
            .check_size(
                &f.name,
                ((data.len() as u64 / 4) * 3).saturating_sub(padding.min(2)),
            )
            .map_err(|e| (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("attachment {}: bad base64: {e}", f.name),
                )
            })?;
        let kept = store
            .put(&f.name, f.mime.as_deref(), &bytes)
            .map_err(|e| match e {
                MediaError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            })?;
        out.push(kept);
    }
    Ok(out)
}

/// A delivery's files with their bytes, for the caller; a missing blob is named in the
/// text instead (its bytes cannot be sent).
fn reply_of(d: &crate::protocol::Delivery, media: Option<&MediaStore>) -> Reply {
    use base64::Engine as _;
    let mut reply = Reply {
        reply: d.text.clone(),
        reply_attachments: Vec::new(),
    };
    for a in &d.attachments {
        let bytes = match (&a.blake3, media) {
            (Some(h), Some(m)) => m.get(h).map_err(|e| e.to_string()),
            _ => Err("its bytes were not kept".to_string()),
        };
        match bytes {
            Ok(bytes) => reply.reply_attachments.push(ReplyAttachment {
                name: a.name.clone(),
                mime: a.mime.clone(),
                size: a.size,
                blake3: a.blake3.clone().unwrap_or_default(),
                data_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            }),
            Err(why) => {
                tracing::warn!(name = %a.name, %why, "a reply's attachment cannot be sent");
                reply
                    .reply
                    .push_str(&format!("\n\n(attachment {} not sent: {why})", a.name));
            }
        }
    }
    reply
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
    let attachments = match keep_files(app.media.as_ref(), &msg.attachments) {
        Ok(a) => a,
        Err((status, why)) => return error(status, &why),
    };
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
            attachments,
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
    let (reply, reply_attachments) = match reply {
        Some(r) => (Some(r.reply), r.reply_attachments),
        None => (None, Vec::new()),
    };
    Json(PostResponse {
        id,
        seq: ack.seq,
        duplicate: ack.duplicate,
        reply,
        reply_attachments,
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
        Some(r) => Json(serde_json::json!({
            "id": id, "reply": r.reply, "reply_attachments": r.reply_attachments
        }))
        .into_response(),
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
    let media = MediaStore::from_env();
    let app = AppState {
        bus: bus.clone(),
        secret: Arc::new(secret.into_bytes()),
        replies: replies.clone(),
        media: media.clone(),
    };
    // Room for the largest attachment the media store keeps, as base64, plus the rest.
    let body_limit = media
        .as_ref()
        .map(|m| (m.max_bytes() as usize / 3 + 1) * 4 + 1024 * 1024)
        .unwrap_or(2 * 1024 * 1024);
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
            let reply = reply_of(&d, media.as_ref());
            if let Some(url) = callback {
                let body = serde_json::json!({
                    "id": key, "reply": reply.reply, "reply_attachments": reply.reply_attachments
                })
                .to_string();
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
                    let _ = w.send(reply.clone());
                }
                if r.kept.insert(key.clone(), reply).is_none() {
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
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
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
