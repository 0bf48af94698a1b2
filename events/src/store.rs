//! The log store: opening the SQLite file, appending through the writer task, reading.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::envelope::{ExpectedVersion, NewEvent, RecordedEvent};
use crate::tail::Subscription;
use crate::writer::{self, AppendRequest, Appended, Command, EncodedEvent};
use crate::LogError;

/// The migrations of the log file (`migrations/log/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/log");

/// How durable a commit is before `append` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// WAL with `synchronous=FULL`: the WAL is fsynced at every commit, so an acked
    /// event survives a power loss. The default: the log is the only source of truth,
    /// and group commit shares one fsync among every caller waiting in the batch.
    #[default]
    Full,
    /// WAL with `synchronous=NORMAL`: survives a process crash (SIGKILL) but the last
    /// commits can be lost on power loss.
    Normal,
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            other => Err(format!(
                "unknown durability `{other}` (expected `full` or `normal`)"
            )),
        }
    }
}

/// Connection options for the clawos database file (WAL, foreign keys off, busy timeout).
pub fn connect_options(path: &Path, durability: Durability) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        })
        .busy_timeout(Duration::from_secs(10))
        .statement_cache_capacity(256)
        .row_buffer_size(4096)
        .disable_statement_logging()
}

struct Inner {
    path: PathBuf,
    read: SqlitePool,
    commands: mpsc::Sender<Command>,
    head: watch::Receiver<u64>,
}

/// A handle on the append-only log. Cheap to clone; all clones share one writer task.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

const COLUMNS: &str = "seq, id, stream, stream_version, ts_ms, kind, schema_version, \
                       causation_id, correlation_id, dedupe_key, payload, hash";

impl LogStore {
    /// Open (creating if needed) the log in the SQLite file at `path`, run migrations and
    /// start the writer task. Must be called inside a tokio runtime.
    pub async fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, LogError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| LogError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let options = connect_options(&path, durability);
        let mut conn: SqliteConnection = options.connect().await?;
        MIGRATOR.run(&mut conn).await?;
        let (last_seq, _) = writer::load_head(&mut conn).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .connect_with(options.clone().read_only(true))
            .await?;
        let (tx, rx) = mpsc::channel(65_536);
        let (head_tx, head_rx) = watch::channel(last_seq);
        tokio::spawn(writer::run(conn, rx, head_tx));
        Ok(LogStore {
            inner: Arc::new(Inner {
                path,
                read,
                commands: tx,
                head: head_rx,
            }),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A pool of read-only connections to the same file.
    pub fn read_pool(&self) -> &SqlitePool {
        &self.inner.read
    }

    /// Append `events` to `stream` if its version matches `expected`. Resolves after the
    /// transaction holding them committed, with their seqs.
    pub async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, LogError> {
        if events.is_empty() {
            return Err(LogError::EmptyAppend);
        }
        let mut keys = std::collections::HashSet::new();
        for key in events.iter().filter_map(|e| e.dedupe_key.as_deref()) {
            if !keys.insert(key) {
                return Err(LogError::DuplicateKeyInRequest(key.to_string()));
            }
        }
        let mut encoded = Vec::with_capacity(events.len());
        for e in events {
            encoded.push(EncodedEvent {
                id: Uuid::now_v7(),
                kind: e.payload.kind(),
                schema_version: e.payload.schema_version(),
                payload: e.payload.encode()?,
                causation_id: e.causation_id,
                correlation_id: e.correlation_id,
                dedupe_key: e.dedupe_key,
                ts_ms: e.ts_ms,
            });
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Append(AppendRequest {
                stream: stream.to_string(),
                expected,
                events: encoded,
                reply,
            }))
            .await
            .map_err(|_| LogError::WriterClosed)?;
        rx.await.map_err(|_| LogError::WriterClosed)?
    }

    /// Append one event with no version check.
    pub async fn append_one(&self, stream: &str, event: NewEvent) -> Result<Appended, LogError> {
        self.append(stream, ExpectedVersion::Any, vec![event]).await
    }

    /// Stop the writer after the requests already queued, and close the connections.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.commands.send(Command::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        self.inner.read.close().await;
    }

    /// Seq of the last committed event (0 for an empty log).
    pub fn head(&self) -> u64 {
        *self.inner.head.borrow()
    }

    /// A receiver that changes whenever a batch commits.
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.head.clone()
    }

