//! Why a browser action failed.

use std::time::Duration;

/// Why a browser action failed; the text is what the model is told.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BrowserError {
    /// The policy or the arguments forbid it.
    #[error("refused: {0}")]
    Refused(String),
    /// The turn has used its page loads.
    #[error("refused: the page budget of {0} per turn spent")]
    Budget(u32),
    /// Chromium could not be started.
    #[error("cannot start the browser: {0}")]
    Launch(String),
    /// Something took longer than the page timeout.
    #[error("{what} did not finish within the page timeout of {}s", limit.as_secs_f32())]
    Timeout {
        /// What took too long.
        what: String,
        /// The limit.
        limit: Duration,
    },
    /// Chromium went away; the next call starts a new one.
    #[error("the browser stopped ({0}); it will be started again on the next call")]
    Stopped(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}
