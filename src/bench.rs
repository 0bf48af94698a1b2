//! `clawos bench log`: the log and projection benchmarks of BENCHMARKS.md. Every figure is
//! paired with a baseline measured in the same run on the same machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Subcommand;
use clawos_events::{
    connect_options, stream, AgentTurnFinished, AgentTurnStarted, DeliveryAcked, Durability,
    ExpectedVersion, LlmRequested, LlmResponded, LogStore, MessageReceived, MessageSent, NewEvent,
    SessionStarted, ToolCallRequest, ToolCalled, ToolReturned,
};
use clawos_replay::{rebuild, state_at, Home};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use uuid::Uuid;

/// `clawos bench ...`
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Append throughput and latency, rebuild and state-at.
    Log {
        /// Events in the rebuild log.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Appends per throughput run.
        #[arg(long, default_value_t = 20_000)]
        appends: u64,
        /// Durability mode to measure.
        #[arg(long, default_value = "full")]
        durability: Durability,
    },
    /// The size of Pi's request for a one-word message.
    Prompt,
    /// Tokens per second of the local GGUF provider.
    Local {
        /// The .gguf file.
        model: std::path::PathBuf,
        /// Tokens to generate.
        #[arg(long, default_value_t = 64)]
        tokens: usize,
    },
    /// The overhead of one agent turn outside the LLM in a long session.
    Turn {
        /// Messages already in the session.
        #[arg(long, default_value_t = 10_000)]
        messages: u64,
        /// Timed turns.
        #[arg(long, default_value_t = 300)]
        turns: u64,
        /// Durability mode of the Gateway.
        #[arg(long, default_value = "full")]
        durability: Durability,
    },
    /// Latency of the admin API's first event page and state-at on a big log.
    Admin {
        /// Events in the log.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Requests per measured endpoint (the whole-log state-at runs 3 times).
        #[arg(long, default_value_t = 30)]
        requests: usize,
    },
    /// Start time, round trips through a webhook channel process, memory.
    Gateway {
        /// Messages per round-trip run.
        #[arg(long, default_value_t = 2000)]
        messages: u64,
        /// Offered rate of the round-trip run (messages/s).
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Events in the big log for the start-time measurement.
        #[arg(long, default_value_t = 1_000_000)]
        big_log: u64,
    },
    /// Memory recall latency over a large index, rebuild throughput.
    Memory {
        /// Memories in the index.
        #[arg(long, default_value_t = 100_000)]
        memories: u64,
        /// Recalls measured.
        #[arg(long, default_value_t = 200)]
        queries: u64,
    },
}

/// Run a benchmark.
pub async fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Log {
            events,
            appends,
            durability,
        } => bench_log(events, appends, durability).await,
        BenchCommand::Prompt => bench_prompt(),
        BenchCommand::Local { model, tokens } => {
            let t = clawos_agents::provider::local::bench(&model, tokens).await?;
            println!(
                "| local model | load | tokens generated | tokens/s |\n|---|---:|---:|---:|\n| {} | {:.2} s | {} | {:.1} |",
                model.display(),
                t.load_secs,
                t.completion_tokens,
                t.tokens_per_second()
            );
            Ok(())
        }
        BenchCommand::Gateway {
            messages,
            rate,
            big_log,
        } => crate::bench_gateway::bench_gateway(messages, rate, big_log).await,
        BenchCommand::Turn {
            messages,
            turns,
            durability,
        } => crate::bench_turn::bench_turn(messages, turns, durability).await,
        BenchCommand::Memory { memories, queries } => {
            crate::bench_memory::bench_memory(memories, queries).await
        }
        BenchCommand::Admin { events, requests } => {
            crate::bench_admin::bench_admin(events, requests).await
        }
    }
}

