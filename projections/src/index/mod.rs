//! The long-term memory index: a disposable follower of the log beside the pure read
//! models. It folds `MemoryWritten` / `MemoryForgotten` into a sqlite-vec `vec0` table (the
//! vectors) and an FTS5 table (the words), with its own checkpoint, and serves hybrid
//! recall. Unlike a [`crate::Projection`] it calls out: the embedding function, a pure
//! function of (model id, text), cached by that key so a rebuild with the same model calls
//! nothing (ARCHITECTURE.md, I5).
//!
//! # Layout
//! - [`embedder`]: the [`Embedder`] trait (implementations live in `clawos-agents`).
//! - [`cache`]: the embedding cache.
//! - [`schema`]: the tables of a generation, the serving state, the damage check.
//! - [`follower`]: [`MemoryIndex`]: open (check, repair), catch up, follow, rebuild + swap.
//! - [`recall`]: hybrid recall with scope filter and reciprocal rank fusion.
//!
//! **Architecture Invariant:** the index is disposable. Dropped and rebuilt from the log
//! it holds the same memory ids and row ids and, for the same model, the same vectors; the
//! `memories` read model stays the truth for text, scope and forgotten state.

pub mod cache;
pub mod embedder;
pub mod follower;
pub mod recall;
pub mod schema;

pub use embedder::{EmbedError, Embedder};
pub use follower::{Folded, IndexStats, IndexedVector, MemoryIndex, Opened};
pub use recall::{recall, Hit, Scope};
