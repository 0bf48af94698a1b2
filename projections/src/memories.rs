//! Memories: what agents were asked to remember, per identity and agent. Forgetting
//! deletes the row.

use clawos_events::{EventPayload, RecordedEvent};

use crate::changes::Changes;
use crate::fold::Projection;
use crate::value::Table;
use crate::{row, ProjectionError};

/// `memories(memory_id, identity, agent, text, tags, source_seq, written_seq)`.
pub const MEMORIES: Table = Table {
    name: "memories",
    columns: &[
        "memory_id",
        "identity",
        "agent",
        "text",
        "tags",
        "source_seq",
        "written_seq",
    ],
    key_len: 1,
};

/// The memories projection (stateless).
pub struct Memories;

impl Projection for Memories {
    fn name(&self) -> &'static str {
        "memories"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&MEMORIES]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(kind, "MemoryWritten" | "MemoryForgotten")
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        match payload {
            EventPayload::MemoryWritten(m) => out.upsert(
                &MEMORIES,
                row![
                    m.memory_id.to_string(),
                    m.identity.as_deref(),
                    m.agent.as_deref(),
                    &m.text,
                    serde_json::to_string(&m.tags).unwrap_or_else(|_| "[]".into()),
                    m.source_seq,
                    event.seq
                ],
            ),
            EventPayload::MemoryForgotten(m) => {
                out.delete(&MEMORIES, row![m.memory_id.to_string()])
            }
            _ => {}
        }
    }
    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }
    fn load_state(&mut self, _: &[u8]) -> Result<(), ProjectionError> {
        Ok(())
    }
}
