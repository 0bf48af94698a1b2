//! The index follower: folds `MemoryWritten` / `MemoryForgotten` from the log into the
//! serving generation (embedding through the cache), with its own checkpoint; rebuilds a
//! new generation beside the serving one and swaps it in when complete.

use std::collections::HashMap;
use std::sync::Arc;

use clawos_events::{EventPayload, LogStore};
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::watch;

use super::cache::{self, CacheUse};
use super::embedder::{from_bytes, to_bytes, Embedder};
use super::schema::{self, IndexState, Tables};
use crate::ProjectionError;

/// Log events read per batch.
const BATCH: u32 = 4096;

/// How far past its stored checkpoint the index may run on events that hold no memory
/// operation before the checkpoint is written anyway. Below this, such events move only
/// the in-memory [`Cursor`], so a conversation's appends do not take the projection file's
/// write lock a second time for nothing.
const CHECKPOINT_EVERY: u64 = 4096;

/// Log seqs examined by one read: the other kinds are skipped inside SQLite.
const SCAN: u64 = 65_536;

/// The kinds the index folds.
const KINDS: &[&str] = &["MemoryWritten", "MemoryForgotten"];

/// Where this process has the index: the stored state as last read or written, and the
/// seq reached, which runs past `state.seq` over events without memory operations. Every
/// write re-checks the stored state inside its transaction, so a cursor made stale by
/// another process (a rebuild's swap) is noticed and dropped there; losing it (a restart)
/// only means reading those events again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    state: IndexState,
    reached: u64,
}

/// The memory index over one projection database, embedding with one embedder.
#[derive(Clone)]
pub struct MemoryIndex {
    pool: SqlitePool,
    embedder: Arc<dyn Embedder>,
    cursor: Arc<std::sync::Mutex<Option<Cursor>>>,
}

/// What [`MemoryIndex::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The serving generation is whole and was built with the configured model.
    Ready,
    /// There was no index: an empty one was created (the follower fills it).
    Created,
    /// The serving generation was damaged or missing (the reason); an empty one replaced
    /// it and the follower refills it from the log.
    Repaired(String),
    /// The serving generation was built by another model (its id); it serves keyword
    /// recall until a rebuild swaps in one of the configured model.
    OtherModel(String),
}

/// Counts of one catch-up or rebuild.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Folded {
    /// Memories embedded and inserted.
    pub written: u64,
    /// Memories removed.
    pub forgotten: u64,
    /// Embedding cache use.
    pub cache: CacheUse,
    /// Seq reached.
    pub position: u64,
}

/// What [`MemoryIndex::stats`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStats {
    /// The serving generation and its stored checkpoint.
    pub state: IndexState,
    /// The seq applied, which may be past the stored checkpoint (see
    /// [`MemoryIndex::position`]).
    pub position: u64,
    /// Memories in the serving generation.
    pub indexed: u64,
    /// Memories in the `memories` read model.
    pub memories: u64,
    /// Vectors in the embedding cache (every model).
    pub cached: u64,
}

/// One stored vector, for comparisons and stats.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedVector {
    /// Memory id.
    pub memory_id: String,
    /// Row id (the seq of its `MemoryWritten`).
    pub rid: i64,
    /// Model id that produced the vector.
    pub model: String,
    /// The vector.
    pub vector: Vec<f32>,
}

enum Op {
    Write {
        seq: u64,
        id: String,
        identity: String,
        agent: String,
        text: String,
    },
    Forget {
        id: String,
    },
}

impl MemoryIndex {
    /// Check the index in `pool` and make it able to serve: create it when missing, replace
    /// a damaged serving generation with an empty one (refilled from the log by the next
    /// catch-up), and drop leftovers of an unfinished rebuild.
    pub async fn open(
        pool: SqlitePool,
        embedder: Arc<dyn Embedder>,
    ) -> Result<(Self, Opened), ProjectionError> {
        let index = MemoryIndex {
            pool,
            embedder,
            cursor: Arc::default(),
        };
        let opened = match schema::load_state(&index.pool).await? {
            None => {
                index.reset(1).await?;
                Opened::Created
            }
            Some(state) => match schema::check(&index.pool, state.generation).await {
                Some(reason) => {
                    tracing::warn!(%reason, "memory index damaged; rebuilding it from the log");
                    index.reset(state.generation + 1).await?;
                    Opened::Repaired(reason)
                }
                None if state.model != index.embedder.model_id() => Opened::OtherModel(state.model),
                None => Opened::Ready,
            },
        };
        let serving = index.state().await?.generation;
        let mut conn = index.pool.acquire().await?;
        for g in schema::generations(&index.pool).await? {
            if g != serving {
                schema::drop(&mut conn, g).await?;
            }
        }
        Ok((index, opened))
    }

