//! Pi end to end: a real Gateway process, a real webhook channel process, Pi talking to a
//! scripted local LLM server over HTTP, skills, failover, timeouts, and replay without any
//! provider running.

#[path = "gateway_common/mod.rs"]
mod common;

use std::time::Duration;

use clawos_events::EventPayload;
use clawos_testkit::fake_llm::{FakeLlm, Step};
use common::*;
use serde_json::{json, Value};

fn pi_config(provider: &str, base_url: &str, extra: &str, hook_port: u16) -> String {
    format!(
        "[gateway]\ndefault_agent = \"pi\"\ndurability = \"normal\"\n\n\
         [agents.pi]\nkind = \"pi\"\nprovider = \"{provider}\"\nbase_url = \"{base_url}\"\n\
         model = \"test-model\"\ntimeout_secs = 2\nretries = 0\n{extra}\n\n{}",
        webhook_section("hooks", hook_port)
    )
}

fn tool(name: &str, arguments: Value) -> Step {
    Step::ToolCall {
        name: name.into(),
        arguments,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_conversation_with_tools_is_logged_and_replays_without_a_provider() {
    let fake = FakeLlm::start(vec![
        tool(
            "fs",
            json!({"op": "write", "path": "notes.txt", "content": "buy milk"}),
        ),
        Step::Text("Saved your note.".into()),
        tool("fs", json!({"op": "read", "path": "notes.txt"})),
        Step::Text("Your note says: buy milk".into()),
    ]);
    let port = free_port();
    let mut h = started_with_webhook(
        &pi_config("openai", &fake.base_url_openai(), "", port),
        port,
    )
    .await;

    let a = post(
        &h.http,
        port,
        "m1",
        "alice@example.com",
        "remember: buy milk",
        20_000,
    )
    .await
    .unwrap();
    assert_eq!(a.reply(), Some("Saved your note."), "{:?}", a.body);
    assert_eq!(
        std::fs::read_to_string(h.dir().join("workspace/pi/notes.txt")).unwrap(),
        "buy milk"
    );
    let b = post(
        &h.http,
        port,
        "m2",
        "alice@example.com",
        "what is my note?",
        20_000,
    )
    .await
    .unwrap();
    assert_eq!(b.reply(), Some("Your note says: buy milk"), "{:?}", b.body);

    // The third request carries the history: the first exchange and the new message.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 4, "{reqs:#?}");
    let third = reqs[2].to_string();
    for needle in ["remember: buy milk", "Saved your note.", "what is my note?"] {
        assert!(third.contains(needle), "request 3 lacks {needle}: {third}");
    }
    // Every skill but `calendar`, which is offered only with an account.
    let offered: Vec<&str> = reqs[0]["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["function"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        offered,
        ["browser", "canvas", "cron", "editor", "fs", "memory", "nodes", "session", "shell"],
        "{}",
        reqs[0]
    );

    h.stop().await;
    drop(fake);

    let log = read_log(h.dir()).await;
    let turn1: Vec<&str> = log
        .iter()
        .skip_while(|e| e.kind != "AgentTurnStarted")
        .take(9)
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(
        turn1,
        [
            "AgentTurnStarted",
            "LlmRequested",
            "LlmResponded",
            "ToolCalled",
            "ToolReturned",
            "LlmRequested",
            "LlmResponded",
            "MessageSent",
            "AgentTurnFinished"
        ],
        "{}",
        summary(&log)
    );
    let requested: Vec<_> = log
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::LlmRequested(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(requested.len(), 4);
    for (r, sent) in requested.iter().zip(&reqs) {
        assert_eq!(r.request_bytes as usize, r.request.len());
        let recorded: Value = serde_json::from_str(&r.request).unwrap();
        assert_eq!(
            recorded["messages"], sent["messages"],
            "recorded body differs from the one sent"
        );
    }
    let session = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::SessionStarted(s) => Some(s.session_id.clone()),
            _ => None,
        })
        .unwrap();

    // Replay with no provider anywhere: rebuild, then the transcript and the audit.
    let out = h.cli(&["replay", "rebuild"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = log.last().unwrap().seq.to_string();
    let out = h
        .cli(&[
            "replay",
            "state-at",
            "--seq",
            &head,
            "--session",
            &session,
            "--json",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    let texts: Vec<&str> = state[0]["branches"][0]["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "remember: buy milk",
            "Saved your note.",
            "what is my note?",
            "Your note says: buy milk"
        ]
    );
    let out = h.cli(&["audit", "--session", &session, "--json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit: Value = serde_json::from_slice(&out.stdout).unwrap();
    let turns = audit.as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert!(turns.iter().all(|t| t["status"] == "finished"));
    let steps: Vec<&str> = turns[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "LlmRequested",
            "LlmResponded",
            "ToolCalled",
            "ToolReturned",
            "LlmRequested",
            "LlmResponded"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provider_fails_over_and_a_hanging_one_times_out_cleanly() {
    // Failover: the first provider answers 500, the second (Anthropic API) answers.
    let broken = FakeLlm::start(vec![Step::Status(500), Step::Status(500)]);
    let good = FakeLlm::start(vec![Step::Text("from the second provider".into())]);
    let port = free_port();
    let extra = format!(
        "[[agents.pi.failover]]\nprovider = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"claude-test\"\n",
        good.base_url_anthropic()
    );
    let mut h = started_with_webhook(
        &pi_config("openai", &broken.base_url_openai(), &extra, port),
        port,
    )
    .await;
    let a = post(&h.http, port, "f1", "bob@example.com", "hello?", 20_000)
        .await
        .unwrap();
    assert_eq!(a.reply(), Some("from the second provider"), "{:?}", a.body);
    assert_eq!(broken.requests().len(), 1);
    assert_eq!(good.requests().len(), 1);
    h.stop().await;

    // A provider that never answers: the turn fails after the timeout, the user is told,
    // and the reply and the failure are committed together.
    let hang = FakeLlm::start(vec![Step::Hang]);
    let port = free_port();
    let mut h = started_with_webhook(
        &pi_config("openai", &hang.base_url_openai(), "", port),
        port,
    )
    .await;
    let started_at = std::time::Instant::now();
    let a = post(
        &h.http,
        port,
        "h1",
        "carol@example.com",
        "are you there?",
        20_000,
    )
    .await
    .unwrap();
    let reply = a.reply().unwrap_or_default().to_string();
    assert!(
        reply.starts_with("Sorry, I could not answer"),
        "{:?}",
        a.body
    );
    assert!(started_at.elapsed() < Duration::from_secs(15));
    h.stop().await;
    let log = read_log(h.dir()).await;
    let failed = log
        .iter()
        .position(|e| e.kind == "AgentTurnFailed")
        .unwrap_or_else(|| panic!("no AgentTurnFailed:\n{}", summary(&log)));
    assert_eq!(log[failed - 1].kind, "MessageSent", "{}", summary(&log));
    assert_eq!(log[failed - 2].kind, "LlmRequested", "{}", summary(&log));
    assert!(
        !log.iter().any(|e| e.kind == "LlmResponded"),
        "{}",
        summary(&log)
    );
    let out = h.cli(&["replay", "verify"]).await;
    assert!(out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skills_refuse_escapes_and_disallowed_commands_and_the_refusals_are_logged() {
    let fake = FakeLlm::start(vec![
        tool("fs", json!({"op": "read", "path": "../../clawos.toml"})),
        tool("shell", json!({"program": "rm", "args": ["-rf", "/"]})),
        tool(
            "shell",
            json!({"program": "echo", "args": ["allowed; rm -rf /"]}),
        ),
        Step::Text("done".into()),
    ]);
    let port = free_port();
    let extra = "shell = \"allowlist\"\nshell_allow = [\"echo\"]\n";
    let mut h = started_with_webhook(
        &pi_config("openai", &fake.base_url_openai(), extra, port),
        port,
    )
    .await;
    let a = post(
        &h.http,
        port,
        "s1",
        "dave@example.com",
        "try things",
        20_000,
    )
    .await
    .unwrap();
    assert_eq!(a.reply(), Some("done"), "{:?}", a.body);
    h.stop().await;
    let log = read_log(h.dir()).await;
    let returned: Vec<_> = log
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::ToolReturned(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(returned.len(), 3, "{}", summary(&log));
    assert!(
        returned[0].output.starts_with("refused"),
        "{:?}",
        returned[0]
    );
    assert_ne!(returned[0].exit_status, 0);
    assert!(
        !returned[0].output.contains("[gateway]"),
        "the config leaked"
    );
    assert!(
        returned[1].output.starts_with("refused"),
        "{:?}",
        returned[1]
    );
    assert_ne!(returned[1].exit_status, 0);
    assert_eq!(returned[2].output, "allowed; rm -rf /\n");
    assert_eq!(returned[2].exit_status, 0);
    // The model saw the refusals.
    let last = fake.requests().pop().unwrap().to_string();
    assert!(last.contains("refused"), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_commands_branch_switch_fork_and_compact_shape_the_context() {
    let port = free_port();
    let mut h = started_with_webhook(
        &format!(
            "{}{}",
            echo_config("normal"),
            webhook_section("hooks", port)
        ),
        port,
    )
    .await;
    let mut n = 0;
    let mut say = |text: &'static str| {
        n += 1;
        let id = format!("c{n}");
        let http = h.http.clone();
        async move {
            let p = post(&http, port, &id, "erin@example.com", text, 20_000)
                .await
                .unwrap();
            (
                p.seq(),
                p.reply()
                    .unwrap_or_else(|| panic!("no reply to {text}: {:?}", p.body))
                    .to_string(),
            )
        }
    };
    let (one, r) = say("one").await;
    assert_eq!(r, "echo: one (0 before)");
    assert_eq!(say("two").await.1, "echo: two (2 before)");
    let (_, r) = say("/branch idea").await;
    assert!(r.starts_with("now on new branch idea"), "{r}");
    assert_eq!(say("three").await.1, "echo: three (4 before)");
    assert_eq!(say("/switch main").await.1, "now on branch main");
    assert_eq!(
        say("four").await.1,
        "echo: four (4 before)",
        "main must not see branch idea"
    );
    let (_, r) = say("/branches").await;
    assert!(r.contains("* main") && r.contains("  idea"), "{r}");
    let (_, r) = say("/compact").await;
    assert!(r.starts_with("compacted 6 messages of branch main"), "{r}");
    assert_eq!(
        say("five").await.1,
        "echo: five (0 before)",
        "after compaction only the summary is context"
    );
    let fork = format!("/fork {one}");
    let fork: &'static str = Box::leak(fork.into_boxed_str());
    let (_, r) = say(fork).await;
    assert!(
        r.starts_with(&format!("now on new branch fork-{one}")),
        "{r}"
    );
    assert_eq!(
        say("six").await.1,
        "echo: six (1 before)",
        "a fork sees its own ancestors only"
    );
    let (_, r) = say("/help").await;
    assert!(r.contains("/compact") && r.contains("/fork SEQ"), "{r}");
    assert!(say("/etc/hosts is broken")
        .await
        .1
        .starts_with("echo: /etc/hosts"));
    h.stop().await;

    // Nothing was copied or lost: the compacted messages are still in the log and in the
    // state of main at the head; commands never entered the message tree.
    let log = read_log(h.dir()).await;
    let session = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::SessionStarted(s) => Some(s.session_id.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        log.iter().filter(|e| e.kind == "CommandReceived").count(),
        6
    );
    assert_eq!(
        log.iter().filter(|e| e.kind == "SessionCompacted").count(),
        1
    );
    let head = log.last().unwrap().seq.to_string();
    let out = h
        .cli(&[
            "replay",
            "state-at",
            "--seq",
            &head,
            "--session",
            &session,
            "--json",
        ])
        .await;
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    let branch = |name: &str| {
        state[0]["branches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["branch"]["name"] == name)
            .unwrap_or_else(|| panic!("no branch {name}"))
            .clone()
    };
    let main: Vec<String> = branch("main")["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(main.len(), 8, "{main:?}");
    assert_eq!(main[0], "one");
    assert!(
        main.iter()
            .all(|t| !t.starts_with("/") || t.starts_with("/etc")),
        "{main:?}"
    );
    assert_eq!(branch("main")["compactions"].as_array().unwrap().len(), 1);
    assert_eq!(state[0]["session"]["active_branch"], format!("fork-{one}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_hooks_start_turns_and_outbound_hooks_get_events() {
    use std::sync::{Arc, Mutex};
    // A collector for outbound hook POSTs.
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post({
            let seen = seen.clone();
            move |body: axum::Json<Value>| async move {
                seen.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let port = free_port();
    let config = format!(
        "{}{}[[outbound_hooks]]\nurl = \"http://{collector}/events\"\nkinds = [\"MessageSent\", \"MemoryWritten\"]\n",
        echo_config("normal"),
        webhook_section("hooks", port)
    );
    let mut h = started_with_webhook(&config, port).await;
    let a = post(&h.http, port, "x1", "alice@example.com", "hi", 20_000)
        .await
        .unwrap();
    assert_eq!(a.reply(), Some("echo: hi (0 before)"));
    let token = h.admin_token();
    let sessions: Value = h
        .http
        .get(h.url("/api/sessions"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = sessions[0]["session_id"].as_str().unwrap().to_string();

    // Without the token: refused. An unknown session: 404.
    let r = h
        .http
        .post(h.url("/hooks/agent"))
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = h
        .http
        .post(h.url("/hooks/agent"))
        .bearer_auth(token.trim())
        .json(&json!({"text": "x", "session_id": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // A hook into Alice's session: the turn sees the history, the answer goes to Alice.
    let r: Value = h
        .http
        .post(h.url("/hooks/agent"))
        .bearer_auth(token.trim())
        .json(&json!({"text": "daily digest", "hook": "digest", "session_id": session}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook_seq = r["seq"].as_u64().unwrap();
    assert_eq!(r["session_id"], session.as_str());
    let log = h
        .wait_log("a reply to the hook", Duration::from_secs(10), |log| {
            !replies_to(log, hook_seq).is_empty()
        })
        .await;
    let reply = replies_to(&log, hook_seq)[0].1.clone();
    assert_eq!(reply.text, "echo: daily digest (2 before)");
    assert_eq!(reply.channel, "hooks");
    assert_eq!(reply.to, "webhook:alice@example.com");

    // The outbound hook got both replies as JSON events.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let texts: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["kind"] == "MessageSent")
            .map(|v| v["payload"]["text"].as_str().unwrap_or("").to_string())
            .collect();
        if texts.len() == 2 {
            assert_eq!(
                texts,
                ["echo: hi (0 before)", "echo: daily digest (2 before)"]
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "outbound hook saw {texts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A memory written while the Gateway is down reaches the hook at the next start, and
    // what was delivered before the restart is not sent again.
    h.stop().await;
    let out = h
        .cli(&[
            "memory",
            "add",
            "--identity",
            "alice",
            "the spare key is under the mat",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, port, Duration::from_secs(30)).await;
    // One more reply after the restart: the hook handles events in log order, so once it
    // arrives, any redelivery of what came before would already be in the collector.
    let c = post(&h.http, port, "x2", "alice@example.com", "again", 20_000)
        .await
        .unwrap();
    assert!(c.reply().is_some(), "{:?}", c.body);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let kinds: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|v| v["kind"].as_str().unwrap_or("").to_string())
            .collect();
        if kinds.len() >= 4 {
            assert_eq!(
                kinds,
                ["MessageSent", "MessageSent", "MemoryWritten", "MessageSent"],
                "the memory written while down arrives once, nothing is sent twice"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the hook saw {kinds:?} after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.stop().await;
}

fn fires(log: &[Ev]) -> Vec<(u64, clawos_events::CronFired)> {
    log.iter()
        .filter_map(|e| match &e.payload {
            EventPayload::CronFired(f) => Some((e.seq, f.clone())),
            _ => None,
        })
        .collect()
}

async fn wait_fires(h: &Harness, n: usize, within: Duration) -> Vec<Ev> {
    h.wait_log(&format!("{n} cron fires"), within, |log| {
        fires(log).len() >= n
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_fires_on_time_and_once_after_a_restart_that_spanned_its_due_time() {
    let port = free_port();
    let config = format!(
        "{}{}",
        echo_config("normal"),
        webhook_section("hooks", port)
    );
    let mut h = started_with_webhook(&config, port).await;
    post(&h.http, port, "k1", "alice@example.com", "hi", 20_000)
        .await
        .unwrap();
    let log = read_log(h.dir()).await;
    let session = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::SessionStarted(s) => Some(s.session_id.clone()),
            _ => None,
        })
        .unwrap();
    let out = h
        .cli(&[
            "cron",
            "add",
            "--session",
            &session,
            "--schedule",
            "every 2s",
            "--prompt",
            "tick",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = h
        .cli(&[
            "cron",
            "add",
            "--session",
            &session,
            "--schedule",
            "sometimes",
            "--prompt",
            "x",
        ])
        .await;
    assert!(!bad.status.success());

    // On time: two fires 2 s apart (due times exactly one period apart), each answered to
    // Alice through the webhook channel.
    let log = wait_fires(&h, 2, Duration::from_secs(10)).await;
    let f = fires(&log);
    assert_eq!(f[1].1.due_at_ms - f[0].1.due_at_ms, 2000, "{f:?}");
    assert_eq!(f[0].1.prompt, "tick");
    h.wait_log("the fire answered", Duration::from_secs(10), |log| {
        replies_to(log, f[0].0)
            .iter()
            .any(|(_, m)| m.to == "webhook:alice@example.com" && m.text.starts_with("echo: tick"))
    })
    .await;

    // Down across several due times: exactly one catch-up fire at start, then on schedule.
    h.stop().await;
    let before = fires(&read_log(h.dir()).await).len();
    tokio::time::sleep(Duration::from_millis(5500)).await;
    h.start("127.0.0.1:0").await;
    let log = wait_fires(&h, before + 2, Duration::from_secs(10)).await;
    let f = fires(&log);
    let catch_up = &f[before].1;
    let next = &f[before + 1].1;
    assert_eq!(next.due_at_ms - catch_up.due_at_ms, 2000, "{f:?}");
    let last_before = f[before - 1].1.due_at_ms;
    assert!(
        catch_up.due_at_ms - last_before >= 4000,
        "the catch-up fire is the latest missed period: {f:?}"
    );
    assert_eq!((catch_up.due_at_ms - last_before) % 2000, 0);

    // Cancelled: no more fires.
    let list = h.cli(&["cron", "list"]).await;
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    let job = text.split_whitespace().next().unwrap().to_string();
    assert!(text.contains("active"), "{text}");
    let out = h.cli(&["cron", "rm", &job]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let n = fires(&read_log(h.dir()).await).len();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        fires(&read_log(h.dir()).await).len(),
        n,
        "fired after cancel"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_cron_and_session_skills_record_events_and_stay_in_scope() {
    let fake = FakeLlm::start(vec![
        // Alice: remember.
        tool(
            "memory",
            json!({"op": "remember", "text": "prefers Postgres over MySQL"}),
        ),
        Step::Text("Noted.".into()),
        // Alice: recall.
        tool(
            "memory",
            json!({"op": "recall", "text": "postgres or mysql?"}),
        ),
        Step::Text("You prefer Postgres.".into()),
        // Bob: recall finds nothing of Alice's.
        tool("memory", json!({"op": "recall", "text": "postgres"})),
        Step::Text("I know nothing about that.".into()),
        // Alice: a cron job and a branch through skills.
        tool(
            "cron",
            json!({"op": "schedule", "schedule": "every 1h", "prompt": "stand-up notes"}),
        ),
        tool(
            "cron",
            json!({"op": "schedule", "schedule": "sometimes", "prompt": "x"}),
        ),
        tool("session", json!({"op": "branch", "name": "alt"})),
        Step::Text("Done.".into()),
    ]);
    let port = free_port();
    let mut h = started_with_webhook(
        &pi_config("openai", &fake.base_url_openai(), "", port),
        port,
    )
    .await;
    let p = |id: &'static str, from: &'static str, text: &'static str| {
        let http = h.http.clone();
        async move { post(&http, port, id, from, text, 20_000).await.unwrap() }
    };
    assert_eq!(
        p("a1", "alice@example.com", "remember my db").await.reply(),
        Some("Noted.")
    );
    assert_eq!(
        p("a2", "alice@example.com", "which db?").await.reply(),
        Some("You prefer Postgres.")
    );
    assert_eq!(
        p("b1", "bob@example.com", "which db?").await.reply(),
        Some("I know nothing about that.")
    );
    assert_eq!(
        p("a3", "alice@example.com", "plan").await.reply(),
        Some("Done.")
    );
    h.stop().await;

    let log = read_log(h.dir()).await;
    let outputs: Vec<String> = log
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::ToolReturned(r) => Some(r.output.clone()),
            _ => None,
        })
        .collect();
    assert!(outputs[0].starts_with("remembered ("), "{outputs:?}");
    assert!(
        outputs[1].starts_with("prefers Postgres over MySQL ("),
        "{outputs:?}"
    );
    assert_eq!(
        outputs[2], "nothing remembered about that",
        "Bob must not see Alice's memory"
    );
    assert!(outputs[3].starts_with("scheduled ("), "{outputs:?}");
    assert!(outputs[4].contains("sometimes"), "{outputs:?}");
    assert!(
        outputs[5].starts_with("now on new branch alt"),
        "{outputs:?}"
    );
    let written = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::MemoryWritten(m) => Some(m.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        written.identity.as_deref(),
        Some("webhook:alice@example.com")
    );
    assert_eq!(written.agent.as_deref(), Some("pi"));
    assert!(log.iter().any(
        |e| matches!(&e.payload, EventPayload::CronScheduled(c) if c.prompt == "stand-up notes")
    ));
    assert!(log.iter().any(
        |e| matches!(&e.payload, EventPayload::BranchCreated(b) if b.branch == "alt" && b.switch_to)
    ));
    let out = h.cli(&["cron", "list"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("stand-up notes"));
}

fn approval_requests(log: &[Ev]) -> Vec<clawos_events::ApprovalRequested> {
    log.iter()
        .filter_map(|e| match &e.payload {
            EventPayload::ApprovalRequested(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

async fn wait_approval(h: &Harness, n: usize) -> clawos_events::ApprovalRequested {
    let log = h
        .wait_log(
            &format!("approval request {n}"),
            Duration::from_secs(15),
            |log| approval_requests(log).len() >= n,
        )
        .await;
    approval_requests(&log)[n - 1].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_ask_policy_waits_for_a_person_and_records_request_and_answer() {
    let fake = FakeLlm::start(vec![
        tool(
            "shell",
            json!({"program": "echo", "args": ["approved one"]}),
        ),
        Step::Text("first done".into()),
        tool("shell", json!({"program": "echo", "args": ["denied one"]})),
        Step::Text("second done".into()),
        tool(
            "shell",
            json!({"program": "echo", "args": ["after restart"]}),
        ),
        Step::Text("third done".into()),
    ]);
    let port = free_port();
    let extra = "shell = \"ask\"\nshell_allow = [\"true\"]\n";
    let mut h = started_with_webhook(
        &pi_config("openai", &fake.base_url_openai(), extra, port),
        port,
    )
    .await;

    let http = h.http.clone();
    let first =
        tokio::spawn(
            async move { post(&http, port, "q1", "fay@example.com", "run it", 30_000).await },
        );
    let req = wait_approval(&h, 1).await;
    assert_eq!(req.action, "shell: echo approved one");
    let list = h.cli(&["approvals", "list"]).await;
    assert!(String::from_utf8_lossy(&list.stdout).contains(&req.approval_id.to_string()));
    let id = req.approval_id.to_string();
    assert!(h.cli(&["approvals", "approve", &id]).await.status.success());
    assert_eq!(first.await.unwrap().unwrap().reply(), Some("first done"));
    let again = h.cli(&["approvals", "deny", &id]).await;
    assert!(String::from_utf8_lossy(&again.stdout).contains("already answered"));

    let http = h.http.clone();
    let second = tokio::spawn(async move {
        post(&http, port, "q2", "fay@example.com", "run that", 30_000).await
    });
    let req = wait_approval(&h, 2).await;
    assert!(h
        .cli(&["approvals", "deny", &req.approval_id.to_string()])
        .await
        .status
        .success());
    assert_eq!(second.await.unwrap().unwrap().reply(), Some("second done"));

    // A restart changes nothing: what was answered stays answered, nothing is pending,
    // and an answer is not a standing permission: the next action asks again.
    let status = h.stop().await;
    assert!(status.success(), "{status}");
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, port, Duration::from_secs(30)).await;
    let list = h.cli(&["approvals", "list"]).await;
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("nothing waits"),
        "{}",
        String::from_utf8_lossy(&list.stdout)
    );
    let again = h.cli(&["approvals", "approve", &id]).await;
    assert!(String::from_utf8_lossy(&again.stdout).contains("already answered"));
    let http = h.http.clone();
    let third = tokio::spawn(async move {
        post(&http, port, "q3", "fay@example.com", "run it again", 30_000).await
    });
    let req = wait_approval(&h, 3).await;
    assert_eq!(req.action, "shell: echo after restart");
    assert!(h
        .cli(&["approvals", "approve", &req.approval_id.to_string()])
        .await
        .status
        .success());
    assert_eq!(third.await.unwrap().unwrap().reply(), Some("third done"));
    h.stop().await;

    let log = read_log(h.dir()).await;
    let returned: Vec<_> = log
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::ToolReturned(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(returned[0].output, "approved one\n");
    assert!(
        returned[1].output.starts_with("refused: a person declined"),
        "{:?}",
        returned[1]
    );
    let answers: Vec<_> = log
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::ApprovalAnswered(a) => Some((a.approved, a.by.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        answers,
        [
            (true, "cli".to_string()),
            (false, "cli".to_string()),
            (true, "cli".to_string())
        ]
    );
    assert_eq!(returned[2].output, "after restart\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_shows_a_streamed_reply_once() {
    use std::process::Stdio;
    let fake = FakeLlm::start(vec![
        Step::Text("streamed word by word".into()),
        Step::Text("and again".into()),
    ]);
    let config = format!(
        "[gateway]\ndefault_agent = \"pi\"\ndurability = \"normal\"\n\n[agents.pi]\nkind = \"pi\"\n\
         provider = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\ntimeout_secs = 5\nretries = 0\n\n\
         [channels.terminal]\nkind = \"terminal\"\n",
        fake.base_url_openai()
    );
    let mut h = Harness::new(&config);
    let child = h
        .spawn(
            &["up", "--listen", "127.0.0.1:0"],
            Stdio::piped(),
            Stdio::piped(),
        )
        .await;
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut all = String::new();
        let mut stdout = stdout;
        let _ = stdout.read_to_string(&mut all);
        all
    });
    use std::io::Write;
    writeln!(stdin, "hi").unwrap();
    stdin.flush().unwrap();
    h.wait_log("a delivery", Duration::from_secs(15), |log| {
        log.iter().any(|e| e.kind == "DeliveryAcked")
    })
    .await;
    writeln!(stdin, "more").unwrap();
    stdin.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(stdin);
    h.wait_exit(Duration::from_secs(30))
        .await
        .expect("the Gateway exits at end of input");
    let all = reader.join().unwrap();
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(
        lines,
        ["pi> streamed word by word", "pi> and again"],
        "stdout: {all:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_provider_pi_runs_the_model_in_the_models_folder() {
    let gguf = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        gguf.exists(),
        "{} is missing: run `bash tests/fetch-models.sh`",
        gguf.display()
    );
    let port = free_port();
    let config = format!(
        "[gateway]\ndefault_agent = \"pi\"\ndurability = \"normal\"\n\n[agents.pi]\nkind = \"pi\"\nmax_tokens = 6\n\n{}",
        webhook_section("hooks", port)
    );
    let mut h = Harness::new(&config);
    std::fs::create_dir_all(h.dir().join("models")).unwrap();
    std::os::unix::fs::symlink(&gguf, h.dir().join("models/smollm2.gguf")).unwrap();
    let out = h.cli(&["models", "list"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("smollm2.gguf"));
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, port, Duration::from_secs(60)).await;
    let a = post(
        &h.http,
        port,
        "l1",
        "gus@example.com",
        "What is the capital of France?",
        120_000,
    )
    .await
    .unwrap();
    let reply = a.reply().unwrap_or_default().to_string();
    assert!(
        !reply.trim().is_empty() && !reply.starts_with("Sorry"),
        "{:?}",
        a.body
    );
    h.stop().await;
    let log = read_log(h.dir()).await;
    let req = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::LlmRequested(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (req.provider.as_str(), req.model.as_str()),
        ("local", "smollm2")
    );
    let resp = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::LlmResponded(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        resp.completion_tokens > 0 && resp.completion_tokens <= 6,
        "{resp:?}"
    );
    assert_eq!(resp.content, reply);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_priced_per_model_and_a_budget_stops_turns_with_a_message() {
    let fake = FakeLlm::start(vec![
        Step::Text("first answer".into()),
        Step::Text("never sent".into()),
    ]);
    let port = free_port();
    // $1,000 per million prompt tokens: the first turn alone costs more than the budget.
    let extra = "\n[prices.\"test-model\"]\ninput = 1000.0\noutput = 2000.0\n\n\
                 [[budgets]]\nagent = \"pi\"\nper = \"day\"\nusd = 0.01\n";
    let config = format!(
        "{}{extra}",
        pi_config("openai", &fake.base_url_openai(), "", port)
    );
    let mut h = started_with_webhook(&config, port).await;

    let a = post(&h.http, port, "u1", "alice@example.com", "hello", 20_000)
        .await
        .unwrap();
    assert_eq!(a.reply(), Some("first answer"), "{:?}", a.body);
    let b = post(&h.http, port, "u2", "alice@example.com", "again", 20_000)
        .await
        .unwrap();
    let told = b.reply().unwrap_or_default().to_string();
    assert!(
        told.contains("daily budget of $0.01 for agent pi is used up"),
        "the person is told: {told}"
    );
    assert_eq!(
        fake.requests().len(),
        1,
        "the second turn never reached the model"
    );

    let log = h.log().await;
    let responded = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::LlmResponded(r) => Some(r.clone()),
            _ => None,
        })
        .expect("one LLM call");
    let cost = (responded.prompt_tokens as f64 * 1000.0
        + responded.completion_tokens as f64 * 2000.0)
        / 1e6;
    let exceeded = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::BudgetExceeded(x) => Some(x.clone()),
            _ => None,
        })
        .expect("BudgetExceeded is logged");
    assert_eq!(exceeded.agent, "pi");
    assert_eq!(exceeded.per, "day");
    assert_eq!(exceeded.limit_micro_usd, Some(10_000));
    assert_eq!(exceeded.spent_micro_usd, (cost * 1e6).round() as u64);
    assert_eq!(
        exceeded.spent_tokens,
        (responded.prompt_tokens + responded.completion_tokens) as u64
    );
    assert!(
        log.iter().any(|e| matches!(&e.payload,
            EventPayload::AgentTurnFailed(f) if f.turn_id == exceeded.turn_id
                && f.reason.starts_with("over budget"))),
        "the stopped turn ends failed, with the reason"
    );

    // `clawos usage` and the admin API agree with the log.
    let out = h.cli(&["usage", "--by", "agent", "--json"]).await;
    assert!(out.status.success(), "{out:?}");
    let lines: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(lines[0]["key"], "pi", "{lines}");
    assert_eq!(lines[0]["calls"], 1);
    assert_eq!(lines[0]["turns"], 1);
    assert_eq!(lines[0]["prompt_tokens"], responded.prompt_tokens);
    assert!(
        (lines[0]["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9,
        "{lines}"
    );
    let out = h.cli(&["usage", "--by", "nothing"]).await;
    assert!(!out.status.success(), "an unknown grouping is refused");
    let api = h.api("/api/usage?by=model").await;
    assert_eq!(api["lines"][0]["key"], "test-model", "{api}");
    assert_eq!(api["budgets"][0]["agent"], "pi");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_tries_a_key_before_it_keeps_it_and_changes_nothing_on_failure() {
    let fake = FakeLlm::start(vec![Step::Status(401), Step::Text("hello there".into())]);
    let home = tempfile::tempdir().unwrap();
    let answers = format!(
        "openai\n{}\ntest-model\nsk-wrong\nsk-right\n\n",
        fake.base_url_openai()
    );
    let out = cli_with_input(home.path(), &["onboard"], Some(&answers)).await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("that did not work"),
        "the refused key is named: {said}"
    );
    assert!(said.contains("openai answered: hello there"), "{said}");
    let keys: Vec<String> = fake
        .request_headers()
        .iter()
        .filter_map(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(keys, ["Bearer sk-wrong", "Bearer sk-right"]);
    let config = std::fs::read_to_string(home.path().join("clawos.toml")).unwrap();
    assert!(
        config.contains("provider = \"openai\"")
            && config.contains("model = \"test-model\"")
            && config.contains("api_key_secret = \"openai\""),
        "{config}"
    );
    assert!(!config.contains("sk-"), "no key in the file");
    assert!(
        config.contains("[channels.terminal]"),
        "the rest stays as it was"
    );
    let out = cli_in(home.path(), &["secrets", "get", "openai"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "sk-right");

    // Run again against a provider that is not there: a clear error, nothing changed.
    let dead = format!(
        "openai\nhttp://127.0.0.1:{}/v1\ntest-model\nk1\nk2\nk3\n",
        free_port()
    );
    let out = cli_with_input(home.path(), &["onboard"], Some(&dead)).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing was changed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(home.path().join("clawos.toml")).unwrap(),
        config
    );
    let out = cli_in(home.path(), &["secrets", "get", "openai"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "sk-right");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_with_their_own_prompts_and_skills_are_routed_by_a_binding() {
    let fake = FakeLlm::start(vec![
        Step::Text("from the files agent".into()),
        Step::Text("from the helper".into()),
    ]);
    let port = free_port();
    let base = fake.base_url_openai();
    let config = format!(
        "[gateway]\ndefault_agent = \"files\"\ndurability = \"normal\"\n\n\
         [agents.files]\nkind = \"pi\"\nprovider = \"openai\"\nbase_url = \"{base}\"\n\
         model = \"test-model\"\nretries = 0\nsystem_prompt = \"You are the files agent.\"\n\
         skills = [\"fs\"]\n\n\
         [agents.helper]\nkind = \"pi\"\nprovider = \"openai\"\nbase_url = \"{base}\"\n\
         model = \"test-model\"\nretries = 0\nsystem_prompt_file = \"helper-prompt.md\"\n\
         skills = [\"memory\", \"cron\"]\n\n{}",
        webhook_section("hooks", port)
    );
    let mut h = Harness::new(&config);
    std::fs::write(h.dir().join("helper-prompt.md"), "You are the helper.\n").unwrap();
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, port, Duration::from_secs(30)).await;
    let out = h
        .cli(&[
            "bind",
            "add",
            "--agent",
            "helper",
            "--identity",
            "webhook:bob@example.com",
        ])
        .await;
    assert!(out.status.success(), "{out:?}");

    let a = post(&h.http, port, "t1", "alice@example.com", "hi", 20_000)
        .await
        .unwrap();
    assert_eq!(a.reply(), Some("from the files agent"), "{:?}", a.body);
    let b = post(&h.http, port, "t2", "bob@example.com", "hi", 20_000)
        .await
        .unwrap();
    assert_eq!(b.reply(), Some("from the helper"), "{:?}", b.body);

    let requests = fake.requests();
    let tools = |r: &Value| -> Vec<String> {
        r["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["function"]["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let system = |r: &Value| {
        r["messages"][0]["content"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(tools(&requests[0]), ["fs"]);
    assert!(
        system(&requests[0]).starts_with("You are the files agent."),
        "{}",
        requests[0]
    );
    assert_eq!(tools(&requests[1]), ["cron", "memory"]);
    assert!(
        system(&requests[1]).starts_with("You are the helper."),
        "{}",
        requests[1]
    );

    // A skill that does not exist is a configuration error naming it.
    let out = h.cli(&["config", "check"]).await;
    assert!(out.status.success());
    let bad = config.replace("skills = [\"fs\"]", "skills = [\"fs\", \"teleport\"]");
    std::fs::write(h.dir().join("clawos.toml"), bad).unwrap();
    let out = h.cli(&["config", "check"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"teleport\" is not a skill"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_records_every_change_and_the_log_rebuilds_any_version_of_a_file() {
    let fake = FakeLlm::start(vec![
        tool(
            "editor",
            json!({"op": "create", "path": "plan.md", "content": "# Plan\n- buy milk\n"}),
        ),
        Step::Text("Created.".into()),
        tool(
            "editor",
            json!({"op": "replace", "path": "plan.md", "old": "- buy milk\n", "new": "- buy oat milk\n- call mum\n"}),
        ),
        Step::Text("Updated.".into()),
    ]);
    let port = free_port();
    let mut h = started_with_webhook(
        &pi_config("openai", &fake.base_url_openai(), "", port),
        port,
    )
    .await;
    for (id, text) in [("e1", "start a plan"), ("e2", "change it")] {
        let r = post(&h.http, port, id, "alice@example.com", text, 20_000)
            .await
            .unwrap();
        assert!(r.reply().is_some(), "{:?}", r.body);
    }
    let now = std::fs::read_to_string(h.dir().join("workspace/pi/plan.md")).unwrap();
    assert_eq!(now, "# Plan\n- buy oat milk\n- call mum\n");
    let log = h.log().await;
    let changed: Vec<u64> = log
        .iter()
        .filter(
            |e| matches!(&e.payload, EventPayload::WorkspaceFileChanged(c) if c.path == "plan.md"),
        )
        .map(|e| e.seq)
        .collect();
    assert_eq!(changed.len(), 2, "{}", summary(&log));
    let at = |seq: u64| {
        let dir = h.dir().to_path_buf();
        async move {
            let out = cli_in(
                &dir,
                &["replay", "file-at", "--seq", &seq.to_string(), "plan.md"],
            )
            .await;
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string(),
            )
        }
    };
    assert_eq!(
        at(changed[0]).await,
        (true, "# Plan\n- buy milk\n".to_string())
    );
    assert_eq!(at(changed[1]).await, (true, now.clone()));
    assert!(
        !at(changed[0] - 1).await.0,
        "before its creation the file has no version"
    );
    let session = log
        .iter()
        .find_map(|e| e.stream.strip_prefix("session:").map(String::from))
        .unwrap();
    let out = h.cli(&["audit", "--session", &session]).await;
    let audit = String::from_utf8_lossy(&out.stdout);
    assert!(
        audit.contains("WorkspaceFileChanged") && audit.contains("plan.md"),
        "{audit}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canvas_is_folded_from_events_and_cleared_without_erasing_history() {
    let fake = FakeLlm::start(vec![
        tool(
            "canvas",
            json!({"op": "present", "kind": "markdown", "title": "Shopping", "content": "- oat milk"}),
        ),
        Step::Text("On your canvas.".into()),
        tool(
            "canvas",
            json!({"op": "present", "kind": "image", "content": "file:///etc/passwd"}),
        ),
        Step::Text("Could not.".into()),
        tool("canvas", json!({"op": "clear"})),
        Step::Text("Cleared.".into()),
    ]);
    let port = free_port();
    let mut h = started_with_webhook(
        &pi_config("openai", &fake.base_url_openai(), "", port),
        port,
    )
    .await;
    let shown = |h: &Harness| {
        let path = h.dir().join("projections.db");
        async move {
            use sqlx::ConnectOptions;
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .read_only(true)
                .connect()
                .await
                .unwrap();
            sqlx::query_as::<_, (String, String, i64)>("SELECT kind, content, seq FROM canvas")
                .fetch_all(&mut conn)
                .await
                .unwrap()
        }
    };
    let r = post(
        &h.http,
        port,
        "c1",
        "alice@example.com",
        "show my list",
        20_000,
    )
    .await
    .unwrap();
    assert_eq!(r.reply(), Some("On your canvas."), "{:?}", r.body);
    h.projected_through_head().await;
    let rows = shown(&h).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("markdown", "- oat milk")
    );
    let presented_at = rows[0].2 as u64;

    // A file URL is refused, and the refusal is in the log like any tool result.
    post(
        &h.http,
        port,
        "c2",
        "alice@example.com",
        "show a file",
        20_000,
    )
    .await
    .unwrap();
    let log = h.log().await;
    assert!(log.iter().any(|e| matches!(&e.payload,
        EventPayload::ToolReturned(t) if t.output.contains("https:// or data:image/"))));

    post(&h.http, port, "c3", "alice@example.com", "clear it", 20_000)
        .await
        .unwrap();
    h.projected_through_head().await;
    assert!(shown(&h).await.is_empty(), "cleared");
    // The log still has what was shown, and state-at folds it back.
    let log = h.log().await;
    assert!(log
        .iter()
        .any(|e| e.seq == presented_at && e.kind == "CanvasPresented"));
    assert!(log.iter().any(|e| e.kind == "CanvasCleared"));
    h.stop().await;
}
