//! `clawos-projections`: read models folded from the event log.
//!
//! A projection is a pure fold: given its small in-memory state and one event, it records
//! row changes. The [`Runner`] writes those rows and the projection's checkpoint (last seq +
//! state) in one transaction of the projection database, so after a crash it resumes exactly
//! where it committed. The same projections fold into [`MemoryTables`] for time travel, so
//! `state-at(N)` is computed by the very code that built the live tables.
//!
//! # Layout
//! - [`value`]: [`Value`], [`Row`], [`Table`] (a table's shape).
//! - [`changes`]: [`Changes`] (last-write-wins row changes) and [`MemoryTables`].
//! - [`projection`]: the [`Projection`] trait and the registry.
//! - [`runner`]: [`Runner`] (SQLite, checkpoints, follow) and [`MemoryRunner`].
//! - [`sql`]: the projection database: open, flush, dump, checkpoints.
//! - one module per read model: [`identities`], [`cron`], [`memories`], [`sessions`] (sessions, branches, messages,
//!   compactions), [`bindings`], [`channels`], [`deliveries`], [`audit`], [`pairing`]
//!   (pending codes, paired senders), [`approvals`], [`devices`] (paired devices, their
//!   requests and token generations).
//! - [`index`]: the memory vector index (sqlite-vec + FTS5), a follower with its own
//!   checkpoint, and hybrid recall.
//! - [`views`]: typed reads of every read model (sessions, routing, pairing, approvals,
//!   cron, memories, deliveries, channels, recovery, audit), live or time-travelled: raw
//!   SQL on projection tables lives only in this crate.
//! - [`hook_cursors`]: where each outbound hook has got to in the log.
//!
//! **Architecture Invariant:** projections never call out: no LLM, no channel, no clock, no
//! randomness. They read only the events given to them.

pub mod agent_processes;
pub mod approvals;
pub mod audit;
pub mod bindings;
pub mod canvas;
pub mod changes;
pub mod channels;
pub mod cron;
pub mod deliveries;
pub mod devices;
mod error;
mod fold;
pub mod hook_cursors;
pub mod identities;
pub mod index;
pub mod memories;
pub mod pairing;
pub mod projection;
pub mod runner;
pub mod sessions;
pub mod sql;
pub mod usage;
pub mod value;
pub mod views;

pub use changes::{Changes, MemoryTables};
pub use error::ProjectionError;
pub use fold::Projection;
pub use runner::{CatchUp, MemoryRunner, Runner};
pub use value::{Row, Table, Value};
