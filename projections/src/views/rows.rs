//! Reading rows for the views: cells as Rust values, rows loaded from the live pool.

use sqlx::Sqlite;

use crate::changes::MemoryTables;
use crate::sql::{bind_value, row_values};
use crate::value::{Row, Table, Value};
use crate::ProjectionError;

/// An integer cell as `u64` (`None` for NULL or another type).
pub(crate) fn int(r: &Row, i: usize) -> Option<u64> {
    match r.get(i) {
        Some(Value::Int(v)) => Some(*v as u64),
        _ => None,
    }
}

/// An integer cell as `i64` (`None` for NULL or another type).
pub(crate) fn signed(r: &Row, i: usize) -> Option<i64> {
    match r.get(i) {
        Some(Value::Int(v)) => Some(*v),
        _ => None,
    }
}

/// A text cell (empty for NULL or another type).
pub(crate) fn text(r: &Row, i: usize) -> String {
    opt_text(r, i).unwrap_or_default()
}

/// A nullable text cell.
pub(crate) fn opt_text(r: &Row, i: usize) -> Option<String> {
    match r.get(i) {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Load the rows of `table` matching `filter` (an SQL condition on its columns with `?`
/// placeholders for `binds`; empty for every row) into `out`.
pub(crate) async fn load_rows<'c, E>(
    exec: E,
    out: &mut MemoryTables,
    table: &Table,
    filter: &str,
    binds: &[Value],
) -> Result<(), ProjectionError>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let mut sql = format!("SELECT {} FROM {}", table.columns.join(","), table.name);
    if !filter.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(filter);
    }
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = bind_value(q, b);
    }
    let rows = q.fetch_all(exec).await?;
    let map = out.tables.entry(table.name.to_string()).or_default();
    for r in &rows {
        let row = row_values(r, table.columns.len())?;
        map.insert(table.key_of(&row), row);
    }
    Ok(())
}

/// Every row of the given tables, read in one transaction (one snapshot of the file).
pub(crate) async fn load_tables(
    pool: &sqlx::SqlitePool,
    tables: &[&Table],
) -> Result<MemoryTables, ProjectionError> {
    let mut out = MemoryTables::default();
    let mut tx = pool.begin().await?;
    for t in tables {
        load_rows(&mut *tx, &mut out, t, "", &[]).await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// The rows of one table whose `column` equals `value`.
pub(crate) async fn load_matching(
    pool: &sqlx::SqlitePool,
    table: &Table,
    column: &str,
    value: Value,
) -> Result<MemoryTables, ProjectionError> {
    let mut out = MemoryTables::default();
    load_rows(pool, &mut out, table, &format!("{column} = ?"), &[value]).await?;
    Ok(out)
}
