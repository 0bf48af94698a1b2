//! Sessions, a session's branches, a branch's transcript, compaction markers, and the
//! message lookups a turn makes.
//!
//! They read [`MemoryTables`], which is either filled from the live projection database
//! ([`load_session`]) or folded from the log up to some seq (time travel), so both paths
//! render through the same code.

use serde::Serialize;
use sqlx::SqlitePool;

use super::rows::{int, load_matching, load_rows, text};
use crate::changes::MemoryTables;
use crate::sessions::{BRANCHES, COMPACTIONS, MESSAGES, SESSIONS};
use crate::value::{Row, Value};
use crate::ProjectionError;

/// One session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionView {
    /// Session id.
    pub session_id: String,
    /// Identity it belongs to.
    pub identity: String,
    /// Agent.
    pub agent: String,
    /// Branch new messages go to.
    pub active_branch: String,
    /// Seq of `SessionStarted`.
    pub started_seq: u64,
    /// Seq of its last event.
    pub last_seq: u64,
    /// Number of messages on all branches.
    pub messages: u64,
}

/// One branch of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BranchView {
    /// Branch name.
    pub name: String,
    /// Its last message.
    pub head_seq: Option<u64>,
    /// The message it was forked at.
    pub fork_seq: Option<u64>,
    /// Seq of the event that created it.
    pub created_seq: u64,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageView {
    /// Seq (message id).
    pub seq: u64,
    /// Previous message on its branch.
    pub parent_seq: Option<u64>,
    /// Branch it was written on.
    pub branch: String,
    /// `user`, `assistant`, or `context` (a group message that asked for no answer).
    pub role: String,
    /// Channel.
    pub channel: String,
    /// Sender (user) or recipient (assistant) address.
    pub address: String,
    /// Text.
    pub text: String,
    /// Time (unix ms).
    pub ts_ms: i64,
}

/// A compaction marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompactionView {
    /// Seq of `SessionCompacted`.
    pub seq: u64,
    /// Branch.
    pub branch: String,
    /// Last message the summary covers.
    pub covers_through: u64,
    /// Summary.
    pub summary: String,
}

/// A `messages` row as a view.
fn message_of(seq: u64, r: &Row) -> MessageView {
    MessageView {
        seq,
        parent_seq: int(r, 3),
        branch: text(r, 2),
        role: text(r, 4),
        channel: text(r, 5),
        address: text(r, 6),
        text: text(r, 7),
        ts_ms: super::rows::signed(r, 8).unwrap_or(0),
    }
}

/// Every session, by id.
pub fn sessions(t: &MemoryTables) -> Vec<SessionView> {
    t.rows(SESSIONS.name)
        .iter()
        .map(|r| SessionView {
            session_id: text(r, 0),
            identity: text(r, 1),
            agent: text(r, 2),
            active_branch: text(r, 3),
            started_seq: int(r, 4).unwrap_or(0),
            last_seq: int(r, 5).unwrap_or(0),
            messages: int(r, 6).unwrap_or(0),
        })
        .collect()
}

/// The branches of one session, by name.
pub fn branches(t: &MemoryTables, session_id: &str) -> Vec<BranchView> {
    t.rows(BRANCHES.name)
        .iter()
        .filter(|r| text(r, 0) == session_id)
        .map(|r| BranchView {
            name: text(r, 1),
            head_seq: int(r, 2),
            fork_seq: int(r, 3),
            created_seq: int(r, 4).unwrap_or(0),
        })
        .collect()
}

/// The transcript of a branch: its head and every ancestor, oldest first.
pub fn transcript(t: &MemoryTables, session_id: &str, branch: &str) -> Vec<MessageView> {
    let Some(head) = branches(t, session_id)
        .into_iter()
        .find(|b| b.name == branch)
        .and_then(|b| b.head_seq)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut next = Some(head);
    while let Some(seq) = next {
        let Some(r) = message_row(t, seq) else {
            break;
        };
        if text(r, 1) != session_id {
            break;
        }
        let m = message_of(seq, r);
        next = m.parent_seq.filter(|p| *p < seq);
        out.push(m);
    }
    out.reverse();
    out
}

/// The `messages` row with this seq.
fn message_row(t: &MemoryTables, seq: u64) -> Option<&Row> {
    t.tables
        .get(MESSAGES.name)?
        .get(&vec![Value::Int(seq as i64)])
}

