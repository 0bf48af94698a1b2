//! Time travel: the read models exactly as they were after event N, computed by folding
//! the log into memory with the live projections' own code. The live tables are not read.

use clawos_events::{stream, LogStore};
use clawos_projections::{projection, views, MemoryRunner, MemoryTables};
use serde::Serialize;

use crate::ReplayError;

/// Read models after one seq.
pub struct StateAt {
    /// The seq.
    pub seq: u64,
    /// The session it was limited to, if any.
    pub session: Option<String>,
    /// The tables as they were.
    pub tables: MemoryTables,
}

/// A session with its branches and the transcript of every branch, for display.
#[derive(Debug, Clone, Serialize)]
pub struct SessionSnapshot {
    /// The session row.
    pub session: views::SessionView,
    /// Its branches with their transcripts.
    pub branches: Vec<BranchSnapshot>,
}

/// A branch with its transcript.
#[derive(Debug, Clone, Serialize)]
pub struct BranchSnapshot {
    /// The branch row.
    pub branch: views::BranchView,
    /// Messages from the root to the head.
    pub transcript: Vec<views::MessageView>,
    /// Compaction markers.
    pub compactions: Vec<views::CompactionView>,
}

/// Fold the log up to `seq`. With a session, only its stream is folded (sessions, audit and
/// delivery tables); without, the whole log into every projection.
pub async fn state_at(
    store: &LogStore,
    seq: u64,
    session: Option<&str>,
) -> Result<StateAt, ReplayError> {
    // The file's last seq: it also counts events another process appended, which this
    // store's own head learns of only at its next commit.
    let newest = store.read_back(u64::MAX, 1).await?;
    let head = newest.first().map_or(0, |e| e.seq).max(store.head());
    if seq > head {
        return Err(ReplayError::BeyondHead { seq, head });
    }
    let mut runner;
    match session {
        Some(id) => {
            let names = ["sessions", "audit", "deliveries"].map(String::from);
            runner = MemoryRunner::new(projection::select(Some(&names))?);
            for e in store.read_stream(&stream::session(id), seq).await? {
                runner.apply(&e)?;
            }
        }
        None => {
            runner = MemoryRunner::new(projection::all());
            let mut from = 1;
            while from <= seq {
                let to = (from + 8191).min(seq);
                for e in store.read_range(from, to).await? {
                    runner.apply(&e)?;
                }
                from = to + 1;
            }
        }
    }
    Ok(StateAt {
        seq,
        session: session.map(String::from),
        tables: runner.tables,
    })
}

impl StateAt {
    /// Sessions with branches and transcripts.
    pub fn sessions(&self) -> Vec<SessionSnapshot> {
        snapshot(&self.tables)
    }
}

/// Sessions with branches and transcripts from any set of session tables.
pub fn snapshot(tables: &MemoryTables) -> Vec<SessionSnapshot> {
    views::sessions(tables)
        .into_iter()
        .map(|s| {
            let branches = views::branches(tables, &s.session_id)
                .into_iter()
                .map(|b| BranchSnapshot {
                    transcript: views::transcript(tables, &s.session_id, &b.name),
                    compactions: views::compactions(tables, &s.session_id, &b.name),
                    branch: b,
                })
                .collect();
            SessionSnapshot {
                session: s,
                branches,
            }
        })
        .collect()
}
