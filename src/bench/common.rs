//! What the benchmarks share: synthetic logs, percentiles, a scratch folder, and a Gateway
//! process started from this executable.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clawos_events::{
    stream, AgentTurnFinished, AgentTurnStarted, DeliveryAcked, Durability, ExpectedVersion,
    LlmRequested, LlmResponded, LogStore, MessageReceived, MessageSent, NewEvent, SessionStarted,
    ToolCallRequest, ToolCalled, ToolReturned,
};
use uuid::Uuid;

/// The events of one synthetic agent turn: a message, an LLM call with one tool call, the
/// tool, a second LLM call, the reply and its delivery ack (11 events). `first_seq` is the
/// seq the message will get, so the turn names it as its trigger and the reply answers
/// it, as in a real log (a turn that names no trigger leaves its message unanswered, and
/// a Gateway started on such a log would re-run it).
pub(super) fn synthetic_turn(session: &str, n: u64, first_seq: u64) -> Vec<NewEvent> {
    let turn = Uuid::now_v7();
    let delivery = Uuid::now_v7();
    let text = format!("message {n} of {session}: could you look up the weather for tomorrow and remind me at eight?");
    vec![
        NewEvent::new(MessageReceived {
            channel: "terminal".into(),
            external_id: format!("{session}-{n}"),
            sender: format!("terminal:{session}"),
            chat: None,
            text: text.clone(),
            attachments: vec![],
            branch: "main".into(),
            sent_at_ms: n as i64,
            addressed: true,
        }),
        NewEvent::new(AgentTurnStarted {
            turn_id: turn,
            agent: "pi".into(),
            branch: "main".into(),
            trigger_seq: first_seq,
        }),
        NewEvent::new(LlmRequested {
            turn_id: turn,
            provider: "openai".into(),
            model: "gpt-test".into(),
            request: "x".repeat(480),
            request_bytes: 480,
            tools: vec!["fs".into(), "shell".into(), "memory".into()],
        }),
        NewEvent::new(LlmResponded {
            turn_id: turn,
            content: String::new(),
            tool_calls: vec![ToolCallRequest {
                call_id: "c1".into(),
                tool: "shell".into(),
                arguments: r#"{"cmd":"weather tomorrow"}"#.into(),
            }],
            prompt_tokens: 120,
            completion_tokens: 12,
            latency_ms: 350,
        }),
        NewEvent::new(ToolCalled {
            turn_id: turn,
            call_id: "c1".into(),
            tool: "shell".into(),
            arguments: r#"{"cmd":"weather tomorrow"}"#.into(),
        }),
        NewEvent::new(ToolReturned {
            turn_id: turn,
            call_id: "c1".into(),
            output: "sunny, 21C".into(),
            exit_status: 0,
            duration_ms: 40,
        }),
        NewEvent::new(LlmRequested {
            turn_id: turn,
            provider: "openai".into(),
            model: "gpt-test".into(),
            request: "y".repeat(520),
            request_bytes: 520,
            tools: vec!["fs".into(), "shell".into(), "memory".into()],
        }),
        NewEvent::new(LlmResponded {
            turn_id: turn,
            content: "Tomorrow will be sunny, 21C. I will remind you at eight.".into(),
            tool_calls: vec![],
            prompt_tokens: 150,
            completion_tokens: 20,
            latency_ms: 420,
        }),
        NewEvent::new(MessageSent {
            delivery_id: delivery,
            agent: "pi".into(),
            branch: "main".into(),
            channel: "terminal".into(),
            to: format!("terminal:{session}"),
            chat: None,
            text: "Tomorrow will be sunny, 21C. I will remind you at eight.".into(),
            in_reply_to: Some(first_seq),
            reply_key: None,
            attachments: vec![],
        }),
        NewEvent::new(AgentTurnFinished {
            turn_id: turn,
            steps: 2,
        }),
        NewEvent::new(DeliveryAcked {
            channel: "terminal".into(),
            delivery_id: delivery,
        }),
    ]
}

