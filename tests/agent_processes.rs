//! Agents as processes of their own, end to end: a real Gateway process with Pi isolated
//! (`isolation = "process"`, `clawos agent pi`, bincode frames) on a scripted LLM, the
//! Python example agent (`kind = "process"`, JSON frames), a misbehaving agent, a local
//! model over its memory limit, and an agent left inside the Gateway. One Gateway for the
//! whole binary; each section says what it proves.

#[path = "gateway_common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clawos_events::EventPayload;
use clawos_testkit::fake_llm::{FakeLlm, Step};
use common::*;
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The small GGUF model `tests/fetch-models.sh` puts in `.models/`.
fn gguf() -> PathBuf {
    let path = repo().join(".models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.exists(),
        "the test model is missing: run tests/fetch-models.sh"
    );
    path
}

/// `/api/status`'s entry for agent `name`, once it is `up` (with another pid than `not`).
async fn agent_up(h: &Harness, name: &str, not: Option<u64>, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let status = h.status().await;
        let found = status["agents"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["agent"] == name).cloned());
        if let Some(a) = found {
            if a["state"] == "up" && a["pid"].as_u64() != not {
                return a;
            }
        }
        assert!(
            Instant::now() < deadline,
            "agent {name} is not up within {within:?}: {status}\n{}",
            h.stderr_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether process `pid` holds a TCP connection to `port` (sockets read from `/proc`).
fn connected_to(pid: u64, port: u16) -> bool {
    sockets_of(pid as u32)
        .iter()
        .any(|s| s.proto.starts_with("tcp") && !s.listening && s.remote.port() == port)
}

fn kill9(pid: u64) {
    assert!(signal(pid as u32, "KILL"), "cannot SIGKILL {pid}");
}

/// The turn an event's payload names, if it names one.
fn turn_in(p: &EventPayload) -> Option<uuid::Uuid> {
    Some(match p {
        EventPayload::AgentTurnStarted(x) => x.turn_id,
        EventPayload::LlmRequested(x) => x.turn_id,
        EventPayload::LlmResponded(x) => x.turn_id,
        EventPayload::ToolCalled(x) => x.turn_id,
        EventPayload::ToolReturned(x) => x.turn_id,
        EventPayload::AgentTurnRetried(x) => x.turn_id,
        EventPayload::AgentTurnFinished(x) => x.turn_id,
        EventPayload::AgentTurnFailed(x) => x.turn_id,
        _ => return None,
    })
}

/// Events of the turn that answered `trigger`, by kind: its steps, its reply and the
/// memories it wrote.
fn turn_kinds(log: &[Ev], trigger: u64) -> Vec<String> {
    let turn = log.iter().find_map(|e| match &e.payload {
        EventPayload::AgentTurnStarted(t) if t.trigger_seq == trigger => Some(t.turn_id),
        _ => None,
    });
    let Some(turn) = turn else { return vec![] };
    log.iter()
        .filter(|e| match &e.payload {
            EventPayload::MessageSent(m) => m.in_reply_to == Some(trigger),
            EventPayload::MemoryWritten(m) => m.source_seq == Some(trigger),
            p => turn_in(p) == Some(turn),
        })
        .map(|e| e.kind.clone())
        .collect()
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_run_as_supervised_processes_that_crash_alone_and_lose_nothing() {
    let fake = FakeLlm::start(vec![
        // 1. The provider call hangs; the agent process is killed mid-turn.
        Step::Hang,
        Step::Text("recovered".into()),
        // 2. The answer stalls mid-stream; killed again.
        Step::HangMidStream,
        Step::Text("streamed again".into()),
        // 3. A tool runs; killed mid-tool-call.
        Step::ToolCall {
            name: "shell".into(),
            arguments: json!({"program": "sleep", "args": ["30"]}),
        },
    ]);
    let port = free_port();
    let python = "python3";
    let config = format!(
        "[gateway]\ndefault_agent = \"pi\"\ndurability = \"normal\"\n\n\
         [agents.pi]\nisolation = \"process\"\nprovider = \"openai\"\nbase_url = \"{}\"\n\
         model = \"test-model\"\nretries = 0\nskills = [\"shell\"]\nshell = \"allowlist\"\n\
         shell_allow = [\"sleep\"]\n\n\
         [agents.shout]\nkind = \"process\"\ncommand = [\"{python}\", \"{}\"]\n\n\
         [agents.bad]\nkind = \"process\"\ncommand = [\"{python}\", \"{}\"]\nturn_retries = 0\n\n\
         [agents.tiny]\nisolation = \"process\"\nprovider = \"local\"\nmodel = \"{}\"\n\
         memory_limit_mb = {}\nturn_retries = 0\n\n\
         [agents.inside]\nkind = \"echo\"\n\n\
         [agents.old]\nkind = \"process\"\ncommand = [\"{python}\", \"-c\", '{OLD_AGENT}']\n\n{}",
        fake.base_url_openai(),
        repo().join("examples/agents/shout.py").display(),
        repo().join("tests/data/agents/misbehave.py").display(),
        gguf().display(),
        TINY_MEMORY_LIMIT_MB,
        webhook_section("hooks", port)
    );
    let mut h = started_with_webhook(&config, port).await;
    for (agent, who) in [
        ("shout", "bob@example.com"),
        ("bad", "mallory@example.com"),
        ("tiny", "tina@example.com"),
        ("inside", "eve@example.com"),
    ] {
        let out = h
            .cli(&[
                "bind",
                "add",
                "--agent",
                agent,
                "--identity",
                &format!("webhook:{who}"),
            ])
            .await;
        assert!(out.status.success(), "{out:?}");
    }

    // Each isolated agent is a process of its own, visible in the status, in the
    // encoding its hello asked for.
    let pi = agent_up(&h, "pi", None, Duration::from_secs(30)).await;
    assert_eq!(pi["encoding"], "bincode", "{pi}");
    let shout = agent_up(&h, "shout", None, Duration::from_secs(30)).await;
    assert_eq!(shout["encoding"], "json", "{shout}");
    let pi_pid = pi["pid"].as_u64().unwrap();
    assert_ne!(pi_pid, h.gateway_pid() as u64);
    // A process that speaks another protocol version is refused at its hello.
    h.wait_log("the old agent refused", Duration::from_secs(30), |log| {
        log.iter().any(|e| {
            matches!(&e.payload, EventPayload::AgentExited(x)
            if x.agent == "old" && x.reason.contains("speaks protocol 99; this Gateway speaks 1"))
        })
    })
    .await;

    // The Python example agent answers, its tool step and its memory are recorded by
    // the Gateway (the agent never writes the log).
    let r = post(
        &h.http,
        port,
        "b1",
        "bob@example.com",
        "hello there",
        20_000,
    )
    .await
    .unwrap();
    assert_eq!(r.reply(), Some("HELLO THERE"), "{:?}", r.body);
    let log = h.log().await;
    let kinds = turn_kinds(&log, r.seq());
    assert_eq!(
        kinds,
        [
            "AgentTurnStarted",
            "ToolCalled",
            "ToolReturned",
            "MemoryWritten",
            "MessageSent",
            "AgentTurnFinished"
        ],
        "{}",
        summary(&log)
    );
    // An agent left in the Gateway still answers beside them.
    let r = post(&h.http, port, "e1", "eve@example.com", "inside", 20_000)
        .await
        .unwrap();
    assert!(
        r.reply().is_some_and(|t| t.starts_with("echo: inside")),
        "{:?}",
        r.body
    );

    // 1. Killed mid-turn, while its provider call hangs. The provider connection is
    // the agent process's, never the Gateway's (egress leaves from agent processes).
    let first = {
        let http = h.http.clone();
        tokio::spawn(
            async move { post(&http, port, "a1", "alice@example.com", "one", 60_000).await },
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !connected_to(pi_pid, fake.addr().port()) {
        assert!(
            Instant::now() < deadline,
            "Pi's process never called the provider"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !connected_to(h.gateway_pid() as u64, fake.addr().port()),
        "the Gateway itself holds a connection to the provider"
    );
    kill9(pi_pid);
    // Meanwhile the other agents keep serving.
    let r = post(&h.http, port, "b2", "bob@example.com", "still here", 20_000)
        .await
        .unwrap();
    assert_eq!(r.reply(), Some("STILL HERE"), "{:?}", r.body);
    let a1 = first.await.unwrap().unwrap();
    assert_eq!(a1.reply(), Some("recovered"), "{:?}", a1.body);
    let log = h.log().await;
    let kinds = turn_kinds(&log, a1.seq());
    assert_eq!(count(&kinds, "AgentTurnRetried"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "LlmRequested"), 2, "{kinds:?}");
    assert_eq!(count(&kinds, "MessageSent"), 1, "{kinds:?}");
    assert!(
        log.iter().any(|e| matches!(&e.payload,
            EventPayload::AgentExited(x) if x.agent == "pi" && x.signal == Some(9))),
        "{}",
        summary(&log)
    );
    let pi = agent_up(&h, "pi", Some(pi_pid), Duration::from_secs(30)).await;
    assert_eq!(pi["restarts"], 1, "{pi}");

    // 2. Killed mid-stream: the first fragment arrived, the rest never does.
    let pi_pid = pi["pid"].as_u64().unwrap();
    let second = {
        let http = h.http.clone();
        tokio::spawn(
            async move { post(&http, port, "a2", "alice@example.com", "two", 60_000).await },
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.requests().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the second turn never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill9(pi_pid);
    let a2 = second.await.unwrap().unwrap();
    assert_eq!(a2.reply(), Some("streamed again"), "{:?}", a2.body);
    let kinds = turn_kinds(&h.log().await, a2.seq());
    assert_eq!(count(&kinds, "AgentTurnRetried"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "MessageSent"), 1, "{kinds:?}");

    // 3. Killed mid-tool-call: the tool may have done something, so the turn is not
    // run again; the person is told, once.
    let pi = agent_up(&h, "pi", Some(pi_pid), Duration::from_secs(30)).await;
    let pi_pid = pi["pid"].as_u64().unwrap();
    let third = {
        let http = h.http.clone();
        tokio::spawn(
            async move { post(&http, port, "a3", "alice@example.com", "three", 60_000).await },
        )
    };
    h.wait_log(
        "the shell tool was called",
        Duration::from_secs(30),
        |log| {
            log.iter()
                .any(|e| matches!(&e.payload, EventPayload::ToolCalled(c) if c.tool == "shell"))
        },
    )
    .await;
    kill9(pi_pid);
    let a3 = third.await.unwrap().unwrap();
    let reply = a3.reply().unwrap_or_default();
    assert!(
        reply.starts_with("Sorry, I could not answer")
            && reply.contains("after the tool `shell` ran"),
        "{:?}",
        a3.body
    );
    let kinds = turn_kinds(&h.log().await, a3.seq());
    assert_eq!(count(&kinds, "AgentTurnRetried"), 0, "{kinds:?}");
    assert_eq!(count(&kinds, "AgentTurnFailed"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "MessageSent"), 1, "{kinds:?}");

    // 4. A misbehaving agent is cut off for each wrong frame; nothing it sent reaches
    // the log, the person gets an error, and it serves again once restarted.
    for (n, wrong) in [
        "garbage",
        "foreign step",
        "foreign turn",
        "impostor",
        "flood",
        "steal",
    ]
    .into_iter()
    .enumerate()
    {
        let r = post(
            &h.http,
            port,
            &format!("m{n}"),
            "mallory@example.com",
            wrong,
            60_000,
        )
        .await
        .unwrap();
        let reply = r.reply().unwrap_or_default();
        assert!(
            reply.starts_with("Sorry, I could not answer") && reply.contains("cut off"),
            "{wrong}: {:?}",
            r.body
        );
        assert_eq!(
            count(&turn_kinds(&h.log().await, r.seq()), "MessageSent"),
            1,
            "{wrong}"
        );
    }
    let r = post(&h.http, port, "m-ok", "mallory@example.com", "ok", 60_000)
        .await
        .unwrap();
    assert_eq!(r.reply(), Some("fine: ok"), "{:?}", r.body);
    let log = h.log().await;
    let cut_offs = log
        .iter()
        .filter(|e| matches!(&e.payload, EventPayload::AgentExited(x) if x.agent == "bad" && x.reason.starts_with("cut off")))
        .count();
    assert_eq!(cut_offs, 6, "{}", summary(&log));
    for e in &log {
        match &e.payload {
            EventPayload::ToolCalled(c) => assert!(
                c.tool != "evil" || c.call_id == "x" && turn_of(&log, e) == Some(r.seq()),
                "a refused step reached the log: {e:?}"
            ),
            EventPayload::MessageSent(m) => {
                assert_ne!(m.text, "hijacked");
                assert!(m.attachments.iter().all(|a| a.name != "secret.png"));
            }
            EventPayload::CanvasCleared(c) => panic!("an impostor's step reached the log: {c:?}"),
            _ => {}
        }
    }

    // 5. A local model over its process's memory limit takes down that process only.
    let r = post(&h.http, port, "t1", "tina@example.com", "hi", 60_000)
        .await
        .unwrap();
    let reply = r.reply().unwrap_or_default();
    assert!(
        reply.starts_with("Sorry, I could not answer"),
        "{:?}",
        r.body
    );
    let log = h.log().await;
    assert!(
        log.iter()
            .any(|e| matches!(&e.payload, EventPayload::AgentExited(x) if x.agent == "tiny")),
        "{}",
        summary(&log)
    );
    let health = h.http.get(h.url("/health")).send().await.unwrap();
    assert!(health.status().is_success());
    let r = post(
        &h.http,
        port,
        "b3",
        "bob@example.com",
        "after all that",
        20_000,
    )
    .await
    .unwrap();
    assert_eq!(r.reply(), Some("AFTER ALL THAT"), "{:?}", r.body);

    // Stopping the Gateway stops every agent process and records it.
    h.stop().await;
    let log = h.log().await;
    for agent in ["pi", "shout", "bad"] {
        assert!(
            log.iter().rev().find_map(|e| match &e.payload {
                EventPayload::AgentExited(x) if x.agent == agent => Some(x.reason.clone()),
                _ => None,
            }) == Some("Gateway shutdown".into()),
            "{agent}: {}",
            summary(&log)
        );
    }
}

/// An agent that speaks another version of the protocol.
const OLD_AGENT: &str = "import json, os, sys; print(json.dumps({\"protocol\": 99, \
    \"agent\": os.environ[\"CLAWOS_AGENT_NAME\"], \"token\": os.environ[\"CLAWOS_AGENT_TOKEN\"], \
    \"encoding\": \"json\"}), flush=True); print(sys.stdin.readline(), file=sys.stderr)";

/// The address-space cap of the `tiny` agent: room for the runtime, not for the model.
const TINY_MEMORY_LIMIT_MB: u64 = 600;

/// The trigger seq of the turn an event belongs to.
fn turn_of(log: &[Ev], e: &Ev) -> Option<u64> {
    let turn = turn_in(&e.payload)?;
    log.iter().find_map(|x| match &x.payload {
        EventPayload::AgentTurnStarted(t) if t.turn_id == turn => Some(t.trigger_seq),
        _ => None,
    })
}
