//! `clawos bench gateway`: start time, message round trips through a real channel process,
//! and memory, each beside a baseline measured in the same run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clawos_events::Durability;
use clawos_replay::{rebuild, Home};

use super::common::{fill_synthetic, free_port, start, write_config, SECRET};

pub(super) async fn wait_webhook(client: &reqwest::Client, hook: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client
            .post(format!("http://{hook}/message"))
            .bearer_auth(SECRET)
            .json(&serde_json::json!({"from": "warmup@bench", "text": "warm up", "wait_ms": 5000}))
            .send()
            .await;
        if let Ok(r) = r {
            if r.status().is_success() {
                let v: serde_json::Value = r.json().await?;
                if v["reply"].is_string() {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            bail!("webhook channel did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) async fn post(client: &reqwest::Client, hook: SocketAddr, n: u64) -> Result<Duration> {
    let t = Instant::now();
    let v: serde_json::Value = client
        .post(format!("http://{hook}/message"))
        .bearer_auth(SECRET)
        .json(&serde_json::json!({"from": format!("user{}@bench", n % 16), "text": format!("ping {n}"), "wait_ms": 10000}))
        .send()
        .await?
        .json()
        .await?;
    if !v["reply"].is_string() {
        bail!("no reply for message {n}: {v}");
    }
    Ok(t.elapsed())
}

pub(super) fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

pub(super) fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub(super) fn rss_kib(pid: u32) -> u64 {
    proc_kib(pid, "status", "VmRSS:")
}

/// The KiB figure of line `field` in `/proc/PID/FILE` (`status`, `smaps_rollup`); 0 when
/// unreadable.
pub(super) fn proc_kib(pid: u32, file: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A process's memory in KiB, from `/proc/PID/smaps_rollup`: resident, private to it
/// (what it alone costs), and proportional (shared pages split among their users).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Memory {
    /// Resident set: every page it touches, shared ones counted whole.
    pub rss: u64,
    /// Pages no other process maps (heap, stacks, written data).
    pub private: u64,
    /// Proportional set: shared pages divided among the processes that map them.
    pub pss: u64,
}

/// The memory of process `pid` (zeros when it cannot be read).
pub(super) fn memory_kib(pid: u32) -> Memory {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return Memory::default();
    };
    let field = |name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss: field("Rss:"),
        private: field("Private_Clean:") + field("Private_Dirty:"),
        pss: field("Pss:"),
    }
}

fn channel_pid(home: &Path) -> Option<u32> {
    // The newest ChannelStarted in the log names the webhook process.
    let out = Command::new(std::env::current_exe().ok()?)
        .arg("--home")
        .arg(home)
        .args(["log", "tail", "-n", "200", "--json"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "ChannelStarted")
        .filter_map(|v| v["payload"]["pid"].as_u64())
        .next_back()
        .map(|p| p as u32)
}

/// An in-process HTTP echo server: the floor for an HTTP round trip on this machine.
async fn baseline_server() -> Result<SocketAddr> {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/message",
        post(|body: axum::Json<serde_json::Value>| async move {
            axum::Json(serde_json::json!({"reply": body["text"].clone()}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

async fn round_trips(
    client: &reqwest::Client,
    hook: SocketAddr,
    count: u64,
    rate: u64,
) -> Result<Vec<Duration>> {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut tasks = Vec::with_capacity(count as usize);
    for n in 0..count {
        tick.tick().await;
        let client = client.clone();
        tasks.push(tokio::spawn(async move { post(&client, hook, n).await }));
    }
    let mut lat = Vec::with_capacity(count as usize);
    for t in tasks {
        lat.push(t.await??);
    }
    lat.sort();
    Ok(lat)
}

async fn sustained(
    client: &reqwest::Client,
    hook: SocketAddr,
    total: u64,
    clients: u64,
) -> Result<f64> {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..total / clients {
                post(&client, hook, c * 1_000_000 + i).await?;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((total / clients * clients) as f64 / t.elapsed().as_secs_f64())
}

/// Run the Gateway benchmarks.
pub(super) async fn bench_gateway(messages: u64, rate: u64, big_log: u64) -> Result<()> {
    let exe: PathBuf = std::env::current_exe()?;
    let root = std::env::temp_dir().join(format!("clawos-bench-gw-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&root)?;
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;

    println!("# clawos bench gateway ({messages} messages at {rate}/s per mode)\n");

    // Start to listening.
    let mut base = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        Command::new(&exe)
            .arg("--version")
            .stdout(Stdio::null())
            .status()?;
        base.push(t.elapsed());
    }
    base.sort();
    let empty = root.join("empty");
    write_config(&empty, Durability::Full, None)?;
    let mut starts = Vec::new();
    for _ in 0..5 {
        let (gw, took) = start(&exe, &empty, None)?;
        starts.push(took);
        drop(gw);
    }
    starts.sort();
    let big = root.join("big");
    write_config(&big, Durability::Normal, None)?;
    {
        let home = Home::new(&big);
        let store = home.open_log(Durability::Normal).await?;
        let sessions = 1000u64;
        fill_synthetic(&store, sessions, big_log).await?;
        let pool = home.open_projections().await?;
        rebuild::rebuild(&store, &pool, None, |_| {}).await?;
        pool.close().await;
        store.close().await;
    }
    let mut big_starts = Vec::new();
    for _ in 0..5 {
        let (gw, took) = start(&exe, &big, None)?;
        big_starts.push(took);
        drop(gw);
    }
    big_starts.sort();
    let big_events = Home::new(&big).open_log(Durability::Normal).await?.head();
    println!("| start to listening (median of 5) | time | ratio to process spawn |");
    println!("|---|---:|---:|");
    println!(
        "| baseline: spawn `clawos --version` | {} | 1.00 |",
        ms(base[2])
    );
    println!(
        "| `clawos gateway`, empty log | {} | {:.1} |",
        ms(starts[2]),
        starts[2].as_secs_f64() / base[2].as_secs_f64()
    );
    println!(
        "| `clawos gateway`, {big_events} events | {} | {:.1} |",
        ms(big_starts[2]),
        big_starts[2].as_secs_f64() / base[2].as_secs_f64()
    );

    // Baseline HTTP round trip.
    let base_addr = baseline_server().await?;
    let base_lat = round_trips(&client, base_addr, messages.min(2000), rate).await?;

    println!("\n| webhook round trip: HTTP in, channel process, bus, router, echo agent, log, back | p50 | p99 | ratio p50 | sustained msg/s (32 clients) |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| baseline: in-process axum echo, same client | {} | {} | 1.00 | |",
        ms(pct(&base_lat, 0.5)),
        ms(pct(&base_lat, 0.99))
    );
    let mut rss_rows = Vec::new();
    for durability in [Durability::Full, Durability::Normal] {
        let home = root.join(format!("rt-{durability:?}"));
        let hook: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        write_config(&home, durability, Some(hook))?;
        let (gw, _) = start(&exe, &home, Some(hook))?;
        let hook = gw.hook.context("hook address")?;
        wait_webhook(&client, hook).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let gw_idle = rss_kib(gw.child.id());
        let ch_pid = channel_pid(&home);
        let ch_idle = ch_pid.map(rss_kib).unwrap_or(0);
        let lat = round_trips(&client, hook, messages, rate).await?;
        let rate_max = sustained(&client, hook, messages.max(3200), 32).await?;
        println!(
            "| clawos, durability {durability:?} | {} | {} | {:.1} | {rate_max:.0} |",
            ms(pct(&lat, 0.5)),
            ms(pct(&lat, 0.99)),
            pct(&lat, 0.5).as_secs_f64() / pct(&base_lat, 0.5).as_secs_f64()
        );
        let turns = messages + messages.max(3200) + 1;
        let gw_after = rss_kib(gw.child.id());
        let _ = gw.addr;
        rss_rows.push((durability, gw_idle, ch_idle, turns, gw_after));
        drop(gw);
    }
    println!("\n| memory (VmRSS) | Gateway idle | webhook channel idle | Gateway after N turns |");
    println!("|---|---:|---:|---:|");
    for (d, gi, ci, turns, ga) in rss_rows {
        println!(
            "| durability {d:?} | {:.1} MiB | {:.1} MiB | {:.1} MiB after {turns} |",
            gi as f64 / 1024.0,
            ci as f64 / 1024.0,
            ga as f64 / 1024.0
        );
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
