//! Operator methods that read the Gateway's state or answer approvals: `health`, `status`,
//! `system-presence`, `agents.list`, `config.get` (secrets never included), `logs.tail`
//! (the event log as lines), `exec.approval.list|resolve`.

use clawos_events::{stream, ApprovalAnswered, ExpectedVersion, NewEvent};
use clawos_projections::views;
use serde_json::{json, Value};
use uuid::Uuid;

use super::conn::Conn;
use super::frames::{error, ok, Request, APPROVAL_NOT_FOUND, INVALID_REQUEST, UNAVAILABLE};
use crate::gateway::Gateway;
use crate::session_keys::{key_of, MAIN};

/// Most lines `logs.tail` returns.
const MAX_TAIL: u64 = 5000;

/// Dispatch one of this module's methods.
pub async fn call(gw: &Gateway, conn: &Conn, req: &Request) -> Value {
    match req.method.as_str() {
        "health" => health(gw, req).await,
        "status" => status(gw, req).await,
        "system-presence" => ok(&req.id, json!(gw.presence().entries())),
        "agents.list" => agents(gw, req),
        "config.get" => config(gw, req),
        "logs.tail" => logs_tail(gw, req).await,
        "exec.approval.list" => approval_list(gw, req).await,
        "exec.approval.resolve" => resolve(gw, conn, req).await,
        other => error(&req.id, INVALID_REQUEST, format!("unknown method: {other}")),
    }
}

/// `health`: OpenClaw's health snapshot (channels by name, sessions) and our log position.
async fn health(gw: &Gateway, req: &Request) -> Value {
    let started = std::time::Instant::now();
    let channels = views::channel_status(gw.read_models())
        .await
        .unwrap_or_default();
    let sessions = views::load_sessions(gw.read_models())
        .await
        .unwrap_or_default();
    let by_name: serde_json::Map<String, Value> = channels
        .iter()
        .map(|c| (c.channel.clone(), json!(c)))
        .collect();
    let order: Vec<&str> = channels.iter().map(|c| c.channel.as_str()).collect();
    let labels: serde_json::Map<String, Value> = channels
        .iter()
        .map(|c| {
            (
                c.channel.clone(),
                json!(format!("{} ({})", c.channel, c.kind)),
            )
        })
        .collect();
    let default = &gw.config().gateway.default_agent;
    let store = json!({"path": gw.home().projections_path().display().to_string(),
                       "count": sessions.len(), "recent": []});
    let agents: Vec<Value> = gw
        .config()
        .agents
        .keys()
        .map(|a| {
            let count = sessions.iter().filter(|s| &s.agent == a).count();
            json!({"agentId": a, "isDefault": a == default, "heartbeat": {},
                   "sessions": {"path": store["path"], "count": count, "recent": []}})
        })
        .collect();
    ok(
        &req.id,
        json!({"ok": true, "ts": crate::clock::now_ms(),
               "durationMs": started.elapsed().as_millis() as u64,
               "channels": by_name, "channelOrder": order, "channelLabels": labels,
               "heartbeatSeconds": 0, "defaultAgentId": default, "agents": agents,
               "sessions": store, "seq": gw.log().head(), "projected": gw.projected()}),
    )
}

