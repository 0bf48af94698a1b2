//! Time travel: `GET /api/state?seq=N[&session=ID]`, the read models exactly as they were
//! after event N, folded from the log by the replay library (never read from the live
//! tables). With a session only its stream is folded, and the answer has the session's
//! branches with their transcripts (what the transcript slider uses); without, every
//! projection is folded and the answer has every session with its branches (no
//! transcripts), bindings, identities, channels, memories and each session's canvas. The whole-log fold is kept
//! ([`FoldCache`]), so moving forward folds only the events in between.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Extension;
use axum::Json;
use clawos_projections::{
    bindings, canvas, channels, identities, memories, sessions::BRANCHES, views, MemoryTables,
    Table, Value,
};
use clawos_replay::state_at::{snapshot, state_at, Fold};
use serde::Deserialize;
use serde_json::{json, Map};

use crate::api::auth::Admin;
use crate::api::error::{ApiError, ApiResult};
use crate::gateway::Gateway;

/// Query of `GET /api/state`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateQuery {
    /// After this event (default: the head).
    pub seq: Option<u64>,
    /// Fold only this session's stream.
    pub session: Option<String>,
}

/// The rows of `table` as JSON objects keyed by column name.
pub fn table_json(tables: &MemoryTables, table: &Table) -> serde_json::Value {
    let rows = tables.rows(table.name);
    json!(rows
        .iter()
        .map(|r| {
            let mut o = Map::new();
            for (c, v) in table.columns.iter().zip(r) {
                let v = match v {
                    Value::Null => serde_json::Value::Null,
                    Value::Int(i) => json!(i),
                    Value::Text(t) => json!(t),
                    Value::Blob(b) => json!(hex::encode(b)),
                };
                o.insert((*c).to_string(), v);
            }
            serde_json::Value::Object(o)
        })
        .collect::<Vec<_>>())
}

/// Every session's branch rows (`name`, `head_seq`, `fork_seq`, `created_seq`), in one pass
/// over the branches table.
fn branches_by_session(
    tables: &MemoryTables,
) -> std::collections::HashMap<String, Vec<serde_json::Value>> {
    let mut out: std::collections::HashMap<String, Vec<serde_json::Value>> = Default::default();
    let Some(rows) = tables.tables.get(BRANCHES.name) else {
        return out;
    };
    let int = |v: Option<&Value>| match v {
        Some(Value::Int(i)) => json!(i),
        _ => serde_json::Value::Null,
    };
    for r in rows.values() {
        let (Some(Value::Text(session)), Some(Value::Text(name))) = (r.first(), r.get(1)) else {
            continue;
        };
        out.entry(session.clone()).or_default().push(json!({
            "name": name,
            "head_seq": int(r.get(2)),
            "fork_seq": int(r.get(3)),
            "created_seq": int(r.get(4)),
        }));
    }
    out
}

/// The admin API's whole-log fold, kept between requests: a later seq continues it, an
/// earlier one starts a new fold. One per Gateway (see [`super::routes`]).
#[derive(Default)]
pub struct FoldCache(tokio::sync::Mutex<Option<Fold>>);

/// `GET /api/state`.
pub async fn at(
    _: Admin,
    State(gw): State<Arc<Gateway>>,
    Extension(cache): Extension<Arc<FoldCache>>,
    Query(q): Query<StateQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let head = super::log::log_head(&gw).await?;
    let seq = q.seq.unwrap_or(head);
    let session = q
        .session
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let started = std::time::Instant::now();
    let mut body = json!({
        "seq": seq,
        "head": head,
        "session": session,
    });
    if session.is_some() {
        let s = state_at(gw.log(), seq, session)
            .await
            .map_err(ApiError::from)?;
        body["sessions"] = json!(snapshot(&s.tables));
    } else {
        if seq > head {
            return Err(ApiError::from(clawos_replay::ReplayError::BeyondHead {
                seq,
                head,
            }));
        }
        let mut cached = cache.0.lock().await;
        let fold = match cached.take() {
            Some(f) if f.seq() <= seq => cached.insert(f),
            _ => cached.insert(Fold::new()),
        };
        fold.advance(gw.log(), seq).await.map_err(ApiError::from)?;
        let tables = fold.tables();
        // Every session with its branches, without transcripts: those are one session at a
        // time (with `session`), or a whole log's worth of text in one answer.
        let mut branches = branches_by_session(tables);
        body["sessions"] = json!(views::sessions(tables)
            .into_iter()
            .map(|v| {
                let b = branches.remove(&v.session_id).unwrap_or_default();
                json!({"session": v, "branches": b})
            })
            .collect::<Vec<_>>());
        body["bindings"] = table_json(tables, &bindings::BINDINGS);
        body["identities"] = table_json(tables, &identities::IDENTITY_ADDRESSES);
        body["channels"] = table_json(tables, &channels::CHANNELS);
        body["memories"] = table_json(tables, &memories::MEMORIES);
        body["canvas"] = table_json(tables, &canvas::CANVAS);
    }
    body["fold_ms"] = json!(started.elapsed().as_millis() as u64);
    Ok(Json(body))
}
