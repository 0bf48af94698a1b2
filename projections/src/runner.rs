//! The runner: catches projections up from their checkpoints, then follows the log.

use sqlx::{Connection, SqlitePool};
use tokio::sync::watch;

use clawos_events::LogStore;

use crate::changes::{Changes, MemoryTables};
use crate::fold::Projection;
use crate::sql;
use crate::ProjectionError;

/// Events folded per transaction while catching up.
const BATCH: u32 = 8192;

/// Drives a set of projections over the log, writing their tables and checkpoints.
pub struct Runner {
    pool: SqlitePool,
    projections: Vec<Box<dyn Projection>>,
    checkpoints: Vec<u64>,
    /// Each projection's state as of its committed checkpoint, to roll the in-memory
    /// state back when a batch fails before its commit.
    saved: Vec<Vec<u8>>,
}

/// Counts from one catch-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Events read from the log.
    pub events: u64,
    /// Row changes written.
    pub rows: u64,
    /// Seq all projections have reached.
    pub position: u64,
}

impl Runner {
    /// Load the projections' checkpoints and states from the projection database.
    pub async fn open(
        pool: SqlitePool,
        mut projections: Vec<Box<dyn Projection>>,
    ) -> Result<Self, ProjectionError> {
        let (checkpoints, saved) = load_committed(&pool, &mut projections).await?;
        Ok(Runner {
            pool,
            projections,
            checkpoints,
            saved,
        })
    }

    /// Take every projection's committed checkpoint and state from the file again, after
    /// another process (the Gateway, a CLI command, a rebuild) moved or reset them.
    async fn reload(&mut self) -> Result<(), ProjectionError> {
        (self.checkpoints, self.saved) = load_committed(&self.pool, &mut self.projections).await?;
        Ok(())
    }

    /// The seq every projection has applied.
    pub fn position(&self) -> u64 {
        self.checkpoints.iter().copied().min().unwrap_or(0)
    }

    /// The projection database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Apply every event up to the log's current head. `progress(applied_seq)` is called
    /// after each committed batch.
    ///
    /// On error, the batches committed before it stay committed and the projections'
    /// in-memory states are rolled back to their checkpoints, so a retry applies the
    /// failed batch exactly once.
    pub async fn catch_up(
        &mut self,
        store: &LogStore,
        progress: impl FnMut(u64),
    ) -> Result<CatchUp, ProjectionError> {
        let result = self.catch_up_batches(store, progress).await;
        if result.is_err() {
            for (p, state) in self.projections.iter_mut().zip(&self.saved) {
                p.load_state(state)?;
                restore_from_tables(&self.pool, p.as_mut()).await?;
            }
        }
        result
    }

    async fn catch_up_batches(
        &mut self,
        store: &LogStore,
        mut progress: impl FnMut(u64),
    ) -> Result<CatchUp, ProjectionError> {
        let mut report = CatchUp {
            position: self.position(),
            ..CatchUp::default()
        };
        let mut changes = Changes::default();
        // No end at the in-process head: events another process (a CLI command) appended
        // are beyond it, and an empty page ends the catch-up anyway. The next page is read
        // while the current one is folded and flushed.
        let mut pages = store.pages(self.position() + 1, None, BATCH);
        loop {
            let events = pages.next_page().await?;
            let Some(last) = events.last().map(|e| e.seq) else {
                break;
            };
            for event in &events {
                // Every event is decoded, so an unknown kind stops the runner with an error
                // that names it instead of being skipped.
                let payload = event.decode()?;
                for (p, cp) in self.projections.iter_mut().zip(&self.checkpoints) {
                    if event.seq > *cp && p.wants(&event.kind) {
                        p.apply(event, &payload, &mut changes);
                    }
                }
            }
            let mut conn = self.pool.acquire().await?;
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            let rows = changes.len() as u64;
            sql::flush(&mut tx, &mut changes).await?;
            let states: Vec<Option<Vec<u8>>> = self
                .projections
                .iter()
                .zip(&self.checkpoints)
                .map(|(p, cp)| (last > *cp).then(|| p.save_state()))
                .collect();
            let moves: Vec<(&str, u64, u64, &[u8])> = self
                .projections
                .iter()
                .zip(&self.checkpoints)
                .zip(&states)
                .filter_map(|((p, cp), state)| Some((p.name(), *cp, last, state.as_deref()?)))
                .collect();
            // Another process driving the same file (the Gateway and a CLI command both
            // catch up) may have committed past these checkpoints, or a rebuild reset
            // them: this batch would then have written rows of an older state over newer
            // ones. The checkpoints move only from the ones this batch folded from, or the
            // batch is rolled back and the committed state taken instead.
            if !sql::advance_checkpoints(&mut tx, &moves).await? {
                tx.rollback().await?;
                drop(conn);
                self.reload().await?;
                report.position = self.position();
                pages = store.pages(self.position() + 1, None, BATCH);
                continue;
            }
            report.rows += rows;
            tx.commit().await?;
            for ((state, cp), saved) in states
                .into_iter()
                .zip(self.checkpoints.iter_mut())
                .zip(self.saved.iter_mut())
            {
                if let Some(state) = state {
                    *saved = state;
                    *cp = last;
                }
            }
            report.events += events.len() as u64;
            report.position = last;
            progress(last);
        }
        Ok(report)
    }