    /// Replace whatever serves with an empty generation `generation` at seq 0.
    async fn reset(&self, generation: i64) -> Result<(), ProjectionError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let old =
            sqlx::query_scalar::<_, i64>("SELECT generation FROM memory_index_state WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(old) = old {
            schema::drop(&mut tx, old).await?;
        }
        schema::drop(&mut tx, generation).await?;
        schema::create(&mut tx, generation, self.embedder.dims()).await?;
        schema::save_state(
            &mut tx,
            &IndexState {
                generation,
                model: self.embedder.model_id().to_string(),
                dims: self.embedder.dims(),
                seq: 0,
            },
        )
        .await?;
        tx.commit().await?;
        self.set_cursor(None);
        Ok(())
    }

    /// The projection database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// The serving generation and its checkpoint.
    pub async fn state(&self) -> Result<IndexState, ProjectionError> {
        schema::load_state(&self.pool)
            .await?
            .ok_or_else(|| ProjectionError::Index("the memory index was never created".into()))
    }

    /// Apply the log up to its head to the serving generation. Does nothing while the
    /// serving generation belongs to another model (a rebuild must swap first).
    /// `progress(seq)` is called after each committed batch.
    pub async fn catch_up(
        &self,
        store: &LogStore,
        mut progress: impl FnMut(u64),
    ) -> Result<Folded, ProjectionError> {
        let mut folded = Folded::default();
        loop {
            let (state, from) = self.cursor().await?;
            folded.position = from;
            if state.model != self.embedder.model_id() {
                return Ok(folded);
            }
            let Some((events, covered)) = next_batch(store, from).await? else {
                return Ok(folded);
            };
            let ops = decode(&events)?;
            if ops.is_empty() && covered - state.seq < CHECKPOINT_EVERY {
                self.set_cursor(Some(Cursor {
                    state,
                    reached: covered,
                }));
                folded.position = covered;
                progress(covered);
                continue;
            }
            let (vectors, used) = self.embed_ops(&ops).await?;
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            // Another process (a rebuild's swap, another follower) may have moved on.
            let now = sqlx::query_as::<_, (i64, i64)>(
                "SELECT generation, seq FROM memory_index_state WHERE id = 1",
            )
            .fetch_optional(&mut *tx)
            .await?;
            if now != Some((state.generation, state.seq as i64)) {
                tx.rollback().await?;
                self.set_cursor(None);
                continue;
            }
            let (w, f) = apply(
                &mut tx,
                &Tables::of(state.generation),
                self.embedder.model_id(),
                &ops,
                &vectors,
            )
            .await?;
            let state = IndexState {
                seq: covered,
                ..state
            };
            schema::save_state(&mut tx, &state).await?;
            tx.commit().await?;
            self.set_cursor(Some(Cursor {
                state,
                reached: covered,
            }));
            folded.written += w;
            folded.forgotten += f;
            folded.cache.hits += used.hits;
            folded.cache.misses += used.misses;
            folded.position = covered;
            progress(covered);
        }
    }

    /// The stored state and the seq this process has reached: the cursor when it has one,
    /// else the stored checkpoint.
    async fn cursor(&self) -> Result<(IndexState, u64), ProjectionError> {
        let cached = self
            .cursor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match cached {
            Some(c) => Ok((c.state, c.reached)),
            None => {
                let state = self.state().await?;
                let seq = state.seq;
                Ok((state, seq))
            }
        }
    }

    fn set_cursor(&self, cursor: Option<Cursor>) {
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = cursor;
    }

    /// The seq the index has applied: the stored checkpoint, or further when this process
    /// has read past it through events without memory operations.
    pub async fn position(&self) -> Result<u64, ProjectionError> {
        Ok(self.cursor().await?.1)
    }

    /// Build a new generation from the whole log with the configured embedder while the
    /// serving one keeps serving, then swap it in and drop the old one. `progress(seq,
    /// head)` is called after each batch.
    pub async fn rebuild(
        &self,
        store: &LogStore,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Folded, ProjectionError> {
        let serving = self.state().await?;
        let mut conn = self.pool.acquire().await?;
        let next = schema::generations(&self.pool)
            .await?
            .into_iter()
            .max()
            .unwrap_or(0)
            .max(serving.generation)
            + 1;
        for g in schema::generations(&self.pool).await? {
            if g != serving.generation {
                schema::drop(&mut conn, g).await?;
            }
        }
        schema::create(&mut conn, next, self.embedder.dims()).await?;
        drop(conn);
        let tables = Tables::of(next);
        let mut folded = Folded::default();
        while let Some((events, last)) = next_batch(store, folded.position).await? {
            let ops = decode(&events)?;
            let (vectors, used) = self.embed_ops(&ops).await?;
            let mut tx = self.pool.begin().await?;
            let (w, f) = apply(&mut tx, &tables, self.embedder.model_id(), &ops, &vectors).await?;
            tx.commit().await?;
            folded.written += w;
            folded.forgotten += f;
            folded.cache.hits += used.hits;
            folded.cache.misses += used.misses;
            folded.position = last;
            progress(last, store.head().max(last));
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let old =
            sqlx::query_scalar::<_, i64>("SELECT generation FROM memory_index_state WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?;
        schema::save_state(
            &mut tx,
            &IndexState {
                generation: next,
                model: self.embedder.model_id().to_string(),
                dims: self.embedder.dims(),
                seq: folded.position,
            },
        )
        .await?;
        if let Some(old) = old.filter(|g| *g != next) {
            schema::drop(&mut tx, old).await?;
        }
        tx.commit().await?;
        self.set_cursor(None);
        Ok(folded)
    }

    /// Catch up, then follow the log until `shutdown` turns true, publishing the applied
    /// seq on `position`. A serving generation of another model is rebuilt first. Errors
    /// (an unreachable embeddings server) are logged and retried with backoff.
    pub async fn follow(
        self,
        store: LogStore,
        position: watch::Sender<u64>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut head = store.watch_head();
        let mut backoff = std::time::Duration::from_millis(250);
        loop {
            let step = async {
                if self.cursor().await?.0.model != self.embedder.model_id() {
                    tracing::info!(
                        model = self.embedder.model_id(),
                        "memory index: re-embedding every memory with the configured model"
                    );
                    self.rebuild(&store, |_, _| {}).await?;
                }
                self.catch_up(&store, |seq| {
                    let _ = position.send(seq);
                })
                .await
            };
            let wait = match step.await {
                Ok(f) => {
                    let _ = position.send(f.position);
                    backoff = std::time::Duration::from_millis(250);
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "memory index could not catch up; retrying");
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
                    Some(backoff)
                }
            };
            tokio::select! {
                changed = head.changed(), if wait.is_none() => if changed.is_err() { return },
                _ = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {},
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { return }
                }
            }
        }
    }

    /// Counts for `clawos memory stats`.
    pub async fn stats(&self) -> Result<IndexStats, ProjectionError> {
        let state = self.state().await?;
        let t = Tables::of(state.generation);
        let count = |sql: String| async move {
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&self.pool)
                .await
                .map(|n| n.max(0) as u64)
        };
        Ok(IndexStats {
            indexed: count(format!("SELECT count(*) FROM {}", t.rows)).await?,
            memories: count("SELECT count(*) FROM memories".into()).await?,
            cached: count("SELECT count(*) FROM memory_embeddings".into()).await?,
            position: self.cursor().await?.1.max(state.seq),
            state,
        })
    }

    /// Every vector of the serving generation, by memory id.
    pub async fn vectors(&self) -> Result<Vec<IndexedVector>, ProjectionError> {
        let t = Tables::of(self.state().await?.generation);
        let rows: Vec<(String, i64, String, Vec<u8>)> = sqlx::query_as(&format!(
            "SELECT memory_id, rid, model, vector FROM {} ORDER BY memory_id",
            t.rows
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(memory_id, rid, model, v)| IndexedVector {
                memory_id,
                rid,
                model,
                vector: from_bytes(&v),
            })
            .collect())
    }

    async fn embed_ops(&self, ops: &[Op]) -> Result<(Vec<Vec<f32>>, CacheUse), ProjectionError> {
        let texts: Vec<String> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Write { text, .. } => Some(text.clone()),
                Op::Forget { .. } => None,
            })
            .collect();
        if texts.is_empty() {
            return Ok((Vec::new(), CacheUse::default()));
        }
        cache::embed(&self.pool, self.embedder.as_ref(), &texts).await
    }
}

