//! Rebuild: drop projection rows and fold the whole log again.

use std::time::{Duration, Instant};

use clawos_events::LogStore;
use clawos_projections::{projection, Runner};
use serde::Serialize;
use sqlx::SqlitePool;

use crate::ReplayError;

/// What a rebuild did.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    /// Projections rebuilt.
    pub projections: Vec<String>,
    /// Events folded.
    pub events: u64,
    /// Row changes written.
    pub rows: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl RebuildReport {
    /// Events per second.
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Reset the named projections (all when `None`) and fold the log from seq 1 into them.
/// `progress(seq)` is called after each committed batch.
pub async fn rebuild(
    store: &LogStore,
    pool: &SqlitePool,
    names: Option<&[String]>,
    progress: impl FnMut(u64),
) -> Result<RebuildReport, ReplayError> {
    let chosen = projection::select(names)?;
    let projections = chosen.iter().map(|p| p.name().to_string()).collect();
    Runner::reset(pool, &chosen).await?;
    let start = Instant::now();
    let mut runner = Runner::open(pool.clone(), chosen).await?;
    let report = runner.catch_up(store, progress).await?;
    Ok(RebuildReport {
        projections,
        events: report.events,
        rows: report.rows,
        elapsed: start.elapsed(),
    })
}

/// Bring every projection up to the log's head from its checkpoint.
pub async fn catch_up(store: &LogStore, pool: &SqlitePool) -> Result<u64, ReplayError> {
    let mut runner = Runner::open(pool.clone(), projection::all()).await?;
    Ok(runner.catch_up(store, |_| {}).await?.position)
}
