//! Typed reads of the read models: the only place outside the projections themselves that
//! knows their tables' SQL.
//!
//! Most views come in two forms that share one body: a pure function over
//! [`MemoryTables`] (rows folded from the log up to some seq by a
//! [`MemoryRunner`](crate::MemoryRunner), i.e. time travel, or loaded from the live
//! projection database), and an async function that loads the rows it needs from the live
//! pool and calls it. Where both exist, the pure one carries the suffix `_in` ("in these
//! tables"), except the older session views ([`sessions()`], [`branches`], [`transcript`],
//! [`compactions`]) and constructors named `from_tables`. A few reads on the hot path
//! (per turn, per delivery, at start) query SQL directly; each has an `_in` twin with the
//! same meaning, and `tests/projections.rs` checks the two agree.
//!
//! One module per concern, all re-exported here:
//! - sessions: sessions, branches, transcripts, compactions, message lookups.
//! - routing: identities, bindings and the [`RoutingSeed`] the Gateway routes from.
//! - pairing: pending pairing codes and paired senders.
//! - approvals: actions waiting for (or given) a person's answer.
//! - cron: scheduled jobs.
//! - memories: what agents remember.
//! - deliveries: replies not acked yet.
//! - devices: paired devices, pairing requests, token generations.
//! - channels: channel process status.
//! - recovery: what a stopped Gateway left undone.
//! - audit: turns and their steps.
//! - usage: tokens per agent, session, identity or model.

mod approvals;
mod audit;
mod channels;
mod cron;
mod deliveries;
mod devices;
mod memories;
mod pairing;
mod recovery;
mod routing;
mod rows;
mod sessions;
mod usage;

pub use approvals::*;
pub use audit::*;
pub use channels::*;
pub use cron::*;
pub use deliveries::*;
pub use devices::*;
pub use memories::*;
pub use pairing::*;
pub use recovery::*;
pub use routing::*;
pub use sessions::*;
pub use usage::*;
