//! Identities: which person each sender address belongs to.
//!
//! An address that was never linked is its own identity; `IdentityLinked` moves an address
//! to an identity, so one person keeps one session across channels.

use clawos_events::{EventPayload, RecordedEvent};

use crate::changes::Changes;
use crate::fold::Projection;
use crate::value::Table;
use crate::{row, ProjectionError};

/// `identity_addresses(address, identity, linked_seq)`.
pub const IDENTITY_ADDRESSES: Table = Table {
    name: "identity_addresses",
    columns: &["address", "identity", "linked_seq"],
    key_len: 1,
};

/// The identities projection (stateless: its rows are its state).
pub struct Identities;

impl Projection for Identities {
    fn name(&self) -> &'static str {
        "identities"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&IDENTITY_ADDRESSES]
    }
    fn wants(&self, kind: &str) -> bool {
        kind == "IdentityLinked"
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        if let EventPayload::IdentityLinked(l) = payload {
            out.upsert(
                &IDENTITY_ADDRESSES,
                row![&l.address, &l.identity, event.seq],
            );
        }
    }
    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }
    fn load_state(&mut self, _: &[u8]) -> Result<(), ProjectionError> {
        Ok(())
    }
}
