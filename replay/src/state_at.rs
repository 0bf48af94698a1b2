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
            let mut fold = Fold::new();
            fold.advance(store, seq).await?;
            runner = fold.runner;
        }
    }
    Ok(StateAt {
        seq,
        session: session.map(String::from),
        tables: runner.tables,
    })
}

/// Events read per page by [`Fold::advance`].
const PAGE: u32 = 8192;

/// A fold of the whole log into every projection that can move forward: going to a later
/// seq applies only the events in between. (Going back means a new fold.) The admin UI
/// keeps one so that moving its time slider forward does not refold the log.
pub struct Fold {
    runner: MemoryRunner,
}

impl Default for Fold {
    fn default() -> Self {
        Self::new()
    }
}

impl Fold {
    /// An empty fold (before seq 1).
    pub fn new() -> Self {
        Fold {
            runner: MemoryRunner::new(projection::all()),
        }
    }

    /// The last seq folded in (0 before any).
    pub fn seq(&self) -> u64 {
        self.runner.position
    }

    /// The tables as they are after [`Fold::seq`].
    pub fn tables(&self) -> &MemoryTables {
        &self.runner.tables
    }

    /// Fold in the events after [`Fold::seq`] up to `seq` (nothing when `seq` is not
    /// ahead), reading the log in pages.
    pub async fn advance(&mut self, store: &LogStore, seq: u64) -> Result<(), ReplayError> {
        let mut pages = store.pages(self.runner.position + 1, Some(seq), PAGE);
        loop {
            let page = pages.next_page().await?;
            if page.is_empty() {
                break;
            }
            for e in &page {
                self.runner.apply(e)?;
            }
        }
        Ok(())
    }
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
