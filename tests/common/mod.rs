//! Helpers shared by the whole-system tests: real SQLite files in temp dirs, raw
//! connections that bypass the store, table dumps, event builders and the real binary.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clawos_events::hash::{self, HashInput};
use clawos_events::{
    AgentTurnFailed, AgentTurnFinished, AgentTurnStarted, BindingRemoved, BindingScope, BindingSet,
    BranchCreated, BranchSwitched, ChannelExited, ChannelStarted, DeliveryAcked, Durability,
    IdentityLinked, LlmRequested, LlmResponded, LogStore, MessageReceived, MessageSent, NewEvent,
    SessionCompacted, SessionStarted, ToolCallRequest, ToolCalled, ToolReturned,
};
use clawos_projections::{projection, MemoryTables, Row, Table};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool};
use sqlx::{ConnectOptions, Connection, Row as _};
use uuid::Uuid;

/// A state folder in a temp dir, laid out like `clawos --home DIR` expects.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Home {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// The log file (`clawos.db`), as `clawos_replay::Home` names it.
    pub fn log(&self) -> PathBuf {
        clawos_replay::Home::new(self.path()).log_path()
    }
    /// The projection file (`projections.db`).
    pub fn projections(&self) -> PathBuf {
        clawos_replay::Home::new(self.path()).projections_path()
    }
    /// Another file in the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }
}

/// Open the log with `synchronous=NORMAL` (fast; the crash test uses the binary instead).
pub async fn open_log(path: &Path) -> LogStore {
    LogStore::open(path, Durability::Normal)
        .await
        .expect("open log")
}

/// Open (create, migrate) a projection database.
pub async fn open_projections(path: &Path) -> SqlitePool {
    clawos_projections::sql::open(path)
        .await
        .expect("open projections")
}

/// A plain sqlx connection to a database file: no store, no writer, no pragmas beyond the
/// file's own (WAL is persistent in the file).
pub async fn raw_conn(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .expect("raw connection")
}

/// Every table of every projection.
pub fn all_tables() -> Vec<&'static Table> {
    projection::all()
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect()
}

/// Tables with their rows, empty tables left out (so a dump of SQLite, where every table
/// exists, compares with in-memory tables, where only touched tables exist).
pub type Tables = BTreeMap<String, BTreeMap<Row, Row>>;

pub fn non_empty(t: &MemoryTables) -> Tables {
    t.tables
        .iter()
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(n, rows)| (n.clone(), rows.clone()))
        .collect()
}

/// Dump every projection table of a projection database.
pub async fn dump_all(pool: &SqlitePool) -> Tables {
    let t = clawos_projections::sql::dump(pool, &all_tables())
        .await
        .expect("dump");
    non_empty(&t)
}

/// Every checkpoint row: (name, seq, state bytes).
pub async fn checkpoints(pool: &SqlitePool) -> Vec<(String, i64, Vec<u8>)> {
    sqlx::query_as("SELECT name, seq, state FROM projection_checkpoints ORDER BY name")
        .fetch_all(pool)
        .await
        .expect("checkpoints")
}

/// Every row of `events` as raw column values, in seq order (for byte comparisons).
pub type RawEvent = (
    i64,
    Vec<u8>,
    String,
    i64,
    i64,
    String,
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<String>,
    Vec<u8>,
    Vec<u8>,
);

pub async fn raw_events(conn: &mut SqliteConnection) -> Vec<RawEvent> {
    sqlx::query_as(
        "SELECT seq, id, stream, stream_version, ts_ms, kind, schema_version, causation_id, \
         correlation_id, dedupe_key, payload, hash FROM events ORDER BY seq",
    )
    .fetch_all(conn)
    .await
    .expect("raw events")
}

