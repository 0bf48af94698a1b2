//! Deliveries: every reply to send, and which ones the channel acked. A channel's delivery
//! cursor is its oldest unacked reply.

use clawos_events::{EventPayload, RecordedEvent};

use crate::changes::Changes;
use crate::fold::Projection;
use crate::value::Table;
use crate::{row, ProjectionError};

/// `deliveries(delivery_id, channel, seq, session_id, recipient, chat)`.
pub const DELIVERIES: Table = Table {
    name: "deliveries",
    columns: &[
        "delivery_id",
        "channel",
        "seq",
        "session_id",
        "recipient",
        "chat",
    ],
    key_len: 1,
};

/// `delivery_acks(delivery_id, channel, ack_seq)`.
pub const DELIVERY_ACKS: Table = Table {
    name: "delivery_acks",
    columns: &["delivery_id", "channel", "ack_seq"],
    key_len: 1,
};

/// The deliveries projection (stateless, insert-only).
pub struct Deliveries;

impl Projection for Deliveries {
    fn name(&self) -> &'static str {
        "deliveries"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&DELIVERIES, &DELIVERY_ACKS]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(kind, "MessageSent" | "DeliveryAcked")
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        match payload {
            EventPayload::MessageSent(m) => out.upsert(
                &DELIVERIES,
                row![
                    m.delivery_id.to_string(),
                    &m.channel,
                    event.seq,
                    event.session_id().unwrap_or(""),
                    &m.to,
                    m.chat.as_deref()
                ],
            ),
            EventPayload::DeliveryAcked(a) => out.upsert(
                &DELIVERY_ACKS,
                row![a.delivery_id.to_string(), &a.channel, event.seq],
            ),
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
