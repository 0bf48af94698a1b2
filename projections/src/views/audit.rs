//! Audit: the turns of a session with the LLM and tool steps each took.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::SqlitePool;

use super::rows::{int, load_rows, opt_text, text};
use crate::audit::{AUDIT_STEPS, AUDIT_TURNS};
use crate::changes::MemoryTables;
use crate::value::Value;
use crate::ProjectionError;

/// One step of a turn (an LLM call or a tool call/return).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditStepView {
    /// Seq of the event.
    pub seq: u64,
    /// Event kind.
    pub kind: String,
    /// JSON summary.
    pub detail: serde_json::Value,
}

/// One agent turn with its steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditTurnView {
    /// Turn id.
    pub turn_id: String,
    /// Agent.
    pub agent: String,
    /// Branch.
    pub branch: String,
    /// What triggered it.
    pub trigger_seq: u64,
    /// Seq of `AgentTurnStarted`.
    pub started_seq: u64,
    /// Seq of the finishing event.
    pub ended_seq: Option<u64>,
    /// `running`, `finished` or `failed`.
    pub status: String,
    /// Failure reason.
    pub detail: Option<String>,
    /// Steps in order.
    pub steps: Vec<AuditStepView>,
}

/// Every turn of a session in start order, each with its steps in seq order.
pub fn audit_session_in(t: &MemoryTables, session_id: &str) -> Vec<AuditTurnView> {
    let mut steps: BTreeMap<String, Vec<AuditStepView>> = BTreeMap::new();
    // `audit_steps` is keyed by seq: key order is seq order.
    for r in t.rows(AUDIT_STEPS.name) {
        let detail = text(&r, 4);
        steps.entry(text(&r, 1)).or_default().push(AuditStepView {
            seq: int(&r, 0).unwrap_or(0),
            kind: text(&r, 3),
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
        });
    }
    let mut turns: Vec<AuditTurnView> = t
        .rows(AUDIT_TURNS.name)
        .iter()
        .filter(|r| text(r, 1) == session_id)
        .map(|r| {
            let turn_id = text(r, 0);
            AuditTurnView {
                steps: steps.remove(&turn_id).unwrap_or_default(),
                turn_id,
                agent: text(r, 2),
                branch: text(r, 3),
                trigger_seq: int(r, 4).unwrap_or(0),
                started_seq: int(r, 5).unwrap_or(0),
                ended_seq: int(r, 6),
                status: text(r, 7),
                detail: opt_text(r, 8),
            }
        })
        .collect();
    turns.sort_by_key(|t| t.started_seq);
    turns
}

/// [`audit_session_in`] over the live tables (the session's turns and their steps, in one
/// snapshot).
pub async fn audit_session(
    pool: &SqlitePool,
    session_id: &str,
) -> Result<Vec<AuditTurnView>, ProjectionError> {
    let mut t = MemoryTables::default();
    let id = [Value::from(session_id)];
    let mut tx = pool.begin().await?;
    load_rows(&mut *tx, &mut t, &AUDIT_TURNS, "session_id = ?", &id).await?;
    load_rows(
        &mut *tx,
        &mut t,
        &AUDIT_STEPS,
        "turn_id IN (SELECT turn_id FROM audit_turns WHERE session_id = ?)",
        &id,
    )
    .await?;
    tx.commit().await?;
    Ok(audit_session_in(&t, session_id))
}
