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
    let pending: Vec<(String, i64)> = sqlx::query_as(
        "SELECT d.channel, COUNT(*) FROM deliveries d LEFT JOIN delivery_acks a \
         ON a.delivery_id = d.delivery_id WHERE a.delivery_id IS NULL GROUP BY d.channel",
    )
    .fetch_all(gw.read_models())
    .await
    .map_err(ApiError::internal)?;
    let pending: BTreeMap<String, i64> = pending.into_iter().collect();
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

/// A `memories` row: `(memory_id, identity, agent, text, tags, written_seq)`.
type MemoryRow = (String, Option<String>, Option<String>, String, String, i64);

/// `GET /api/memories`: browse or search the memories.
pub async fn memories(
    _: Admin,
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<MemoryQuery>,
) -> ApiResult<Json<Value>> {
    gw.projected_through(gw.log().head()).await;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let identity = q.identity.as_deref().filter(|s| !s.is_empty());
    let rows: Vec<MemoryRow> = sqlx::query_as(
        "SELECT memory_id, identity, agent, text, tags, written_seq FROM memories \
         WHERE ?1 IS NULL OR identity = ?1 ORDER BY written_seq DESC",
    )
    .bind(identity)
    .fetch_all(gw.read_models())
    .await
    .map_err(ApiError::internal)?;
    let by_id: BTreeMap<String, &MemoryRow> = rows.iter().map(|r| (r.0.clone(), r)).collect();
    let row_json = |r: &MemoryRow, score: Option<f32>| {
        json!({"memory_id": r.0, "identity": r.1, "agent": r.2, "text": r.3,
               "tags": serde_json::from_str::<Value>(&r.4).unwrap_or(Value::String(r.4.clone())),
               "written_seq": r.5, "score": score})
    };
    let query = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let hits: Vec<Value> = match query {
        Some(text) => {
            // The one call into the Gateway's recall: the same ranking an agent gets.
            let scope = clawos_projections::index::Scope {
                identity: identity.map(str::to_string),
                agent: None,
            };
            crate::memory::recall(&gw.memory_index(), &scope, text, limit)
                .await
                .map_err(ApiError::internal)?
                .into_iter()
                .filter_map(|h| by_id.get(&h.memory_id).map(|r| row_json(r, Some(h.score))))
                .collect()
        }
        None => rows.iter().take(limit).map(|r| row_json(r, None)).collect(),
    };
    Ok(Json(json!({"total": rows.len(), "memories": hits})))
}