/// Compaction markers of a branch, oldest first.
pub fn compactions(t: &MemoryTables, session_id: &str, branch: &str) -> Vec<CompactionView> {
    t.rows(COMPACTIONS.name)
        .iter()
        .filter(|r| text(r, 1) == session_id && text(r, 2) == branch)
        .map(|r| CompactionView {
            seq: int(r, 0).unwrap_or(0),
            branch: text(r, 2),
            covers_through: int(r, 3).unwrap_or(0),
            summary: text(r, 4),
        })
        .collect()
}

/// The live rows of one session (session, branches, messages, compactions).
pub async fn load_session(
    pool: &SqlitePool,
    session_id: &str,
) -> Result<MemoryTables, ProjectionError> {
    let mut out = MemoryTables::default();
    let id = [Value::from(session_id)];
    for table in [&SESSIONS, &BRANCHES, &MESSAGES, &COMPACTIONS] {
        load_rows(pool, &mut out, table, "session_id = ?", &id).await?;
    }
    Ok(out)
}

/// Every live session row.
pub async fn load_sessions(pool: &SqlitePool) -> Result<Vec<SessionView>, ProjectionError> {
    Ok(sessions(
        &super::rows::load_tables(pool, &[&SESSIONS]).await?,
    ))
}

/// One live session, if it exists.
pub async fn load_session_view(
    pool: &SqlitePool,
    session_id: &str,
) -> Result<Option<SessionView>, ProjectionError> {
    let t = load_matching(pool, &SESSIONS, "session_id", session_id.into()).await?;
    Ok(sessions(&t).into_iter().next())
}

/// The live branches of one session, by name (without loading its messages).
pub async fn load_branches(
    pool: &SqlitePool,
    session_id: &str,
) -> Result<Vec<BranchView>, ProjectionError> {
    let t = load_matching(pool, &BRANCHES, "session_id", session_id.into()).await?;
    Ok(branches(&t, session_id))
}

/// The identity and agent a session belongs to.
pub fn session_owner_in(t: &MemoryTables, session_id: &str) -> Option<(String, String)> {
    t.tables
        .get(SESSIONS.name)?
        .get(&vec![Value::from(session_id)])
        .map(|r| (text(r, 1), text(r, 2)))
}

/// The identity and agent of a live session (`None`: no such session).
pub async fn session_owner(
    pool: &SqlitePool,
    session_id: &str,
) -> Result<Option<(String, String)>, ProjectionError> {
    // On every turn's path: the two columns, typed.
    Ok(sqlx::query_as(
        "SELECT coalesce(identity, ''), coalesce(agent, '') FROM sessions WHERE session_id = ?",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await?)
}

/// A message with the session it belongs to.
pub fn message_in(t: &MemoryTables, seq: u64) -> Option<(String, MessageView)> {
    message_row(t, seq).map(|r| (text(r, 1), message_of(seq, r)))
}

/// A live message with the session it belongs to (`None`: `seq` is not a message).
pub async fn message(
    pool: &SqlitePool,
    seq: u64,
) -> Result<Option<(String, MessageView)>, ProjectionError> {
    let t = load_matching(pool, &MESSAGES, "seq", Value::from(seq)).await?;
    Ok(message_in(&t, seq))
}

/// The branch message `seq` was written on.
pub fn message_branch_in(t: &MemoryTables, seq: u64) -> Option<String> {
    message_row(t, seq).map(|r| text(r, 2))
}

/// The branch live message `seq` was written on (`None`: `seq` is not a message).
pub async fn message_branch(
    pool: &SqlitePool,
    seq: u64,
) -> Result<Option<String>, ProjectionError> {
    let branch: Option<String> = sqlx::query_scalar("SELECT branch FROM messages WHERE seq = ?")
        .bind(seq as i64)
        .fetch_optional(pool)
        .await?;
    Ok(branch)
}

/// Number of messages of a session on all its branches.
pub fn message_count_in(t: &MemoryTables, session_id: &str) -> u64 {
    t.rows(MESSAGES.name)
        .iter()
        .filter(|r| text(r, 1) == session_id)
        .count() as u64
}

/// Number of live messages of a session on all its branches (a count over `messages`,
/// not the `sessions` row's counter).
pub async fn message_count(pool: &SqlitePool, session_id: &str) -> Result<u64, ProjectionError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE session_id = ?")
        .bind(session_id)
        .fetch_one(pool)
        .await?;
    Ok(n.max(0) as u64)
}

