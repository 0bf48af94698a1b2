//! `clawos bench channels`: the IRC channel process beside the webhook channel process in
//! the same Gateway, on the same machine, in the same run: ready time, idle memory, and
//! message round trips with the echo agent.
//!
//! It needs an IRC server on loopback (`tests/peers/irc/start.sh` starts InspIRCd +
//! Anope); the bot's pacing is lifted (`pace_ms = 1`) so the figures time the path, not
//! the flood limit.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::common::{free_port, start, write_config};
use super::gateway::{ms, pct, post, rss_kib, wait_webhook};

const BOT: &str = "benchbot";

/// A person on the IRC server: a raw client.
struct Person {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    out: tokio::net::tcp::OwnedWriteHalf,
}

impl Person {
    async fn connect(server: SocketAddr, nick: &str) -> Result<Self> {
        let tcp = TcpStream::connect(server)
            .await
            .context("connect to the IRC server")?;
        tcp.set_nodelay(true)?;
        let (r, w) = tcp.into_split();
        let mut p = Person {
            lines: BufReader::new(r).lines(),
            out: w,
        };
        p.send(&format!("NICK {nick}")).await?;
        p.send(&format!("USER {nick} 0 * :{nick}")).await?;
        p.until(Duration::from_secs(30), |l| {
            l.split(' ').nth(1) == Some("001")
        })
        .await?
        .context("no IRC welcome")?;
        Ok(p)
    }

    async fn send(&mut self, line: &str) -> Result<()> {
        self.out.write_all(format!("{line}\r\n").as_bytes()).await?;
        Ok(())
    }

    /// Read until a line satisfies `pred` (answering PINGs), or `None` after `within`.
    async fn until(
        &mut self,
        within: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<Option<String>> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = tokio::time::timeout(left, self.lines.next_line()).await else {
                return Ok(None);
            };
            let Some(line) = line? else {
                bail!("the IRC server closed the connection")
            };
            if let Some(arg) = line.strip_prefix("PING ") {
                self.send(&format!("PONG {arg}")).await?;
            } else if pred(&line) {
                return Ok(Some(line));
            }
        }
    }

    /// Say `text` to the bot and wait for its answer.
    async fn round_trip(&mut self, text: &str) -> Result<Option<Duration>> {
        let t = Instant::now();
        self.send(&format!("PRIVMSG {BOT} :{text}")).await?;
        let want = format!("echo: {text} ");
        let heard = self
            .until(Duration::from_secs(10), |l| {
                l.starts_with(&format!(":{BOT}!")) && l.contains(&want)
            })
            .await?;
        Ok(heard.map(|_| t.elapsed()))
    }
}

/// Each channel's newest process id, from the log.
fn channel_pids(home: &Path) -> Vec<(String, u32)> {
    let Ok(exe) = std::env::current_exe() else {
        return Vec::new();
    };
    let Ok(out) = std::process::Command::new(exe)
        .arg("--home")
        .arg(home)
        .args(["log", "tail", "-n", "200", "--json"])
        .output()
    else {
        return Vec::new();
    };
    let mut pids: Vec<(String, u32)> = Vec::new();
    for v in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "ChannelStarted")
    {
        if let (Some(c), Some(p)) = (
            v["payload"]["channel"].as_str(),
            v["payload"]["pid"].as_u64(),
        ) {
            pids.retain(|(n, _)| n != c);
            pids.push((c.to_string(), p as u32));
        }
    }
    pids
}

/// `clawos bench channels`.
pub(super) async fn bench_channels(irc: SocketAddr, messages: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("state");
    let hook: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    write_config(&home, clawos_events::Durability::Full, Some(hook))?;
    let mut cfg = std::fs::read_to_string(home.join("clawos.toml"))?;
    cfg.push_str(&format!(
        "\n[channels.irc]\nkind = \"irc\"\nserver = \"{irc}\"\ntls = false\nnick = \"{BOT}\"\n\
         dm_policy = \"open\"\nburst = 1000\npace_ms = 1\n"
    ));
    std::fs::write(home.join("clawos.toml"), cfg)?;
    let exe = std::env::current_exe()?;
    let client = reqwest::Client::new();

    let t0 = Instant::now();
    let (_gw, _) = start(&exe, &home, Some(hook))?;
    wait_webhook(&client, hook).await?;
    let webhook_ready = t0.elapsed();
    let mut person = Person::connect(irc, "benchuser").await?;
    let irc_ready = loop {
        if person.round_trip("warm up").await?.is_some() {
            break t0.elapsed();
        }
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("the IRC channel did not answer within 60 s");
        }
    };

    // Idle memory, after the first messages and a quiet second.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pids = channel_pids(&home);
    let rss_of = |name: &str| {
        pids.iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| rss_kib(*p))
            .unwrap_or(0)
    };
    let (rss_irc, rss_hook) = (rss_of("irc"), rss_of("hooks"));

    // Round trips, one at a time, alternating so both see the same machine.
    let mut via_irc = Vec::with_capacity(messages);
    let mut via_hook = Vec::with_capacity(messages);
    for n in 0..messages {
        via_hook.push(post(&client, hook, n as u64).await?);
        match person.round_trip(&format!("ping {n}")).await? {
            Some(d) => via_irc.push(d),
            None => bail!("no IRC answer to message {n}"),
        }
    }
    via_irc.sort();
    via_hook.sort();

    println!("channels (echo agent, {messages} sequential round trips each, same Gateway)");
    println!(
        "ready after Gateway spawn: webhook {}  irc {}  (irc includes the server's registration)",
        ms(webhook_ready),
        ms(irc_ready)
    );
    println!(
        "idle RSS: irc {:.1} MB  webhook {:.1} MB  ratio {:.2}",
        rss_irc as f64 / 1024.0,
        rss_hook as f64 / 1024.0,
        rss_irc as f64 / rss_hook.max(1) as f64
    );
    for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
        let (i, h) = (pct(&via_irc, p), pct(&via_hook, p));
        println!(
            "round trip {name}: irc {}  webhook {}  ratio {:.2}",
            ms(i),
            ms(h),
            i.as_secs_f64() / h.as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}
