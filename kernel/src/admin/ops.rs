//! The operational views: the audit of a session's turns, channel health with pending
//! deliveries, and memory search. They read the live projections, caught up with the log.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::auth::Admin;
use crate::api::error::{ApiError, ApiResult};
use crate::gateway::Gateway;
use clawos_projections::views;

/// `GET /api/sessions/{id}/audit`: every turn of the session, oldest first, with its steps
/// (LLM calls with model, tokens and latency; tool calls with arguments, output and
/// duration) and its outcome (finished, failed with the reason, or running).
pub async fn audit(
    _: Admin,
    State(gw): State<Arc<Gateway>>,
    Path(session): Path<String>,
) -> ApiResult<Json<Value>> {
    gw.projected_through(gw.log().head()).await;
    let turns = clawos_replay::audit::audit_session(gw.read_models(), &session).await?;
    Ok(Json(json!({"session_id": session, "turns": turns})))
}

/// `GET /api/channels`: each channel's state, restarts and last exit, how long ago it was
/// last heard from, and its replies not yet acked.
pub async fn channels(_: Admin, State(gw): State<Arc<Gateway>>) -> ApiResult<Json<Value>> {
    gw.projected_through(gw.log().head()).await;
    let status = views::channel_status(gw.read_models())
        .await
        .map_err(ApiError::internal)?;
    let mut rows = json!(status);
    let pending = views::pending_by_channel(gw.read_models())
        .await
        .map_err(ApiError::internal)?;
    let seen: BTreeMap<String, u64> = gw
        .connections()
        .silences()
        .into_iter()
        .map(|(c, t)| (c, t.as_millis() as u64))
        .collect();
    if let Some(list) = rows.as_array_mut() {
        for c in list {
            let name = c["channel"].as_str().unwrap_or("").to_string();
            c["pending_deliveries"] = json!(pending.get(&name).copied().unwrap_or(0));
            c["last_seen_ms_ago"] = json!(seen.get(&name));
        }
    }
    Ok(Json(json!({"channels": rows, "pending": pending})))
}

/// Query of `GET /api/memories`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryQuery {
    /// Search text: memories ranked by the Gateway's recall; without it, newest first.
    pub q: Option<String>,
    /// Only this identity's memories.
    pub identity: Option<String>,
    /// Most results (default 50, at most 500).
    pub limit: Option<usize>,
}

/// `GET /api/memories`: browse or search the memories.
pub async fn memories(
    _: Admin,
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<MemoryQuery>,
) -> ApiResult<Json<Value>> {
    gw.projected_through(gw.log().head()).await;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let identity = q.identity.as_deref().filter(|s| !s.is_empty());
    let rows = views::memories(gw.read_models(), identity)
        .await
        .map_err(ApiError::internal)?;
    let by_id: BTreeMap<&str, &views::MemoryView> =
        rows.iter().map(|r| (r.memory_id.as_str(), r)).collect();
    let row_json = |r: &views::MemoryView, score: Option<f32>| {
        json!({"memory_id": r.memory_id, "identity": r.identity, "agent": r.agent,
               "text": r.text, "tags": r.tags, "written_seq": r.written_seq, "score": score})
    };
    let query = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let hits: Vec<Value> = match query {
        Some(text) => {
            // The one call into the Gateway's recall: the same ranking an agent gets.
            let scope = clawos_projections::index::Scope {
                identity: identity.map(str::to_string),
                agent: None,
            };
            crate::memory::recall(gw.memory_index(), &scope, text, limit)
                .await
                .map_err(ApiError::internal)?
                .into_iter()
                .filter_map(|h| {
                    by_id
                        .get(h.memory_id.as_str())
                        .map(|r| row_json(r, Some(h.score)))
                })
                .collect()
        }
        None => rows.iter().take(limit).map(|r| row_json(r, None)).collect(),
    };
    Ok(Json(json!({"total": rows.len(), "memories": hits})))
}
