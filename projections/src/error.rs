//! The crate's error type.

use thiserror::Error;

/// Errors of the projection runner and read-model queries.
#[derive(Debug, Error)]
pub enum ProjectionError {
    /// Reading the log failed, or an event could not be decoded.
    #[error(transparent)]
    Log(#[from] clawos_events::LogError),
    /// The projection database failed.
    #[error("projection storage error: {0}")]
    Storage(#[from] sqlx::Error),
    /// The projection schema could not be migrated.
    #[error("projection migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A checkpoint's saved state does not decode.
    #[error("checkpoint state of projection `{name}` is unreadable: {reason}")]
    BadState {
        /// Projection name.
        name: String,
        /// Why.
        reason: String,
    },
    /// No projection has this name.
    #[error("no projection named `{0}` (known: {1})")]
    UnknownProjection(String, String),
    /// An embedder failed.
    #[error(transparent)]
    Embed(#[from] crate::index::EmbedError),
    /// The memory index is unusable.
    #[error("memory index: {0}")]
    Index(String),
    /// A view's query returned something it cannot read.
    #[error("read model view: {0}")]
    View(String),
}
