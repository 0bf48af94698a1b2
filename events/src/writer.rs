//! The single writer task: it owns the write connection, assigns seqs and stream versions,
//! chains hashes and group-commits every request waiting in its queue in one transaction.
//! A caller's future resolves only after its batch committed (or failed as a whole).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::envelope::ExpectedVersion;
use crate::hash::{self, HashInput};
use crate::LogError;

/// Most requests folded into one transaction.
const MAX_BATCH_REQUESTS: usize = 4096;

/// An event encoded by the caller, waiting for its seq.
pub(crate) struct EncodedEvent {
    pub id: Uuid,
    pub kind: &'static str,
    pub schema_version: u16,
    pub causation_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    pub dedupe_key: Option<String>,
    pub ts_ms: Option<i64>,
    pub payload: Vec<u8>,
}

/// What a successful append returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Seq of the first event of the request.
    pub first_seq: u64,
    /// Seq of the last event of the request.
    pub last_seq: u64,
    /// The stream's version after the request.
    pub stream_version: u64,
    /// True when a dedupe key was already in the log: nothing was appended and the seqs
    /// are those of the original event.
    pub duplicate: bool,
}

pub(crate) struct AppendRequest {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<EncodedEvent>,
    pub reply: oneshot::Sender<Result<Appended, LogError>>,
}

pub(crate) enum Command {
    Append(AppendRequest),
    Close(oneshot::Sender<()>),
}

/// The writer's view of the log tail, kept in memory and reloaded after a failed batch.
struct Head {
    last_seq: u64,
    last_hash: [u8; 32],
    stream_versions: HashMap<String, u64>,
}

pub(crate) async fn load_head(conn: &mut SqliteConnection) -> Result<(u64, [u8; 32]), LogError> {
    let row = sqlx::query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        None => Ok((0, hash::GENESIS)),
        Some(row) => {
            let seq: i64 = row.get(0);
            let h: Vec<u8> = row.get(1);
            let h: [u8; 32] = h.try_into().map_err(|_| LogError::BadRow {
                seq,
                reason: "hash is not 32 bytes".into(),
            })?;
            Ok((seq as u64, h))
        }
    }
}

/// Run the writer until every handle is dropped or `Close` arrives.
pub(crate) async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Command>,
    head_tx: watch::Sender<u64>,
) {
    let (last_seq, last_hash) = match load_head(&mut conn).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "log writer cannot read the log head");
            fail_all(&mut rx, &e).await;
            return;
        }
    };
    let mut head = Head {
        last_seq,
        last_hash,
        stream_versions: HashMap::new(),
    };
    let mut batch: Vec<AppendRequest> = Vec::new();
    let mut close_reply: Option<oneshot::Sender<()>> = None;
    while close_reply.is_none() {
        match rx.recv().await {
            None => break,
            Some(Command::Close(reply)) => close_reply = Some(reply),
            Some(Command::Append(req)) => batch.push(req),
        }
        while batch.len() < MAX_BATCH_REQUESTS {
            match rx.try_recv() {
                Ok(Command::Append(req)) => batch.push(req),
                Ok(Command::Close(reply)) => {
                    close_reply = Some(reply);
                    break;
                }
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        commit_batch(&mut conn, &mut head, &mut batch, &head_tx).await;
        head_tx.send_replace(head.last_seq);
    }
    let _ = conn.close().await;
    if let Some(reply) = close_reply {
        let _ = reply.send(());
    }
}

async fn fail_all(rx: &mut mpsc::Receiver<Command>, e: &LogError) {
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::Append(req) => {
                let _ = req.reply.send(Err(LogError::BadRow {
                    seq: 0,
                    reason: format!("log head unreadable: {e}"),
                }));
            }
            Command::Close(reply) => {
                let _ = reply.send(());
                return;
            }
        }
    }
}

/// Rows per multi-row INSERT (12 parameters each, far below SQLite's 32766 limit).
const ROWS_PER_INSERT: usize = 256;

/// One row of `events`, planned inside a batch and inserted before the commit.
struct PendingRow {
    seq: u64,
    id: Uuid,
    stream: String,
    version: u64,
    ts_ms: i64,
    kind: &'static str,
    schema_version: u16,
    causation_id: Option<Uuid>,
    correlation_id: Option<Uuid>,
    dedupe_key: Option<String>,
    payload: Vec<u8>,
    hash: [u8; 32],
}

/// Insert planned rows with one multi-row statement: one round trip to SQLite per chunk.
async fn insert_rows(conn: &mut SqliteConnection, rows: &[PendingRow]) -> Result<(), sqlx::Error> {
    let mut sql = String::from(
        "INSERT INTO events (seq, id, stream, stream_version, ts_ms, kind, schema_version, \
         causation_id, correlation_id, dedupe_key, payload, hash) VALUES ",
    );
    for i in 0..rows.len() {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?,?,?,?,?)");
    }
    let mut q = sqlx::query(&sql);
    for r in rows {
        q = q
            .bind(r.seq as i64)
            .bind(r.id.as_bytes().as_slice())
            .bind(r.stream.as_str())
            .bind(r.version as i64)
            .bind(r.ts_ms)
            .bind(r.kind)
            .bind(r.schema_version as i64)
            .bind(r.causation_id.as_ref().map(|u| u.as_bytes().as_slice()))
            .bind(r.correlation_id.as_ref().map(|u| u.as_bytes().as_slice()))
            .bind(r.dedupe_key.as_deref())
            .bind(r.payload.as_slice())
            .bind(r.hash.as_slice());
    }
    q.execute(conn).await?;
    Ok(())
}

