//! The event log, a page at a time: newest first, filtered, with seq cursors; and one
//! event with its envelope, decoded payload, hash, and the events linked to it by
//! causation and correlation.
//!
//! Every request does bounded work: a page reads back from a seq through the primary key
//! (or, for one stream, through the `(stream, stream_version)` index) and stops after
//! [`SCAN_BUDGET`] events even when fewer than `limit` matched; the answer's `next_before`
//! lets the client go on from there. The log is never scanned whole.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use clawos_events::{stream, RecordedEvent};
use clawos_replay::export::event_json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::auth::Admin;
use crate::api::error::{ApiError, ApiResult};
use crate::gateway::Gateway;

/// Most events one page request examines.
pub const SCAN_BUDGET: u64 = 20_000;
/// Default and largest page size.
pub const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
const CHUNK: u32 = 512;
/// How far after an event its consequences are looked for.
pub const LINK_WINDOW: u64 = 10_000;
const MAX_LINKS: i64 = 100;

/// Query of `GET /api/events`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Only events with a smaller seq (the next page of older events).
    pub before: Option<u64>,
    /// Only events with a larger seq (following new events).
    pub after: Option<u64>,
    /// Page size (default 50, at most 500).
    pub limit: Option<u32>,
    /// Kinds, comma-separated (`MessageReceived,MessageSent`).
    pub kind: Option<String>,
    /// One stream, exactly (`session:…`, `channel:hooks`, `bindings`, …).
    pub stream: Option<String>,
    /// One session (its stream).
    pub session: Option<String>,
    /// Events of one channel: its stream, or a payload naming it.
    pub channel: Option<String>,
    /// Case-insensitive text anywhere in the decoded event.
    pub q: Option<String>,
}

/// The filters of a page, parsed.
#[derive(Debug, Default)]
pub struct Filter {
    kinds: Vec<String>,
    stream: Option<String>,
    channel: Option<String>,
    text: Option<String>,
}

/// The trimmed value of a parameter, if it is there and not blank.
fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Filter {
    /// Parse the filter parameters; a stream and a session that disagree is an error.
    pub fn from_query(q: &PageQuery) -> ApiResult<Self> {
        let session_stream = nonempty(&q.session).map(stream::session);
        let stream = match (nonempty(&q.stream), session_stream) {
            (Some(a), Some(b)) if a != b => {
                return Err(ApiError::BadRequest(format!(
                    "`stream={a}` and `session` (stream {b}) exclude each other"
                )))
            }
            (Some(a), _) => Some(a.to_string()),
            (None, b) => b,
        };
        Ok(Filter {
            kinds: nonempty(&q.kind)
                .map(|k| {
                    k.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            stream,
            channel: nonempty(&q.channel).map(String::from),
            text: nonempty(&q.q).map(str::to_lowercase),
        })
    }

    /// Whether nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
            && self.stream.is_none()
            && self.channel.is_none()
            && self.text.is_none()
    }

    /// Whether nothing but (at most) the stream is filtered.
    pub fn only_stream(&self) -> bool {
        self.kinds.is_empty() && self.channel.is_none() && self.text.is_none()
    }

    /// Whether the envelope alone passes (kind and stream): checked before decoding.
    pub fn admits_envelope(&self, e: &RecordedEvent) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && self.stream.as_ref().is_none_or(|s| *s == e.stream)
    }

    /// Whether `e` (and its decoded form `json`) passes.
    pub fn admits(&self, e: &RecordedEvent, json: &Value) -> bool {
        if !self.admits_envelope(e) {
            return false;
        }
        if let Some(c) = &self.channel {
            let named = json["payload"]["channel"].as_str() == Some(c.as_str());
            if !named && e.stream != stream::channel(c) {
                return false;
            }
        }
        if let Some(t) = &self.text {
            if !json.to_string().to_lowercase().contains(t.as_str()) {
                return false;
            }
        }
        true
    }
}