    /// Up to `limit` events with seq >= `from`, in order.
    pub async fn read_from(&self, from: u64, limit: u32) -> Result<Vec<RecordedEvent>, LogError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE seq >= ? ORDER BY seq LIMIT ?"
        ))
        .bind(from as i64)
        .bind(limit as i64)
        .fetch_all(&self.inner.read)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    /// The log from `from` in pages of `size` events, up to `end` (or, with `None`, until
    /// a page comes back empty), each next page read while the caller works on the last.
    pub fn pages(&self, from: u64, end: Option<u64>, size: u32) -> crate::Pages {
        crate::Pages::new(self.clone(), from, end, size)
    }

    /// Events with `from <= seq <= to`, in order.
    pub async fn read_range(&self, from: u64, to: u64) -> Result<Vec<RecordedEvent>, LogError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq"
        ))
        .bind(from as i64)
        .bind(to.min(i64::MAX as u64) as i64)
        .fetch_all(&self.inner.read)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    /// At most `limit` events of the given kinds with `from <= seq <= to`, in order. The
    /// other events of the range are skipped inside SQLite, never decoded: a follower that
    /// folds a few kinds reads a conversation's appends at the cost of one query.
    pub async fn read_kinds(
        &self,
        from: u64,
        to: u64,
        kinds: &[&str],
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        if kinds.is_empty() || from > to {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; kinds.len()].join(",");
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE seq >= ? AND seq <= ? AND kind IN ({marks}) \
             ORDER BY seq LIMIT ?"
        );
        let mut q = sqlx::query(&sql)
            .bind(from.min(i64::MAX as u64) as i64)
            .bind(to.min(i64::MAX as u64) as i64);
        for kind in kinds {
            q = q.bind(*kind);
        }
        let rows = q.bind(limit as i64).fetch_all(&self.inner.read).await?;
        rows.iter().map(row_to_event).collect()
    }

    /// The newest `limit` events with seq <= `before`, newest first.
    pub async fn read_back(&self, before: u64, limit: u32) -> Result<Vec<RecordedEvent>, LogError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE seq <= ? ORDER BY seq DESC LIMIT ?"
        ))
        .bind(before.min(i64::MAX as u64) as i64)
        .bind(limit as i64)
        .fetch_all(&self.inner.read)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    /// The events with these seqs (the ones that exist), in seq order: one query.
    pub async fn read_seqs(&self, seqs: &[u64]) -> Result<Vec<RecordedEvent>, LogError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; seqs.len()].join(",");
        let sql = format!("SELECT {COLUMNS} FROM events WHERE seq IN ({marks}) ORDER BY seq");
        let mut q = sqlx::query(&sql);
        for s in seqs {
            q = q.bind((*s).min(i64::MAX as u64) as i64);
        }
        let rows = q.fetch_all(&self.inner.read).await?;
        rows.iter().map(row_to_event).collect()
    }

    /// One event by seq.
    pub async fn get(&self, seq: u64) -> Result<Option<RecordedEvent>, LogError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM events WHERE seq = ?"))
            .bind(seq as i64)
            .fetch_optional(&self.inner.read)
            .await?;
        row.as_ref().map(row_to_event).transpose()
    }

    /// Events of one stream with seq <= `max_seq`, in order.
    pub async fn read_stream(
        &self,
        stream: &str,
        max_seq: u64,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE stream = ? AND seq <= ? ORDER BY stream_version"
        ))
        .bind(stream)
        .bind(max_seq.min(i64::MAX as u64) as i64)
        .fetch_all(&self.inner.read)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    /// Current version of a stream (0 when it has no events).
    pub async fn stream_version(&self, stream: &str) -> Result<u64, LogError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MAX(stream_version) FROM events WHERE stream = ?")
                .bind(stream)
                .fetch_one(&self.inner.read)
                .await?;
        Ok(v.unwrap_or(0) as u64)
    }

    /// Seq of the last event in the file, including events other processes appended
    /// (`head` only moves with this store's own commits and its subscriptions' reads).
    pub async fn last_seq(&self) -> Result<u64, LogError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
            .fetch_one(&self.inner.read)
            .await?;
        Ok(v.unwrap_or(0) as u64)
    }

    /// Seq of the event holding a dedupe key, if any.
    pub async fn find_dedupe(&self, key: &str) -> Result<Option<u64>, LogError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT seq FROM events WHERE dedupe_key = ?")
            .bind(key)
            .fetch_optional(&self.inner.read)
            .await?;
        Ok(v.map(|s| s as u64))
    }

    /// Follow the log from `from_seq` (inclusive): every event, in order, waiting for new
    /// ones at the end. A slow subscriber reads from the file, so it never loses events.
    pub fn subscribe(&self, from_seq: u64) -> Subscription {
        Subscription::new(self.clone(), from_seq.max(1))
    }

    /// Counts per kind, streams and file size.
    pub async fn stats(&self) -> Result<LogStats, LogError> {
        let kinds: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind, COUNT(*) FROM events GROUP BY kind ORDER BY kind")
                .fetch_all(&self.inner.read)
                .await?;
        let streams: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT stream) FROM events")
            .fetch_one(&self.inner.read)
            .await?;
        let file_bytes = std::fs::metadata(&self.inner.path)
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(LogStats {
            events: self.head(),
            streams: streams as u64,
            kinds: kinds.into_iter().map(|(k, n)| (k, n as u64)).collect(),
            file_bytes,
        })
    }
}

