//! `clawos-replay`: the tools that read history back: rebuild projections, verify the
//! chain, compute the state at any seq, fork a session, audit a session, export it.
//! Used by the `clawos` CLI and by the kernel.
//!
//! # Layout
//! - [`home`]: the state folder and the files in it.
//! - [`rebuild`]: drop and refold projections.
//! - [`state_at`]: time travel, folded in memory.
//! - [`fork`]: `BranchCreated` at any message.
//! - [`audit`]: turns and steps of a session.
//! - [`export`]: JSON lines.
//!
//! **Architecture Invariant:** replay never calls out. Everything non-deterministic was
//! recorded in the log when it happened, so nothing here needs a provider or a channel.

pub mod audit;
mod error;
pub mod export;
pub mod fork;
pub mod home;
pub mod rebuild;
pub mod state_at;

pub use error::ReplayError;
pub use home::Home;