/// The start of a synthetic session.
pub(super) fn synthetic_start(session: &str) -> NewEvent {
    NewEvent::new(SessionStarted {
        session_id: session.into(),
        identity: format!("terminal:{session}"),
        agent: "pi".into(),
    })
}

/// Start `sessions` synthetic sessions (`s0`, `s1`, ...) and append synthetic turns to
/// them, ten turns a commit, until the log holds about `up_to` events.
pub(super) async fn fill_synthetic(store: &LogStore, sessions: u64, up_to: u64) -> Result<()> {
    for s in 0..sessions {
        let id = format!("s{s}");
        store
            .append(
                &stream::session(&id),
                ExpectedVersion::NoStream,
                vec![synthetic_start(&id)],
            )
            .await?;
    }
    // One appender, so each batch's seqs follow the head and every turn can name the seq
    // of its message (checked after each append).
    let batches = up_to.saturating_sub(store.head()) / 110;
    for i in 0..batches {
        let id = format!("s{}", i % sessions);
        let first = store.head() + 1;
        let mut batch = Vec::with_capacity(110);
        for k in 0..10 {
            batch.extend(synthetic_turn(&id, i * 10 + k, first + k * 11));
        }
        let appended = store
            .append(&stream::session(&id), ExpectedVersion::Any, batch)
            .await?;
        anyhow::ensure!(
            appended.first_seq == first,
            "another process appended to the benchmark's log while it was being filled"
        );
    }
    Ok(())
}

/// The `p` quantile of sorted durations.
pub(super) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A fresh scratch folder under the system's temporary folder.
pub(super) fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("clawos-bench-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The webhook channel's secret in benchmark configurations.
pub(super) const SECRET: &str = "bench-secret-0123456789";

/// The bot's account (IRC nick) the channel benchmark expects on a chat server.
pub(super) const BOT: &str = "benchbot";
/// The person talking to it there.
pub(super) const PERSON: &str = "benchuser";
/// Both accounts' password.
pub(super) const PASSWORD: &str = "bench-password-123";

/// A free loopback port.
pub(super) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A Gateway process, stopped (SIGTERM) when dropped.
pub(super) struct Gateway {
    pub(super) child: Child,
    pub(super) addr: SocketAddr,
    /// The webhook channel's address, when it has one.
    pub(super) hook: Option<SocketAddr>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        unsafe_kill(self.child.id(), 15);
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32, signal: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// `clawos.toml` with the echo agent (and a webhook channel on `hook`).
pub(super) fn write_config(
    home: &Path,
    durability: Durability,
    hook: Option<SocketAddr>,
) -> Result<()> {
    std::fs::create_dir_all(home)?;
    let d = match durability {
        Durability::Full => "full",
        Durability::Normal => "normal",
    };
    let mut cfg = format!(
        "[gateway]\ndurability = \"{d}\"\ndefault_agent = \"echo\"\n\n[agents.echo]\nkind = \"echo\"\n"
    );
    if let Some(h) = hook {
        cfg.push_str(&format!(
            "\n[channels.hooks]\nkind = \"webhook\"\nlisten = \"{h}\"\nsecret = \"{SECRET}\"\ndm_policy = \"open\"\n"
        ));
    }
    std::fs::write(home.join("clawos.toml"), cfg)?;
    Ok(())
}

/// Start `clawos gateway` in `home`; returns once it listens, with how long that took.
pub(super) fn start(
    exe: &Path,
    home: &Path,
    hook: Option<SocketAddr>,
) -> Result<(Gateway, Duration)> {
    let port = free_port()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let t = Instant::now();
    let child = Command::new(exe)
        .arg("--home")
        .arg(home)
        .arg("gateway")
        .arg("--listen")
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("gateway did not listen within 30 s");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let took = t.elapsed();
    Ok((Gateway { child, addr, hook }, took))
}