/// Insert one row into `events` behind the store's back, correctly hash-chained and with
/// the next seq and stream version, so that only its kind/version/payload is unusual. The
/// store must be closed (its writer caches the head). Returns the seq.
pub async fn raw_append(
    path: &Path,
    stream: &str,
    kind: &str,
    schema_version: u16,
    payload: &[u8],
) -> u64 {
    let mut conn = raw_conn(path).await;
    let last: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    let (prev_seq, prev_hash) = match last {
        Some((s, h)) => (s as u64, <[u8; 32]>::try_from(h).unwrap()),
        None => (0, hash::GENESIS),
    };
    let version: Option<i64> =
        sqlx::query_scalar("SELECT MAX(stream_version) FROM events WHERE stream = ?")
            .bind(stream)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let seq = prev_seq + 1;
    let version = version.unwrap_or(0) as u64 + 1;
    let id = Uuid::now_v7();
    let ts_ms = 1_700_000_000_000i64;
    let h = hash::chain(
        &prev_hash,
        &HashInput {
            seq,
            id: &id,
            stream,
            stream_version: version,
            ts_ms,
            kind,
            schema_version,
            causation_id: None,
            correlation_id: None,
            dedupe_key: None,
            payload,
        },
    );
    sqlx::query(
        "INSERT INTO events (seq, id, stream, stream_version, ts_ms, kind, schema_version, \
         causation_id, correlation_id, dedupe_key, payload, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?)",
    )
    .bind(seq as i64)
    .bind(id.as_bytes().as_slice())
    .bind(stream)
    .bind(version as i64)
    .bind(ts_ms)
    .bind(kind)
    .bind(schema_version as i64)
    .bind(payload)
    .bind(h.as_slice())
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    seq
}

