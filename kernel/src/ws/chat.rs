//! `chat.send`, `chat.history`, `chat.abort`. The replies of a run arrive as `chat` events
//! from the connection's feed ([`super::feed`]), which every operator connection follows,
//! so a Control UI watching a session sees turns started from any channel too.

use std::sync::Arc;

use clawos_events::EventPayload;
use clawos_projections::views;
use serde_json::{json, Value};

use super::conn::Conn;
use super::frames::{error, ok, Request, INVALID_REQUEST, UNAVAILABLE};
use crate::gateway::Gateway;
use crate::session_keys;
use crate::KernelError;

/// How many messages `chat.history` returns when no limit is given.
const DEFAULT_HISTORY: usize = 200;

fn key_error(req: &Request, e: String) -> Value {
    error(
        &req.id,
        INVALID_REQUEST,
        format!("invalid {} params: {e}", req.method),
    )
}

/// The session `params.sessionKey` names (`main` when absent), or the error to answer.
fn session_key(gw: &Gateway, req: &Request) -> Result<session_keys::SessionKey, Value> {
    let key = req.str("sessionKey").unwrap_or(session_keys::MAIN);
    session_keys::parse(key, &gw.config().gateway.default_agent).map_err(|e| key_error(req, e))
}

/// `chat.send {sessionKey, message, idempotencyKey}`: record the operator's message in the
/// session the key names (opening it if needed) and start a turn. The run id is the
/// idempotency key; sending the same key again starts nothing.
pub async fn send(gw: &Arc<Gateway>, conn: &Conn, req: &Request) -> Value {
    let message = req
        .params
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("");
    let attachments = match attachments(gw, req) {
        Ok(a) => a,
        Err(e) => return e,
    };
    if message.trim().is_empty() && attachments.is_empty() {
        return error(
            &req.id,
            INVALID_REQUEST,
            "invalid chat.send params: message is required",
        );
    }
    let key = match session_key(gw, req) {
        Ok(k) => k,
        Err(e) => return e,
    };
    let run_id = match req.str("idempotencyKey") {
        Some(k) => k.to_string(),
        None => uuid::Uuid::now_v7().to_string(),
    };
    match gw
        .operator_message(&key, message, &run_id, &conn.by(), attachments)
        .await
    {
        Ok(sent) => ok(
            &req.id,
            json!({"runId": run_id, "status": if sent.duplicate { "in_flight" } else { "started" },
                   "sessionKey": key.canonical(), "messageSeq": sent.seq}),
        ),
        Err(KernelError::NotFound(m)) => error(&req.id, INVALID_REQUEST, m),
        Err(e) => error(&req.id, UNAVAILABLE, e.to_string()),
    }
}

/// The `attachments` of a `chat.send` (`[{type, mimeType, fileName, content: base64}]`),
/// kept in the media store; a file above the cap is refused and nothing is recorded.
fn attachments(gw: &Gateway, req: &Request) -> Result<Vec<clawos_events::Attachment>, Value> {
    use base64::Engine;
    let Some(list) = req.params.get("attachments").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let content = a.get("content").and_then(Value::as_str).unwrap_or("");
        let content = content
            .split_once("base64,")
            .map(|(_, b)| b)
            .unwrap_or(content);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(content.trim())
            .map_err(|e| {
                error(
                    &req.id,
                    INVALID_REQUEST,
                    format!(
                        "invalid chat.send params: attachments[{i}].content is not base64: {e}"
                    ),
                )
            })?;
        let name = a
            .get("fileName")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("attachment-{i}"));
        let mime = a.get("mimeType").and_then(Value::as_str);
        let kept = gw
            .media()
            .put(&name, mime, &bytes)
            .map_err(|e| error(&req.id, INVALID_REQUEST, e.to_string()))?;
        out.push(kept);
    }
    Ok(out)
}

/// `agent {message, agentId?, sessionKey?, idempotencyKey, timeout?}`: one turn, answered
/// twice on the same request id: `accepted` at once, then `ok` with the reply (or an
/// error) when the turn ends, as OpenClaw's CLI (`openclaw agent`) expects.
pub fn agent(gw: Arc<Gateway>, conn: Arc<Conn>, req: Request) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for frame in agent_turn(&gw, &conn, &req).await {
            if conn.out.send(frame).await.is_err() {
                return;
            }
        }
    })
}

