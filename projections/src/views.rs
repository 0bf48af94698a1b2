//! Views over session rows: the sessions, a session's branches, a branch's transcript.
//!
//! They read [`MemoryTables`], which is either filled from the live projection database
//! ([`load_session`]) or folded from the log up to some seq (time travel), so both paths
//! render through the same code.

use serde::Serialize;
use sqlx::SqlitePool;

use crate::changes::MemoryTables;
use crate::sessions::{BRANCHES, COMPACTIONS, MESSAGES, SESSIONS};
use crate::sql::row_values;
use crate::value::{Row, Table, Value};
use crate::ProjectionError;

fn int(r: &Row, i: usize) -> Option<u64> {
    match r.get(i) {
        Some(Value::Int(v)) => Some(*v as u64),
        _ => None,
    }
}

fn text(r: &Row, i: usize) -> String {
    match r.get(i) {
        Some(Value::Text(s)) => s.clone(),
        _ => String::new(),
    }
}

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
    /// `user` or `assistant`.
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
    let Some(messages) = t.tables.get(MESSAGES.name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut next = Some(head);
    while let Some(seq) = next {
        let Some(r) = messages.get(&vec![Value::Int(seq as i64)]) else {
            break;
        };
        if text(r, 1) != session_id {
            break;
        }
        let m = MessageView {
            seq,
            parent_seq: int(r, 3),
            branch: text(r, 2),
            role: text(r, 4),
            channel: text(r, 5),
            address: text(r, 6),
            text: text(r, 7),
            ts_ms: match r.get(8) {
                Some(Value::Int(v)) => *v,
                _ => 0,
            },
        };
        next = m.parent_seq.filter(|p| *p < seq);
        out.push(m);
    }
    out.reverse();
    out
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

async fn load_where(
    pool: &SqlitePool,
    out: &mut MemoryTables,
    table: &Table,
    column: &str,
    session_id: &str,
) -> Result<(), ProjectionError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE {column} = ?",
        table.columns.join(","),
        table.name
    );
    let rows = sqlx::query(&sql).bind(session_id).fetch_all(pool).await?;
    let map = out.tables.entry(table.name.to_string()).or_default();
    for r in &rows {
        let row = row_values(r, table.columns.len())?;
        map.insert(table.key_of(&row), row);
    }
    Ok(())
}

/// The live rows of one session (session, branches, messages, compactions).
pub async fn load_session(
    pool: &SqlitePool,
    session_id: &str,
) -> Result<MemoryTables, ProjectionError> {
    let mut out = MemoryTables::default();
    load_where(pool, &mut out, &SESSIONS, "session_id", session_id).await?;
    load_where(pool, &mut out, &BRANCHES, "session_id", session_id).await?;
    load_where(pool, &mut out, &MESSAGES, "session_id", session_id).await?;
    load_where(pool, &mut out, &COMPACTIONS, "session_id", session_id).await?;
    Ok(out)
}

/// Every live session row.
pub async fn load_sessions(pool: &SqlitePool) -> Result<Vec<SessionView>, ProjectionError> {
    let rows = crate::sql::dump_table(pool, &SESSIONS).await?;
    let mut t = MemoryTables::default();
    let map = t.tables.entry(SESSIONS.name.to_string()).or_default();
    for r in rows {
        map.insert(SESSIONS.key_of(&r), r);
    }
    Ok(sessions(&t))
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