/// The events of one synthetic agent turn: a message, an LLM call with one tool call, the
/// tool, a second LLM call, the reply and its delivery ack (11 events). `first_seq` is the
/// seq the message will get, so the turn names it as its trigger and the reply answers
/// it, as in a real log (a turn that names no trigger leaves its message unanswered, and
/// a Gateway started on such a log would re-run it).
pub fn synthetic_turn(session: &str, n: u64, first_seq: u64) -> Vec<NewEvent> {
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
pub fn synthetic_start(session: &str) -> NewEvent {
    NewEvent::new(SessionStarted {
        session_id: session.into(),
        identity: format!("terminal:{session}"),
        agent: "pi".into(),
    })
}

/// Start `sessions` synthetic sessions (`s0`, `s1`, ...) and append synthetic turns to
/// them, ten turns a commit, until the log holds about `up_to` events.
pub async fn fill_synthetic(store: &LogStore, sessions: u64, up_to: u64) -> Result<()> {
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
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// A same-shaped table in its own file, written with a plain sqlx loop.
struct Baseline {
    conn: SqliteConnection,
    next: i64,
    payload: Vec<u8>,
}

impl Baseline {
    async fn open(dir: &std::path::Path, durability: Durability) -> Result<Self> {
        let mut conn = connect_options(&dir.join("baseline.db"), durability)
            .connect()
            .await?;
        sqlx::query(
            "CREATE TABLE rows (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, \
             stream TEXT NOT NULL, stream_version INTEGER NOT NULL, ts_ms INTEGER NOT NULL, \
             kind TEXT NOT NULL, schema_version INTEGER NOT NULL, causation_id BLOB, \
             correlation_id BLOB, dedupe_key TEXT, payload BLOB NOT NULL, hash BLOB NOT NULL, \
             UNIQUE (stream, stream_version))",
        )
        .execute(&mut conn)
        .await?;
        let payload = NewEvent::new(clawos_events::IdentityLinked {
            identity: "person-0".into(),
            address: "bench:0-00000@bench".into(),
        })
        .payload
        .encode()?;
        Ok(Baseline {
            conn,
            next: 0,
            payload,
        })
    }

    /// One transaction of `rows` inserts.
    async fn commit(&mut self, rows: usize) -> Result<()> {
        let mut tx = self.conn.begin().await?;
        for _ in 0..rows {
            self.next += 1;
            sqlx::query(
                "INSERT INTO rows (seq, id, stream, stream_version, ts_ms, kind, schema_version, \
                 causation_id, correlation_id, dedupe_key, payload, hash) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(self.next)
            .bind(Uuid::now_v7().as_bytes().as_slice())
            .bind("identity:person-0")
            .bind(self.next)
            .bind(0i64)
            .bind("IdentityLinked")
            .bind(1i64)
            .bind(Option::<&[u8]>::None)
            .bind(Option::<&[u8]>::None)
            .bind(Option::<&str>::None)
            .bind(self.payload.as_slice())
            .bind([7u8; 32].as_slice())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn append_throughput(store: &LogStore, concurrency: usize, total: u64) -> Result<f64> {
    let per_task = total / concurrency as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = stream::identity(&format!("bench-{t}"));
            for i in 0..per_task {
                store
                    .append(
                        &stream,
                        ExpectedVersion::Any,
                        vec![NewEvent::new(clawos_events::IdentityLinked {
                            identity: format!("person-{t}"),
                            address: format!("bench:{t}-{i:05}@bench"),
                        })],
                    )
                    .await?;
            }
            Ok::<(), clawos_events::LogError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((per_task * concurrency as u64) as f64 / start.elapsed().as_secs_f64())
}

async fn bench_log(events: u64, appends: u64, durability: Durability) -> Result<()> {
    let dir = tempfile_dir()?;
    println!("# clawos bench log (durability {durability:?}, {events} events for rebuild)\n");

    // 1. Group-committed append throughput against a batched plain-sqlx baseline.
    println!("| appenders | clawos appends/s | baseline rows/s (batch = appenders) | ratio |");
    println!("|---:|---:|---:|---:|");
    for &c in &[1usize, 8, 64] {
        let total = if c == 1 { appends.min(3000) } else { appends };
        let sub = dir.join(format!("tp{c}"));
        std::fs::create_dir_all(&sub)?;
        let store = LogStore::open(sub.join("clawos.db"), durability).await?;
        let ours = append_throughput(&store, c, total).await?;
        store.close().await;
        let mut base = Baseline::open(&sub, durability).await?;
        let start = Instant::now();
        let commits = total / c as u64;
        for _ in 0..commits {
            base.commit(c).await?;
        }
        let theirs = (commits * c as u64) as f64 / start.elapsed().as_secs_f64();
        println!("| {c} | {ours:.0} | {theirs:.0} | {:.2} |", ours / theirs);
    }

    // 2. Single durable append latency against one baseline commit.
    let sub = dir.join("lat");
    std::fs::create_dir_all(&sub)?;
    let store = LogStore::open(sub.join("clawos.db"), durability).await?;
    let n = 2000;
    let mut ours = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        store
            .append_one(
                "identity:lat",
                NewEvent::new(clawos_events::IdentityLinked {
                    identity: "person-0".into(),
                    address: format!("bench:0-{i:05}@bench"),
                }),
            )
            .await?;
        ours.push(t.elapsed());
    }
    store.close().await;
    let mut base = Baseline::open(&sub, durability).await?;
    let mut theirs = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        base.commit(1).await?;
        theirs.push(t.elapsed());
    }
    ours.sort();
    theirs.sort();
    println!("\n| single append | p50 | p99 |");
    println!("|---|---:|---:|");
    println!(
        "| clawos `append` | {} | {} |",
        us(percentile(&ours, 0.5)),
        us(percentile(&ours, 0.99))
    );
    println!(
        "| baseline one-row commit | {} | {} |",
        us(percentile(&theirs, 0.5)),
        us(percentile(&theirs, 0.99))
    );
    println!(
        "| ratio | {:.2} | {:.2} |",
        percentile(&ours, 0.5).as_secs_f64() / percentile(&theirs, 0.5).as_secs_f64(),
        percentile(&ours, 0.99).as_secs_f64() / percentile(&theirs, 0.99).as_secs_f64()
    );

    // 3. Rebuild over a large log; 4. state-at over a 10k-event session.
    let home = Home::new(dir.join("rebuild"));
    let store = home.open_log(Durability::Normal).await?;
    let gen_start = Instant::now();
    let sessions = 1000u64;
    let big = "big-session";
    store
        .append(
            &stream::session(big),
            ExpectedVersion::NoStream,
            vec![synthetic_start(big)],
        )
        .await?;
    // ~10k events in the big session, the rest spread over the others.
    for t in 0..(10_000 / 11) {
        let first = store.head() + 1;
        store
            .append(
                &stream::session(big),
                ExpectedVersion::Any,
                synthetic_turn(big, t, first),
            )
            .await?;
    }
    fill_synthetic(&store, sessions, events).await?;
    let total = store.head();
    println!("\ngenerated {total} events in {:.1?}", gen_start.elapsed());

    let read_start = Instant::now();
    let mut from = 1;
    let mut read = 0u64;
    while from <= total {
        let page = store.read_from(from, 8192).await?;
        for e in &page {
            let _ = e.decode()?;
        }
        read += page.len() as u64;
        from = page.last().map(|e| e.seq + 1).unwrap_or(total + 1);
    }
    let read_rate = read as f64 / read_start.elapsed().as_secs_f64();

    let pool = home.open_projections().await?;
    let report = rebuild::rebuild(&store, &pool, None, |_| {}).await?;
    println!("\n| rebuild over {total} events | events/s | ratio |");
    println!("|---|---:|---:|");
    println!("| baseline: read + decode every event | {read_rate:.0} | 1.00 |");
    println!(
        "| all projections ({} row writes) | {:.0} | {:.2} |",
        report.rows,
        report.events_per_sec(),
        report.events_per_sec() / read_rate
    );

    let mut times = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let s = state_at::state_at(&store, store.head(), Some(big)).await?;
        times.push(t.elapsed());
        std::hint::black_box(s.sessions());
    }
    times.sort();
    let big_events = store.stream_version(&stream::session(big)).await?;
    let t = Instant::now();
    std::hint::black_box(store.read_stream(&stream::session(big), u64::MAX).await?);
    let read_only = t.elapsed();
    println!("\n| state-at over a {big_events}-event session | median | ratio |");
    println!("|---|---:|---:|");
    println!(
        "| baseline: read the session's events | {:.1} ms | 1.00 |",
        read_only.as_secs_f64() * 1e3
    );
    println!(
        "| `state_at(head, session)` with transcript | {:.1} ms | {:.2} |",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() / read_only.as_secs_f64()
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("clawos-bench-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The bytes Pi sends for a one-word message in a fresh session with every skill, for both
/// provider dialects, beside the bare request (the message alone, no system prompt, no
/// tools).
pub fn bench_prompt() -> Result<()> {
    use clawos_agents::pi::Pi;
    use clawos_agents::provider::{build, ChatMessage, ChatRequest, ProviderConfig, ProviderKind};
    use clawos_agents::skills::{fs::FsSkill, shell::ShellPolicy, shell::ShellSkill, SkillSet};
    use clawos_agents::TurnInput;
    let dir = tempfile_dir()?;
    println!("| request for the message \"hi\" | bytes | ~tokens (bytes/4) | ratio to bare |");
    println!("|---|---:|---:|---:|");
    for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
        let config = ProviderConfig {
            kind,
            base_url: "http://127.0.0.1:9".into(),
            model: "model".into(),
            api_key: None,
            timeout: Duration::from_secs(1),
            retries: 0,
            backoff: Duration::from_millis(1),
        };
        let skills = SkillSet::default()
            .with(Arc::new(clawos_agents::skills::memory::MemorySkill))
            .with(Arc::new(clawos_agents::skills::cron::CronSkill))
            .with(Arc::new(clawos_agents::skills::session::SessionSkill))
            .with(Arc::new(FsSkill::new(dir.join("ws"))?))
            .with(Arc::new(ShellSkill::new(
                dir.join("ws"),
                ShellPolicy::Allowlist(vec!["ls".into()]),
                Duration::from_secs(1),
                1024,
            )));
        let pi = Pi::new("pi", build(&config), skills, dir.join("ws"), 8);
        let input = TurnInput {
            turn_id: Uuid::now_v7(),
            session_id: "s".into(),
            branch: "main".into(),
            trigger_seq: 1,
            message: "hi".into(),
            history: vec![],
            summary: None,
        };
        let full = pi.request_body(&pi.first_request(&input)).to_string().len();
        let bare = build(&config)
            .request_body(&ChatRequest {
                system: String::new(),
                messages: vec![ChatMessage::User { text: "hi".into() }],
                tools: vec![],
                max_tokens: None,
            })
            .to_string()
            .len();
        println!(
            "| {kind} bare (message only) | {bare} | {} | 1.00 |",
            bare / 4
        );
        println!(
            "| {kind} Pi: system prompt + 5 skill schemas | {full} | {} | {:.1} |",
            full / 4,
            full as f64 / bare as f64
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
