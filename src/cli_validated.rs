//! Validate-then-append for CLI commands: a command that checks the read models before it
//! appends carries the stream version its check saw, so a concurrent change to that stream
//! (by the Gateway or another command) is a conflict, and the check runs again.

use std::ops::AsyncFnMut;

use anyhow::Result;
use clawos_events::{LogError, LogStore};
use clawos_replay::rebuild;
use sqlx::SqlitePool;

/// How often a check runs before a conflict is reported.
const ATTEMPTS: usize = 5;

/// Run `attempt(version)` until it does not fail with a version conflict, at most
/// [`ATTEMPTS`] times. Each time, the version of `stream` is read first, then the read
/// models are caught up (so they include every event of the stream up to that version,
/// and maybe later ones); `attempt` checks them and appends to `stream` with
/// `ExpectedVersion::Exact(version)`. If the stream moved in between, the append fails
/// with [`LogError::Conflict`] and the next attempt sees the move.
pub async fn validated<T>(
    store: &LogStore,
    pool: &SqlitePool,
    stream: &str,
    mut attempt: impl AsyncFnMut(u64) -> Result<T>,
) -> Result<T> {
    let mut tries = 0;
    loop {
        tries += 1;
        let version = store.stream_version(stream).await?;
        rebuild::catch_up(store, pool).await?;
        match attempt(version).await {
            Err(e) if tries < ATTEMPTS && is_conflict(&e) => {
                tracing::debug!(%stream, version, "stream moved during the check; checking again");
            }
            other => return other,
        }
    }
}

/// Whether an error is a stream version conflict.
fn is_conflict(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<LogError>(),
        Some(LogError::Conflict { .. })
    )
}
