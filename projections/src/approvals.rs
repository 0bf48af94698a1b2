//! Approvals: actions an agent asked a person to approve, and the answer.
//!
//! `ApprovalRequested` adds a pending row; the first `ApprovalAnswered` for it fills in
//! the answer, and later answers change nothing (the log's dedupe key already keeps one
//! answer per approval; the fold does not rely on it). An answer for an approval never
//! requested is ignored.

use std::collections::BTreeMap;

use clawos_events::{EventPayload, RecordedEvent};

use crate::changes::Changes;
use crate::fold::Projection;
use crate::value::{Row, Table};
use crate::{row, MemoryTables, ProjectionError, Value};

/// `approvals(approval_id, session_id, turn_id, action, requested_seq, answered_seq,
/// approved, answered_by)`.
pub const APPROVALS: Table = Table {
    name: "approvals",
    columns: &[
        "approval_id",
        "session_id",
        "turn_id",
        "action",
        "requested_seq",
        "answered_seq",
        "approved",
        "answered_by",
    ],
    key_len: 1,
};

/// Column of `answered_seq` in [`APPROVALS`].
const ANSWERED_SEQ: usize = 5;

/// The approvals projection. Its state is its rows (approvals are rare: a person answers
/// each one).
#[derive(Default)]
pub struct Approvals {
    rows: BTreeMap<String, Row>,
}

impl Projection for Approvals {
    fn name(&self) -> &'static str {
        "approvals"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&APPROVALS]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(kind, "ApprovalRequested" | "ApprovalAnswered")
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        let (id, row) = match payload {
            EventPayload::ApprovalRequested(r) => {
                let id = r.approval_id.to_string();
                if self.rows.contains_key(&id) {
                    return;
                }
                let row = row![
                    &id,
                    &r.session_id,
                    r.turn_id.to_string(),
                    &r.action,
                    event.seq,
                    Option::<i64>::None,
                    Option::<i64>::None,
                    Option::<String>::None
                ];
                (id, row)
            }
            EventPayload::ApprovalAnswered(a) => {
                let id = a.approval_id.to_string();
                let Some(old) = self.rows.get(&id) else {
                    return;
                };
                if old.get(ANSWERED_SEQ) != Some(&Value::Null) {
                    return;
                }
                let mut row = old.clone();
                row.truncate(ANSWERED_SEQ);
                row.extend(row![event.seq, i64::from(a.approved), &a.by]);
                (id, row)
            }
            _ => return,
        };
        out.upsert(&APPROVALS, row.clone());
        self.rows.insert(id, row);
    }
    /// The state is exactly the `approvals` rows: nothing to save.
    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }
    fn load_state(&mut self, _: &[u8]) -> Result<(), ProjectionError> {
        self.rows.clear();
        Ok(())
    }
    fn state_tables(&self) -> &'static [&'static Table] {
        &[&APPROVALS]
    }
    fn restore(&mut self, rows: &MemoryTables) -> Result<(), ProjectionError> {
        self.rows = rows
            .rows(APPROVALS.name)
            .into_iter()
            .filter_map(|r| match r.first() {
                Some(Value::Text(id)) => Some((id.clone(), r)),
                _ => None,
            })
            .collect();
        Ok(())
    }
}
