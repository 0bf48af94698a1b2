//! The index's tables. Each generation `N` is three tables: `memory_rows_N` (memory id ->
//! row id, scope, model id), `memory_vec_N` (sqlite-vec `vec0`: the vectors, partitioned by
//! identity, with the agent as a filterable column) and `memory_fts_N` (FTS5 over the text).
//! The row id of a memory is the seq of its `MemoryWritten` event, so a rebuild gives the
//! same ids. `memory_index_state` names the generation that serves and its checkpoint.

use sqlx::{SqliteConnection, SqlitePool};

use crate::ProjectionError;

/// The serving generation and its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexState {
    /// Generation number (table name suffix).
    pub generation: i64,
    /// Model id of every vector in it.
    pub model: String,
    /// Dimensions of its vectors.
    pub dims: usize,
    /// Last log seq applied.
    pub seq: u64,
}

/// Table names of one generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// `memory_rows_N`.
    pub rows: String,
    /// `memory_vec_N` (vec0).
    pub vec: String,
    /// `memory_fts_N` (FTS5).
    pub fts: String,
}

impl Tables {
    /// The tables of generation `generation`.
    pub fn of(generation: i64) -> Self {
        Tables {
            rows: format!("memory_rows_{generation}"),
            vec: format!("memory_vec_{generation}"),
            fts: format!("memory_fts_{generation}"),
        }
    }
}

/// The serving generation, if the index was ever created.
pub async fn load_state(pool: &SqlitePool) -> Result<Option<IndexState>, ProjectionError> {
    let row: Option<(i64, String, i64, i64)> =
        sqlx::query_as("SELECT generation, model, dims, seq FROM memory_index_state WHERE id = 1")
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(generation, model, dims, seq)| IndexState {
        generation,
        model,
        dims: dims.max(0) as usize,
        seq: seq.max(0) as u64,
    }))
}

/// Write the serving generation and checkpoint (inside the caller's transaction).
pub async fn save_state(
    conn: &mut SqliteConnection,
    state: &IndexState,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT OR REPLACE INTO memory_index_state (id, generation, model, dims, seq) \
         VALUES (1, ?, ?, ?, ?)",
    )
    .bind(state.generation)
    .bind(&state.model)
    .bind(state.dims as i64)
    .bind(state.seq as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Create the tables of a generation.
pub async fn create(
    conn: &mut SqliteConnection,
    generation: i64,
    dims: usize,
) -> Result<(), ProjectionError> {
    let t = Tables::of(generation);
    for sql in [
        format!(
            "CREATE TABLE {} (memory_id TEXT PRIMARY KEY, rid INTEGER NOT NULL UNIQUE, \
             identity TEXT NOT NULL, agent TEXT NOT NULL, model TEXT NOT NULL)",
            t.rows
        ),
        format!(
            "CREATE VIRTUAL TABLE {} USING vec0(embedding float[{dims}] distance_metric=cosine, \
             identity text partition key, agent text)",
            t.vec
        ),
        format!(
            "CREATE VIRTUAL TABLE {} USING fts5(text, identity UNINDEXED, agent UNINDEXED, \
             tokenize = 'porter unicode61')",
            t.fts
        ),
    ] {
        sqlx::query(&sql).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Drop the tables of a generation (those that exist).
pub async fn drop(conn: &mut SqliteConnection, generation: i64) -> Result<(), ProjectionError> {
    let t = Tables::of(generation);
    for name in [&t.vec, &t.fts, &t.rows] {
        sqlx::query(&format!("DROP TABLE IF EXISTS {name}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Every generation that has at least one table in the file.
pub async fn generations(pool: &SqlitePool) -> Result<Vec<i64>, ProjectionError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'memory_rows_%'",
    )
    .fetch_all(pool)
    .await?;
    let mut gens: Vec<i64> = names
        .iter()
        .filter_map(|n| n.strip_prefix("memory_rows_")?.parse().ok())
        .collect();
    gens.sort_unstable();
    gens.dedup();
    Ok(gens)
}

/// Why a generation cannot serve, or `None` when it is whole: every table exists and can
/// be read, FTS5's integrity check passes, and the three tables hold the same rows.
///
/// It runs on a connection of its own that is closed after a failure: a statement that
/// failed on a damaged table can leave its connection holding an old read snapshot.
pub async fn check(pool: &SqlitePool, generation: i64) -> Option<String> {
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    let found = check_on(&mut conn, generation).await;
    if found.is_some() {
        let _ = sqlx::Connection::close(conn.detach()).await;
    }
    found
}

async fn check_on(conn: &mut SqliteConnection, generation: i64) -> Option<String> {
    let t = Tables::of(generation);
    let mut counts = [0i64; 3];
    for (n, table) in counts.iter_mut().zip([&t.rows, &t.vec, &t.fts]) {
        match sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *conn)
            .await
        {
            Ok(c) => *n = c,
            Err(e) => return Some(format!("{table}: {e}")),
        }
    }
    let [rows, vecs, fts] = counts;
    if rows != vecs || rows != fts {
        return Some(format!(
            "generation {generation} disagrees: {rows} rows, {vecs} vectors, {fts} texts"
        ));
    }
    if let Err(e) = sqlx::query(&format!(
        "INSERT INTO {0} ({0}) VALUES ('integrity-check')",
        t.fts
    ))
    .execute(&mut *conn)
    .await
    {
        return Some(format!("{}: {e}", t.fts));
    }
    // Every row's vector can be read back (a damaged vec0 shadow table fails here).
    if let Err(e) = sqlx::query(&format!(
        "SELECT count(*) FROM {} r JOIN {} v ON v.rowid = r.rid",
        t.rows, t.vec
    ))
    .fetch_one(&mut *conn)
    .await
    .and_then(|row| {
        use sqlx::Row as _;
        row.try_get::<i64, _>(0)
    })
    .map_err(|e| e.to_string())
    .and_then(|joined| {
        (joined == rows)
            .then_some(())
            .ok_or_else(|| format!("{joined} of {rows} rows have a vector"))
    }) {
        return Some(format!("{}: {e}", t.vec));
    }
    None
}
