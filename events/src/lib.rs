//! `clawos-events`: the event types and the append-only log they live in.
//!
//! Every state change in clawos is an event appended here first. The log is a SQLite table
//! (WAL mode) that triggers keep append-only, chained by hashes, with a gapless global `seq`
//! assigned by a single writer task that group-commits concurrent appends.
//!
//! # Layout
//! - [`catalogue`]: one payload struct per event kind, and the [`EventPayload`] enum.
//! - `body`: one payload body's bytes (bincode, exactly one value), which the catalogue
//!   and the codec both use.
//! - [`codec`]: decoding behind (kind, schema version) tags, and upcasters.
//! - [`envelope`]: [`NewEvent`], [`RecordedEvent`], [`ExpectedVersion`], stream names.
//! - [`hash`]: the hash chain.
//! - [`store`]: [`LogStore`]: open, append, read, stats.
//! - `writer`: the single writer task and its group commit.
//! - [`tail`]: [`Subscription`], following the log from any seq.
//! - [`verify`](mod@verify): walking the chain and checking the triggers.
//!
//! **Architecture Invariant:** this crate knows nothing of projections, channels, agents
//! or the kernel. It stores and returns events; it never interprets them.

pub mod agent_process;
mod body;
pub mod catalogue;
pub mod codec;
pub mod envelope;
mod error;
pub mod hash;
pub mod pages;
pub mod store;
pub mod tail;
pub mod verify;
mod writer;

pub use catalogue::*;
pub use envelope::{inbound_dedupe_key, stream, ExpectedVersion, NewEvent, RecordedEvent};
pub use error::{CodecError, LogError};
pub use pages::Pages;
pub use store::{connect_options, Durability, LogStats, LogStore, MIGRATOR};
pub use tail::Subscription;
pub use verify::{verify, VerifyReport};
pub use writer::Appended;
