//! Audit: every agent turn with the LLM and tool steps it took, in order.

use std::collections::BTreeMap;

use clawos_events::{EventPayload, RecordedEvent};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::changes::Changes;
use crate::fold::{decode_state, encode_state, Projection};
use crate::value::Table;
use crate::{row, ProjectionError};

/// `audit_turns(turn_id, session_id, agent, branch, trigger_seq, started_seq, ended_seq,
/// status, detail)`.
pub const AUDIT_TURNS: Table = Table {
    name: "audit_turns",
    columns: &[
        "turn_id",
        "session_id",
        "agent",
        "branch",
        "trigger_seq",
        "started_seq",
        "ended_seq",
        "status",
        "detail",
    ],
    key_len: 1,
};

/// `audit_steps(seq, turn_id, session_id, kind, detail)`: detail is a JSON summary.
pub const AUDIT_STEPS: Table = Table {
    name: "audit_steps",
    columns: &["seq", "turn_id", "session_id", "kind", "detail"],
    key_len: 1,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenTurn {
    session: String,
    agent: String,
    branch: String,
    trigger: u64,
    started: u64,
}

/// The audit projection. Its state is the turns still running.
#[derive(Default)]
pub struct Audit {
    open: BTreeMap<String, OpenTurn>,
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Audit {
    fn step(event: &RecordedEvent, turn: &str, detail: serde_json::Value, out: &mut Changes) {
        out.upsert(
            &AUDIT_STEPS,
            row![
                event.seq,
                turn,
                event.session_id().unwrap_or(""),
                event.kind.as_str(),
                detail.to_string()
            ],
        );
    }

    fn end(
        &mut self,
        event: &RecordedEvent,
        turn: String,
        status: &str,
        detail: Option<String>,
        out: &mut Changes,
    ) {
        if let Some(t) = self.open.remove(&turn) {
            out.upsert(
                &AUDIT_TURNS,
                row![
                    turn, t.session, t.agent, t.branch, t.trigger, t.started, event.seq, status,
                    detail
                ],
            );
        }
    }
}

impl Projection for Audit {
    fn name(&self) -> &'static str {
        "audit"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&AUDIT_TURNS, &AUDIT_STEPS]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(
            kind,
            "AgentTurnStarted"
                | "LlmRequested"
                | "LlmResponded"
                | "ToolCalled"
                | "ToolReturned"
                | "WorkspaceFileChanged"
                | "AgentTurnRetried"
                | "AgentTurnFinished"
                | "AgentTurnFailed"
        )
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        match payload {
            EventPayload::AgentTurnStarted(t) => {
                let id = t.turn_id.to_string();
                let open = OpenTurn {
                    session: event.session_id().unwrap_or("").to_string(),
                    agent: t.agent.clone(),
                    branch: t.branch.clone(),
                    trigger: t.trigger_seq,
                    started: event.seq,
                };
                out.upsert(
                    &AUDIT_TURNS,
                    row![
                        &id,
                        &open.session,
                        &open.agent,
                        &open.branch,
                        open.trigger,
                        open.started,
                        Option::<i64>::None,
                        "running",
                        Option::<String>::None
                    ],
                );
                self.open.insert(id, open);
            }
            EventPayload::LlmRequested(r) => Self::step(
                event,
                &r.turn_id.to_string(),
                json!({"provider": r.provider, "model": r.model,
                       "request_bytes": r.request_bytes, "tools": r.tools}),
                out,
            ),
            EventPayload::LlmResponded(r) => Self::step(
                event,
                &r.turn_id.to_string(),
                json!({"content": clip(&r.content, 2000),
                       "tool_calls": r.tool_calls.iter().map(|c| &c.tool).collect::<Vec<_>>(),
                       "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                       "latency_ms": r.latency_ms}),
                out,
            ),
            EventPayload::ToolCalled(c) => Self::step(
                event,
                &c.turn_id.to_string(),
                json!({"tool": c.tool, "call_id": c.call_id, "arguments": clip(&c.arguments, 2000)}),
                out,
            ),
            EventPayload::ToolReturned(r) => Self::step(
                event,
                &r.turn_id.to_string(),
                json!({"call_id": r.call_id, "exit_status": r.exit_status,
                       "duration_ms": r.duration_ms, "output": clip(&r.output, 2000)}),
                out,
            ),
            EventPayload::WorkspaceFileChanged(c) => Self::step(
                event,
                &c.turn_id.to_string(),
                json!({"file": c.path, "op": c.op, "after_blake3": c.after_blake3}),
                out,
            ),
            EventPayload::AgentTurnRetried(r) => Self::step(
                event,
                &r.turn_id.to_string(),
                json!({"lost_attempt": r.attempt, "reason": r.reason}),
                out,
            ),
            EventPayload::AgentTurnFinished(f) => {
                self.end(event, f.turn_id.to_string(), "finished", None, out)
            }
            EventPayload::AgentTurnFailed(f) => self.end(
                event,
                f.turn_id.to_string(),
                "failed",
                Some(f.reason.clone()),
                out,
            ),
            _ => {}
        }
    }
    fn save_state(&self) -> Vec<u8> {
        encode_state(&self.open)
    }
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), ProjectionError> {
        self.open = decode_state(self.name(), bytes)?;
        Ok(())
    }
}
