//! Whole-system tests of the event log (ARCHITECTURE.md invariants I2, I3, I4, I6 and the inbound
//! half of I7): real SQLite files in temp dirs, raw connections that try to tamper with
//! them, concurrent appenders, and the real `clawos` binary killed with SIGKILL.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use clawos_events::codec::MessageReceivedV1;
use clawos_events::{
    inbound_dedupe_key, stream, verify, Attachment, CodecError, EventPayload, ExpectedVersion,
    IdentityLinked, LogError, NewEvent,
};
use clawos_projections::{projection, MemoryRunner, ProjectionError, Runner, Value};
use clawos_replay::{rebuild, state_at};
use common::*;
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use uuid::Uuid;

/// A few hundred ordinary events over several streams, for the tamper tests.
async fn fill(store: &clawos_events::LogStore, n: u64) {
    store
        .append_one("session:s1", started("s1", "alice", "pi"))
        .await
        .unwrap();
    for i in 1..n {
        let e = match i % 3 {
            0 => inbound(
                "terminal",
                &format!("m{i}"),
                "terminal:alice",
                "hello",
                "main",
            ),
            1 => linked("alice", &format!("irc:alice{i}@libera")),
            _ => binding_set(&format!("b{i}"), "pi", Some("room"), i as i32),
        };
        let s = match i % 3 {
            0 => "session:s1".to_string(),
            1 => stream::identity("alice"),
            _ => stream::BINDINGS.to_string(),
        };
        store.append_one(&s, e).await.unwrap();
    }
}

// ---- invariant 2: append-only, tamper-evident ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_and_delete_on_events_are_refused_by_the_triggers() {
    let home = Home::new();
    let store = open_log(&home.log()).await;
    fill(&store, 20).await;
    store.close().await;

    let mut conn = raw_conn(&home.log()).await;
    assert_eq!(
        trigger_names(&mut conn).await,
        [
            "events_append_only_delete",
            "events_append_only_replace",
            "events_append_only_update"
        ]
    );
    let before = raw_events(&mut conn).await;
    assert_eq!(before.len(), 20);

    let attempts = [
        (
            "UPDATE events SET ts_ms = ts_ms + 1 WHERE seq = 3",
            "UPDATE refused",
        ),
        (
            "UPDATE events SET payload = x'00' WHERE seq = 20",
            "UPDATE refused",
        ),
        ("UPDATE events SET stream = 'x'", "UPDATE refused"),
        ("DELETE FROM events WHERE seq = 20", "DELETE refused"),
        ("DELETE FROM events", "DELETE refused"),
        (
            "INSERT OR REPLACE INTO events SELECT * FROM events WHERE seq = 5",
            "replacing a seq refused",
        ),
    ];
    for (sql, expected) in attempts {
        let err = sqlx::query(sql)
            .execute(&mut conn)
            .await
            .expect_err(&format!("`{sql}` must fail"));
        let msg = err.to_string();
        assert!(
            msg.contains("clawos: the event log is append-only") && msg.contains(expected),
            "`{sql}` failed with an unexpected error: {msg}"
        );
    }
    // Also inside an explicit transaction: nothing changes.
    let mut tx = conn.begin().await.unwrap();
    assert!(sqlx::query("DELETE FROM events WHERE seq = 1")
        .execute(&mut *tx)
        .await
        .is_err());
    tx.rollback().await.unwrap();

    assert_eq!(raw_events(&mut conn).await, before, "the log changed");
    conn.close().await.unwrap();

    let store = open_log(&home.log()).await;
    let report = verify(&store, |_| {}).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.events_checked, 20);
    store.close().await;
}

