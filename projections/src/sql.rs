//! The projection database: a SQLite file of its own next to the log, so that projection
//! writes never hold the log's write lock. Flushing changes, dumping tables, resetting.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Row as _, TypeInfo, ValueRef};

use crate::changes::{Changes, MemoryTables};
use crate::value::{Row, Table, Value};
use crate::ProjectionError;

/// The migrations of the projection file (`migrations/projections/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/projections");

/// SQLite's limit on bound parameters per statement (3.32+).
const MAX_PARAMS: usize = 32_766;
/// Most rows per multi-row INSERT.
const MAX_ROWS_PER_INSERT: usize = 512;

/// Make sqlite-vec (the `vec0` virtual table, `vec_distance_*`) available in every SQLite
/// connection this process opens from now on. Idempotent; called by [`open`], the one
/// place that opens the projection database, before any pool connects.
pub fn register_sqlite_vec() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sqlite3_vec_init` is the extension's entry point with the signature
        // sqlite3_auto_extension expects; sqlite-vec is compiled against the same bundled
        // SQLite that libsqlite3-sys links (one libsqlite3-sys in the build).
        unsafe {
            libsqlite3_sys::sqlite3_auto_extension(Some(std::mem::transmute::<
                *const (),
                unsafe extern "C" fn(
                    *mut libsqlite3_sys::sqlite3,
                    *mut *mut std::os::raw::c_char,
                    *const libsqlite3_sys::sqlite3_api_routines,
                ) -> std::os::raw::c_int,
            >(
                sqlite_vec::sqlite3_vec_init as *const (),
            )));
        }
    });
}

/// How much of the projection file each connection maps into memory (address space, not
/// resident memory: pages are shared with the OS page cache).
pub const MMAP_BYTES: u64 = 1 << 30;

/// Open (creating and migrating) the projection database at `path`.
///
/// It runs with `synchronous=NORMAL`: it is a cache, and a commit lost to a power cut loses
/// its checkpoint with it, so the runner re-applies those events from the log.
pub async fn open(path: &Path) -> Result<SqlitePool, ProjectionError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            ProjectionError::Storage(sqlx::Error::Configuration(
                format!("cannot create {}: {e}", dir.display()).into(),
            ))
        })?;
    }
    register_sqlite_vec();
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .statement_cache_capacity(512)
        .row_buffer_size(4096)
        // Reads through a memory map: a memory recall scans every vector chunk of the
        // `vec0` table, and without the map each 4 KiB page is a `pread` and a copy
        // (BENCHMARKS.md, the memory index). Writes still go through the WAL.
        .pragma("mmap_size", MMAP_BYTES.to_string());
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

pub(crate) fn bind_value<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    v: &'q Value,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    match v {
        Value::Null => q.bind(Option::<i64>::None),
        Value::Int(i) => q.bind(*i),
        Value::Text(s) => q.bind(s.as_str()),
        Value::Blob(b) => q.bind(b.as_slice()),
    }
}

fn insert_sql(table: &Table, rows: usize) -> String {
    let one = format!("({})", vec!["?"; table.columns.len()].join(","));
    format!(
        "INSERT OR REPLACE INTO {} ({}) VALUES {}",
        table.name,
        table.columns.join(","),
        vec![one.as_str(); rows].join(",")
    )
}

/// Write a change set inside the caller's transaction: deletes first, then upserts as
/// multi-row `INSERT OR REPLACE` statements.
pub async fn flush(
    conn: &mut SqliteConnection,
    changes: &mut Changes,
) -> Result<(), ProjectionError> {
    for (table, rows) in changes.drain() {
        let mut upserts: Vec<Row> = Vec::with_capacity(rows.len());
        for (key, row) in rows {
            match row {
                Some(r) => upserts.push(r),
                None => {
                    let cond: Vec<String> = table.columns[..table.key_len]
                        .iter()
                        .map(|c| format!("{c} = ?"))
                        .collect();
                    let sql = format!("DELETE FROM {} WHERE {}", table.name, cond.join(" AND "));
                    let mut q = sqlx::query(&sql);
                    for v in &key {
                        q = bind_value(q, v);
                    }
                    q.execute(&mut *conn).await?;
                }
            }
        }
        let per = (MAX_PARAMS / table.columns.len()).min(MAX_ROWS_PER_INSERT);
        for chunk in upserts.chunks(per) {
            let sql = insert_sql(table, chunk.len());
            let mut q = sqlx::query(&sql);
            for row in chunk {
                for v in row {
                    q = bind_value(q, v);
                }
            }
            q.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Every row of a table in primary-key order, as values.
pub async fn dump_table(pool: &SqlitePool, table: &Table) -> Result<Vec<Row>, ProjectionError> {
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        table.columns.join(","),
        table.name,
        table.columns[..table.key_len].join(",")
    );
    let rows = sqlx::query(&sql).fetch_all(pool).await?;
    rows.iter()
        .map(|r| row_values(r, table.columns.len()))
        .collect()
}

/// Convert a result row into values by each cell's storage class.
pub fn row_values(r: &sqlx::sqlite::SqliteRow, n: usize) -> Result<Row, ProjectionError> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let raw = r.try_get_raw(i)?;
        let v = if raw.is_null() {
            Value::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" => Value::Int(r.try_get(i)?),
                "TEXT" => Value::Text(r.try_get(i)?),
                "BLOB" => Value::Blob(r.try_get(i)?),
                "REAL" => Value::Text(r.try_get::<f64, _>(i)?.to_string()),
                _ => Value::Null,
            }
        };
        out.push(v);
    }
    Ok(out)
}

/// Every row of the given tables, read through one connection (inside the caller's
/// transaction, if any).
pub async fn dump_conn(
    conn: &mut SqliteConnection,
    tables: &[&'static Table],
) -> Result<MemoryTables, ProjectionError> {
    let mut out = MemoryTables::default();
    for t in tables {
        let sql = format!("SELECT {} FROM {}", t.columns.join(","), t.name);
        let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
        let map = out.tables.entry(t.name.to_string()).or_default();
        for r in &rows {
            let row = row_values(r, t.columns.len())?;
            map.insert(t.key_of(&row), row);
        }
    }
    Ok(out)
}

/// Dump every table of the given projections into memory (for comparisons).
pub async fn dump(
    pool: &SqlitePool,
    tables: &[&'static Table],
) -> Result<MemoryTables, ProjectionError> {
    let mut out = MemoryTables::default();
    for t in tables {
        let rows = dump_table(pool, t).await?;
        let map = out.tables.entry(t.name.to_string()).or_default();
        for r in rows {
            map.insert(t.key_of(&r), r);
        }
    }
    Ok(out)
}

/// Saved checkpoint of a projection: (last applied seq, state bytes).
pub async fn load_checkpoint(
    pool: &SqlitePool,
    name: &str,
) -> Result<Option<(u64, Vec<u8>)>, ProjectionError> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, state FROM projection_checkpoints WHERE name = ?")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(s, b)| (s as u64, b)))
}

/// Move checkpoints, all or nothing: each `(name, expected, seq, state)` moves from
/// `expected` (0: no checkpoint yet) to `seq`. Returns false, having written no
/// checkpoint, when any stored checkpoint is not the expected one: another process (the
/// Gateway and a CLI command both drive this file) committed past it, or a rebuild reset
/// it, and the caller's batch must be rolled back. One statement, so the check costs the
/// batch no extra round trip.
pub async fn advance_checkpoints(
    conn: &mut SqliteConnection,
    moves: &[(&str, u64, u64, &[u8])],
) -> Result<bool, ProjectionError> {
    if moves.is_empty() {
        return Ok(true);
    }
    // A row passes when its stored checkpoint is the expected one (absent counts as 0):
    // an existing one is then updated, a missing one inserted. A row that does not pass
    // writes nothing, so fewer rows change than were asked for.
    let sql = format!(
        "INSERT INTO projection_checkpoints (name, seq, state) \
         SELECT v.column1, v.column2, v.column3 FROM (VALUES {}) AS v \
         LEFT JOIN projection_checkpoints AS c ON c.name = v.column1 \
         WHERE coalesce(c.seq, 0) = v.column4 \
         ON CONFLICT(name) DO UPDATE SET seq = excluded.seq, state = excluded.state",
        vec!["(?, ?, ?, ?)"; moves.len()].join(", ")
    );
    let mut q = sqlx::query(&sql);
    for (name, expected, seq, state) in moves {
        q = q
            .bind(*name)
            .bind(*seq as i64)
            .bind(*state)
            .bind(*expected as i64);
    }
    let changed = q.execute(&mut *conn).await?.rows_affected();
    Ok(changed == moves.len() as u64)
}
