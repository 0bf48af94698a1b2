//! The crate's error type.

use thiserror::Error;

/// Errors of the replay tools.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] clawos_events::LogError),
    /// The projections failed.
    #[error(transparent)]
    Projection(#[from] clawos_projections::ProjectionError),
    /// A query on the projection database failed.
    #[error("projection query failed: {0}")]
    Storage(#[from] sqlx::Error),
    /// The session does not exist (at that seq).
    #[error("no session `{0}` in the log")]
    NoSuchSession(String),
    /// A fork point that is not a message of the session.
    #[error("seq {seq} is not a message of session `{session}`")]
    NotAMessage {
        /// Session.
        session: String,
        /// The seq given.
        seq: u64,
    },
    /// A branch name that is taken.
    #[error("session `{session}` already has a branch named `{branch}`")]
    BranchExists {
        /// Session.
        session: String,
        /// Branch name.
        branch: String,
    },
    /// A seq beyond the end of the log.
    #[error("seq {seq} is beyond the end of the log (last seq {head})")]
    BeyondHead {
        /// The seq asked for.
        seq: u64,
        /// The last seq.
        head: u64,
    },
    /// Writing output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding JSON failed.
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}
