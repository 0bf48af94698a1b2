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
//!   compactions), [`bindings`], [`channels`], [`deliveries`], [`audit`].
//! - [`index`]: the memory vector index (sqlite-vec + FTS5), a follower with its own
//!   checkpoint, and hybrid recall.
//! - [`views`]: session, branch and transcript views over rows, live or time-travelled.
//!
//! **Architecture Invariant:** projections never call out: no LLM, no channel, no clock, no
//! randomness. They read only the events given to them.

pub mod audit;
pub mod bindings;
pub mod changes;
pub mod channels;
pub mod cron;
pub mod deliveries;
mod error;
pub mod identities;
pub mod index;
pub mod memories;
pub mod projection;
pub mod runner;
pub mod sessions;
pub mod sql;
pub mod value;
pub mod views;

pub use changes::{Changes, MemoryTables};
pub use error::ProjectionError;
pub use projection::Projection;
pub use runner::{CatchUp, MemoryRunner, Runner};
pub use value::{Row, Table, Value};