/// The memory events after `from`: at most [`BATCH`] of them within the next [`SCAN`]
/// seqs of the log, with the last seq the read covered; `None` at the head.
async fn next_batch(
    store: &LogStore,
    from: u64,
) -> Result<Option<(Vec<clawos_events::RecordedEvent>, u64)>, ProjectionError> {
    let head = store.head();
    if from >= head {
        return Ok(None);
    }
    let to = head.min(from.saturating_add(SCAN));
    let events = store.read_kinds(from + 1, to, KINDS, BATCH).await?;
    let covered = match events.last() {
        Some(last) if events.len() == BATCH as usize => last.seq,
        _ => to,
    };
    Ok(Some((events, covered)))
}

fn decode(events: &[clawos_events::RecordedEvent]) -> Result<Vec<Op>, ProjectionError> {
    let mut ops = Vec::new();
    for e in events {
        if e.kind != "MemoryWritten" && e.kind != "MemoryForgotten" {
            continue;
        }
        match e.decode()? {
            EventPayload::MemoryWritten(m) => ops.push(Op::Write {
                seq: e.seq,
                id: m.memory_id.to_string(),
                identity: m.identity.unwrap_or_default(),
                agent: m.agent.unwrap_or_default(),
                text: m.text,
            }),
            EventPayload::MemoryForgotten(m) => ops.push(Op::Forget {
                id: m.memory_id.to_string(),
            }),
            _ => {}
        }
    }
    Ok(ops)
}

