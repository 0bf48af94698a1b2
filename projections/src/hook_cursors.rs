//! Outbound hook cursors: where each hook has got to in the log. Not a read model (the
//! hooks move them, not the runner), but they live in the projection file beside the read
//! models, and this is the only code that knows their table.

use sqlx::SqlitePool;

use crate::ProjectionError;

/// The last seq the hook with this key handled (`None`: it never ran).
pub async fn load(pool: &SqlitePool, key: &str) -> Result<Option<u64>, ProjectionError> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM hook_cursors WHERE hook = ?")
        .bind(key)
        .fetch_optional(pool)
        .await?;
    Ok(seq.map(|s| s.max(0) as u64))
}

/// Store where the hook with this key has got to.
pub async fn save(pool: &SqlitePool, key: &str, seq: u64) -> Result<(), ProjectionError> {
    sqlx::query("INSERT OR REPLACE INTO hook_cursors (hook, seq) VALUES (?, ?)")
        .bind(key)
        .bind(seq.min(i64::MAX as u64) as i64)
        .execute(pool)
        .await?;
    Ok(())
}
