//! A Gateway restarted behaves exactly as before the restart, for every kind of routing
//! state an operator or a person can change: pairing, bindings, identity links, branch
//! switches and cron jobs (approvals: `tests/pi.rs`). Each test changes the state, checks
//! the Gateway acts on it, stops the Gateway (SIGTERM), starts a new one on the same state
//! folder and checks it acts the same. The real `clawos` binary, the real webhook channel
//! process, real SQLite files. Last, the same for a backup: taken while messages keep
//! coming, restored into a new folder, answering there like the original.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_to_a_gateway_that_answers_like_the_original() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let port = free_port();
    let mut h = Harness::new(&config(port, "open"));
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, port, secs(30)).await;
    let first = ask(&h, port, "b0", "alice@example.com", "before the backup").await;
    let admin_token = h.admin_token();

    // Messages keep coming from two senders while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let answered_during = Arc::new(AtomicUsize::new(0));
    let load = {
        let (http, stop, answered) = (h.http.clone(), stop.clone(), answered_during.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let from = if n % 2 == 0 {
                    "alice@example.com"
                } else {
                    "bob@example.com"
                };
                if let Ok(r) = post(&http, port, &format!("load-{n}"), from, "busy", 5_000).await {
                    if r.reply().is_some() {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("backup");
    let out = h
        .cli(&["backup", dest.to_str().unwrap(), "--include-key"])
        .await;
    succeeded(&out);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert!(
        answered_during.load(Ordering::Relaxed) > 0,
        "messages were answered while the backup was taken"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("backup.json")).unwrap()).unwrap();
    let head = manifest["head_seq"].as_u64().unwrap();
    assert!(head > first.seq(), "{manifest}");
    assert!(
        !dest.join("projections.db").exists(),
        "projections are rebuilt, not backed up"
    );
    let out = h.cli(&["backup", dest.to_str().unwrap()]).await;
    assert!(!out.status.success(), "a backup never overwrites another");
    assert!(h.stop().await.success());

    // The original log as of the snapshot, for comparison.
    let state_at = |dir: std::path::PathBuf| async move {
        let out = cli_in(
            &dir,
            &["replay", "state-at", "--seq", &head.to_string(), "--json"],
        )
        .await;
        succeeded(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    let original_state = state_at(h.dir().to_path_buf()).await;
    let original_log = h.log().await;

    // A damaged backup is refused before anything is copied.
    let damaged = backups.path().join("damaged");
    copy_dir(&dest, &damaged);
    std::fs::write(damaged.join("clawos.toml"), "# changed\n").unwrap();
    let target = tempfile::tempdir().unwrap();
    let out = cli_in(target.path(), &["restore", damaged.to_str().unwrap()]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("clawos.toml"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !target.path().join("clawos.db").exists(),
        "nothing was copied"
    );

    // Restored into a new folder: the chain verifies, the state at the snapshot is the
    // original's, the vault opens with the same admin token.
    let mut r = Harness::new("");
    std::fs::remove_file(r.dir().join("clawos.toml")).unwrap();
    let out = r.cli(&["restore", dest.to_str().unwrap()]).await;
    succeeded(&out);
    let out = r.cli(&["restore", dest.to_str().unwrap()]).await;
    assert!(
        !out.status.success(),
        "a restore never lands on a used folder"
    );
    succeeded(&r.cli(&["replay", "verify"]).await);
    assert_eq!(state_at(r.dir().to_path_buf()).await, original_state);
    r.start("127.0.0.1:0").await;
    wait_webhook(&r.http, port, secs(30)).await;
    assert_eq!(
        r.admin_token(),
        admin_token,
        "the vault came along with its key"
    );

    // And alice's conversation goes on in the same session.
    let after = ask(
        &r,
        port,
        "b-after",
        "alice@example.com",
        "after the restore",
    )
    .await;
    let reply = after.reply().unwrap_or_default();
    assert!(
        reply.starts_with("echo: after the restore (") && !reply.contains("(0 before)"),
        "the history came along: {reply}"
    );
    let restored_log = r.log().await;
    assert_eq!(
        answered(&restored_log, after.seq()).1,
        answered(&original_log, first.seq()).1,
        "the same session"
    );
    assert!(r.stop().await.success());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