    /// Catch up, then keep following the log until `shutdown` turns true.
    pub async fn follow(
        mut self,
        store: LogStore,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ProjectionError> {
        let mut head = store.watch_head();
        loop {
            self.catch_up(&store, |_| {}).await?;
            tokio::select! {
                changed = head.changed() => if changed.is_err() { return Ok(()) },
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { return Ok(()) }
                }
            }
        }
    }

    /// Delete the rows and checkpoints of `projections`, so the next run rebuilds them from
    /// seq 1.
    pub async fn reset(
        pool: &SqlitePool,
        projections: &[Box<dyn Projection>],
    ) -> Result<(), ProjectionError> {
        let mut conn = pool.acquire().await?;
        let mut tx = conn.begin().await?;
        for p in projections {
            for t in p.tables() {
                sqlx::query(&format!("DELETE FROM {}", t.name))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM projection_checkpoints WHERE name = ?")
                .bind(p.name())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Each projection's committed checkpoint and saved state, with the projection's
/// in-memory state set to it, all read in one transaction: another process committing
/// meanwhile cannot pair a checkpoint with rows of another batch. A projection without a
/// checkpoint starts from its empty state at seq 0.
async fn load_committed(
    pool: &SqlitePool,
    projections: &mut [Box<dyn Projection>],
) -> Result<(Vec<u64>, Vec<Vec<u8>>), ProjectionError> {
    let mut checkpoints = Vec::with_capacity(projections.len());
    let mut saved = Vec::with_capacity(projections.len());
    let mut tx = pool.begin().await?;
    for p in projections.iter_mut() {
        let row: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, state FROM projection_checkpoints WHERE name = ?")
                .bind(p.name())
                .fetch_optional(&mut *tx)
                .await?;
        match row {
            Some((seq, state)) => {
                p.load_state(&state)?;
                let tables = p.state_tables();
                if !tables.is_empty() {
                    p.restore(&sql::dump_conn(&mut tx, tables).await?)?;
                }
                checkpoints.push(seq.max(0) as u64);
                saved.push(state);
            }
            None => {
                p.load_state(&[])?;
                checkpoints.push(0);
                saved.push(p.save_state());
            }
        }
    }
    tx.commit().await?;
    Ok((checkpoints, saved))
}

/// Give a table-backed projection its state back from its committed rows.
async fn restore_from_tables(
    pool: &SqlitePool,
    p: &mut dyn Projection,
) -> Result<(), ProjectionError> {
    let tables = p.state_tables();
    if tables.is_empty() {
        return Ok(());
    }
    let rows = sql::dump(pool, tables).await?;
    p.restore(&rows)
}

/// Fold events into fresh projections held in memory (no database): the same code the
/// runner uses, so the result equals the live tables at the same seq.
pub struct MemoryRunner {
    projections: Vec<Box<dyn Projection>>,
    /// The tables built so far.
    pub tables: MemoryTables,
    changes: Changes,
    /// Last seq applied.
    pub position: u64,
}

impl MemoryRunner {
    /// Start from empty projections.
    pub fn new(projections: Vec<Box<dyn Projection>>) -> Self {
        MemoryRunner {
            projections,
            tables: MemoryTables::default(),
            changes: Changes::default(),
            position: 0,
        }
    }

    /// Apply one event.
    pub fn apply(&mut self, event: &clawos_events::RecordedEvent) -> Result<(), ProjectionError> {
        let payload = event.decode()?;
        for p in self.projections.iter_mut() {
            if p.wants(&event.kind) {
                p.apply(event, &payload, &mut self.changes);
            }
        }
        self.tables.apply(&mut self.changes);
        self.position = event.seq;
        Ok(())
    }

    /// The tables owned by these projections.
    pub fn table_defs(&self) -> Vec<&'static crate::Table> {
        self.projections
            .iter()
            .flat_map(|p| p.tables().iter().copied())
            .collect()
    }
}
