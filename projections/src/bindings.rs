//! Bindings: which agent gets which messages.

use clawos_events::{EventPayload, RecordedEvent};

use crate::changes::Changes;
use crate::fold::Projection;
use crate::value::Table;
use crate::{row, ProjectionError};

/// `bindings(binding_id, agent, identity, chat, channel, sender_domain, body_regex,
/// priority, set_seq)`.
pub const BINDINGS: Table = Table {
    name: "bindings",
    columns: &[
        "binding_id",
        "agent",
        "identity",
        "chat",
        "channel",
        "sender_domain",
        "body_regex",
        "priority",
        "set_seq",
    ],
    key_len: 1,
};

/// The bindings projection (stateless).
pub struct Bindings;

impl Projection for Bindings {
    fn name(&self) -> &'static str {
        "bindings"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&BINDINGS]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(kind, "BindingSet" | "BindingRemoved")
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        match payload {
            EventPayload::BindingSet(b) => out.upsert(
                &BINDINGS,
                row![
                    &b.binding_id,
                    &b.agent,
                    b.scope.identity.as_deref(),
                    b.scope.chat.as_deref(),
                    b.scope.channel.as_deref(),
                    b.scope.sender_domain.as_deref(),
                    b.scope.body_regex.as_deref(),
                    b.priority,
                    event.seq
                ],
            ),
            EventPayload::BindingRemoved(b) => out.delete(&BINDINGS, row![&b.binding_id]),
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