/// One row of the list: the envelope's headline and a one-line summary of the payload.
pub fn summary(e: &RecordedEvent, json: &Value) -> Value {
    let p = &json["payload"];
    let line = [
        "text", "reason", "summary", "prompt", "tool", "branch", "channel",
    ]
    .iter()
    .find_map(|k| p[*k].as_str().map(|s| format!("{k}: {s}")))
    .unwrap_or_else(|| p.to_string());
    json!({
        "seq": e.seq,
        "ts_ms": e.ts_ms,
        "kind": e.kind,
        "stream": e.stream,
        "summary": clip(&line, 160),
        "decode_error": json.get("decode_error"),
    })
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The last seq in the log file: also events another process (a CLI command) appended,
/// which the Gateway's own head does not know of until its next commit.
pub async fn log_head(gw: &Gateway) -> ApiResult<u64> {
    let newest = gw
        .log()
        .read_back(u64::MAX, 1)
        .await
        .map_err(ApiError::internal)?;
    Ok(newest
        .first()
        .map(|e| e.seq)
        .unwrap_or(0)
        .max(gw.log().head()))
}

/// `GET /api/events`: a page of events, newest first.
pub async fn page(
    _: Admin,
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Value>> {
    let filter = Filter::from_query(&q)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize;
    let head = log_head(&gw).await?;
    let mut out = Vec::new();
    let mut scanned = 0u64;
    let next_before;
    if let Some(after) = q.after {
        // Following the tail: the oldest `limit` matches after `after`, shown newest first.
        let mut from = after + 1;
        while from <= head && out.len() < limit && scanned < SCAN_BUDGET {
            let to = (from + CHUNK as u64 - 1).min(head);
            for e in gw
                .log()
                .read_range(from, to)
                .await
                .map_err(ApiError::internal)?
            {
                scanned += 1;
                if !filter.admits_envelope(&e) {
                    continue;
                }
                let j = event_json(&e);
                if filter.admits(&e, &j) && out.len() < limit {
                    out.push(summary(&e, &j));
                }
            }
            from = to + 1;
        }
        out.reverse();
        next_before = None;
    } else {
        let mut cursor = q
            .before
            .map(|b| b.saturating_sub(1))
            .unwrap_or(head)
            .min(head);
        let mut lowest = cursor + 1;
        'scan: while cursor >= 1 && scanned < SCAN_BUDGET {
            let step = older(&gw, &filter, cursor, limit as u32).await?;
            scanned += step.examined;
            for e in step.events {
                let j = event_json(&e);
                if filter.admits(&e, &j) {
                    out.push(summary(&e, &j));
                    if out.len() >= limit {
                        lowest = e.seq;
                        break 'scan;
                    }
                }
            }
            lowest = step.lowest;
            if lowest <= 1 {
                break;
            }
            cursor = lowest - 1;
        }
        next_before = (lowest > 1).then_some(lowest);
    }
    Ok(Json(json!({
        "head": head,
        "events": out,
        "scanned": scanned,
        "next_before": next_before,
        "filtered": !filter.is_empty(),
    })))
}

/// One step of a backward scan.
struct Step {
    /// Events at or below the cursor that pass the envelope filter, newest first.
    events: Vec<RecordedEvent>,
    /// The lowest seq this step covered (1: nothing older is left).
    lowest: u64,
    /// How many events of the log the step looked at.
    examined: u64,
}

/// Events of at most [`KIND_WINDOW`] seqs a kind filter looks at per step.
const KIND_WINDOW: u64 = 4096;

/// The next events at or below `cursor`, newest first. The envelope filters run in SQL:
/// one stream walks the `(stream, stream_version)` index; kinds scan a window of the
/// primary key and only the matching events are read.
async fn older(gw: &Gateway, filter: &Filter, cursor: u64, limit: u32) -> ApiResult<Step> {
    let kinds = |n: usize| vec!["?"; n].join(",");
    let (seqs, lowest, examined): (Vec<i64>, u64, u64) = match &filter.stream {
        Some(stream) => {
            let n = if filter.only_stream() { limit } else { CHUNK };
            let mut sql = "SELECT seq FROM events WHERE stream = ? AND seq <= ?".to_string();
            if !filter.kinds.is_empty() {
                sql += &format!(" AND kind IN ({})", kinds(filter.kinds.len()));
            }
            sql += " ORDER BY stream_version DESC LIMIT ?";
            let mut q = sqlx::query_scalar(&sql)
                .bind(stream)
                .bind(cursor.min(i64::MAX as u64) as i64);
            for k in &filter.kinds {
                q = q.bind(k);
            }
            let seqs: Vec<i64> = q
                .bind(n as i64)
                .fetch_all(gw.log().read_pool())
                .await
                .map_err(ApiError::internal)?;
            let lowest = match seqs.last() {
                Some(s) if seqs.len() as u32 == n => *s as u64,
                _ => 1,
            };
            let examined = seqs.len() as u64;
            (seqs, lowest, examined)
        }
        None if !filter.kinds.is_empty() => {
            let floor = cursor.saturating_sub(KIND_WINDOW);
            let sql = format!(
                "SELECT seq FROM events WHERE seq <= ? AND seq > ? AND kind IN ({}) \
                 ORDER BY seq DESC",
                kinds(filter.kinds.len())
            );
            let mut q = sqlx::query_scalar(&sql)
                .bind(cursor.min(i64::MAX as u64) as i64)
                .bind(floor as i64);
            for k in &filter.kinds {
                q = q.bind(k);
            }
            let seqs: Vec<i64> = q
                .fetch_all(gw.log().read_pool())
                .await
                .map_err(ApiError::internal)?;
            (seqs, floor + 1, cursor - floor)
        }
        None => {
            let n = if filter.only_stream() { limit } else { CHUNK };
            let events = gw
                .log()
                .read_back(cursor, n)
                .await
                .map_err(ApiError::internal)?;
            let lowest = match events.last() {
                Some(e) if events.len() as u32 == n => e.seq,
                _ => 1,
            };
            let examined = events.len() as u64;
            return Ok(Step {
                events,
                lowest,
                examined,
            });
        }
    };
    let wanted: Vec<u64> = seqs.iter().map(|s| *s as u64).collect();
    let mut events = gw
        .log()
        .read_seqs(&wanted)
        .await
        .map_err(ApiError::internal)?;
    events.reverse();
    Ok(Step {
        events,
        lowest,
        examined,
    })
}

/// `GET /api/events/{seq}`: one event, decoded, with the event that caused it, the events
/// it caused, and the other events of its correlation (its turn), each as a list row.
pub async fn one(
    _: Admin,
    State(gw): State<Arc<Gateway>>,
    Path(seq): Path<u64>,
) -> ApiResult<Json<Value>> {
    let e = gw
        .log()
        .get(seq)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no event {seq} (head {})", gw.log().head())))?;
    let mut body = event_json(&e);
    let cause = match e.causation_id {
        Some(id) => {
            let s: Option<i64> = sqlx::query_scalar("SELECT seq FROM events WHERE id = ?")
                .bind(id.as_bytes().to_vec())
                .fetch_optional(gw.log().read_pool())
                .await
                .map_err(ApiError::internal)?;
            match s {
                Some(s) => rows(&gw, vec![s]).await?.into_iter().next(),
                None => None,
            }
        }
        None => None,
    };
    let caused = linked(&gw, "causation_id", e.id, seq).await?;
    let correlated = match e.correlation_id {
        Some(c) => {
            let mut seqs: Vec<i64> = sqlx::query_scalar(
                "SELECT seq FROM events WHERE seq >= ? AND seq <= ? AND correlation_id = ? \
                 AND seq != ? ORDER BY seq LIMIT ?",
            )
            .bind(seq.saturating_sub(LINK_WINDOW) as i64)
            .bind((seq + LINK_WINDOW).min(i64::MAX as u64) as i64)
            .bind(c.as_bytes().to_vec())
            .bind(seq as i64)
            .bind(MAX_LINKS)
            .fetch_all(gw.log().read_pool())
            .await
            .map_err(ApiError::internal)?;
            seqs.sort_unstable();
            rows(&gw, seqs).await?
        }
        None => Vec::new(),
    };
    body["caused_by"] = json!(cause);
    body["caused"] = json!(caused);
    body["correlated"] = json!(correlated);
    Ok(Json(body))
}

/// Events within [`LINK_WINDOW`] after `seq` whose `column` is `id`.
async fn linked(gw: &Gateway, column: &str, id: uuid::Uuid, seq: u64) -> ApiResult<Vec<Value>> {
    let sql = format!(
        "SELECT seq FROM events WHERE seq > ? AND seq <= ? AND {column} = ? ORDER BY seq LIMIT ?"
    );
    let seqs: Vec<i64> = sqlx::query_scalar(&sql)
        .bind(seq as i64)
        .bind((seq + LINK_WINDOW).min(i64::MAX as u64) as i64)
        .bind(id.as_bytes().to_vec())
        .bind(MAX_LINKS)
        .fetch_all(gw.log().read_pool())
        .await
        .map_err(ApiError::internal)?;
    rows(gw, seqs).await
}

async fn rows(gw: &Gateway, seqs: Vec<i64>) -> ApiResult<Vec<Value>> {
    let seqs: Vec<u64> = seqs.into_iter().map(|s| s as u64).collect();
    Ok(gw
        .log()
        .read_seqs(&seqs)
        .await
        .map_err(ApiError::internal)?
        .iter()
        .map(|e| summary(e, &event_json(e)))
        .collect())
}
