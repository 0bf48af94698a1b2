//! `clawos bench log`: the log and projection benchmarks of BENCHMARKS.md: append
//! throughput and latency against a plain-sqlx baseline, rebuild and state-at.

use std::time::{Duration, Instant};

use anyhow::Result;
use clawos_events::{connect_options, stream, Durability, ExpectedVersion, LogStore, NewEvent};
use clawos_replay::{rebuild, state_at, Home};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use uuid::Uuid;

use super::common::{fill_synthetic, percentile, synthetic_start, synthetic_turn, tempfile_dir};

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

/// Run the benchmark and print its tables.
pub(super) async fn bench_log(events: u64, appends: u64, durability: Durability) -> Result<()> {
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
