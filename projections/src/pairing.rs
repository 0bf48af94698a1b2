//! Pairing: senders waiting with a one-time code, and senders allowed to talk.
//!
//! `PairingRequested` records the latest code of a sender that is not paired yet (one row
//! per channel and address; a new code replaces the old one). `PairingApproved` deletes
//! that row and admits the sender; the first approval is the one kept. Expiry is only
//! stored: whoever reads compares it with its own clock, so the fold stays pure.

use std::collections::BTreeSet;

use clawos_events::{EventPayload, RecordedEvent};

use crate::changes::Changes;
use crate::fold::Projection;
use crate::value::Table;
use crate::{row, MemoryTables, ProjectionError, Value};

/// `pairing_requests(channel, address, code_hash, expires_at_ms, requested_seq)`.
pub const PAIRING_REQUESTS: Table = Table {
    name: "pairing_requests",
    columns: &[
        "channel",
        "address",
        "code_hash",
        "expires_at_ms",
        "requested_seq",
    ],
    key_len: 2,
};

/// `paired(channel, address, approved_seq)`.
pub const PAIRED: Table = Table {
    name: "paired",
    columns: &["channel", "address", "approved_seq"],
    key_len: 2,
};

/// The pairing projection. Its state is the set of paired senders, which is exactly the
/// `paired` table.
#[derive(Default)]
pub struct Pairing {
    paired: BTreeSet<(String, String)>,
}

impl Projection for Pairing {
    fn name(&self) -> &'static str {
        "pairing"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&PAIRING_REQUESTS, &PAIRED]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(kind, "PairingRequested" | "PairingApproved")
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        match payload {
            EventPayload::PairingRequested(r) => {
                // A paired sender has nothing to wait for.
                if self
                    .paired
                    .contains(&(r.channel.clone(), r.address.clone()))
                {
                    return;
                }
                out.upsert(
                    &PAIRING_REQUESTS,
                    row![
                        &r.channel,
                        &r.address,
                        &r.code_hash,
                        r.expires_at_ms,
                        event.seq
                    ],
                );
            }
            EventPayload::PairingApproved(a) => {
                out.delete(&PAIRING_REQUESTS, row![&a.channel, &a.address]);
                if self.paired.insert((a.channel.clone(), a.address.clone())) {
                    out.upsert(&PAIRED, row![&a.channel, &a.address, event.seq]);
                }
            }
            _ => {}
        }
    }
    /// The state is exactly the `paired` rows: nothing to save.
    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }
    fn load_state(&mut self, _: &[u8]) -> Result<(), ProjectionError> {
        self.paired.clear();
        Ok(())
    }
    fn state_tables(&self) -> &'static [&'static Table] {
        &[&PAIRED]
    }
    fn restore(&mut self, rows: &MemoryTables) -> Result<(), ProjectionError> {
        self.paired = rows
            .rows(PAIRED.name)
            .into_iter()
            .filter_map(|r| match (r.first(), r.get(1)) {
                (Some(Value::Text(c)), Some(Value::Text(a))) => Some((c.clone(), a.clone())),
                _ => None,
            })
            .collect();
        Ok(())
    }
}
