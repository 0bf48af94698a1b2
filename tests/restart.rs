//! A Gateway restarted behaves exactly as before the restart, for every kind of routing
//! state an operator or a person can change: pairing, bindings, identity links, branch
//! switches and cron jobs (approvals: `tests/pi.rs`). Each test changes the state, checks
//! the Gateway acts on it, stops the Gateway (SIGTERM), starts a new one on the same state
//! folder and checks it acts the same. The real `clawos` binary, the real webhook channel
//! process, real SQLite files.

mod gateway_common;

use std::time::Duration;

use clawos_events::EventPayload;
use gateway_common::*;

const WAIT_MS: u64 = 20_000;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Echo agents `echo` (the default) and `other`, one webhook channel on `port` with
/// `dm_policy`.
fn config(port: u16, dm_policy: &str) -> String {
    format!(
        "{}[agents.other]\nkind = \"echo\"\n\n[channels.hooks]\nkind = \"webhook\"\n\
         listen = \"127.0.0.1:{port}\"\nsecret = \"{SECRET}\"\ndm_policy = \"{dm_policy}\"\n",
        echo_config("normal")
    )
}

/// Stop the Gateway with SIGTERM and start a new one on the same state folder.
async fn restart(h: &mut Harness, port: u16) {
    let status = h.stop().await;
    assert!(status.success(), "the Gateway exited with {status}");
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, port, secs(30)).await;
}

/// Assert that a CLI command succeeded, showing its stderr when it did not.
fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Post a message and wait for the answer in the webhook's response.
async fn ask(h: &Harness, port: u16, id: &str, from: &str, text: &str) -> Posted {
    let r = post(&h.http, port, id, from, text, WAIT_MS)
        .await
        .expect("POST /message");
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.reply().is_some(), "no reply to {id}: {:?}", r.body);
    r
}