/// Outcome of one request inside a batch, before the batch commits.
enum Planned {
    Appended(Appended),
    Failed(LogError),
}

async fn commit_batch(
    conn: &mut SqliteConnection,
    head: &mut Head,
    batch: &mut Vec<AppendRequest>,
    head_tx: &watch::Sender<u64>,
) {
    let mut pending_versions: HashMap<String, u64> = HashMap::new();
    let mut pending_keys: HashMap<String, u64> = HashMap::new();
    let mut seq = head.last_seq;
    let mut prev_hash = head.last_hash;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);

    let result: Result<Vec<Planned>, LogError> = async {
        // IMMEDIATE takes the write lock now, so the head read below stays true until the
        // commit even if another process (a CLI command) writes to the same file.
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let (db_seq, db_hash) = load_head(&mut tx).await.map_err(|e| match e {
            LogError::Storage(e) => e,
            other => sqlx::Error::Protocol(other.to_string()),
        })?;
        if db_seq != seq {
            // Someone else appended since our last batch: adopt their head.
            tracing::debug!(
                ours = seq,
                theirs = db_seq,
                "log head moved under the writer; reloading"
            );
            seq = db_seq;
            prev_hash = db_hash;
            head.stream_versions.clear();
        }
        let mut plans = Vec::with_capacity(batch.len());
        let mut rows: Vec<PendingRow> = Vec::new();
        for req in batch.iter() {
            // Dedupe: a request whose key is already in the log appends nothing.
            let mut duplicate_of = None;
            for ev in &req.events {
                if let Some(key) = &ev.dedupe_key {
                    if let Some(s) = pending_keys.get(key) {
                        duplicate_of = Some(*s);
                        break;
                    }
                    let found: Option<i64> =
                        sqlx::query_scalar("SELECT seq FROM events WHERE dedupe_key = ?")
                            .bind(key)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if let Some(s) = found {
                        duplicate_of = Some(s as u64);
                        break;
                    }
                }
            }
            let current = match pending_versions.get(&req.stream) {
                Some(v) => *v,
                None => match head.stream_versions.get(&req.stream) {
                    Some(v) => *v,
                    None => {
                        let v: Option<i64> = sqlx::query_scalar(
                            "SELECT MAX(stream_version) FROM events WHERE stream = ?",
                        )
                        .bind(&req.stream)
                        .fetch_one(&mut *tx)
                        .await?;
                        let v = v.unwrap_or(0) as u64;
                        head.stream_versions.insert(req.stream.clone(), v);
                        v
                    }
                },
            };
            if let Some(original) = duplicate_of {
                plans.push(Planned::Appended(Appended {
                    first_seq: original,
                    last_seq: original,
                    stream_version: current,
                    duplicate: true,
                }));
                continue;
            }
            if !req.expected.admits(current) {
                plans.push(Planned::Failed(LogError::Conflict {
                    stream: req.stream.clone(),
                    expected: req.expected.to_string(),
                    actual: current,
                }));
                continue;
            }
            let first_seq = seq + 1;
            let mut version = current;
            for ev in &req.events {
                seq += 1;
                version += 1;
                let ts_ms = ev.ts_ms.unwrap_or(now_ms);
                let h = hash::chain(
                    &prev_hash,
                    &HashInput {
                        seq,
                        id: &ev.id,
                        stream: &req.stream,
                        stream_version: version,
                        ts_ms,
                        kind: ev.kind,
                        schema_version: ev.schema_version,
                        causation_id: ev.causation_id.as_ref(),
                        correlation_id: ev.correlation_id.as_ref(),
                        dedupe_key: ev.dedupe_key.as_deref(),
                        payload: &ev.payload,
                    },
                );
                rows.push(PendingRow {
                    seq,
                    id: ev.id,
                    stream: req.stream.clone(),
                    version,
                    ts_ms,
                    kind: ev.kind,
                    schema_version: ev.schema_version,
                    causation_id: ev.causation_id,
                    correlation_id: ev.correlation_id,
                    dedupe_key: ev.dedupe_key.clone(),
                    payload: ev.payload.clone(),
                    hash: h,
                });
                if let Some(key) = &ev.dedupe_key {
                    pending_keys.insert(key.clone(), seq);
                }
                prev_hash = h;
            }
            pending_versions.insert(req.stream.clone(), version);
            plans.push(Planned::Appended(Appended {
                first_seq,
                last_seq: seq,
                stream_version: version,
                duplicate: false,
            }));
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            insert_rows(&mut tx, chunk).await?;
        }
        tx.commit().await?;
        Ok(plans)
    }
    .await;

    match result {
        Ok(plans) => {
            head.last_seq = seq;
            head.last_hash = prev_hash;
            head.stream_versions.extend(pending_versions);
            // Publish the new head before any caller resumes: a caller that appended and
            // then reads up to `head()` (a runner catching up, a subscriber) must see its
            // own events.
            head_tx.send_replace(head.last_seq);
            for (req, plan) in batch.drain(..).zip(plans) {
                let _ = req.reply.send(match plan {
                    Planned::Appended(a) => Ok(a),
                    Planned::Failed(e) => Err(e),
                });
            }
        }
        Err(e) => {
            tracing::error!(error = %e, requests = batch.len(), "log batch failed; nothing committed");
            let msg = e.to_string();
            for req in batch.drain(..) {
                let _ = req
                    .reply
                    .send(Err(LogError::Storage(sqlx::Error::Protocol(msg.clone()))));
            }
            // The in-memory head may be stale after a rollback: reload it.
            head.stream_versions.clear();
            if let Ok((s, h)) = load_head(conn).await {
                head.last_seq = s;
                head.last_hash = h;
            }
        }
    }
}
