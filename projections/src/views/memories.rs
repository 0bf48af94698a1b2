//! Memories: what agents were asked to remember, per identity and agent.

use serde::Serialize;
use sqlx::SqlitePool;
use uuid::Uuid;

use super::rows::{int, load_matching, load_rows, opt_text, text};
use crate::changes::MemoryTables;
use crate::memories::MEMORIES;
use crate::value::Value;
use crate::ProjectionError;

/// One memory that still exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryView {
    /// Memory id.
    pub memory_id: String,
    /// Identity it belongs to (`None`: everyone's).
    pub identity: Option<String>,
    /// Agent it belongs to (`None`: every agent's).
    pub agent: Option<String>,
    /// What to remember.
    pub text: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The message it came from.
    pub source_seq: Option<u64>,
    /// Seq of its `MemoryWritten`.
    pub written_seq: u64,
}

fn memory_of(r: &crate::Row) -> MemoryView {
    let tags = text(r, 4);
    MemoryView {
        memory_id: text(r, 0),
        identity: opt_text(r, 1),
        agent: opt_text(r, 2),
        text: text(r, 3),
        // The projection writes a JSON array; anything else is kept whole as one tag.
        tags: serde_json::from_str(&tags).unwrap_or_else(|_| vec![tags]),
        source_seq: int(r, 5),
        written_seq: int(r, 6).unwrap_or(0),
    }
}

/// Memories newest first: every one, or those of one identity.
pub fn memories_in(t: &MemoryTables, identity: Option<&str>) -> Vec<MemoryView> {
    let mut all: Vec<MemoryView> = t
        .rows(MEMORIES.name)
        .iter()
        .map(memory_of)
        .filter(|m| identity.is_none() || m.identity.as_deref() == identity)
        .collect();
    all.sort_by_key(|m| std::cmp::Reverse(m.written_seq));
    all
}

/// One memory by id.
pub fn memory_in(t: &MemoryTables, memory_id: Uuid) -> Option<MemoryView> {
    t.tables
        .get(MEMORIES.name)?
        .get(&crate::row![memory_id.to_string()])
        .map(memory_of)
}

/// [`memories_in`] over the live tables.
pub async fn memories(
    pool: &SqlitePool,
    identity: Option<&str>,
) -> Result<Vec<MemoryView>, ProjectionError> {
    let mut t = MemoryTables::default();
    match identity {
        Some(i) => load_rows(pool, &mut t, &MEMORIES, "identity = ?", &[Value::from(i)]).await?,
        None => load_rows(pool, &mut t, &MEMORIES, "", &[]).await?,
    }
    Ok(memories_in(&t, identity))
}

/// [`memory_in`] over the live tables.
pub async fn memory(
    pool: &SqlitePool,
    memory_id: Uuid,
) -> Result<Option<MemoryView>, ProjectionError> {
    let t = load_matching(pool, &MEMORIES, "memory_id", memory_id.to_string().into()).await?;
    Ok(memory_in(&t, memory_id))
}

/// Whether memory `memory_id` exists and belongs to `identity` (what an agent may forget).
pub async fn memory_owned_by(
    pool: &SqlitePool,
    memory_id: Uuid,
    identity: &str,
) -> Result<bool, ProjectionError> {
    Ok(memory(pool, memory_id)
        .await?
        .is_some_and(|m| m.identity.as_deref() == Some(identity)))
}