/// Where the person of a session last wrote from: (channel, address) of its newest user
/// message that did not come through an internal `@` channel (`@cron`, `@hooks`, `@admin`).
pub fn last_user_route_in(t: &MemoryTables, session_id: &str) -> Option<(String, String)> {
    t.rows(MESSAGES.name)
        .iter()
        .rev()
        .find(|r| text(r, 1) == session_id && text(r, 4) == "user" && !text(r, 5).starts_with('@'))
        .map(|r| (text(r, 5), text(r, 6)))
}

/// [`last_user_route_in`] over the live tables.
pub async fn last_user_route(
    pool: &SqlitePool,
    session_id: &str,
) -> Result<Option<(String, String)>, ProjectionError> {
    let last: Option<(String, String)> = sqlx::query_as(
        "SELECT channel, address FROM messages WHERE session_id = ? AND role = 'user' \
         AND channel NOT LIKE '@%' ORDER BY seq DESC LIMIT 1",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await?;
    Ok(last)
}

/// The newest compaction of a session whose covered message is one of `ancestors` (the
/// messages of a context), as (covers_through, summary): the summary a turn with that
/// context starts from.
pub fn latest_compaction_in(
    t: &MemoryTables,
    session_id: &str,
    ancestors: &[u64],
) -> Option<(u64, String)> {
    t.rows(COMPACTIONS.name)
        .iter()
        .rev()
        .filter(|r| text(r, 1) == session_id)
        .map(|r| (int(r, 3).unwrap_or(0), text(r, 4)))
        .find(|(c, _)| ancestors.contains(c))
}

/// [`latest_compaction_in`] over the live tables.
pub async fn latest_compaction(
    pool: &SqlitePool,
    session_id: &str,
    ancestors: &[u64],
) -> Result<Option<(u64, String)>, ProjectionError> {
    // On every turn's path: the two columns, typed, newest first (key order of the
    // rows `latest_compaction_in` walks backwards).
    let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT covers_through, summary FROM compactions WHERE session_id = ? ORDER BY seq DESC",
    )
    .bind(session_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(c, s)| (c.max(0) as u64, s.unwrap_or_default()))
        .find(|(c, _)| ancestors.contains(c)))
}

/// The ancestors of message `seq` (itself included), oldest first, at most `limit` of
/// them: the context a turn triggered by `seq` sees. Walks parent pointers in SQL, so its
/// cost follows `limit`, not the size of the session.
pub async fn ancestors(
    pool: &SqlitePool,
    seq: u64,
    limit: u32,
) -> Result<Vec<MessageView>, ProjectionError> {
    type Row = (
        i64,
        String,
        Option<i64>,
        String,
        String,
        String,
        String,
        i64,
    );
    // This runs at the start of every turn. The chain comes back as one JSON array in one
    // row: sqlx hands rows over one by one between threads, which cost more than the
    // query itself for a 200-message context.
    let json: Option<String> = sqlx::query_scalar(
        "WITH RECURSIVE chain(seq, parent, depth) AS ( \
           SELECT seq, parent_seq, 1 FROM messages WHERE seq = ?1 \
           UNION ALL \
           SELECT m.seq, m.parent_seq, c.depth + 1 FROM messages m JOIN chain c \
             ON m.seq = c.parent WHERE c.depth < ?2) \
         SELECT json_group_array(json_array(m.seq, m.branch, m.parent_seq, m.role, m.channel, \
           m.address, m.text, m.ts_ms) ORDER BY m.seq) \
         FROM messages m JOIN chain c ON m.seq = c.seq",
    )
    .bind(seq as i64)
    .bind(limit as i64)
    .fetch_one(pool)
    .await?;
    let rows: Vec<Row> = match json {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| ProjectionError::View(format!("ancestors of message {seq}: {e}")))?,
        None => Vec::new(),
    };
    Ok(rows
        .into_iter()
        .map(
            |(seq, branch, parent, role, channel, address, text, ts_ms)| MessageView {
                seq: seq as u64,
                parent_seq: parent.map(|p| p as u64),
                branch,
                role,
                channel,
                address,
                text,
                ts_ms,
            },
        )
        .collect())
}