/// Summary of the log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogStats {
    /// Last seq (= number of events).
    pub events: u64,
    /// Number of distinct streams.
    pub streams: u64,
    /// Events per kind.
    pub kinds: Vec<(String, u64)>,
    /// Size of the database file (without WAL).
    pub file_bytes: u64,
}

fn uuid_col(row: &SqliteRow, idx: usize, seq: i64) -> Result<Option<Uuid>, LogError> {
    let b: Option<Vec<u8>> = row.try_get(idx)?;
    b.map(|b| {
        Uuid::from_slice(&b).map_err(|_| LogError::BadRow {
            seq,
            reason: format!("column {idx} is not a 16-byte uuid"),
        })
    })
    .transpose()
}

/// Decode one `events` row (columns in [`COLUMNS`] order).
pub(crate) fn row_to_event(row: &SqliteRow) -> Result<RecordedEvent, LogError> {
    let seq: i64 = row.try_get(0)?;
    let hash: Vec<u8> = row.try_get(11)?;
    let version: i64 = row.try_get(6)?;
    Ok(RecordedEvent {
        seq: seq as u64,
        id: uuid_col(row, 1, seq)?.ok_or_else(|| LogError::BadRow {
            seq,
            reason: "missing id".into(),
        })?,
        stream: row.try_get(2)?,
        stream_version: row.try_get::<i64, _>(3)? as u64,
        ts_ms: row.try_get(4)?,
        kind: row.try_get(5)?,
        schema_version: u16::try_from(version).map_err(|_| LogError::BadRow {
            seq,
            reason: format!("schema version {version} out of range"),
        })?,
        causation_id: uuid_col(row, 7, seq)?,
        correlation_id: uuid_col(row, 8, seq)?,
        dedupe_key: row.try_get(9)?,
        payload: row.try_get(10)?,
        hash: hash.try_into().map_err(|_| LogError::BadRow {
            seq,
            reason: "hash is not 32 bytes".into(),
        })?,
    })
}
