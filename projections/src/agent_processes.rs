//! Agent process status: each isolated agent's process up or down, its starts, exits and
//! last exit (folded from `AgentStarted` and `AgentExited`).

use std::collections::BTreeMap;

use clawos_events::{EventPayload, RecordedEvent};
use serde::{Deserialize, Serialize};

use crate::changes::Changes;
use crate::channels::last_exit;
use crate::fold::{decode_state, encode_state, Projection};
use crate::value::Table;
use crate::{row, ProjectionError};

/// `agent_processes(agent, state, pid, encoding, starts, exits, last_exit, changed_seq)`.
pub const AGENT_PROCESSES: Table = Table {
    name: "agent_processes",
    columns: &[
        "agent",
        "state",
        "pid",
        "encoding",
        "starts",
        "exits",
        "last_exit",
        "changed_seq",
    ],
    key_len: 1,
};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ProcessState {
    up: bool,
    pid: Option<u32>,
    encoding: Option<String>,
    starts: u64,
    exits: u64,
    last_exit: Option<String>,
    changed: u64,
}

/// The agent process status projection.
#[derive(Default)]
pub struct AgentProcesses {
    agents: BTreeMap<String, ProcessState>,
}

impl Projection for AgentProcesses {
    fn name(&self) -> &'static str {
        "agent_processes"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&AGENT_PROCESSES]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(kind, "AgentStarted" | "AgentExited")
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        let name = match payload {
            EventPayload::AgentStarted(s) => {
                let a = self.agents.entry(s.agent.clone()).or_default();
                a.up = true;
                a.pid = Some(s.pid);
                a.encoding = Some(s.encoding.clone());
                a.starts += 1;
                a.changed = event.seq;
                &s.agent
            }
            EventPayload::AgentExited(x) => {
                let a = self.agents.entry(x.agent.clone()).or_default();
                a.up = false;
                a.pid = None;
                a.exits += 1;
                a.last_exit = Some(last_exit(x.code, x.signal, &x.reason, "not started"));
                a.changed = event.seq;
                &x.agent
            }
            _ => return,
        };
        if let Some(a) = self.agents.get(name) {
            out.upsert(
                &AGENT_PROCESSES,
                row![
                    name,
                    if a.up { "up" } else { "down" },
                    a.pid.map(|p| p as i64),
                    a.encoding.as_deref(),
                    a.starts,
                    a.exits,
                    a.last_exit.as_deref(),
                    a.changed
                ],
            );
        }
    }
    fn save_state(&self) -> Vec<u8> {
        encode_state(&self.agents)
    }
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), ProjectionError> {
        self.agents = decode_state(self.name(), bytes)?;
        Ok(())
    }
}
