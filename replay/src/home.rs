//! The state folder: where the log, the projections and everything else live.

use std::path::{Path, PathBuf};

use clawos_events::{Durability, LogStore};
use sqlx::SqlitePool;

use crate::ReplayError;

/// The state folder (`$CLAWOS_HOME`, default `~/.clawos`).
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// A state folder at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Home { dir: dir.into() }
    }

    /// `$CLAWOS_HOME`, else `~/.clawos`, else `./.clawos`.
    pub fn from_env() -> Self {
        if let Some(d) = std::env::var_os("CLAWOS_HOME").filter(|d| !d.is_empty()) {
            return Home::new(d);
        }
        match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            Some(h) => Home::new(Path::new(&h).join(".clawos")),
            None => Home::new(".clawos"),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log: `clawos.db`, the only source of truth.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("clawos.db")
    }

    /// The projections: `projections.db`, a disposable cache of the log.
    pub fn projections_path(&self) -> PathBuf {
        self.dir.join("projections.db")
    }

    /// The media store: `media/`, attachment bytes by blake3 hash (events hold the hash).
    pub fn media_dir(&self) -> PathBuf {
        self.dir.join("media")
    }

    /// Open the log.
    pub async fn open_log(&self, durability: Durability) -> Result<LogStore, ReplayError> {
        Ok(LogStore::open(self.log_path(), durability).await?)
    }

    /// Open the projection database.
    pub async fn open_projections(&self) -> Result<SqlitePool, ReplayError> {
        Ok(clawos_projections::sql::open(&self.projections_path()).await?)
    }
}