/// Flip one byte of a stored column of seq `seq`, with the update trigger out of the way.
async fn flip(conn: &mut sqlx::SqliteConnection, seq: i64, column: &str) -> Vec<u8> {
    let old: Vec<u8> = sqlx::query_scalar(&format!(
        "SELECT CAST({column} AS BLOB) FROM events WHERE seq = ?"
    ))
    .bind(seq)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let mut new = old.clone();
    let i = new.len() / 2;
    new[i] ^= 0x01;
    let sql = format!("UPDATE events SET {column} = ? WHERE seq = ?");
    let q = if column == "stream" {
        sqlx::query(&sql).bind(String::from_utf8(new).unwrap())
    } else {
        sqlx::query(&sql).bind(new)
    };
    q.bind(seq).execute(&mut *conn).await.unwrap();
    old
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_first_tampered_seq_and_missing_triggers() {
    let home = Home::new();
    let home_dir = home.path().to_path_buf();
    let store = open_log(&home.log()).await;
    fill(&store, 40).await;
    store.close().await;

    // Intact: the library and the CLI agree.
    let (ok, out, err) = run_clawos(&home_dir, &["replay", "verify"]);
    assert!(ok, "verify of an intact log failed: {out}{err}");
    assert!(out.contains("chain intact: 40 events verified"), "{out}");

    // Drop the update trigger and flip a payload byte at 17 and a stream byte at 23.
    let mut conn = raw_conn(&home.log()).await;
    sqlx::query("DROP TRIGGER events_append_only_update")
        .execute(&mut conn)
        .await
        .unwrap();
    let payload_17 = flip(&mut conn, 17, "payload").await;
    let stream_23 = flip(&mut conn, 23, "stream").await;

    let store = open_log(&home.log()).await;
    let report = verify(&store, |_| {}).await.unwrap();
    assert!(!report.ok());
    assert_eq!(report.missing_triggers, ["events_append_only_update"]);
    let b = report.first_break.as_ref().expect("a break");
    assert_eq!(b.seq, 17, "{report:?}");
    assert_eq!(report.events_checked, 16);
    store.close().await;

    let (ok, out, _) = run_clawos(&home_dir, &["replay", "verify"]);
    assert!(!ok, "verify must exit non-zero on a broken log: {out}");
    assert!(out.contains("BROKEN at seq 17"), "{out}");
    assert!(
        out.contains("MISSING TRIGGER events_append_only_update"),
        "{out}"
    );

    // Put the payload back: the stream byte at 23 is now the first break.
    sqlx::query("UPDATE events SET payload = ? WHERE seq = 17")
        .bind(payload_17)
        .execute(&mut conn)
        .await
        .unwrap();
    let store = open_log(&home.log()).await;
    let report = verify(&store, |_| {}).await.unwrap();
    assert_eq!(report.first_break.as_ref().map(|b| b.seq), Some(23));
    store.close().await;
    let (ok, out, _) = run_clawos(&home_dir, &["replay", "verify"]);
    assert!(!ok);
    assert!(out.contains("BROKEN at seq 23"), "{out}");

    // Put the stream back: the chain is intact but the missing trigger still fails it.
    sqlx::query("UPDATE events SET stream = ? WHERE seq = 23")
        .bind(String::from_utf8(stream_23).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    let store = open_log(&home.log()).await;
    let report = verify(&store, |_| {}).await.unwrap();
    assert_eq!(report.first_break, None);
    assert_eq!(report.events_checked, 40);
    assert!(!report.ok(), "a missing trigger must fail verification");
    store.close().await;
    let (ok, out, _) = run_clawos(&home_dir, &["replay", "verify"]);
    assert!(!ok, "missing trigger must exit non-zero: {out}");
    assert!(out.contains("MISSING TRIGGER events_append_only_update"));
    assert!(out.contains("chain intact: 40 events verified"), "{out}");

    // A deleted row in the middle is a gap named by its seq.
    sqlx::query("DROP TRIGGER events_append_only_delete")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM events WHERE seq = 31")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let store = open_log(&home.log()).await;
    let report = verify(&store, |_| {}).await.unwrap();
    let b = report.first_break.clone().expect("gap");
    assert_eq!(b.seq, 31);
    assert!(b.reason.contains("missing"), "{b:?}");
    assert_eq!(
        report.missing_triggers,
        ["events_append_only_update", "events_append_only_delete"]
    );
    store.close().await;
    let (ok, out, _) = run_clawos(&home_dir, &["replay", "verify"]);
    assert!(!ok);
    assert!(out.contains("BROKEN at seq 31"), "{out}");
    assert!(
        out.contains("MISSING TRIGGER events_append_only_delete"),
        "{out}"
    );
}

// ---- invariants 3 and 4: gapless global order, optimistic concurrency ----------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_get_gapless_ordered_seqs_and_versions() {
    const TASKS: usize = 8;
    const REQUESTS: usize = 150;
    let home = Home::new();
    let store = open_log(&home.log()).await;

    // Every append: (task, request index, stream, result).
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let own = format!("identity:own-{t}");
            let mut own_version = 0u64;
            let mut out = Vec::new();
            for i in 0..REQUESTS {
                let n = 1 + (i * 7 + t) % 4; // 1..=4 events per request
                let shared = i % 3 == 0;
                let s = if shared {
                    "identity:shared".to_string()
                } else {
                    own.clone()
                };
                let events = (0..n)
                    .map(|j| linked(&format!("t{t}"), &format!("{t}/{i}/{j}")))
                    .collect();
                let expected = if shared {
                    ExpectedVersion::Any
                } else if own_version == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(own_version)
                };
                let a = store.append(&s, expected, events).await.unwrap();
                assert!(!a.duplicate);
                assert_eq!(
                    a.last_seq - a.first_seq + 1,
                    n as u64,
                    "request events are contiguous"
                );
                if !shared {
                    assert_eq!(a.stream_version, own_version + n as u64);
                    own_version = a.stream_version;
                }
                out.push((t, i, n, s, a));
                if i % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            out
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }

    // Each caller's seqs strictly increase.
    for t in 0..TASKS {
        let mine: Vec<_> = all.iter().filter(|r| r.0 == t).collect();
        for w in mine.windows(2) {
            assert!(
                w[1].4.first_seq > w[0].4.last_seq,
                "task {t}: seqs went backwards: {:?} then {:?}",
                w[0].4,
                w[1].4
            );
        }
    }
    // Together the seqs are exactly 1..=N.
    let mut seqs: Vec<u64> = all
        .iter()
        .flat_map(|r| r.4.first_seq..=r.4.last_seq)
        .collect();
    seqs.sort_unstable();
    let total = seqs.len() as u64;
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "seqs are not gapless and unique"
    );
    assert_eq!(store.head(), total);

    // What is stored at each returned seq is what that caller appended, and per-stream
    // versions run 1..=n in seq order without gaps.
    let events = store.read_from(1, u32::MAX).await.unwrap();
    assert_eq!(events.len() as u64, total);
    let by_seq: HashMap<u64, &clawos_events::RecordedEvent> =
        events.iter().map(|e| (e.seq, e)).collect();
    for (t, i, _n, s, a) in &all {
        for (j, seq) in (a.first_seq..=a.last_seq).enumerate() {
            let e = by_seq[&seq];
            assert_eq!(&e.stream, s);
            match e.decode().unwrap() {
                EventPayload::IdentityLinked(l) => assert_eq!(l.address, format!("{t}/{i}/{j}")),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(by_seq[&a.last_seq].stream_version, a.stream_version);
    }
    let mut versions: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &events {
        let v = versions.entry(e.stream.as_str()).or_default();
        *v += 1;
        assert_eq!(
            e.stream_version, *v,
            "stream {} version gap at seq {}",
            e.stream, e.seq
        );
    }
    for (s, v) in &versions {
        assert_eq!(store.stream_version(s).await.unwrap(), *v);
    }
    assert_eq!(versions.len(), TASKS + 1);

    // Optimistic concurrency: a stale expectation is a conflict and appends nothing.
    let head = store.head();
    let own0 = versions["identity:own-0"];
    match store
        .append(
            "identity:own-0",
            ExpectedVersion::Exact(own0 - 1),
            vec![linked("t0", "late")],
        )
        .await
    {
        Err(LogError::Conflict { stream, actual, .. }) => {
            assert_eq!(stream, "identity:own-0");
            assert_eq!(actual, own0);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    match store
        .append(
            "identity:shared",
            ExpectedVersion::NoStream,
            vec![linked("x", "x")],
        )
        .await
    {
        Err(LogError::Conflict { actual, .. }) => assert_eq!(actual, versions["identity:shared"]),
        other => panic!("NoStream on an existing stream must conflict, got {other:?}"),
    }
    match store
        .append(
            "identity:never",
            ExpectedVersion::Exact(3),
            vec![linked("x", "y")],
        )
        .await
    {
        Err(LogError::Conflict { actual: 0, .. }) => {}
        other => panic!("Exact on an empty stream must conflict, got {other:?}"),
    }
    assert_eq!(store.head(), head, "a conflict appended something");

    // Under contention, Exact admits exactly one writer per version: no lost updates.
    const WINS: u64 = 12;
    let mut racers = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let (mut wins, mut conflicts) = (0u64, 0u64);
            while wins < WINS {
                let v = store.stream_version("race").await.unwrap();
                match store
                    .append(
                        "race",
                        ExpectedVersion::Exact(v),
                        vec![linked("r", &format!("{t}-{wins}"))],
                    )
                    .await
                {
                    Ok(a) => {
                        assert_eq!(a.stream_version, v + 1);
                        wins += 1;
                    }
                    Err(LogError::Conflict { actual, .. }) => {
                        assert!(actual > v, "conflict without a newer version");
                        conflicts += 1;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            conflicts
        }));
    }
    for r in racers {
        r.await.unwrap();
    }
    let race = store.read_stream("race", u64::MAX).await.unwrap();
    assert_eq!(race.len() as u64, WINS * TASKS as u64);
    for (i, e) in race.iter().enumerate() {
        assert_eq!(e.stream_version, i as u64 + 1);
    }
    let report = verify(&store, |_| {}).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.events_checked, store.head());
    store.close().await;
}

// ---- invariant 3 under SIGKILL ----------------------------------------------------------

/// One round: start `debug append-loop`, wait for its first ack, kill it after a random
/// delay. Returns every (first, last) it acked.
async fn crash_round(home: &std::path::Path, durability: &str, delay_ms: u64) -> Vec<(u64, u64)> {
    let mut cmd = tokio::process::Command::from(clawos(home));
    cmd.args([
        "--durability",
        durability,
        "debug",
        "append-loop",
        "--tasks",
        "4",
        "--batch",
        "5",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn clawos");
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        let mut r = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match r.read_line(&mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // A line cut by the kill has no newline: its append may or may not be acked.
            let Some(line) = line.strip_suffix('\n') else {
                break;
            };
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "odd line {line:?}");
            assert_eq!(parts[0], "acked");
            let first: u64 = parts[1].parse().unwrap();
            let last: u64 = parts[2].parse().unwrap();
            let _ = tx.send((first, last));
        }
    });
    let mut acks = Vec::new();
    let first = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await;
    match first {
        Ok(Some(a)) => acks.push(a),
        _ => {
            let _ = child.start_kill();
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err).await;
            panic!("append-loop acked nothing: {err}");
        }
    }
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child was not killed by SIGKILL: {status:?}"
    );
    reader.await.unwrap();
    while let Ok(a) = rx.try_recv() {
        acks.push(a);
    }
    acks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_appender_loses_no_acked_event() {
    let home = Home::new();
    let mut rng = Rng::from_time();
    let mut acked: Vec<(u64, u64)> = Vec::new();
    let proj = open_projections(&home.projections()).await;
    let rounds = ["normal", "normal", "normal", "normal", "full"];
    for (round, durability) in rounds.iter().enumerate() {
        let delay = rng.range(50, 400);
        let acks = crash_round(home.path(), durability, delay).await;
        assert!(!acks.is_empty());
        for (first, last) in &acks {
            assert_eq!(
                last - first + 1,
                5,
                "a batch of 5 was acked as {first}..{last}"
            );
        }
        acked.extend(&acks);

        // Restart: every acked seq is there, the log is gapless and verifies.
        let store = open_log(&home.log()).await;
        let head = store.head();
        let max_acked = acked.iter().map(|a| a.1).max().unwrap();
        assert!(
            head >= max_acked,
            "round {round} ({durability}, {delay} ms): acked seq {max_acked} lost, head is {head}"
        );
        let report = verify(&store, |_| {}).await.unwrap();
        assert!(report.ok(), "round {round}: {report:?}");
        assert_eq!(report.events_checked, head, "gaps in the log");
        // Each acked request is whole: 5 consecutive versions of one stream.
        for (first, last) in &acks {
            let evs = store.read_range(*first, *last).await.unwrap();
            assert_eq!(evs.len(), 5);
            for w in evs.windows(2) {
                assert_eq!(w[0].stream, w[1].stream);
                assert_eq!(w[0].stream_version + 1, w[1].stream_version);
            }
        }
        // Incremental projection catch-up between crashes.
        let mut runner = Runner::open(proj.clone(), projection::all()).await.unwrap();
        let c = runner.catch_up(&store, |_| {}).await.unwrap();
        assert_eq!(c.position, head);
        store.close().await;
    }

    let store = open_log(&home.log()).await;
    let head = store.head();
    let events = store.read_from(1, u32::MAX).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=head).collect::<Vec<_>>());
    let present: BTreeSet<u64> = seqs.into_iter().collect();
    for (first, last) in &acked {
        for s in *first..=*last {
            assert!(present.contains(&s), "acked seq {s} is missing");
        }
    }
    // Acked ranges never overlap (no seq handed out twice, across restarts too).
    let mut ranges = acked.clone();
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        assert!(
            w[0].1 < w[1].0,
            "acked ranges overlap: {:?} {:?}",
            w[0],
            w[1]
        );
    }

    let rebuilt = open_projections(&home.file("rebuilt.db")).await;
    rebuild::rebuild(&store, &rebuilt, None, |_| {})
        .await
        .unwrap();
    assert_eq!(dump_all(&proj).await, dump_all(&rebuilt).await);
    assert_eq!(checkpoints(&proj).await, checkpoints(&rebuilt).await);
    let rows = dump_all(&rebuilt).await;
    assert!(!rows["identity_addresses"].is_empty());
    store.close().await;
}

