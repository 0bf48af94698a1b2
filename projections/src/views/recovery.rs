//! Recovery: what a Gateway that stopped left undone, as of the log's head when the next
//! one opened it (`up_to`). Later events belong to the new process.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::SqlitePool;

use super::rows::{int, text};
use crate::audit::AUDIT_TURNS;
use crate::changes::MemoryTables;
use crate::sessions::{MESSAGES, SESSIONS};
use crate::ProjectionError;

/// User messages up to `up_to` that no turn has answered, oldest first, as (seq, session,
/// agent of the session). A message counts as answered by a turn it triggered that
/// finished or failed, or that started after `up_to` (the new process's own); a turn
/// still `running` from before `up_to` answered nothing. Messages of sessions without a
/// `sessions` row are left out.
pub fn unanswered_messages_in(t: &MemoryTables, up_to: u64) -> Vec<(u64, String, String)> {
    let answered: BTreeSet<u64> = t
        .rows(AUDIT_TURNS.name)
        .iter()
        .filter(|r| text(r, 7) != "running" || int(r, 5).unwrap_or(0) > up_to)
        .filter_map(|r| int(r, 4))
        .collect();
    let agents: BTreeMap<String, String> = t
        .rows(SESSIONS.name)
        .iter()
        .map(|r| (text(r, 0), text(r, 2)))
        .collect();
    // `messages` is keyed by seq: key order is seq order.
    t.rows(MESSAGES.name)
        .iter()
        .filter_map(|r| {
            let seq = int(r, 0)?;
            if text(r, 4) != "user" || seq > up_to || answered.contains(&seq) {
                return None;
            }
            let session = text(r, 1);
            let agent = agents.get(&session)?.clone();
            Some((seq, session, agent))
        })
        .collect()
}

/// [`unanswered_messages_in`] over the live tables.
pub async fn unanswered_messages(
    pool: &SqlitePool,
    up_to: u64,
) -> Result<Vec<(u64, String, String)>, ProjectionError> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT m.seq, m.session_id, s.agent FROM messages m \
         JOIN sessions s ON s.session_id = m.session_id \
         WHERE m.role = 'user' AND m.seq <= ?1 AND NOT EXISTS (SELECT 1 FROM audit_turns t \
         WHERE t.trigger_seq = m.seq AND (t.status != 'running' OR t.started_seq > ?1)) \
         ORDER BY m.seq",
    )
    .bind(up_to.min(i64::MAX as u64) as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, session, agent)| (seq as u64, session, agent))
        .collect())
}

/// Turns still `running` that started at or before `up_to`, as (turn id, session), in
/// start order: the turns the stopped process was in the middle of.
pub fn running_turns_in(t: &MemoryTables, up_to: u64) -> Vec<(String, String)> {
    let mut turns: Vec<(u64, String, String)> = t
        .rows(AUDIT_TURNS.name)
        .iter()
        .filter(|r| text(r, 7) == "running")
        .filter_map(|r| {
            let started = int(r, 5)?;
            (started <= up_to).then(|| (started, text(r, 0), text(r, 1)))
        })
        .collect();
    turns.sort();
    turns.into_iter().map(|(_, id, s)| (id, s)).collect()
}

/// [`running_turns_in`] over the live tables.
pub async fn running_turns(
    pool: &SqlitePool,
    up_to: u64,
) -> Result<Vec<(String, String)>, ProjectionError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT turn_id, session_id FROM audit_turns \
         WHERE status = 'running' AND started_seq <= ?1 ORDER BY started_seq, turn_id",
    )
    .bind(up_to.min(i64::MAX as u64) as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}