async fn status(gw: &Gateway, req: &Request) -> Value {
    gw.projected_through(gw.log().head()).await;
    let (channels, sessions) = match (
        views::channel_status(gw.read_models()).await,
        views::load_sessions(gw.read_models()).await,
    ) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(e), _) | (_, Err(e)) => return error(&req.id, UNAVAILABLE, e.to_string()),
    };
    let mut by_agent: std::collections::BTreeMap<&str, Vec<&views::SessionView>> =
        Default::default();
    for s in &sessions {
        by_agent.entry(s.agent.as_str()).or_default().push(s);
    }
    let recent = |list: &[&views::SessionView]| -> Vec<Value> {
        let mut l: Vec<&&views::SessionView> = list.iter().collect();
        l.sort_by_key(|s| std::cmp::Reverse(s.last_seq));
        l.iter()
            .take(10)
            .map(|s| json!({"key": key_of(&s.agent, &s.identity), "sessionId": s.session_id}))
            .collect()
    };
    let all: Vec<&views::SessionView> = sessions.iter().collect();
    ok(
        &req.id,
        json!({
            "runtimeVersion": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "seq": gw.log().head(),
            "projected": gw.projected(),
            "channels": channels,
            "channelSummary": channels.iter().map(|c| format!("{}: {}", c.channel, c.state)).collect::<Vec<_>>(),
            "queuedSystemEvents": [],
            "tasks": {"total": 0, "active": 0, "terminal": 0, "failures": 0,
                      "byStatus": {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "timed_out": 0, "cancelled": 0, "lost": 0},
                      "byRuntime": {"subagent": 0, "acp": 0, "cli": 0, "cron": 0}},
            "taskAudit": {"total": 0, "warnings": 0, "errors": 0,
                          "byCode": {"stale_queued": 0, "stale_running": 0, "lost": 0, "delivery_failed": 0, "missing_cleanup": 0, "inconsistent_timestamps": 0}},
            "heartbeat": {"defaultAgentId": gw.config().gateway.default_agent, "agents": []},
            "sessions": {
                "paths": [gw.home().projections_path().display().to_string()],
                "count": sessions.len(),
                "defaults": {"model": Value::Null, "contextTokens": Value::Null},
                "recent": recent(&all),
                "byAgent": by_agent.iter().map(|(a, l)| json!({"agentId": a, "count": l.len(), "recent": recent(l)})).collect::<Vec<_>>()
            },
            "nodes": gw.nodes().list().len(),
            "presence": gw.presence().entries().len()
        }),
    )
}

fn agents(gw: &Gateway, req: &Request) -> Value {
    let c = gw.config();
    let list: Vec<Value> = c
        .agents
        .iter()
        .map(|(name, a)| {
            let mut v = json!({"id": name, "name": name, "kind": "agent"});
            if let Some(m) = &a.model {
                v["model"] = json!({"primary": m});
            }
            v
        })
        .collect();
    ok(
        &req.id,
        json!({"defaultId": c.gateway.default_agent, "mainKey": MAIN, "scope": "per-sender",
               "ownership": "sole", "agents": list}),
    )
}

/// Whether a configuration key holds a secret value (names of secrets and of environment
/// variables are not secrets).
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let named = k.ends_with("_secret") || k.ends_with("_env") || k.ends_with("_secret_name");
    !named
        && [
            "token", "password", "secret", "api_key", "apikey", "private",
        ]
        .iter()
        .any(|s| k.contains(s))
}