// ---- invariant 7 (inbound): dedupe --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_dedupe_returns_the_original_seq_and_stores_once() {
    let home = Home::new();
    let store = open_log(&home.log()).await;
    store
        .append_one("session:s1", started("s1", "alice", "pi"))
        .await
        .unwrap();
    let msg = || inbound("terminal", "ext-1", "terminal:alice", "hi", "main");
    let key = inbound_dedupe_key("terminal", "ext-1");

    let a = store.append_one("session:s1", msg()).await.unwrap();
    assert!(!a.duplicate);
    assert_eq!(a.first_seq, 2);
    let b = store.append_one("session:s1", msg()).await.unwrap();
    assert!(b.duplicate);
    assert_eq!((b.first_seq, b.last_seq), (a.first_seq, a.first_seq));
    assert_eq!(b.stream_version, 2, "a duplicate does not bump the stream");
    assert_eq!(store.head(), 2);
    assert_eq!(store.find_dedupe(&key).await.unwrap(), Some(2));
    // The same (channel, external id) on another channel is another message.
    let c = store
        .append_one(
            "session:s1",
            inbound("irc", "ext-1", "irc:alice@x", "hi", "main"),
        )
        .await
        .unwrap();
    assert!(!c.duplicate);
    assert_eq!(c.first_seq, 3);

    // Concurrent duplicates. A big append occupies the writer so the duplicates queue up
    // behind it and are folded into one group-commit batch together.
    for round in 0..8 {
        let ext = format!("race-{round}");
        let blocker_events: Vec<NewEvent> = (0..2000)
            .map(|i| linked("blocker", &format!("b{round}-{i}")))
            .collect();
        let s = store.clone();
        let blocker = tokio::spawn(async move {
            s.append("identity:blocker", ExpectedVersion::Any, blocker_events)
                .await
                .unwrap()
        });
        tokio::task::yield_now().await;
        let mut dups = Vec::new();
        for _ in 0..24 {
            let s = store.clone();
            let ext = ext.clone();
            dups.push(tokio::spawn(async move {
                s.append_one(
                    "session:s1",
                    inbound("terminal", &ext, "terminal:alice", "again", "main"),
                )
                .await
                .unwrap()
            }));
        }
        blocker.await.unwrap();
        let mut results = Vec::new();
        for d in dups {
            results.push(d.await.unwrap());
        }
        let originals: Vec<_> = results.iter().filter(|r| !r.duplicate).collect();
        assert_eq!(originals.len(), 1, "round {round}: {results:?}");
        let seq = originals[0].first_seq;
        assert!(results
            .iter()
            .all(|r| r.first_seq == seq && r.last_seq == seq));
        let key = inbound_dedupe_key("terminal", &ext);
        let mut conn = raw_conn(&home.log()).await;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE dedupe_key = ?")
            .bind(&key)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        assert_eq!(n, 1);
        assert_eq!(store.find_dedupe(&key).await.unwrap(), Some(seq));
    }
    let report = verify(&store, |_| {}).await.unwrap();
    assert!(report.ok());
    assert_eq!(report.events_checked, store.head());
    // Messages in the session: the first, the irc one and one per race round.
    let n = store
        .read_stream("session:s1", u64::MAX)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == "MessageReceived")
        .count();
    assert_eq!(n, 2 + 8);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_in_a_batch_does_not_fail_the_others() {
    // One request carries the same dedupe key twice. Whatever happens to it, the callers
    // whose requests share its group-commit batch must not fail because of it.
    let home = Home::new();
    let store = open_log(&home.log()).await;
    for round in 0..5 {
        let blocker: Vec<NewEvent> = (0..2000)
            .map(|i| linked("blocker", &format!("b{round}-{i}")))
            .collect();
        let s = store.clone();
        let blocker = tokio::spawn(async move {
            s.append("identity:blocker", ExpectedVersion::Any, blocker)
                .await
        });
        tokio::task::yield_now().await;
        let mut innocents = Vec::new();
        for i in 0..8 {
            let s = store.clone();
            innocents.push(tokio::spawn(async move {
                s.append_one("identity:innocent", linked("x", &format!("{round}-{i}")))
                    .await
            }));
        }
        let s = store.clone();
        let key = format!("twice-{round}");
        let bad = tokio::spawn(async move {
            s.append(
                "identity:bad",
                ExpectedVersion::Any,
                vec![
                    linked("y", "1").dedupe(key.clone()),
                    linked("y", "2").dedupe(key),
                ],
            )
            .await
        });
        for i in 0..8 {
            let s = store.clone();
            innocents.push(tokio::spawn(async move {
                s.append_one(
                    "identity:innocent",
                    linked("x", &format!("{round}-late-{i}")),
                )
                .await
            }));
        }
        blocker.await.unwrap().unwrap();
        for (i, h) in innocents.into_iter().enumerate() {
            let r = h.await.unwrap();
            assert!(
                r.is_ok(),
                "round {round}: innocent append {i} failed: {r:?}"
            );
        }
        let bad = bad.await.unwrap();
        match bad {
            Err(LogError::DuplicateKeyInRequest(k)) => assert_eq!(k, format!("twice-{round}")),
            other => panic!("a request repeating its own dedupe key must be refused: {other:?}"),
        }
    }
    assert_eq!(
        store.stream_version("identity:innocent").await.unwrap(),
        5 * 16
    );
    assert_eq!(store.stream_version("identity:bad").await.unwrap(), 0);
    let report = verify(&store, |_| {}).await.unwrap();
    assert!(report.ok());
    store.close().await;
}

