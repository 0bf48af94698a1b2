//! The `Projection` trait: a read model as a pure fold of the log, and the encoding of
//! the small state it keeps between events.

use clawos_events::{EventPayload, RecordedEvent};

use crate::changes::Changes;
use crate::value::Table;
use crate::ProjectionError;

/// A read model folded from the log.
///
/// `apply` is a pure function of (its state, the event): it never calls out, never reads
/// the clock and never reads its own tables. What it needs to remember between events lives
/// in its state, which the runner saves with the checkpoint in the same transaction as
/// the rows (ARCHITECTURE.md, I5).
pub trait Projection: Send + Sync {
    /// Unique name (used by `clawos replay rebuild --projection NAME`).
    fn name(&self) -> &'static str;
    /// The tables it owns.
    fn tables(&self) -> &'static [&'static Table];
    /// Fold one event: update the in-memory state and record row changes.
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes);
    /// Encode the in-memory state for the checkpoint (deterministic bytes).
    fn save_state(&self) -> Vec<u8>;
    /// Restore the state saved by [`Projection::save_state`].
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), ProjectionError>;
    /// Whether the projection cares about this kind at all (a cheap pre-filter).
    fn wants(&self, kind: &str) -> bool;
    /// Tables whose rows hold the projection's whole state. When not empty, the runner
    /// restores the state from these rows ([`Projection::restore`]) instead of a
    /// checkpoint blob, so a checkpoint costs nothing however many sessions there are.
    fn state_tables(&self) -> &'static [&'static Table] {
        &[]
    }
    /// Rebuild the in-memory state from the rows of [`Projection::state_tables`].
    fn restore(&mut self, _rows: &crate::MemoryTables) -> Result<(), ProjectionError> {
        Ok(())
    }
}

/// Encode a state value for a checkpoint.
pub(crate) fn encode_state<T: serde::Serialize>(state: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(state, bincode::config::standard()).unwrap_or_default()
}

/// Decode a state value from a checkpoint (empty bytes give the default state).
pub(crate) fn decode_state<T: serde::de::DeserializeOwned + Default>(
    name: &str,
    bytes: &[u8],
) -> Result<T, ProjectionError> {
    if bytes.is_empty() {
        return Ok(T::default());
    }
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| ProjectionError::BadState {
            name: name.to_string(),
            reason: e.to_string(),
        })
}
