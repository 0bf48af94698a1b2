//! `clawos bench admin`: how fast the admin UI's views answer on a big log. A Gateway
//! process serves a synthetic log of about `events` events (1000 sessions of agent turns);
//! every endpoint is timed over HTTP beside two same-run baselines: the `/health` round
//! trip (the HTTP floor) and the replay library's own fold for state-at.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clawos_events::Durability;
use clawos_replay::{rebuild, state_at, Home};

use super::common::{fill_synthetic, start, write_config};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The admin token, as a user gets it: `clawos admin token`.
pub(super) fn admin_token(exe: &Path, home: &Path) -> Result<String> {
    let out = Command::new(exe)
        .arg("--home")
        .arg(home)
        .args(["admin", "token"])
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("`clawos admin token` failed");
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// Time `n` GETs of `path` (each must answer 200).
async fn time_get(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    n: usize,
) -> Result<Duration> {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = client
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await?;
        let status = r.status();
        let body = r.bytes().await?;
        took.push(t.elapsed());
        if !status.is_success() {
            bail!("GET {path}: {status} {}", String::from_utf8_lossy(&body));
        }
    }
    Ok(median(took))
}

/// Run the benchmark and print its tables.
pub(super) async fn bench_admin(events: u64, requests: usize) -> Result<()> {
    let exe = std::env::current_exe()?;
    let root = std::env::temp_dir().join(format!("clawos-bench-admin-{}", uuid::Uuid::now_v7()));
    let dir = root.join("home");
    write_config(&dir, Durability::Normal, None)?;
    let home = Home::new(&dir);
    let t = Instant::now();
    {
        let store = home.open_log(Durability::Normal).await?;
        fill_synthetic(&store, 1000, events).await?;
        let pool = home.open_projections().await?;
        rebuild::rebuild(&store, &pool, None, |_| {}).await?;
        pool.close().await;
        store.close().await;
    }
    eprintln!(
        "log written and projected in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let token = admin_token(&exe, &dir)?;
    let (gw, _) = start(&exe, &dir, None)?;
    let base = format!("http://{}", gw.addr);
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let head: u64 = client
        .get(format!("{base}/health"))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?["seq"]
        .as_u64()
        .context("head")?;
    let n = requests.max(1);
    let health = time_get(&client, &base, &token, "/health", n).await?;
    let rows: Vec<(String, Duration)> = vec![
        (
            "`/admin` shell (HTML)".into(),
            time_get(&client, &base, &token, "/admin", n).await?,
        ),
        (
            "first event page, 50 newest".into(),
            time_get(&client, &base, &token, "/api/events?limit=50", n).await?,
        ),
        (
            "an older page (`before` = head / 2)".into(),
            time_get(
                &client,
                &base,
                &token,
                &format!("/api/events?limit=50&before={}", head / 2),
                n,
            )
            .await?,
        ),
        (
            "one session's page (stream index)".into(),
            time_get(&client, &base, &token, "/api/events?limit=50&session=s7", n).await?,
        ),
        (
            "kind filter matching nothing (scans the 20,000-event budget)".into(),
            time_get(
                &client,
                &base,
                &token,
                "/api/events?limit=50&kind=AgentTurnFailed",
                n,
            )
            .await?,
        ),
        (
            "one event with its causes and effects".into(),
            time_get(
                &client,
                &base,
                &token,
                &format!("/api/events/{}", head - 5),
                n,
            )
            .await?,
        ),
        (
            "state-at(head) of one session (~1,000 events)".into(),
            time_get(&client, &base, &token, "/api/state?session=s7", n).await?,
        ),
    ];
    println!("# clawos bench admin ({head} events, median of {n} requests)\n");
    println!("| admin API request | median | ratio to `/health` |");
    println!("|---|---:|---:|");
    println!("| baseline: `GET /health` | {} | 1.0 |", ms(health));
    for (what, d) in &rows {
        println!(
            "| {what} | {} | {:.1} |",
            ms(*d),
            d.as_secs_f64() / health.as_secs_f64()
        );
    }

    // The whole log folded: over the API (the first request folds from seq 1; the admin
    // API keeps its fold, so a later seq folds only the events in between), and by the
    // replay library in this process.
    let back = head.saturating_sub(1000);
    let cold = time_get(&client, &base, &token, &format!("/api/state?seq={back}"), 1).await?;
    let forward = time_get(&client, &base, &token, &format!("/api/state?seq={head}"), 1).await?;
    let same = time_get(&client, &base, &token, &format!("/api/state?seq={head}"), n).await?;
    drop(gw);
    let store = home.open_log(Durability::Normal).await?;
    let mut direct = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let s = state_at::state_at(&store, head, None).await?;
        direct.push(t.elapsed());
        drop(s);
    }
    // The floor: reading every event in the fold's pages, folding nothing.
    let mut read_only = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let mut from = 1;
        while from <= head {
            let to = (from + 8191).min(head);
            std::hint::black_box(store.read_range(from, to).await?);
            from = to + 1;
        }
        read_only.push(t.elapsed());
    }
    store.close().await;
    let direct = median(direct);
    let read_only = median(read_only);
    println!("\n| state-at over the whole log | time | ratio to the read |");
    println!("|---|---:|---:|");
    println!(
        "| read every event in pages of 8192, no fold, median of 3 | {} | 1.00 |",
        ms(read_only)
    );
    println!(
        "| `state_at(head)` in process (replay library), median of 3 | {} | {:.2} |",
        ms(direct),
        direct.as_secs_f64() / read_only.as_secs_f64()
    );
    let direct = read_only;
    for (what, d) in [
        (
            format!("`GET /api/state?seq={back}`, first request (folds from seq 1)"),
            cold,
        ),
        (
            format!("then `?seq={head}` (1,000 events on from the kept fold)"),
            forward,
        ),
        (format!("`?seq={head}` again, median of {n}"), same),
    ] {
        println!(
            "| {what} | {} | {:.3} |",
            ms(d),
            d.as_secs_f64() / direct.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