/// Names of the triggers on `events`.
pub async fn trigger_names(conn: &mut SqliteConnection) -> Vec<String> {
    sqlx::query("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
        .fetch_all(conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

/// The real `clawos` binary, with no `CLAWOS_*` variables leaking in from the environment.
pub fn clawos(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_clawos"));
    c.env_remove("CLAWOS_HOME")
        .env_remove("CLAWOS_DURABILITY")
        .env_remove("CLAWOS_LOG")
        .arg("--home")
        .arg(home);
    c
}

/// Run the binary to completion: (exit success, stdout, stderr).
pub fn run_clawos(home: &Path, args: &[&str]) -> (bool, String, String) {
    let out = clawos(home).args(args).output().expect("run clawos");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A small deterministic PRNG (xorshift64*), seeded from the clock unless given.
pub struct Rng(u64);

impl Rng {
    pub fn from_time() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng::seeded(nanos)
    }
    pub fn seeded(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-ish in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

// ---- event builders -------------------------------------------------------------------

pub fn started(session: &str, identity: &str, agent: &str) -> NewEvent {
    NewEvent::new(SessionStarted {
        session_id: session.into(),
        identity: identity.into(),
        agent: agent.into(),
    })
}

pub fn received(
    channel: &str,
    external_id: &str,
    sender: &str,
    text: &str,
    branch: &str,
) -> MessageReceived {
    MessageReceived {
        channel: channel.into(),
        external_id: external_id.into(),
        sender: sender.into(),
        chat: None,
        text: text.into(),
        attachments: vec![],
        branch: branch.into(),
        sent_at_ms: 1_000,
        addressed: true,
    }
}

/// A `MessageReceived` carrying its inbound dedupe key, as the kernel appends it.
pub fn inbound(
    channel: &str,
    external_id: &str,
    sender: &str,
    text: &str,
    branch: &str,
) -> NewEvent {
    NewEvent::new(received(channel, external_id, sender, text, branch))
        .dedupe(clawos_events::inbound_dedupe_key(channel, external_id))
}

pub fn sent(
    delivery: Uuid,
    channel: &str,
    to: &str,
    text: &str,
    branch: &str,
    reply_to: Option<u64>,
) -> NewEvent {
    NewEvent::new(MessageSent {
        delivery_id: delivery,
        agent: "pi".into(),
        branch: branch.into(),
        channel: channel.into(),
        to: to.into(),
        chat: None,
        text: text.into(),
        in_reply_to: reply_to,
        reply_key: None,
        attachments: vec![],
    })
}

pub fn acked(channel: &str, delivery: Uuid) -> NewEvent {
    NewEvent::new(DeliveryAcked {
        channel: channel.into(),
        delivery_id: delivery,
    })
}

pub fn branch_created(name: &str, at: Option<u64>, switch: bool) -> NewEvent {
    NewEvent::new(BranchCreated {
        branch: name.into(),
        at_message: at,
        switch_to: switch,
    })
}

pub fn branch_switched(name: &str) -> NewEvent {
    NewEvent::new(BranchSwitched {
        branch: name.into(),
    })
}

pub fn compacted(branch: &str, through: u64, summary: &str) -> NewEvent {
    NewEvent::new(SessionCompacted {
        branch: branch.into(),
        covers_through: through,
        summary: summary.into(),
        model: "summarizer-1".into(),
    })
}

pub fn linked(identity: &str, address: &str) -> NewEvent {
    NewEvent::new(IdentityLinked {
        identity: identity.into(),
        address: address.into(),
    })
}

pub fn binding_set(id: &str, agent: &str, chat: Option<&str>, priority: i32) -> NewEvent {
    NewEvent::new(BindingSet {
        binding_id: id.into(),
        agent: agent.into(),
        scope: BindingScope {
            chat: chat.map(String::from),
            ..BindingScope::default()
        },
        priority,
    })
}

pub fn binding_removed(id: &str) -> NewEvent {
    NewEvent::new(BindingRemoved {
        binding_id: id.into(),
    })
}

pub fn channel_started(channel: &str, pid: u32) -> NewEvent {
    NewEvent::new(ChannelStarted {
        channel: channel.into(),
        kind: "terminal".into(),
        pid,
    })
}

pub fn channel_exited(channel: &str, code: Option<i32>, signal: Option<i32>) -> NewEvent {
    NewEvent::new(ChannelExited {
        channel: channel.into(),
        code,
        signal,
        reason: "test".into(),
    })
}

pub fn turn_started(turn: Uuid, branch: &str, trigger: u64) -> NewEvent {
    NewEvent::new(AgentTurnStarted {
        turn_id: turn,
        agent: "pi".into(),
        branch: branch.into(),
        trigger_seq: trigger,
    })
}

pub fn llm_requested(turn: Uuid) -> NewEvent {
    NewEvent::new(LlmRequested {
        turn_id: turn,
        provider: "openai".into(),
        model: "gpt-test".into(),
        request: r#"{"messages":[]}"#.into(),
        request_bytes: 15,
        tools: vec!["shell".into()],
    })
}

pub fn llm_responded(turn: Uuid, content: &str, tool: Option<&str>) -> NewEvent {
    NewEvent::new(LlmResponded {
        turn_id: turn,
        content: content.into(),
        tool_calls: tool
            .map(|t| {
                vec![ToolCallRequest {
                    call_id: "c1".into(),
                    tool: t.into(),
                    arguments: "{}".into(),
                }]
            })
            .unwrap_or_default(),
        prompt_tokens: 10,
        completion_tokens: 5,
        latency_ms: 100,
    })
}

pub fn tool_called(turn: Uuid, call: &str, tool: &str) -> NewEvent {
    NewEvent::new(ToolCalled {
        turn_id: turn,
        call_id: call.into(),
        tool: tool.into(),
        arguments: r#"{"cmd":"date"}"#.into(),
    })
}

pub fn tool_returned(turn: Uuid, call: &str, output: &str, status: i32) -> NewEvent {
    NewEvent::new(ToolReturned {
        turn_id: turn,
        call_id: call.into(),
        output: output.into(),
        exit_status: status,
        duration_ms: 7,
    })
}

pub fn turn_finished(turn: Uuid, steps: u32) -> NewEvent {
    NewEvent::new(AgentTurnFinished {
        turn_id: turn,
        steps,
    })
}

pub fn turn_failed(turn: Uuid, reason: &str) -> NewEvent {
    NewEvent::new(AgentTurnFailed {
        turn_id: turn,
        reason: reason.into(),
    })
}