// ---- invariant 6: versioned events --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kind_and_version_are_surfaced_never_skipped() {
    let home = Home::new();
    let home_dir = home.path().to_path_buf();
    let store = open_log(&home.log()).await;
    store
        .append_one("session:s1", started("s1", "alice", "pi"))
        .await
        .unwrap();
    store
        .append_one(
            "session:s1",
            inbound("terminal", "1", "terminal:alice", "hi", "main"),
        )
        .await
        .unwrap();
    store.close().await;

    // Inserting is what the triggers allow; the rows are correctly chained.
    let teleported = raw_append(&home.log(), "session:s1", "Teleported", 1, b"\x01\x02\x03").await;
    let future = raw_append(
        &home.log(),
        stream::BINDINGS,
        "BindingRemoved",
        99,
        b"\x02b1",
    )
    .await;
    assert_eq!((teleported, future), (3, 4));

    let store = open_log(&home.log()).await;
    assert_eq!(store.head(), 4);
    // The writer carries on after the raw rows.
    let after = store
        .append_one(
            "session:s1",
            inbound("terminal", "2", "terminal:alice", "still here", "main"),
        )
        .await
        .unwrap();
    assert_eq!(after.first_seq, 5);
    assert_eq!(after.stream_version, 4);

    let events = store.read_from(1, 100).await.unwrap();
    assert_eq!(events.len(), 5, "reading never drops a row");
    for e in [&events[0], &events[1], &events[4]] {
        e.decode()
            .unwrap_or_else(|err| panic!("seq {}: {err}", e.seq));
    }
    match events[2].decode() {
        Err(LogError::Decode { seq, kind, source }) => {
            assert_eq!(seq, 3);
            assert_eq!(kind, "Teleported");
            assert_eq!(
                source,
                CodecError::UnknownKind {
                    kind: "Teleported".into(),
                    schema_version: 1
                }
            );
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let msg = events[2].decode().unwrap_err().to_string();
    assert!(msg.contains("seq 3") && msg.contains("Teleported"), "{msg}");
    match events[3].decode() {
        Err(LogError::Decode {
            seq: 4,
            source:
                CodecError::UnknownVersion {
                    schema_version: 99, ..
                },
            ..
        }) => {}
        other => panic!("expected an unknown version, got {other:?}"),
    }
    let report = verify(&store, |_| {}).await.unwrap();
    assert!(report.ok(), "{report:?}");

    // The runner stops at the unknown event with an error naming it, every time.
    let pool = open_projections(&home.projections()).await;
    let mut runner = Runner::open(pool.clone(), projection::all()).await.unwrap();
    for attempt in 0..2 {
        let err = runner
            .catch_up(&store, |_| {})
            .await
            .expect_err("must not skip");
        match &err {
            ProjectionError::Log(LogError::Decode { seq: 3, kind, .. }) => {
                assert_eq!(kind, "Teleported")
            }
            other => panic!("attempt {attempt}: unexpected error {other}"),
        }
        assert!(err.to_string().contains("Teleported"));
        assert!(
            runner.position() < 3,
            "attempt {attempt}: the runner moved past seq 3"
        );
        for (name, seq, _) in checkpoints(&pool).await {
            assert!(
                seq < 3,
                "checkpoint of {name} is past the unknown event: {seq}"
            );
        }
    }
    // The same for time travel and a fresh runner.
    assert!(state_at::state_at(&store, 2, None).await.is_ok());
    let err = state_at::state_at(&store, 5, None)
        .await
        .err()
        .expect("error");
    assert!(err.to_string().contains("seq 3"), "{err}");
    let err = state_at::state_at(&store, 5, Some("s1"))
        .await
        .err()
        .expect("error");
    assert!(err.to_string().contains("Teleported"), "{err}");
    let mut mem = MemoryRunner::new(projection::all());
    mem.apply(&events[0]).unwrap();
    mem.apply(&events[1]).unwrap();
    assert!(mem.apply(&events[2]).is_err());
    assert_eq!(mem.position, 2);
    store.close().await;

    // The CLI: rebuild fails naming it; export and show still print it.
    let (ok, _, err) = run_clawos(&home_dir, &["replay", "rebuild"]);
    assert!(!ok);
    assert!(err.contains("seq 3") && err.contains("Teleported"), "{err}");
    let (ok, out, err) = run_clawos(&home_dir, &["replay", "export", "--session", "s1"]);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[2]["seq"], 3);
    assert_eq!(lines[2]["kind"], "Teleported");
    assert!(lines[2]["decode_error"]
        .as_str()
        .unwrap()
        .contains("Teleported"));
    let (ok, out, _) = run_clawos(&home_dir, &["log", "show", "4"]);
    assert!(ok);
    assert!(out.contains("unknown schema version 99"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_message_received_is_upcast_and_projected() {
    let home = Home::new();
    let store = open_log(&home.log()).await;
    store
        .append_one("session:s1", started("s1", "alice", "pi"))
        .await
        .unwrap();
    store.close().await;

    let v1 = MessageReceivedV1 {
        channel: "irc".into(),
        external_id: "old-1".into(),
        sender: "irc:alice@libera".into(),
        chat: Some("#home".into()),
        text: "written before attachments existed".into(),
        branch: "main".into(),
        sent_at_ms: 42,
    };
    let bytes = bincode::serde::encode_to_vec(&v1, bincode::config::standard()).unwrap();
    let seq = raw_append(&home.log(), "session:s1", "MessageReceived", 1, &bytes).await;
    assert_eq!(seq, 2);

    let store = open_log(&home.log()).await;
    let mut current = received("irc", "new-1", "irc:alice@libera", "with a file", "main");
    current.attachments = vec![Attachment {
        name: "a.png".into(),
        mime: Some("image/png".into()),
        size: 3,
        blake3: Some(blake3::hash(b"png").to_hex().to_string()),
        location: None,
    }];
    let a = store
        .append_one("session:s1", NewEvent::new(current.clone()))
        .await
        .unwrap();
    assert_eq!(a.first_seq, 3);

    let old = store.get(2).await.unwrap().unwrap();
    assert_eq!(old.schema_version, 1);
    match old.decode().unwrap() {
        EventPayload::MessageReceived(m) => {
            assert_eq!(m.channel, "irc");
            assert_eq!(m.external_id, "old-1");
            assert_eq!(m.sender, "irc:alice@libera");
            assert_eq!(m.chat.as_deref(), Some("#home"));
            assert_eq!(m.text, "written before attachments existed");
            assert_eq!(m.branch, "main");
            assert_eq!(m.sent_at_ms, 42);
            assert!(m.attachments.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let new = store.get(3).await.unwrap().unwrap();
    assert_eq!(new.schema_version, 4);
    assert_eq!(
        new.decode().unwrap(),
        EventPayload::MessageReceived(current)
    );
    assert!(verify(&store, |_| {}).await.unwrap().ok());

    let pool = open_projections(&home.projections()).await;
    let mut runner = Runner::open(pool.clone(), projection::all()).await.unwrap();
    runner.catch_up(&store, |_| {}).await.unwrap();
    let tables = dump_all(&pool).await;
    let messages: Vec<_> = tables["messages"].values().cloned().collect();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0],
        vec![
            Value::Int(2),
            Value::Text("s1".into()),
            Value::Text("main".into()),
            Value::Null,
            Value::Text("user".into()),
            Value::Text("irc".into()),
            Value::Text("irc:alice@libera".into()),
            Value::Text("written before attachments existed".into()),
            Value::Int(old.ts_ms),
        ]
    );
    assert_eq!(
        messages[1][3],
        Value::Int(2),
        "the v2 message's parent is the v1 one"
    );
    let session = tables["sessions"].values().next().unwrap();
    assert_eq!(session[6], Value::Int(2), "both messages counted");

    let line = clawos_replay::export::event_json(&old);
    assert_eq!(line["schema_version"], 1);
    assert_eq!(line["payload"]["attachments"], serde_json::json!([]));
    store.close().await;
}

// ---- tail subscriptions -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_subscribers_get_every_event_once_in_order() {
    const BEFORE: u64 = 1000;
    const DURING: u64 = 1500;
    let home = Home::new();
    let store = open_log(&home.log()).await;
    let mut n = 0u64;
    while n < BEFORE {
        let k = (1 + n % 7).min(BEFORE - n);
        let events = (0..k)
            .map(|i| linked("p", &format!("pre-{n}-{i}")))
            .collect();
        store
            .append(
                &format!("identity:p{}", n % 5),
                ExpectedVersion::Any,
                events,
            )
            .await
            .unwrap();
        n += k;
    }
    assert_eq!(store.head(), BEFORE);

    let total = BEFORE + DURING;
    let subscriber = |from: u64, slow: bool| {
        let mut sub = store.subscribe(from);
        tokio::spawn(async move {
            let mut got = Vec::new();
            let mut expected = from;
            while expected <= total {
                let e = sub.next().await.unwrap();
                assert_eq!(e.seq, expected, "out of order or duplicated");
                got.push((e.seq, e.id));
                expected += 1;
                if slow && expected.trailing_zeros() >= 6 {
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            }
            got
        })
    };
    let fast = subscriber(1, false);
    let slow = subscriber(1, true);
    let late = subscriber(BEFORE + 500, false);

    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while n < DURING {
                let k = (1 + n % 11).min(DURING - n);
                let events = (0..k)
                    .map(|i| linked("q", &format!("live-{n}-{i}")))
                    .collect();
                store
                    .append(
                        &format!("identity:q{}", n % 3),
                        ExpectedVersion::Any,
                        events,
                    )
                    .await
                    .unwrap();
                n += k;
                if n % 50 < 11 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };
    let limit = Duration::from_secs(120);
    tokio::time::timeout(limit, writer).await.unwrap().unwrap();
    let fast = tokio::time::timeout(limit, fast).await.unwrap().unwrap();
    let slow = tokio::time::timeout(limit, slow).await.unwrap().unwrap();
    let late = tokio::time::timeout(limit, late).await.unwrap().unwrap();

    let log: Vec<(u64, Uuid)> = store
        .read_range(1, total)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.seq, e.id))
        .collect();
    assert_eq!(log.len() as u64, total);
    assert_eq!(fast, log);
    assert_eq!(slow, log);
    assert_eq!(late, log[(BEFORE + 500 - 1) as usize..].to_vec());

    // At the end, a subscriber waits instead of inventing events, and wakes on append.
    let mut sub = store.subscribe(total + 1);
    assert!(tokio::time::timeout(Duration::from_millis(150), sub.next())
        .await
        .is_err());
    let a = store
        .append_one(
            "identity:z",
            NewEvent::new(IdentityLinked {
                identity: "z".into(),
                address: "z".into(),
            }),
        )
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.seq, a.first_seq);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_is_visible_at_the_head_when_it_returns() {
    // Runners and subscribers read up to `head()`: once an append returned, the head must
    // cover it, or a catch-up right after the append silently misses the event.
    let home = Home::new();
    let store = open_log(&home.log()).await;
    let mut handles = Vec::new();
    for t in 0..4 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut stale = 0;
            for i in 0..300 {
                let a = store
                    .append_one(&format!("identity:h{t}"), linked("h", &format!("{t}-{i}")))
                    .await
                    .unwrap();
                if store.head() < a.last_seq {
                    stale += 1;
                }
            }
            stale
        }));
    }
    let mut stale = 0;
    for h in handles {
        stale += h.await.unwrap();
    }
    assert_eq!(
        stale, 0,
        "{stale} appends returned before the head covered them"
    );

    // The same seen through a runner: catch up right after each append.
    let pool = open_projections(&home.projections()).await;
    let mut runner = Runner::open(pool, projection::all()).await.unwrap();
    for i in 0..200 {
        let a = store
            .append_one("identity:r", linked("r", &format!("r{i}")))
            .await
            .unwrap();
        let c = runner.catch_up(&store, |_| {}).await.unwrap();
        assert!(
            c.position >= a.last_seq,
            "catch-up after append {i} stopped at {}",
            c.position
        );
    }
    store.close().await;
}

