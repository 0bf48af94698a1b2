//! Usage: one row per LLM call with the tokens the provider reported, the turn's agent and
//! session, the provider and model, and the time (`usage_calls`). `clawos usage`, the
//! admin UI and budgets read it; cost is computed at read time from the price table, so a
//! price change never rewrites history.

use std::collections::BTreeMap;

use clawos_events::{EventPayload, RecordedEvent};
use serde::{Deserialize, Serialize};

use crate::changes::Changes;
use crate::fold::{decode_state, encode_state, Projection};
use crate::value::Table;
use crate::{row, ProjectionError};

/// `usage_calls(seq, ts_ms, turn_id, session_id, agent, provider, model, prompt_tokens,
/// completion_tokens)`.
pub const USAGE_CALLS: Table = Table {
    name: "usage_calls",
    columns: &[
        "seq",
        "ts_ms",
        "turn_id",
        "session_id",
        "agent",
        "provider",
        "model",
        "prompt_tokens",
        "completion_tokens",
    ],
    key_len: 1,
};

/// A running turn: who runs it, where, and the model it last asked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RunningTurn {
    session: String,
    agent: String,
    provider: String,
    model: String,
}

/// The usage projection. Its state is the turns still running.
#[derive(Default)]
pub struct Usage {
    running: BTreeMap<String, RunningTurn>,
}

impl Projection for Usage {
    fn name(&self) -> &'static str {
        "usage"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&USAGE_CALLS]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(
            kind,
            "AgentTurnStarted"
                | "LlmRequested"
                | "LlmResponded"
                | "AgentTurnFinished"
                | "AgentTurnFailed"
        )
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        match payload {
            EventPayload::AgentTurnStarted(t) => {
                self.running.insert(
                    t.turn_id.to_string(),
                    RunningTurn {
                        session: event.session_id().unwrap_or("").to_string(),
                        agent: t.agent.clone(),
                        ..RunningTurn::default()
                    },
                );
            }
            EventPayload::LlmRequested(r) => {
                if let Some(t) = self.running.get_mut(&r.turn_id.to_string()) {
                    t.provider = r.provider.clone();
                    t.model = r.model.clone();
                }
            }
            EventPayload::LlmResponded(r) => {
                if let Some(t) = self.running.get(&r.turn_id.to_string()) {
                    out.upsert(
                        &USAGE_CALLS,
                        row![
                            event.seq,
                            event.ts_ms,
                            r.turn_id.to_string(),
                            &t.session,
                            &t.agent,
                            &t.provider,
                            &t.model,
                            u64::from(r.prompt_tokens),
                            u64::from(r.completion_tokens)
                        ],
                    );
                }
            }
            EventPayload::AgentTurnFinished(clawos_events::AgentTurnFinished {
                turn_id, ..
            })
            | EventPayload::AgentTurnFailed(clawos_events::AgentTurnFailed { turn_id, .. }) => {
                self.running.remove(&turn_id.to_string());
            }
            _ => {}
        }
    }
    fn save_state(&self) -> Vec<u8> {
        encode_state(&self.running)
    }
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), ProjectionError> {
        self.running = decode_state(self.name(), bytes)?;
        Ok(())
    }
}
