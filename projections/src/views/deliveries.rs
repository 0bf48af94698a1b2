//! Deliveries: replies the channels have not acked yet. A reply is pending while no ack
//! carries its delivery id (whatever channel the ack names).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::SqlitePool;

use super::rows::{int, text};
use crate::changes::MemoryTables;
use crate::deliveries::{DELIVERIES, DELIVERY_ACKS};
use crate::ProjectionError;

/// (channel, seq) of every pending reply.
fn pending(t: &MemoryTables) -> Vec<(String, u64)> {
    let acked: BTreeSet<String> = t
        .rows(DELIVERY_ACKS.name)
        .iter()
        .map(|r| text(r, 0))
        .collect();
    t.rows(DELIVERIES.name)
        .iter()
        .filter(|r| !acked.contains(&text(r, 0)))
        .map(|r| (text(r, 1), int(r, 2).unwrap_or(0)))
        .collect()
}

/// Seqs of the replies for `channel` it has not acked, oldest first.
pub fn pending_deliveries_in(t: &MemoryTables, channel: &str) -> Vec<u64> {
    let mut seqs: Vec<u64> = pending(t)
        .into_iter()
        .filter(|(c, _)| c == channel)
        .map(|(_, s)| s)
        .collect();
    seqs.sort_unstable();
    seqs
}

/// [`pending_deliveries_in`] over the live tables.
pub async fn pending_deliveries(
    pool: &SqlitePool,
    channel: &str,
) -> Result<Vec<u64>, ProjectionError> {
    let rows: Vec<i64> = sqlx::query_scalar(
        "SELECT d.seq FROM deliveries d LEFT JOIN delivery_acks a \
         ON a.delivery_id = d.delivery_id WHERE d.channel = ? AND a.delivery_id IS NULL \
         ORDER BY d.seq",
    )
    .bind(channel)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|s| s as u64).collect())
}

/// Replies not acked yet, over all channels.
pub fn delivery_backlog_in(t: &MemoryTables) -> u64 {
    pending(t).len() as u64
}

/// [`delivery_backlog_in`] over the live tables.
pub async fn delivery_backlog(pool: &SqlitePool) -> Result<u64, ProjectionError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM deliveries d LEFT JOIN delivery_acks a \
         ON a.delivery_id = d.delivery_id WHERE a.delivery_id IS NULL",
    )
    .fetch_one(pool)
    .await?;
    Ok(n.max(0) as u64)
}

/// Replies not acked yet per channel (channels with none left out).
pub fn pending_by_channel_in(t: &MemoryTables) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (c, _) in pending(t) {
        *out.entry(c).or_insert(0) += 1;
    }
    out
}

/// [`pending_by_channel_in`] over the live tables.
pub async fn pending_by_channel(
    pool: &SqlitePool,
) -> Result<BTreeMap<String, u64>, ProjectionError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT d.channel, COUNT(*) FROM deliveries d LEFT JOIN delivery_acks a \
         ON a.delivery_id = d.delivery_id WHERE a.delivery_id IS NULL GROUP BY d.channel",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(c, n)| (c, n.max(0) as u64))
        .collect())
}
