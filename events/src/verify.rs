//! Checking the log's integrity: the hash chain, seq continuity and the append-only
//! triggers.

use serde::Serialize;
use sqlx::Row;

use crate::hash::{self, HashInput};
use crate::store::row_to_event;
use crate::{LogError, LogStore};

/// Names of the triggers that make the log append-only.
pub const APPEND_ONLY_TRIGGERS: [&str; 2] =
    ["events_append_only_update", "events_append_only_delete"];

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// Seq of the first event that does not verify.
    pub seq: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// Result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events checked before stopping (all of them when the chain is intact).
    pub events_checked: u64,
    /// The first broken event, if any.
    pub first_break: Option<Break>,
    /// Triggers that should exist and do not.
    pub missing_triggers: Vec<String>,
}

impl VerifyReport {
    /// True when the chain and the triggers are intact.
    pub fn ok(&self) -> bool {
        self.first_break.is_none() && self.missing_triggers.is_empty()
    }
}

/// Walk the whole log, recomputing every hash; `progress` is called every 10k events with
/// the number checked so far.
pub async fn verify(
    store: &LogStore,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, LogError> {
    let pool = store.read_pool();
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            .fetch_all(pool)
            .await?;
    let missing_triggers = APPEND_ONLY_TRIGGERS
        .iter()
        .filter(|t| !names.iter().any(|n| n == *t))
        .map(|t| t.to_string())
        .collect();

    let mut prev = hash::GENESIS;
    let mut expected_seq = 1u64;
    let mut checked = 0u64;
    let mut first_break = None;
    const PAGE: i64 = 10_000;
    'outer: loop {
        let rows = sqlx::query(
            "SELECT seq, id, stream, stream_version, ts_ms, kind, schema_version, \
             causation_id, correlation_id, dedupe_key, payload, hash \
             FROM events WHERE seq >= ? ORDER BY seq LIMIT ?",
        )
        .bind(expected_seq as i64)
        .bind(PAGE)
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let seq: i64 = row.try_get(0)?;
            let event = match row_to_event(row) {
                Ok(e) => e,
                Err(e) => {
                    first_break = Some(Break {
                        seq: seq as u64,
                        reason: e.to_string(),
                    });
                    break 'outer;
                }
            };
            if event.seq != expected_seq {
                first_break = Some(Break {
                    seq: expected_seq,
                    reason: format!("seq {expected_seq} is missing (next is {})", event.seq),
                });
                break 'outer;
            }
            let h = hash::chain(&prev, &HashInput::of(&event));
            if h != event.hash {
                first_break = Some(Break {
                    seq: event.seq,
                    reason: "hash does not match its content and the previous hash".into(),
                });
                break 'outer;
            }
            prev = h;
            expected_seq += 1;
            checked += 1;
            if checked.is_multiple_of(10_000) {
                progress(checked);
            }
        }
    }
    Ok(VerifyReport {
        events_checked: checked,
        first_break,
        missing_triggers,
    })
}