async fn agent_turn(gw: &Arc<Gateway>, conn: &Conn, req: &Request) -> Vec<Value> {
    let message = req.str("message").unwrap_or("");
    if message.is_empty() {
        return vec![error(
            &req.id,
            INVALID_REQUEST,
            "invalid agent params: message is required",
        )];
    }
    let default = &gw.config().gateway.default_agent;
    let agent = req.str("agentId").unwrap_or(default);
    let key = req
        .str("sessionKey")
        .map(String::from)
        .unwrap_or_else(|| session_keys::key_of(agent, session_keys::MAIN));
    let key = match session_keys::parse(&key, default) {
        Ok(k) => k,
        Err(e) => return vec![key_error(req, e)],
    };
    let run_id = req
        .str("idempotencyKey")
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let from = gw.log().head() + 1;
    let mut sub = gw.log().subscribe(from);
    let sent = match gw
        .operator_message(&key, message, &run_id, &conn.by(), Vec::new())
        .await
    {
        Ok(s) => s,
        Err(KernelError::NotFound(m)) => return vec![error(&req.id, INVALID_REQUEST, m)],
        Err(e) => return vec![error(&req.id, UNAVAILABLE, e.to_string())],
    };
    let accepted = ok(
        &req.id,
        json!({"runId": run_id, "status": "accepted", "sessionKey": key.canonical(), "agentId": key.agent}),
    );
    let _ = conn.out.send(accepted).await;
    let timeout = req
        .params
        .get("timeout")
        .and_then(Value::as_u64)
        .map(std::time::Duration::from_secs)
        .unwrap_or(std::time::Duration::from_secs(600));
    let waited = tokio::time::timeout(timeout, async {
        let mut reply = None;
        while let Ok(e) = sub.next().await {
            match e.decode() {
                Ok(EventPayload::MessageSent(m)) if m.in_reply_to == Some(sent.seq) => {
                    reply = Some(m.text);
                    if e.correlation_id.is_none() {
                        return Ok(reply.unwrap_or_default());
                    }
                }
                Ok(EventPayload::AgentTurnFinished(_)) if reply.is_some() => {
                    return Ok(reply.unwrap_or_default())
                }
                Ok(EventPayload::AgentTurnFailed(f)) if reply.is_some() => return Err(f.reason),
                _ => {}
            }
        }
        Err("the log closed".to_string())
    })
    .await;
    vec![match waited {
        Ok(Ok(text)) => ok(
            &req.id,
            json!({"runId": run_id, "status": "ok", "summary": "completed",
                   "result": {"payloads": [{"text": text}]}}),
        ),
        Ok(Err(reason)) => error(&req.id, UNAVAILABLE, reason),
        Err(_) => error(
            &req.id,
            UNAVAILABLE,
            format!("no answer within {timeout:?}"),
        ),
    }]
}

/// `chat.history {sessionKey, limit?}`: the messages of the session's active branch, oldest
/// first (an empty list for a key whose session has not started).
pub async fn history(gw: &Gateway, req: &Request) -> Value {
    let key = match session_key(gw, req) {
        Ok(k) => k,
        Err(e) => return e,
    };
    // Read your own writes: the projections first catch up with the log.
    gw.projected_through(gw.log().head()).await;
    let limit = req
        .params
        .get("limit")
        .and_then(Value::as_u64)
        .map(|l| l.clamp(1, 1000) as usize)
        .unwrap_or(DEFAULT_HISTORY);
    let Some(session) = gw.session_of(&key).await else {
        return ok(
            &req.id,
            json!({"sessionKey": key.canonical(), "sessionId": null, "messages": []}),
        );
    };
    match views::load_session(gw.read_models(), &session).await {
        Ok(t) => {
            let branch = views::sessions(&t)
                .first()
                .map(|s| s.active_branch.clone())
                .unwrap_or_else(|| "main".into());
            let all = views::transcript(&t, &session, &branch);
            let skip = all.len().saturating_sub(limit);
            let messages: Vec<Value> = all[skip..]
                .iter()
                .map(|m| {
                    json!({"role": m.role, "content": [{"type": "text", "text": m.text}],
                           "timestamp": m.ts_ms, "channel": m.channel,
                           "__openclaw": {"id": m.seq.to_string(), "seq": m.seq}})
                })
                .collect();
            ok(
                &req.id,
                json!({"sessionKey": key.canonical(), "sessionId": session, "branch": branch,
                       "messages": messages}),
            )
        }
        Err(e) => error(&req.id, UNAVAILABLE, e.to_string()),
    }
}

/// `chat.abort {sessionKey, runId?}`: stop the session's running turn; it ends as failed
/// with an "aborted" reason, and its run gets a `chat` event in state `aborted`.
pub async fn abort(gw: &Gateway, conn: &Conn, req: &Request) -> Value {
    let key = match session_key(gw, req) {
        Ok(k) => k,
        Err(e) => return e,
    };
    let runs = match gw.session_of(&key).await {
        Some(session) => gw.abort_turn(&session, &conn.by()),
        None => Vec::new(),
    };
    ok(
        &req.id,
        json!({"ok": true, "aborted": !runs.is_empty(),
               "runIds": runs.iter().map(|(_, run)| run).collect::<Vec<_>>()}),
    )
}
