//! The admin UI and its API, end to end: a real Gateway process with Pi talking to the
//! scripted fake LLM, a real webhook channel, and the UI driven in a real headless Chromium
//! through chromedriver (fantoccini). Screenshots land in `target/admin-screens/`.
//!
//! A test that needs Chromium fails with a message naming the missing package; it never
//! skips (`tests/run.sh` installs `chromium` and `chromium-driver`).

#[path = "browser_common/mod.rs"]
mod browser;
#[path = "gateway_common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use browser::*;
use clawos_testkit::fake_llm::{FakeLlm, Step};
use common::*;
use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

fn pi_config(base_url: &str, hook_port: u16) -> String {
    format!(
        "[gateway]\ndefault_agent = \"pi\"\ndurability = \"normal\"\n\n\
         [agents.pi]\nkind = \"pi\"\nprovider = \"openai\"\nbase_url = \"{base_url}\"\n\
         model = \"test-model\"\ntimeout_secs = 5\nretries = 0\n\n{}",
        webhook_section("hooks", hook_port)
    )
}

/// A Gateway with Pi on the fake LLM and two answered messages from alice: the first turn
/// writes a memory through the memory skill.
struct World {
    h: Harness,
    fake: FakeLlm,
    token: String,
    session: String,
    /// Seqs of alice's two messages.
    asked: [u64; 2],
    /// The webhook channel's port.
    port: u16,
}

async fn world() -> World {
    let fake = FakeLlm::start(vec![
        Step::ToolCall {
            name: "memory".into(),
            arguments: json!({"op": "remember", "text": "alice prefers green tea"}),
        },
        Step::Text("Noted: green tea.".into()),
        Step::Text("The capital is Paris.".into()),
    ]);
    let port = free_port();
    let mut h = Harness::new(&pi_config(&fake.base_url_openai(), port));
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, port, Duration::from_secs(30)).await;
    let a = post(
        &h.http,
        port,
        "m1",
        "alice@example.com",
        "I like green tea",
        20_000,
    )
    .await
    .expect("post m1");
    assert_eq!(a.reply(), Some("Noted: green tea."), "{:?}", a.body);
    let b = post(
        &h.http,
        port,
        "m2",
        "alice@example.com",
        "capital of France?",
        20_000,
    )
    .await
    .expect("post m2");
    assert_eq!(b.reply(), Some("The capital is Paris."), "{:?}", b.body);
    let token = h.admin_token();
    let sessions = get(&h, "/api/sessions", Some(&token)).await.1;
    let session = sessions[0]["session_id"]
        .as_str()
        .expect("a session")
        .to_string();
    World {
        asked: [a.seq(), b.seq()],
        port,
        h,
        fake,
        token,
        session,
    }
}

