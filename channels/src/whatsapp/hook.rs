//! The webhook Meta calls: `GET` answers the subscription check (`hub.mode=subscribe`,
//! `hub.verify_token`, `hub.challenge`), `POST` takes notifications signed with
//! `X-Hub-Signature-256: sha256=HMAC-SHA256(app secret, raw body)`. A notification's
//! messages go to the inbound stream one by one; the answer is 200 only once each is
//! committed by the kernel (or skipped as not one for the agent), else 503, and Meta
//! sends it again. A bad signature is refused with 401 and never read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};

use crate::platform::AdapterError;

/// How long a notification waits for its messages to be committed before a 503.
const COMMIT_WAIT: Duration = Duration::from_secs(8);
/// Largest notification body taken.
const BODY_LIMIT: usize = 1 << 20;

/// One message of a notification, with the sender's profile name, and the completion the
/// inbound stream sends once the kernel committed it (or it was skipped).
pub struct Arrived {
    /// The message object, as Meta sent it.
    pub message: Value,
    /// The phone number id the notification was for.
    pub phone_number_id: Option<String>,
    /// Completed when the message is safe.
    pub done: oneshot::Sender<()>,
}

#[derive(Clone)]
struct Hook {
    app_secret: Arc<Vec<u8>>,
    verify_token: Arc<String>,
    tx: mpsc::Sender<Arrived>,
}

/// Whether `header` (`sha256=HEX`) is the HMAC-SHA256 of `body` under `secret`.
pub fn signed(header: Option<&str>, body: &[u8], secret: &[u8]) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn verify(
    State(h): State<Hook>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    let mode = q.get("hub.mode").map(String::as_str);
    let token = q.get("hub.verify_token").map(String::as_bytes);
    let token_ok = token
        .is_some_and(|t| bool::from(subtle::ConstantTimeEq::ct_eq(t, h.verify_token.as_bytes())));
    match (mode, token_ok, q.get("hub.challenge")) {
        (Some("subscribe"), true, Some(c)) => (StatusCode::OK, c.clone()),
        _ => {
            tracing::warn!("a webhook verification with a wrong verify token refused");
            (StatusCode::FORBIDDEN, "verification refused".into())
        }
    }
}

async fn notify(State(h): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let sig = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !signed(sig, &body, &h.app_secret) {
        tracing::warn!("a webhook notification with a bad signature refused");
        return StatusCode::UNAUTHORIZED;
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            // Signed but not JSON: Meta would send it again forever; take it and say why.
            tracing::warn!(error = %e, "a signed notification that is not JSON skipped");
            return StatusCode::OK;
        }
    };
    if v["object"].as_str() != Some("whatsapp_business_account") {
        tracing::warn!(object = %v["object"], "a notification for another object skipped");
        return StatusCode::OK;
    }
    let mut waits = Vec::new();
    for entry in v["entry"].as_array().into_iter().flatten() {
        for change in entry["changes"].as_array().into_iter().flatten() {
            if change["field"].as_str() != Some("messages") {
                continue;
            }
            let value = &change["value"];
            let phone_number_id = value["metadata"]["phone_number_id"]
                .as_str()
                .map(String::from);
            for m in value["messages"].as_array().into_iter().flatten() {
                let (done, wait) = oneshot::channel();
                let arrived = Arrived {
                    message: m.clone(),
                    phone_number_id: phone_number_id.clone(),
                    done,
                };
                if h.tx.send(arrived).await.is_err() {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                waits.push(wait);
            }
            // `statuses` (sent, delivered, read, failed) are not messages for the agent.
        }
    }
    let all = futures::future::join_all(waits);
    match tokio::time::timeout(COMMIT_WAIT, all).await {
        Ok(r) if r.iter().all(Result::is_ok) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Listen on `listen` (bound now, served on a task); the receiver of arrived messages.
pub fn listen(
    listen: &str,
    app_secret: &str,
    verify_token: &str,
) -> Result<mpsc::Receiver<Arrived>, AdapterError> {
    let std_listener = std::net::TcpListener::bind(listen)
        .and_then(|l| l.set_nonblocking(true).map(|_| l))
        .map_err(|e| AdapterError::Config(format!("the webhook cannot listen on {listen}: {e}")))?;
    let listener = tokio::net::TcpListener::from_std(std_listener)
        .map_err(|e| AdapterError::Config(format!("the webhook on {listen}: {e}")))?
        .tap_io(|s| {
            let _ = s.set_nodelay(true);
        });
    let (tx, rx) = mpsc::channel(64);
    let hook = Hook {
        app_secret: Arc::new(app_secret.as_bytes().to_vec()),
        verify_token: Arc::new(verify_token.to_string()),
        tx,
    };
    let router = Router::new()
        .route("/", get(verify).post(notify))
        .route("/webhook", get(verify).post(notify))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(hook);
    tracing::info!(%listen, "WhatsApp webhook listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the WhatsApp webhook stopped");
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s").unwrap();
        mac.update(b"{}");
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(signed(Some(&good), b"{}", b"s"));
        assert!(!signed(Some(&good), b"{} ", b"s"));
        assert!(!signed(Some(&good), b"{}", b"t"));
        assert!(!signed(Some("sha256=zz"), b"{}", b"s"));
        assert!(!signed(None, b"{}", b"s"));
    }
}