fn redacted(v: toml::Value) -> Value {
    match v {
        toml::Value::Table(t) => Value::Object(
            t.into_iter()
                .map(|(k, v)| {
                    let v = if secret_key(&k) {
                        json!("__REDACTED__")
                    } else {
                        redacted(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(redacted).collect()),
        toml::Value::String(s) => json!(s),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => json!(d.to_string()),
    }
}

fn config(gw: &Gateway, req: &Request) -> Value {
    let path = gw.home().dir().join("clawos.toml");
    let text = std::fs::read_to_string(&path).ok();
    let parsed = text
        .as_deref()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .map(|t| redacted(toml::Value::Table(t)));
    let hash = text
        .as_deref()
        .map(|t| blake3::hash(t.as_bytes()).to_hex().to_string());
    ok(
        &req.id,
        json!({"path": path.display().to_string(), "exists": text.is_some(),
               "valid": true, "raw": Value::Null, "parsed": parsed, "config": parsed,
               "hash": hash, "issues": [], "warnings": [], "legacyIssues": [],
               "configRevisionHash": hash, "appliedConfigHash": hash}),
    )
}

/// `logs.tail {cursor?, limit?}`: the event log from after `cursor` (a seq), one line per
/// event; the new cursor is the last seq returned.
async fn logs_tail(gw: &Gateway, req: &Request) -> Value {
    let head = gw.log().head();
    let limit = req
        .params
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(200)
        .clamp(1, MAX_TAIL);
    let from = match req.params.get("cursor").and_then(Value::as_u64) {
        Some(c) => c + 1,
        None => head.saturating_sub(limit) + 1,
    };
    let events = match gw.log().read_from(from, limit as u32).await {
        Ok(e) => e,
        Err(e) => return error(&req.id, UNAVAILABLE, e.to_string()),
    };
    let cursor = events
        .last()
        .map(|e| e.seq)
        .unwrap_or(from.saturating_sub(1));
    let lines: Vec<String> = events
        .iter()
        .map(|e| format!("{} {} {} {}", e.seq, e.ts_ms, e.kind, e.stream))
        .collect();
    ok(
        &req.id,
        json!({"file": gw.home().log_path().display().to_string(), "cursor": cursor,
               "size": head, "lines": lines, "truncated": cursor < head}),
    )
}

async fn approval_list(gw: &Gateway, req: &Request) -> Value {
    gw.projected_through(gw.log().head()).await;
    match views::approvals(gw.read_models(), true).await {
        Ok(list) => ok(
            &req.id,
            json!(list
                .iter()
                .map(|a| json!({"id": a.approval_id, "request": {"command": a.action, "sessionId": a.session_id}}))
                .collect::<Vec<_>>()),
        ),
        Err(e) => error(&req.id, UNAVAILABLE, e.to_string()),
    }
}

/// `exec.approval.resolve {id, decision}`: `allow-once` or `allow-always` approve, `deny`
/// refuses. The first answer is the only one (a CLI answer, a timeout, another client).
async fn resolve(gw: &Gateway, conn: &Conn, req: &Request) -> Value {
    let id = match req.required("id") {
        Ok(id) => id,
        Err(e) => return e,
    };
    let approved = match req.str("decision") {
        Some("allow-once" | "allow-always") => true,
        Some("deny") => false,
        _ => return error(&req.id, INVALID_REQUEST, "invalid decision"),
    };
    let Ok(approval_id) = id.parse::<Uuid>() else {
        return error(&req.id, APPROVAL_NOT_FOUND, format!("no approval {id}"));
    };
    gw.projected_through(gw.log().head()).await;
    match views::approval(gw.read_models(), approval_id).await {
        Ok(Some(a)) if a.is_pending() => {}
        Ok(Some(_)) => return error(&req.id, INVALID_REQUEST, "approval already resolved"),
        Ok(None) => return error(&req.id, APPROVAL_NOT_FOUND, format!("no approval {id}")),
        Err(e) => return error(&req.id, UNAVAILABLE, e.to_string()),
    }
    let answer = NewEvent::new(ApprovalAnswered {
        approval_id,
        approved,
        by: conn.by(),
    })
    .dedupe(crate::approvals::approval_key(approval_id));
    match gw
        .log()
        .append(stream::APPROVALS, ExpectedVersion::Any, vec![answer])
        .await
    {
        Ok(a) if a.duplicate => error(&req.id, INVALID_REQUEST, "approval already resolved"),
        Ok(_) => ok(&req.id, json!({"ok": true})),
        Err(e) => error(&req.id, UNAVAILABLE, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_redacted_and_names_of_secrets_are_not() {
        let t: toml::Table = "[gateway]\nlisten = \"127.0.0.1:1\"\n[agents.pi]\napi_key_secret = \"openai\"\napi_key_env = \"OPENAI_KEY\"\n[channels.tg]\nbot_token = \"123:abc\"\npassword = \"p\"\n"
            .parse()
            .unwrap();
        let v = redacted(toml::Value::Table(t));
        assert_eq!(v["agents"]["pi"]["api_key_secret"], "openai");
        assert_eq!(v["agents"]["pi"]["api_key_env"], "OPENAI_KEY");
        assert_eq!(v["channels"]["tg"]["bot_token"], "__REDACTED__");
        assert_eq!(v["channels"]["tg"]["password"], "__REDACTED__");
        assert_eq!(v["gateway"]["listen"], "127.0.0.1:1");
    }
}
