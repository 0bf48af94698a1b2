//! Fork: start a new branch at any message of a session. History is never copied or
//! changed; the fork is one `BranchCreated` event.

use clawos_events::{
    stream, Appended, BranchCreated, EventPayload, ExpectedVersion, LogStore, NewEvent,
};

use crate::ReplayError;

/// Append `BranchCreated` for `session` at message `at` (a `MessageReceived` or
/// `MessageSent` of that session). The name defaults to `fork-<at>`. The append expects the
/// stream version it validated against, so a concurrent change is a conflict, not a race.
pub async fn fork(
    store: &LogStore,
    session: &str,
    at: u64,
    name: Option<&str>,
    switch_to: bool,
) -> Result<(Appended, String), ReplayError> {
    let stream = stream::session(session);
    let events = store.read_stream(&stream, u64::MAX).await?;
    let Some(last) = events.last() else {
        return Err(ReplayError::NoSuchSession(session.to_string()));
    };
    let version = last.stream_version;
    let branch = name
        .map(String::from)
        .unwrap_or_else(|| format!("fork-{at}"));
    let mut is_message = false;
    let mut taken = branch == clawos_projections::sessions::MAIN_BRANCH;
    for e in &events {
        if e.seq == at && matches!(e.kind.as_str(), "MessageReceived" | "MessageSent") {
            is_message = true;
        }
        // A branch exists once it was created or once a message was written on it (the
        // sessions projection creates it then); a `BranchCreated` for an existing branch
        // is ignored, so the fork would silently not happen.
        if matches!(
            e.kind.as_str(),
            "BranchCreated" | "MessageReceived" | "MessageSent"
        ) {
            taken |= match e.decode()? {
                EventPayload::BranchCreated(b) => b.branch == branch,
                EventPayload::MessageReceived(m) => m.branch == branch,
                EventPayload::MessageSent(m) => m.branch == branch,
                _ => false,
            };
        }
    }
    if !is_message {
        return Err(ReplayError::NotAMessage {
            session: session.to_string(),
            seq: at,
        });
    }
    if taken {
        return Err(ReplayError::BranchExists {
            session: session.to_string(),
            branch,
        });
    }
    let appended = store
        .append(
            &stream,
            ExpectedVersion::Exact(version),
            vec![NewEvent::new(BranchCreated {
                branch: branch.clone(),
                at_message: Some(at),
                switch_to,
            })],
        )
        .await?;
    Ok((appended, branch))
}
