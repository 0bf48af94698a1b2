//! Usage: tokens per agent, session, identity or model since a time, read from
//! `usage_calls` (joined with `sessions` for the identity). Cost is the caller's: it
//! applies its price table to each row's model.

use serde::Serialize;
use sqlx::{Row, SqlitePool};

use crate::ProjectionError;

/// What usage is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageKey {
    /// The agent that ran the turn.
    Agent,
    /// The session.
    Session,
    /// The session's owner.
    Identity,
    /// The model.
    Model,
}

impl UsageKey {
    fn column(self) -> &'static str {
        match self {
            UsageKey::Agent => "u.agent",
            UsageKey::Session => "u.session_id",
            UsageKey::Identity => "COALESCE(s.identity, '')",
            UsageKey::Model => "u.model",
        }
    }
}

/// Tokens of one group with one provider and model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    /// The group (agent, session id, identity or model).
    pub key: String,
    /// Provider name.
    pub provider: String,
    /// Model id.
    pub model: String,
    /// LLM calls.
    pub calls: u64,
    /// Turns those calls belong to.
    pub turns: u64,
    /// Prompt tokens as the provider reported them.
    pub prompt_tokens: u64,
    /// Completion tokens as the provider reported them.
    pub completion_tokens: u64,
}

/// Usage since `since_ms` grouped by `by`, one row per group, provider and model, in key
/// order; only calls of `agent` and of `identity` when given.
pub async fn usage(
    pool: &SqlitePool,
    since_ms: i64,
    by: UsageKey,
    agent: Option<&str>,
    identity: Option<&str>,
) -> Result<Vec<UsageRow>, ProjectionError> {
    let sql = format!(
        "SELECT {key} AS k, u.provider, u.model, COUNT(*), COUNT(DISTINCT u.turn_id), \
         SUM(u.prompt_tokens), SUM(u.completion_tokens) \
         FROM usage_calls u LEFT JOIN sessions s ON s.session_id = u.session_id \
         WHERE u.ts_ms >= ?1 AND (?2 IS NULL OR u.agent = ?2) \
         AND (?3 IS NULL OR s.identity = ?3) \
         GROUP BY k, u.provider, u.model ORDER BY k, u.provider, u.model",
        key = by.column()
    );
    let rows = sqlx::query(&sql)
        .bind(since_ms)
        .bind(agent)
        .bind(identity)
        .fetch_all(pool)
        .await?;
    let count = |r: &sqlx::sqlite::SqliteRow, i: usize| -> Result<u64, ProjectionError> {
        Ok(r.try_get::<i64, _>(i)?.max(0) as u64)
    };
    rows.iter()
        .map(|r| {
            Ok(UsageRow {
                key: r.try_get(0)?,
                provider: r.try_get(1)?,
                model: r.try_get(2)?,
                calls: count(r, 3)?,
                turns: count(r, 4)?,
                prompt_tokens: count(r, 5)?,
                completion_tokens: count(r, 6)?,
            })
        })
        .collect()
}
