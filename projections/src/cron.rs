//! Cron jobs: what is scheduled, when each last fired, what was cancelled.

use clawos_events::{EventPayload, RecordedEvent};

use crate::changes::Changes;
use crate::fold::Projection;
use crate::value::Table;
use crate::{row, ProjectionError, Value};

/// `cron_jobs(job_id, session_id, schedule, prompt, scheduled_ms, last_due_ms, fired,
/// cancelled)`.
pub const CRON_JOBS: Table = Table {
    name: "cron_jobs",
    columns: &[
        "job_id",
        "session_id",
        "schedule",
        "prompt",
        "scheduled_ms",
        "last_due_ms",
        "fired",
        "cancelled",
    ],
    key_len: 1,
};

/// The cron projection; its state is its rows.
#[derive(Default)]
pub struct Cron {
    jobs: std::collections::BTreeMap<String, Vec<Value>>,
}

impl Projection for Cron {
    fn name(&self) -> &'static str {
        "cron"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&CRON_JOBS]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(kind, "CronScheduled" | "CronFired" | "CronCancelled")
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        let (id, row) = match payload {
            EventPayload::CronScheduled(c) => {
                let id = c.job_id.to_string();
                let row = row![
                    &id,
                    &c.session_id,
                    &c.schedule,
                    &c.prompt,
                    event.ts_ms,
                    Option::<i64>::None,
                    0i64,
                    0i64
                ];
                (id, row)
            }
            EventPayload::CronFired(f) => {
                let id = f.job_id.to_string();
                let Some(mut row) = self.jobs.get(&id).cloned() else {
                    return;
                };
                row[5] = Value::Int(f.due_at_ms);
                if let Value::Int(n) = row[6] {
                    row[6] = Value::Int(n + 1);
                }
                (id, row)
            }
            EventPayload::CronCancelled(c) => {
                let id = c.job_id.to_string();
                let Some(mut row) = self.jobs.get(&id).cloned() else {
                    return;
                };
                row[7] = Value::Int(1);
                (id, row)
            }
            _ => return,
        };
        out.upsert(&CRON_JOBS, row.clone());
        self.jobs.insert(id, row);
    }
    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }
    fn load_state(&mut self, _: &[u8]) -> Result<(), ProjectionError> {
        self.jobs.clear();
        Ok(())
    }
    fn state_tables(&self) -> &'static [&'static Table] {
        &[&CRON_JOBS]
    }
    fn restore(&mut self, rows: &crate::MemoryTables) -> Result<(), ProjectionError> {
        self.jobs = rows
            .rows(CRON_JOBS.name)
            .into_iter()
            .filter_map(|r| match r.first() {
                Some(Value::Text(id)) => Some((id.clone(), r)),
                _ => None,
            })
            .collect();
        Ok(())
    }
}
