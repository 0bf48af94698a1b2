//! The kernel's error type.

use thiserror::Error;

/// Errors of the Gateway.
#[derive(Debug, Error)]
pub enum KernelError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] clawos_events::LogError),
    /// The media store failed.
    #[error(transparent)]
    Media(clawos_channels::media::MediaError),
    /// The projections failed.
    #[error(transparent)]
    Projection(#[from] clawos_projections::ProjectionError),
    /// A replay tool failed.
    #[error(transparent)]
    Replay(#[from] clawos_replay::ReplayError),
    /// The configuration is invalid.
    #[error("{0}")]
    Config(String),
    /// What a request names does not exist (a session, a job, an approval).
    #[error("{0}")]
    NotFound(String),
    /// A decision kept losing the race for its stream; nothing was appended and the
    /// caller may try again.
    #[error("{0}")]
    Contended(String),
    /// A binding's regex does not compile.
    #[error("binding `{binding}` has an invalid body regex: {reason}")]
    BadRegex {
        /// Binding id.
        binding: String,
        /// Why.
        reason: String,
    },
    /// File system or socket failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The vault refused or failed.
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
    /// An agent process could not talk to the Gateway (`clawos agent`).
    #[error("agent protocol: {0}")]
    AgentProtocol(#[from] clawos_agents::remote::serve::ServeError),
    /// A query on the projection database failed.
    #[error("projection query failed: {0}")]
    Storage(#[from] sqlx::Error),
}

impl KernelError {
    /// Wrap an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        KernelError::Io {
            context: context.into(),
            source,
        }
    }
}