/// One memory's rows to insert.
struct NewRow<'a> {
    rid: i64,
    id: &'a str,
    identity: &'a str,
    agent: &'a str,
    text: &'a str,
    vector: &'a [f32],
}

/// Rows per multi-row statement (at most 6 parameters each, far under SQLite's limit).
const ROWS_PER_STATEMENT: usize = 256;

/// Apply ops to one generation's tables with the result of applying them in order:
/// every memory an op touches loses its old rows, and those whose last op is a write get
/// that write's row (row id = its seq). `vectors` holds one per write, in op order.
/// Returns (writes, forgets of a memory that was there).
async fn apply(
    conn: &mut SqliteConnection,
    t: &Tables,
    model: &str,
    ops: &[Op],
    vectors: &[Vec<f32>],
) -> Result<(u64, u64), ProjectionError> {
    let id_of = |op: &Op| match op {
        Op::Write { id, .. } | Op::Forget { id } => id.clone(),
    };
    let mut touched: Vec<String> = ops.iter().map(id_of).collect();
    touched.sort_unstable();
    touched.dedup();
    let mut present: HashMap<String, i64> = HashMap::new();
    for chunk in touched.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT memory_id, rid FROM {} WHERE memory_id IN ({})",
            t.rows,
            vec!["?"; chunk.len()].join(",")
        );
        let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        present.extend(q.fetch_all(&mut *conn).await?);
    }
    let old: Vec<i64> = present.values().copied().collect();
    for chunk in old.chunks(ROWS_PER_STATEMENT) {
        let marks = vec!["?"; chunk.len()].join(",");
        for (table, key) in [(&t.rows, "rid"), (&t.vec, "rowid"), (&t.fts, "rowid")] {
            let sql = format!("DELETE FROM {table} WHERE {key} IN ({marks})");
            let mut q = sqlx::query(&sql);
            for rid in chunk {
                q = q.bind(rid);
            }
            q.execute(&mut *conn).await?;
        }
    }
    // Walk the ops in order: count, and keep each memory's last write (or none).
    let (mut written, mut forgotten) = (0, 0);
    let mut last: HashMap<String, Option<(&Op, &Vec<f32>)>> = HashMap::new();
    let mut vectors = vectors.iter();
    for op in ops {
        let id = id_of(op);
        match op {
            Op::Write { .. } => {
                let v = vectors.next().ok_or_else(|| {
                    ProjectionError::Index("a memory was left without a vector".into())
                })?;
                written += 1;
                last.insert(id, Some((op, v)));
            }
            Op::Forget { .. } => {
                let there = match last.get(&id) {
                    Some(entry) => entry.is_some(),
                    None => present.contains_key(&id),
                };
                forgotten += u64::from(there);
                last.insert(id, None);
            }
        }
    }
    let mut rows: Vec<NewRow<'_>> = last
        .values()
        .filter_map(|w| match w {
            Some((
                Op::Write {
                    seq,
                    id,
                    identity,
                    agent,
                    text,
                },
                v,
            )) => Some(NewRow {
                rid: *seq as i64,
                id,
                identity,
                agent,
                text,
                vector: v,
            }),
            _ => None,
        })
        .collect();
    rows.sort_unstable_by_key(|r| r.rid);
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let values =
            |n: usize| vec![format!("({})", vec!["?"; n].join(",")); chunk.len()].join(",");
        let sql = format!(
            "INSERT INTO {} (memory_id, rid, identity, agent, model, vector) VALUES {}",
            t.rows,
            values(6)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.id)
                .bind(r.rid)
                .bind(r.identity)
                .bind(r.agent)
                .bind(model)
                .bind(to_bytes(r.vector));
        }
        q.execute(&mut *conn).await?;
        let sql = format!(
            "INSERT INTO {} (rowid, embedding, identity, agent) VALUES {}",
            t.vec,
            values(4)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.rid)
                .bind(to_bytes(r.vector))
                .bind(r.identity)
                .bind(r.agent);
        }
        q.execute(&mut *conn).await?;
        let sql = format!(
            "INSERT INTO {} (rowid, text, identity, agent) VALUES {}",
            t.fts,
            values(4)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q.bind(r.rid).bind(r.text).bind(r.identity).bind(r.agent);
        }
        q.execute(&mut *conn).await?;
    }
    Ok((written, forgotten))
}