#[tokio::test]
async fn read_kinds_returns_only_those_kinds_within_the_range_in_order() {
    let home = Home::new();
    let store = open_log(&home.log()).await;
    fill(&store, 60).await;
    let all = store.read_range(1, store.head()).await.unwrap();
    let expect = |from: u64, to: u64, kinds: &[&str]| -> Vec<u64> {
        all.iter()
            .filter(|e| e.seq >= from && e.seq <= to && kinds.contains(&e.kind.as_str()))
            .map(|e| e.seq)
            .collect()
    };
    let seqs = |v: Vec<clawos_events::RecordedEvent>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
    let kinds = ["IdentityLinked", "BindingSet"];
    let got = store.read_kinds(5, 40, &kinds, 1000).await.unwrap();
    assert!(got.iter().all(|e| e.decode().is_ok()));
    assert_eq!(seqs(got), expect(5, 40, &kinds));
    assert!(!expect(5, 40, &kinds).is_empty());
    // The limit counts matches, in seq order.
    let got = store
        .read_kinds(1, 60, &["IdentityLinked"], 3)
        .await
        .unwrap();
    assert_eq!(seqs(got), expect(1, 60, &["IdentityLinked"])[..3].to_vec());
    // Nothing asked, an empty range, or a kind that never occurs: nothing.
    assert!(store.read_kinds(1, 60, &[], 10).await.unwrap().is_empty());
    assert!(store
        .read_kinds(40, 5, &kinds, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .read_kinds(1, 60, &["MemoryWritten"], 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_reader_that_stops_early_ends_the_cli_quietly() {
    // `clawos log tail -n 5000 | head -1`: the pipe closes under the CLI, which must end
    // like any Unix tool (SIGPIPE), never with a panic message.
    let home = Home::new();
    let store = open_log(&home.log()).await;
    fill(&store, 5000).await;
    store.close().await;
    let mut child = clawos(home.path())
        .args(["log", "tail", "-n", "5000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?}: {stderr}",
        out.status
    );
}
