//! Validate-then-append inside the Gateway: a decision read from the read models is
//! appended only if its stream did not move since the read, and is taken again if it did.
//! Chat commands, an agent's session commands and the admin replay's branch go through it.

use std::future::Future;

use clawos_events::{Appended, ExpectedVersion, LogError, LogStore, NewEvent};

use crate::follower::Projected;

/// How many times a decision is taken again after its stream moved under it.
pub const ATTEMPTS: usize = 8;

/// Read `stream`'s version, wait for the read models to hold the log's head (so every
/// event of the stream up to that version), take `decide`'s events and result, and append
/// the events with `ExpectedVersion::Exact(version)`. On a conflict, all of it again, at
/// most [`ATTEMPTS`] times; `Ok(None)` when the stream kept moving. A decision without
/// events appends nothing and returns at once.
pub async fn decide_and_append<T, E, F>(
    log: &LogStore,
    projected: &Projected,
    stream: &str,
    mut decide: impl FnMut() -> F,
) -> Result<Option<(T, Option<Appended>)>, E>
where
    E: From<LogError>,
    F: Future<Output = Result<(Vec<NewEvent>, T), E>>,
{
    for _ in 0..ATTEMPTS {
        let version = log.stream_version(stream).await?;
        projected.through(log.head()).await;
        let (events, decided) = decide().await?;
        if events.is_empty() {
            return Ok(Some((decided, None)));
        }
        match log
            .append(stream, ExpectedVersion::Exact(version), events)
            .await
        {
            Ok(a) => return Ok(Some((decided, Some(a)))),
            Err(LogError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}