/// The agent that answered the message at `seq`, its session stream and its branch.
fn answered(log: &[Ev], seq: u64) -> (String, String, String) {
    let stream = log
        .iter()
        .find(|e| e.seq == seq)
        .map(|e| e.stream.clone())
        .unwrap_or_default();
    let branch = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::MessageReceived(m) if e.seq == seq => Some(m.branch.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let agent = replies_to(log, seq)
        .first()
        .map(|(_, m)| m.agent.clone())
        .unwrap_or_default();
    (agent, stream, branch)
}

fn pairing_requests(log: &[Ev], address: &str) -> usize {
    log.iter()
        .filter(|e| matches!(&e.payload, EventPayload::PairingRequested(p) if p.address == address))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paired_sender_stays_paired_after_a_restart() {
    let port = free_port();
    let mut h = started_with_webhook(&config(port, "pairing"), port).await;

    // The code reaches the sender in the webhook's own response.
    let r = ask(&h, port, "p1", "eve@example.com", "hello?").await;
    let notice = r.reply().unwrap_or_default().to_string();
    let code: String = notice
        .split("pairing code is ")
        .nth(1)
        .map(|rest| rest.chars().take(8).collect())
        .unwrap_or_else(|| panic!("no code in the reply: {notice}"));
    let out = h.cli(&["pairing", "approve", &code]).await;
    succeeded(&out);
    let before = ask(&h, port, "p2", "eve@example.com", "now?").await;
    assert!(before.reply().unwrap_or_default().starts_with("echo: now?"));

    restart(&mut h, port).await;
    let after = ask(&h, port, "p3", "eve@example.com", "still me").await;
    assert!(
        after
            .reply()
            .unwrap_or_default()
            .starts_with("echo: still me"),
        "a paired sender was asked to pair again: {:?}",
        after.body
    );
    assert_eq!(
        pairing_requests(&h.log().await, "webhook:eve@example.com"),
        1,
        "one code, ever"
    );
    // A stranger still gets a code after the restart.
    let stranger = ask(&h, port, "p4", "mallory@example.com", "hi").await;
    assert!(stranger
        .reply()
        .unwrap_or_default()
        .contains("pairing code is"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_routes_the_same_after_a_restart() {
    let port = free_port();
    let mut h = started_with_webhook(&config(port, "open"), port).await;
    let out = h
        .cli(&["bind", "add", "--agent", "other", "--regex", "^@other "])
        .await;
    succeeded(&out);
    let bound = ask(&h, port, "b1", "ann@example.com", "@other hi").await;
    let plain = ask(&h, port, "b2", "ann@example.com", "hi").await;
    let log = h.log().await;
    let (bound_agent, bound_session, _) = answered(&log, bound.seq());
    let (plain_agent, _, _) = answered(&log, plain.seq());
    assert_eq!(
        (bound_agent.as_str(), plain_agent.as_str()),
        ("other", "echo")
    );

    restart(&mut h, port).await;
    let bound_again = ask(&h, port, "b3", "ann@example.com", "@other again").await;
    let plain_again = ask(&h, port, "b4", "ann@example.com", "again").await;
    let log = h.log().await;
    let (agent, session, _) = answered(&log, bound_again.seq());
    assert_eq!(agent, "other");
    assert_eq!(session, bound_session, "the bound agent's session goes on");
    assert_eq!(answered(&log, plain_again.seq()).0, "echo");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_link_holds_after_a_restart() {
    let port = free_port();
    let mut h = started_with_webhook(&config(port, "open"), port).await;
    let first = ask(&h, port, "i1", "ann@example.com", "hi from mail").await;
    let out = h
        .cli(&[
            "identity",
            "link",
            "webhook:ann@example.com",
            "webhook:ann@phone.example",
        ])
        .await;
    succeeded(&out);
    let linked = ask(&h, port, "i2", "ann@phone.example", "hi from phone").await;
    let log = h.log().await;
    let (_, session, _) = answered(&log, first.seq());
    assert_eq!(answered(&log, linked.seq()).1, session);

    restart(&mut h, port).await;
    let after = ask(&h, port, "i3", "ann@phone.example", "after").await;
    assert_eq!(answered(&h.log().await, after.seq()).1, session);
    assert!(
        after.reply().unwrap_or_default().contains("(4 before)"),
        "the linked address continues the conversation: {:?}",
        after.body
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_switch_holds_after_a_restart() {
    let port = free_port();
    let mut h = started_with_webhook(&config(port, "open"), port).await;
    ask(&h, port, "s1", "ann@example.com", "on main").await;
    let switched = ask(&h, port, "s2", "ann@example.com", "/branch idea").await;
    assert!(
        switched.reply().unwrap_or_default().contains("idea"),
        "{:?}",
        switched.body
    );
    let on_idea = ask(&h, port, "s3", "ann@example.com", "on idea").await;
    assert_eq!(answered(&h.log().await, on_idea.seq()).2, "idea");

    restart(&mut h, port).await;
    let after = ask(&h, port, "s4", "ann@example.com", "still on idea").await;
    assert_eq!(answered(&h.log().await, after.seq()).2, "idea");
    let back = ask(&h, port, "s5", "ann@example.com", "/switch main").await;
    assert!(back.reply().is_some());
    let on_main = ask(&h, port, "s6", "ann@example.com", "main again").await;
    assert_eq!(answered(&h.log().await, on_main.seq()).2, "main");
    h.stop().await;
}

fn fired(log: &[Ev], job: &str) -> Vec<u64> {
    log.iter()
        .filter(|e| matches!(&e.payload, EventPayload::CronFired(f) if f.job_id.to_string() == job))
        .map(|e| e.seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_changes_hold_after_a_restart() {
    let port = free_port();
    let mut h = started_with_webhook(&config(port, "open"), port).await;
    let first = ask(&h, port, "c1", "ann@example.com", "hi").await;
    let session = answered(&h.log().await, first.seq())
        .1
        .trim_start_matches("session:")
        .to_string();
    let add = |prompt: &'static str| {
        let session = session.clone();
        let h = &h;
        async move {
            let out = h
                .cli(&[
                    "cron",
                    "add",
                    "--session",
                    &session,
                    "--schedule",
                    "every 1s",
                    "--prompt",
                    prompt,
                ])
                .await;
            succeeded(&out);
        }
    };
    add("kept").await;
    add("removed").await;
    let jobs = |log: &[Ev]| -> Vec<(String, String)> {
        log.iter()
            .filter_map(|e| match &e.payload {
                EventPayload::CronScheduled(c) => Some((c.job_id.to_string(), c.prompt.clone())),
                _ => None,
            })
            .collect()
    };
    let log = h.log().await;
    let all = jobs(&log);
    let kept = all
        .iter()
        .find(|(_, p)| p == "kept")
        .expect("kept")
        .0
        .clone();
    let removed = all
        .iter()
        .find(|(_, p)| p == "removed")
        .expect("removed")
        .0
        .clone();
    h.wait_log("both jobs fire", secs(20), |l| {
        !fired(l, &kept).is_empty() && !fired(l, &removed).is_empty()
    })
    .await;
    let out = h.cli(&["cron", "rm", &removed]).await;
    succeeded(&out);

    restart(&mut h, port).await;
    let restarted_at = h.log().await.last().map(|e| e.seq).unwrap_or(0);
    h.wait_log("the kept job fires after the restart", secs(20), |l| {
        fired(l, &kept).iter().any(|s| *s > restarted_at)
    })
    .await;
    // Two more periods: the removed job stays removed.
    tokio::time::sleep(secs(2)).await;
    let log = h.log().await;
    assert!(
        fired(&log, &removed).iter().all(|s| *s < restarted_at),
        "a removed job fired after the restart:\n{}",
        summary(&log)
    );
    let list = h.cli(&["cron", "list"]).await;
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(text.contains(&kept) && text.contains("kept"), "{text}");
    h.stop().await;
}
