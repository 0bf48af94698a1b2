//! Approvals: actions an agent asked a person to approve, and their answers.

use serde::Serialize;
use sqlx::SqlitePool;
use uuid::Uuid;

use super::rows::{int, load_matching, load_rows, opt_text, signed, text};
use crate::approvals::APPROVALS;
use crate::changes::MemoryTables;
use crate::ProjectionError;

/// One approval request and its answer, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalView {
    /// Approval id.
    pub approval_id: String,
    /// Session of the turn that asked.
    pub session_id: String,
    /// The turn.
    pub turn_id: String,
    /// What would run, in words.
    pub action: String,
    /// Seq of `ApprovalRequested`.
    pub requested_seq: u64,
    /// Seq of the first `ApprovalAnswered` (`None` while pending).
    pub answered_seq: Option<u64>,
    /// The answer (`None` while pending).
    pub approved: Option<bool>,
    /// Who answered (`cli`, `timeout`, ...).
    pub answered_by: Option<String>,
}

impl ApprovalView {
    /// Whether it still waits for an answer.
    pub fn is_pending(&self) -> bool {
        self.answered_seq.is_none()
    }
}

fn approval_of(r: &crate::Row) -> ApprovalView {
    ApprovalView {
        approval_id: text(r, 0),
        session_id: text(r, 1),
        turn_id: text(r, 2),
        action: text(r, 3),
        requested_seq: int(r, 4).unwrap_or(0),
        answered_seq: int(r, 5),
        approved: signed(r, 6).map(|a| a != 0),
        answered_by: opt_text(r, 7),
    }
}

/// Approvals in request order: all of them, or only those still pending.
pub fn approvals_in(t: &MemoryTables, pending_only: bool) -> Vec<ApprovalView> {
    let mut all: Vec<ApprovalView> = t
        .rows(APPROVALS.name)
        .iter()
        .map(approval_of)
        .filter(|a| !pending_only || a.is_pending())
        .collect();
    all.sort_by_key(|a| a.requested_seq);
    all
}

/// One approval by id.
pub fn approval_in(t: &MemoryTables, approval_id: Uuid) -> Option<ApprovalView> {
    t.tables
        .get(APPROVALS.name)?
        .get(&crate::row![approval_id.to_string()])
        .map(approval_of)
}

/// [`approvals_in`] over the live tables.
pub async fn approvals(
    pool: &SqlitePool,
    pending_only: bool,
) -> Result<Vec<ApprovalView>, ProjectionError> {
    let mut t = MemoryTables::default();
    let filter = if pending_only {
        "answered_seq IS NULL"
    } else {
        ""
    };
    load_rows(pool, &mut t, &APPROVALS, filter, &[]).await?;
    Ok(approvals_in(&t, pending_only))
}

/// [`approval_in`] over the live tables.
pub async fn approval(
    pool: &SqlitePool,
    approval_id: Uuid,
) -> Result<Option<ApprovalView>, ProjectionError> {
    let t = load_matching(
        pool,
        &APPROVALS,
        "approval_id",
        approval_id.to_string().into(),
    )
    .await?;
    Ok(approval_in(&t, approval_id))
}
