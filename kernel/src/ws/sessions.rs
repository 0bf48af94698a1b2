//! `sessions.list|patch|reset|delete`. Every change is an event in the session's stream:
//! patching the active branch is `BranchSwitched`, a reset is an empty branch the session
//! switches to (the earlier conversation stays on its branch), a delete is
//! `SessionClosed` (the owner's next message opens a new session; nothing is erased).

use clawos_events::{
    stream, BranchCreated, BranchSwitched, ExpectedVersion, NewEvent, SessionClosed,
};
use clawos_projections::views;
use serde_json::{json, Value};

use super::conn::Conn;
use super::frames::{error, ok, Request, INVALID_REQUEST, UNAVAILABLE};
use crate::gateway::Gateway;
use crate::session_keys::{self, key_of, SessionKey};

/// Dispatch one `sessions.*` method.
pub async fn call(gw: &Gateway, conn: &Conn, req: &Request) -> Value {
    gw.projected_through(gw.log().head()).await;
    if req.method == "sessions.list" {
        return list(gw, req).await;
    }
    let key = match req.str("key").or_else(|| req.str("sessionKey")) {
        Some(k) => k,
        None => {
            return error(
                &req.id,
                INVALID_REQUEST,
                format!("invalid {} params: key is required", req.method),
            )
        }
    };
    let key = match session_keys::parse(key, &gw.config().gateway.default_agent) {
        Ok(k) => k,
        Err(e) => {
            return error(
                &req.id,
                INVALID_REQUEST,
                format!("invalid {} params: {e}", req.method),
            )
        }
    };
    let Some(session) = gw.session_of(&key).await else {
        return error(
            &req.id,
            INVALID_REQUEST,
            format!("no session has key {}", key.canonical()),
        );
    };
    let events = match req.method.as_str() {
        "sessions.patch" => match patch(gw, req, &session).await {
            Ok(e) => e,
            Err(v) => return v,
        },
        "sessions.reset" => reset(gw, &session).await,
        _ => vec![NewEvent::new(SessionClosed {
            session_id: session.clone(),
            by: conn.by(),
        })],
    };
    match gw
        .log()
        .append(&stream::session(&session), ExpectedVersion::Any, events)
        .await
    {
        Ok(a) => {
            gw.projected_through(a.last_seq).await;
            gw.refresh_routing().await;
            let deleted = req.method == "sessions.delete";
            let mut body = json!({"ok": true, "key": key.canonical(), "sessionId": session});
            if deleted {
                body["deleted"] = json!(true);
                body["archived"] = json!([]);
            } else {
                body["entry"] = row(gw, &key, &session).await;
            }
            ok(&req.id, body)
        }
        Err(e) => error(&req.id, UNAVAILABLE, e.to_string()),
    }
}

async fn patch(gw: &Gateway, req: &Request, session: &str) -> Result<Vec<NewEvent>, Value> {
    let Some(branch) = req.str("branch") else {
        return Err(error(
            &req.id,
            INVALID_REQUEST,
            "invalid sessions.patch params: this Gateway patches `branch` (the active branch); \
             labels, models and thinking levels are set in clawos.toml per agent",
        ));
    };
    let exists = views::load_branches(gw.read_models(), session)
        .await
        .map(|b| b.iter().any(|b| b.name == branch))
        .unwrap_or(false);
    if !exists {
        return Err(error(
            &req.id,
            INVALID_REQUEST,
            format!("session has no branch {branch}"),
        ));
    }
    Ok(vec![NewEvent::new(BranchSwitched {
        branch: branch.to_string(),
    })])
}

async fn reset(gw: &Gateway, session: &str) -> Vec<NewEvent> {
    let taken: Vec<String> = views::load_branches(gw.read_models(), session)
        .await
        .map(|b| b.into_iter().map(|b| b.name).collect())
        .unwrap_or_default();
    let name = (1..)
        .map(|n| format!("reset-{n}"))
        .find(|n| !taken.contains(n))
        .unwrap_or_else(|| "reset".into());
    vec![NewEvent::new(BranchCreated {
        branch: name,
        at_message: None,
        switch_to: true,
    })]
}

/// One session row (OpenClaw `SessionRow`).
async fn row(gw: &Gateway, key: &SessionKey, session: &str) -> Value {
    let s = views::load_sessions(gw.read_models())
        .await
        .ok()
        .and_then(|all| all.into_iter().find(|s| s.session_id == session));
    match s {
        Some(s) => session_row(&s),
        None => json!({"key": key.canonical(), "kind": "direct", "sessionId": session}),
    }
}

fn session_row(s: &views::SessionView) -> Value {
    let kind = if s.identity.starts_with("group:") {
        "group"
    } else {
        "direct"
    };
    json!({"key": key_of(&s.agent, &s.identity), "kind": kind, "sessionId": s.session_id,
           "agentId": s.agent, "displayName": s.identity, "branch": s.active_branch,
           "messages": s.messages, "lastSeq": s.last_seq})
}

async fn list(gw: &Gateway, req: &Request) -> Value {
    let all = match views::load_sessions(gw.read_models()).await {
        Ok(s) => s,
        Err(e) => return error(&req.id, UNAVAILABLE, e.to_string()),
    };
    let agent = req.str("agentId");
    let search = req.str("search").map(str::to_lowercase);
    let mut rows: Vec<&views::SessionView> = all
        .iter()
        .filter(|s| agent.is_none_or(|a| s.agent == a))
        .filter(|s| {
            search.as_ref().is_none_or(|q| {
                key_of(&s.agent, &s.identity)
                    .to_lowercase()
                    .contains(q.as_str())
            })
        })
        .collect();
    rows.sort_by_key(|s| std::cmp::Reverse(s.last_seq));
    let total = rows.len();
    let offset = req
        .params
        .get("offset")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let limit = req
        .params
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(500) as usize;
    let page: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|s| session_row(s))
        .collect();
    let more = offset + page.len() < total;
    ok(
        &req.id,
        json!({"ts": crate::clock::now_ms(), "path": gw.home().projections_path().display().to_string(),
               "count": page.len(), "totalCount": total, "limitApplied": limit, "offset": offset,
               "nextOffset": if more { json!(offset + page.len()) } else { Value::Null },
               "hasMore": more,
               "defaults": {"agentId": gw.config().gateway.default_agent},
               "sessions": page}),
    )
}