async fn get(h: &Harness, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = h.http.get(h.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post_json(h: &Harness, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = h.http.post(h.url(path)).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The transcript of `branch` in a snapshot list (from `/api/sessions/{id}` or
/// `/api/state`): `(role, text)` pairs.
fn transcript(sessions: &Value, branch: &str) -> Vec<(String, String)> {
    sessions[0]["branches"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["branch"]["name"] == branch)
        .map(|b| {
            b["transcript"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    (
                        m["role"].as_str().unwrap_or("").to_string(),
                        m["text"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn seqs(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_ui_refuse_without_the_admin_token() {
    let w = world().await;
    let h = &w.h;
    let session = &w.session;
    let reads = [
        "/api/events".to_string(),
        format!("/api/events/{}", w.asked[0]),
        "/api/state?seq=1".to_string(),
        format!("/api/sessions/{session}/audit"),
        "/api/channels".to_string(),
        "/api/memories?q=tea".to_string(),
        "/api/sessions".to_string(),
    ];
    let wrong = "0".repeat(w.token.len());
    for path in &reads {
        for token in [None, Some(wrong.as_str()), Some("")] {
            let (status, body) = get(h, path, token).await;
            assert_eq!(status, 401, "GET {path} with {token:?}: {body}");
            assert!(
                body["error"].as_str().is_some_and(|e| e.contains("token")),
                "{body}"
            );
        }
        let (status, body) = get(h, path, Some(&w.token)).await;
        assert_eq!(status, 200, "GET {path} with the token: {body}");
    }
    for (path, body) in [
        (
            format!("/api/sessions/{session}/fork"),
            json!({"at": w.asked[0]}),
        ),
        (
            format!("/api/sessions/{session}/replay"),
            json!({"at": w.asked[0]}),
        ),
    ] {
        let (status, _) = post_json(h, &path, None, body.clone()).await;
        assert_eq!(status, 401, "POST {path} without a token");
        let (status, _) = post_json(h, &path, Some(&wrong), body).await;
        assert_eq!(status, 401, "POST {path} with a wrong token");
    }
    // Nothing was forked or replayed by the refused requests.
    let live = get(h, &format!("/api/sessions/{session}"), Some(&w.token))
        .await
        .1;
    assert_eq!(
        live[0]["branches"].as_array().map(Vec::len),
        Some(1),
        "{live}"
    );

    // The shell loads without the token but holds no data: it asks for the token.
    let shell = h
        .http
        .get(h.url("/admin"))
        .send()
        .await
        .expect("GET /admin");
    assert_eq!(shell.status().as_u16(), 200);
    let html = shell.text().await.expect("html");
    assert!(html.contains("admin token") && !html.contains(session.as_str()));

    let browser = Browser::start((1280, 900), "admin-screens").await;
    let c = &browser.client;
    c.goto(&h.url("/admin")).await.expect("open /admin");
    let login = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#login:not([hidden])"))
        .await
        .expect("the token form is shown");
    assert!(login.is_displayed().await.expect("displayed"));
    assert!(c
        .find(Locator::Css("#app"))
        .await
        .expect("#app")
        .attr("hidden")
        .await
        .expect("attr")
        .is_some());
    // A wrong token is refused in the page too.
    c.find(Locator::Css("#token"))
        .await
        .expect("#token")
        .send_keys(&wrong)
        .await
        .expect("type");
    c.find(Locator::Css("#login button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    wait_text(c, "#login-error", "refused").await;
    browser.screenshot("00-login-refused").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_pages_links_state_at_fork_replay_audit_and_memories() {
    let w = world().await;
    let (h, t) = (&w.h, Some(w.token.as_str()));
    let session = &w.session;

    // Pages: newest first, gapless cursors, the head on top.
    let (_, all) = get(h, "/api/events?limit=500", t).await;
    let every = seqs(&all);
    assert_eq!(every.first().copied(), all["head"].as_u64(), "{all}");
    assert!(every.windows(2).all(|p| p[0] == p[1] + 1), "{every:?}");
    assert_eq!(every.last(), Some(&1));
    let (_, p1) = get(h, "/api/events?limit=3", t).await;
    assert_eq!(seqs(&p1), every[..3]);
    let before = p1["next_before"].as_u64().expect("next_before");
    let (_, p2) = get(h, &format!("/api/events?limit=3&before={before}"), t).await;
    assert_eq!(seqs(&p2), every[3..6]);
    let (_, after) = get(h, &format!("/api/events?after={}", every[2]), t).await;
    assert_eq!(seqs(&after), every[..2], "following the tail");

    // Filters.
    let (_, received) = get(h, "/api/events?kind=MessageReceived", t).await;
    assert_eq!(seqs(&received), [w.asked[1], w.asked[0]], "{received}");
    let (_, k1) = get(h, "/api/events?kind=MessageReceived&limit=1", t).await;
    assert_eq!(seqs(&k1), [w.asked[1]], "{k1}");
    let cursor = k1["next_before"].as_u64().expect("next_before");
    let (_, k2) = get(
        h,
        &format!("/api/events?kind=MessageReceived&limit=1&before={cursor}"),
        t,
    )
    .await;
    assert_eq!(seqs(&k2), [w.asked[0]], "{k2}");
    let (_, found) = get(h, "/api/events?kind=MessageReceived&q=FRANCE", t).await;
    assert_eq!(seqs(&found), [w.asked[1]], "{found}");
    let (_, of_session) = get(h, &format!("/api/events?session={session}&limit=500"), t).await;
    let in_session = of_session["events"].as_array().expect("events");
    assert!(!in_session.is_empty());
    assert!(in_session
        .iter()
        .all(|e| e["stream"] == format!("session:{session}")));
    // Paged through the stream index, the session's events come out the same.
    let mut paged = Vec::new();
    let mut before = String::new();
    loop {
        let (_, p) = get(
            h,
            &format!("/api/events?session={session}&limit=4{before}"),
            t,
        )
        .await;
        paged.extend(seqs(&p));
        match p["next_before"].as_u64() {
            Some(b) => before = format!("&before={b}"),
            None => break,
        }
    }
    assert_eq!(paged, seqs(&of_session));
    let (_, of_channel) = get(h, "/api/events?channel=hooks&limit=500", t).await;
    let kinds: Vec<&str> = of_channel["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for k in ["ChannelStarted", "MessageReceived", "MessageSent"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let (status, _) = get(h, "/api/events?session=x&stream=bindings", t).await;
    assert_eq!(status, 400);

    // One event: decoded, with what it caused and what caused it.
    let (_, asked) = get(h, &format!("/api/events/{}", w.asked[1]), t).await;
    assert_eq!(asked["payload"]["text"], "capital of France?", "{asked}");
    assert_eq!(asked["hash"].as_str().map(str::len), Some(64), "{asked}");
    let caused: Vec<&str> = asked["caused"]
        .as_array()
        .expect("caused")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        caused.contains(&"AgentTurnStarted") && caused.contains(&"MessageSent"),
        "{caused:?}"
    );
    let reply_seq = asked["caused"]
        .as_array()
        .expect("caused")
        .iter()
        .find(|e| e["kind"] == "MessageSent")
        .and_then(|e| e["seq"].as_u64())
        .expect("reply");
    let (_, reply) = get(h, &format!("/api/events/{reply_seq}"), t).await;
    assert_eq!(
        reply["caused_by"]["seq"].as_u64(),
        Some(w.asked[1]),
        "{reply}"
    );
    assert!(
        reply["correlated"]
            .as_array()
            .expect("correlated")
            .iter()
            .any(|e| e["kind"] == "LlmResponded"),
        "{reply}"
    );
    assert_eq!(get(h, "/api/events/999999", t).await.0, 404);

    // State at a seq, folded by the replay library: before the second message there is one
    // exchange; at the head it equals the live tables.
    let (_, early) = get(
        h,
        &format!("/api/state?seq={}&session={session}", w.asked[1] - 1),
        t,
    )
    .await;
    assert_eq!(
        transcript(&early["sessions"], "main"),
        [
            ("user".to_string(), "I like green tea".to_string()),
            ("assistant".to_string(), "Noted: green tea.".to_string())
        ],
        "{early}"
    );
    let (_, now) = get(h, &format!("/api/state?session={session}"), t).await;
    let (_, live) = get(h, &format!("/api/sessions/{session}"), t).await;
    assert_eq!(now["sessions"], live, "state-at(head) == live");
    let (_, whole) = get(h, "/api/state", t).await;
    assert!(
        whole["channels"]
            .as_array()
            .expect("channels")
            .iter()
            .any(|c| c["channel"] == "hooks"),
        "{whole}"
    );
    assert_eq!(whole["memories"][0]["text"], "alice prefers green tea");
    assert!(whole["identities"].is_array() && whole["bindings"].is_array());
    // Bindings and identities as of any point: set them now, then look before and after.
    let before_bind = whole["head"].as_u64().expect("head");
    for args in [
        &[
            "bind",
            "add",
            "--agent",
            "pi",
            "--id",
            "b1",
            "--channel",
            "hooks",
        ][..],
        &[
            "identity",
            "link",
            "webhook:alice@example.com",
            "irc:alice@libera",
        ][..],
    ] {
        let out = h.cli(args).await;
        assert!(out.status.success(), "clawos {args:?}: {out:?}");
    }
    let (_, after) = get(h, "/api/state", t).await;
    assert_eq!(after["bindings"][0]["binding_id"], "b1", "{after}");
    assert_eq!(after["bindings"][0]["channel"], "hooks", "{after}");
    let linked = |v: &Value| {
        v["identities"]
            .as_array()
            .expect("identities")
            .iter()
            .any(|i| i["address"] == "irc:alice@libera")
    };
    assert!(linked(&after), "{after}");
    let (_, then) = get(h, &format!("/api/state?seq={before_bind}"), t).await;
    assert_eq!(then["bindings"], json!([]), "{then}");
    assert!(!linked(&then), "{then}");
    let (_, before_memory) = get(h, &format!("/api/state?seq={}", w.asked[0]), t).await;
    assert_eq!(before_memory["memories"], json!([]), "{before_memory}");
    assert_eq!(get(h, "/api/state?seq=99999999", t).await.0, 400);

    // Fork at the first message: a new branch, the active one unchanged.
    let fork_path = format!("/api/sessions/{session}/fork");
    let (status, fork) = post_json(h, &fork_path, t, json!({"at": w.asked[0]})).await;
    assert_eq!(status, 200, "{fork}");
    let name = format!("fork-{}", w.asked[0]);
    assert_eq!(fork["branch"], name.as_str());
    let (_, live) = get(h, &format!("/api/sessions/{session}"), t).await;
    assert_eq!(live[0]["session"]["active_branch"], "main");
    assert_eq!(
        transcript(&live, &name),
        [("user".to_string(), "I like green tea".to_string())]
    );
    let (_, whole) = get(h, "/api/state", t).await;
    let names: Vec<&str> = whole["sessions"][0]["branches"]
        .as_array()
        .expect("branches")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, [name.as_str(), "main"], "{whole}");
    let (status, _) = post_json(h, &fork_path, t, json!({"at": w.asked[0]})).await;
    assert_eq!(status, 409, "the same fork twice");
    let (status, _) = post_json(h, &fork_path, t, json!({"at": 1})).await;
    assert_eq!(status, 400, "seq 1 is not a message");
    let (status, _) = post_json(h, &fork_path, t, json!({"at": w.asked[0], "name": "a b"})).await;
    assert_eq!(status, 400, "bad branch name");

    // Replay from the second message: re-run on a new branch with the current model; the
    // original stays.
    w.fake.push(Step::Text("Paris, still.".into()));
    let (status, replay) = post_json(
        h,
        &format!("/api/sessions/{session}/replay"),
        t,
        json!({"at": w.asked[1]}),
    )
    .await;
    assert_eq!(status, 200, "{replay}");
    let branch = replay["branch"].as_str().expect("branch").to_string();
    assert_eq!(branch, format!("replay-{}", w.asked[1]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let replayed = loop {
        let (_, live) = get(h, &format!("/api/sessions/{session}"), t).await;
        let tr = transcript(&live, &branch);
        if tr.len() == 4 || Instant::now() > deadline {
            break (live, tr);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        replayed.1,
        [
            ("user".to_string(), "I like green tea".to_string()),
            ("assistant".to_string(), "Noted: green tea.".to_string()),
            ("user".to_string(), "capital of France?".to_string()),
            ("assistant".to_string(), "Paris, still.".to_string()),
        ],
        "{}",
        replayed.0
    );
    assert_eq!(
        transcript(&replayed.0, "main")[3].1,
        "The capital is Paris.",
        "the original stays"
    );
    let (status, _) = post_json(
        h,
        &format!("/api/sessions/{session}/replay"),
        t,
        json!({"at": 1}),
    )
    .await;
    assert_eq!(status, 400);

    // Audit: three turns with their LLM calls, the first with its tool call.
    let (_, audit) = get(h, &format!("/api/sessions/{session}/audit"), t).await;
    let turns = audit["turns"].as_array().expect("turns");
    assert_eq!(turns.len(), 3, "{audit}");
    assert!(turns.iter().all(|t| t["status"] == "finished"), "{audit}");
    let first: Vec<&str> = turns[0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["kind"].as_str())
        .collect();
    assert_eq!(
        first,
        [
            "LlmRequested",
            "LlmResponded",
            "ToolCalled",
            "ToolReturned",
            "LlmRequested",
            "LlmResponded"
        ]
    );
    assert_eq!(turns[0]["steps"][0]["detail"]["model"], "test-model");
    assert!(turns[0]["steps"][1]["detail"]["prompt_tokens"].as_u64() > Some(0));

    // Memories: searched with the Gateway's recall.
    let (_, hits) = get(h, "/api/memories?q=which%20tea", t).await;
    assert_eq!(
        hits["memories"][0]["text"], "alice prefers green tea",
        "{hits}"
    );
    // Recall is ranked by meaning (vectors) and keywords, so any query finds the nearest
    // memories; what must hold is the scope: another identity's search finds none of them.
    let (_, none) = get(
        h,
        "/api/memories?q=which%20tea&identity=webhook:bob@example.com",
        t,
    )
    .await;
    assert_eq!(none["memories"], json!([]), "{none}");

    // Channels: the webhook channel is up and its replies get acked; the replayed reply
    // waits on `@admin`, which no channel process serves.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (ch, hooks) = loop {
        let (_, ch) = get(h, "/api/channels", t).await;
        let hooks = ch["channels"]
            .as_array()
            .expect("channels")
            .iter()
            .find(|c| c["channel"] == "hooks")
            .cloned()
            .expect("hooks");
        if hooks["pending_deliveries"] == 0 || Instant::now() > deadline {
            break (ch, hooks);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hooks["state"], "up", "{ch}");
    assert_eq!(hooks["restarts"], 0, "{ch}");
    assert_eq!(hooks["pending_deliveries"], 0, "{ch}");
    assert_eq!(ch["pending"]["@admin"], 1, "{ch}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_in_chromium_lists_events_travels_in_time_forks_and_audits() {
    let w = world().await;
    let h = &w.h;
    let browser = Browser::start((1280, 900), "admin-screens").await;
    let c = &browser.client;

    // The event list, newest first, opened with the token in the URL fragment.
    c.goto(&format!("{}#token={}", h.url("/admin"), w.token))
        .await
        .expect("open /admin");
    let head = get(h, "/api/events?limit=1", Some(&w.token)).await.1["head"]
        .as_u64()
        .expect("head");
    wait_for(c, "the newest event on top", |c| async move {
        first_seq(&c).await == Some(head)
    })
    .await;
    let url = c.current_url().await.expect("url");
    assert!(
        !url.as_str().contains("token"),
        "the token leaves the URL: {url}"
    );
    browser.screenshot("01-events").await;

    // Click an event: its payload and its links.
    c.find(Locator::Css(&format!(
        "#events tr[data-seq=\"{}\"]",
        w.asked[1]
    )))
    .await
    .expect("row of the second message")
    .click()
    .await
    .expect("click");
    wait_text(c, "#event-detail", "capital of France?").await;
    wait_text(c, "#event-detail", "AgentTurnStarted").await;
    browser.screenshot("02-event-detail").await;

    // A new event arrives over /ws and lands on top of the list.
    let r = post(
        &h.http,
        w.port,
        "m3",
        "alice@example.com",
        "one more",
        20_000,
    )
    .await
    .expect("post m3");
    assert!(r.reply().is_some(), "{:?}", r.body);
    let new_head = get(h, "/api/events?limit=1", Some(&w.token)).await.1["head"]
        .as_u64()
        .expect("head");
    wait_for(c, "the live event on top", |c| async move {
        first_seq(&c).await >= Some(new_head)
    })
    .await;

    // Sessions: the transcript, then drag the time slider to the start and see it empty;
    // a seq in the box shows the first exchange only.
    click(c, "#tabs button[data-view=\"sessions\"]").await;
    wait_count(c, "#transcript li", 6).await;
    browser.screenshot("03-session").await;
    let slider = c.find(Locator::Css("#slider")).await.expect("slider");
    let (_, _, width, _) = slider.rectangle().await.expect("slider size");
    let drag = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: slider.clone(),
            duration: None,
            x: 0.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(300)),
            x: -(width / 2.0) - 20.0,
            y: 0.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(drag).await.expect("drag the slider");
    wait_text(c, "#slider-info", "as of seq").await;
    wait_count(c, "#transcript li", 0).await;
    browser.screenshot("04-slider-at-start").await;
    let box_ = c.find(Locator::Css("#seq-box")).await.expect("seq box");
    box_.clear().await.expect("clear");
    box_.send_keys(&format!("{}\u{E007}", w.asked[1] - 1))
        .await
        .expect("type a seq");
    wait_count(c, "#transcript li", 2).await;
    wait_text(c, "#transcript", "Noted: green tea.").await;
    let text = c
        .find(Locator::Css("#transcript"))
        .await
        .expect("transcript")
        .text()
        .await
        .expect("text");
    assert!(!text.contains("capital of France?"), "{text}");
    browser.screenshot("05-slider-at-first-exchange").await;

    // Fork from the first message and see the new branch in the SVG tree.
    c.find(Locator::Css(&format!(
        "#transcript li[data-seq=\"{}\"] button.fork",
        w.asked[0]
    )))
    .await
    .expect("fork button")
    .click()
    .await
    .expect("click fork");
    let branch = format!("fork-{}", w.asked[0]);
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&format!(
            "#tree svg g.branch[data-branch=\"{branch}\"]"
        )))
        .await
        .expect("the new branch in the tree");
    wait_text(c, "#branch-pick", &branch).await;
    browser.screenshot("06-forked").await;
    let (_, live) = get(h, &format!("/api/sessions/{}", w.session), Some(&w.token)).await;
    assert!(
        live[0]["branches"]
            .as_array()
            .expect("branches")
            .iter()
            .any(|b| b["branch"]["name"] == branch.as_str()),
        "{live}"
    );

    // Replay from the first message: a new branch in the tree whose answer comes from the
    // model as it answers now.
    w.fake.push(Step::Text("Replayed in the browser.".into()));
    click(
        c,
        &format!("#transcript li[data-seq=\"{}\"] button.replay", w.asked[0]),
    )
    .await;
    let replay = format!("replay-{}", w.asked[0]);
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&format!(
            "#tree svg g.branch[data-branch=\"{replay}\"]"
        )))
        .await
        .expect("the replay branch in the tree");
    wait_text(c, "#transcript", "Replayed in the browser.").await;
    wait_text(c, "#transcript", "I like green tea").await;
    browser.screenshot("07-replayed").await;

    // Audit: open the first turn and see its LLM call and tool call.
    click(c, "#tabs button[data-view=\"audit\"]").await;
    wait_count(c, "#turns li", 4).await;
    click(c, "#turns li:first-child").await;
    wait_text(c, "#turn-detail", "test-model").await;
    wait_text(c, "#turn-detail", "tool memory called").await;
    wait_text(c, "#turn-detail", "finished").await;
    browser.screenshot("08-audit").await;

    // Channels, memory and the whole state at a seq render too.
    click(c, "#tabs button[data-view=\"channels\"]").await;
    wait_text(c, "#channels", "hooks").await;
    browser.screenshot("09-channels").await;
    click(c, "#tabs button[data-view=\"memory\"]").await;
    wait_text(c, "#memories", "alice prefers green tea").await;
    click(c, "#tabs button[data-view=\"state\"]").await;
    wait_text(c, "#state-info", "as of seq").await;
    wait_text(c, "#state-tables", "alice prefers green tea").await;
    browser.screenshot("10-state").await;
    // Usage: Pi's calls to the fake LLM, by agent and by model.
    click(c, "#tabs button[data-view=\"usage\"]").await;
    wait_text(c, "#usage tbody", "pi").await;
    wait_text(c, "#usage-total", "since").await;
    c.find(Locator::Css("#usage-form select[name=by]"))
        .await
        .expect("the grouping")
        .select_by_value("model")
        .await
        .expect("group by model");
    wait_text(c, "#usage tbody", "test-model").await;
    browser.screenshot("11-usage").await;
    browser.close().await;
}

async fn first_seq(c: &Client) -> Option<u64> {
    let row = c.find(Locator::Css("#events tbody tr")).await.ok()?;
    row.attr("data-seq").await.ok()??.parse().ok()
}
