//! `clawos bench channels`: the IRC, Matrix and/or XMPP channel processes beside the
//! webhook channel process in the same Gateway, on the same machine, in the same run: ready
//! time, idle memory, and message round trips with the echo agent.
//!
//! It needs the servers on loopback (`tests/peers/irc/start.sh` starts InspIRCd + Anope,
//! `tests/peers/xmpp/start.sh` Prosody, ...); the bots' pacing is lifted (`pace_ms = 1`)
//! so the figures time the path, not the flood limit.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::common::{free_port, start, write_config, BOT, PASSWORD, PERSON};
use super::gateway::{memory_kib, ms, pct, post, wait_webhook, Memory};
use crate::cli_channels::quoted;

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

/// A person on one channel's service.
enum Side {
    Irc(Person),
    Matrix(super::matrix::MatrixPerson),
    Xmpp(Box<super::xmpp::XmppPerson>),
}

impl Side {
    async fn round_trip(&mut self, text: &str) -> Result<Option<Duration>> {
        match self {
            Side::Irc(p) => p.round_trip(text).await,
            Side::Matrix(p) => p.round_trip(text).await,
            Side::Xmpp(p) => p.round_trip(text).await,
        }
    }
}

/// `clawos bench channels`.
pub(super) async fn bench_channels(
    irc: Option<SocketAddr>,
    matrix: Option<String>,
    xmpp: Option<super::xmpp::XmppServer>,
    messages: usize,
) -> Result<()> {
    if irc.is_none() && matrix.is_none() && xmpp.is_none() {
        bail!(
            "give --irc ADDR, --matrix URL and/or --xmpp HOST:PORT: the servers the channels \
             talk to"
        );
    }
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("state");
    let hook: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    write_config(&home, clawos_events::Durability::Full, Some(hook))?;
    let mut cfg = std::fs::read_to_string(home.join("clawos.toml"))?;
    let mut sides: Vec<(&str, Side)> = Vec::new();
    if let Some(irc) = irc {
        cfg.push_str(&format!(
            "\n[channels.irc]\nkind = \"irc\"\nserver = \"{irc}\"\ntls = false\nnick = \"{BOT}\"\n\
             dm_policy = \"open\"\nburst = 1000\npace_ms = 1\n"
        ));
    }
    if let Some(url) = &matrix {
        let server = url_server(url).await?;
        cfg.push_str(&format!(
            "\n[channels.matrix]\nkind = \"matrix\"\nhomeserver = \"{url}\"\n\
             user_id = \"@{BOT}:{server}\"\nsecret = \"{PASSWORD}\"\ndm_policy = \"open\"\nburst = 1000\npace_ms = 1\n"
        ));
        sides.push((
            "matrix",
            Side::Matrix(super::matrix::MatrixPerson::connect(url, &server).await?),
        ));
    }
    if let Some(server) = &xmpp {
        let ca = match &server.ca {
            Some(f) => format!("tls_ca_file = {}\n", quoted(&f.display().to_string())),
            None => String::new(),
        };
        cfg.push_str(&format!(
            "\n[channels.xmpp]\nkind = \"xmpp\"\njid = {}\nserver = {}\n{ca}\
             secret = \"{PASSWORD}\"\ndm_policy = \"open\"\nburst = 1000\npace_ms = 1\n",
            quoted(&server.bot()),
            quoted(&server.addr)
        ));
        sides.push((
            "xmpp",
            Side::Xmpp(Box::new(super::xmpp::XmppPerson::connect(server).await?)),
        ));
    }
    std::fs::write(home.join("clawos.toml"), cfg)?;
    let exe = std::env::current_exe()?;
    let client = reqwest::Client::new();

    let t0 = Instant::now();
    let (_gw, _) = start(&exe, &home, Some(hook))?;
    wait_webhook(&client, hook).await?;
    let webhook_ready = t0.elapsed();
    if let Some(irc) = irc {
        sides.insert(0, ("irc", Side::Irc(Person::connect(irc, PERSON).await?)));
    }
    let mut ready = Vec::new();
    for (name, side) in &mut sides {
        loop {
            if side.round_trip("warm up").await?.is_some() {
                ready.push(t0.elapsed());
                break;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("the {name} channel did not answer within 60 s");
            }
        }
    }

    // Idle memory, after the first messages and a quiet second.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pids = channel_pids(&home);
    let memory_of = |name: &str| {
        pids.iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| memory_kib(*p))
            .unwrap_or_default()
    };
    let hook_memory = memory_of("hooks");
    let memory: Vec<Memory> = sides.iter().map(|(name, _)| memory_of(name)).collect();

    // Round trips, one at a time, alternating so every channel sees the same machine.
    let mut via_hook = Vec::with_capacity(messages);
    let mut via: Vec<Vec<Duration>> = sides.iter().map(|_| Vec::with_capacity(messages)).collect();
    for n in 0..messages {
        via_hook.push(post(&client, hook, n as u64).await?);
        for (i, (name, side)) in sides.iter_mut().enumerate() {
            match side.round_trip(&format!("ping {n}")).await? {
                Some(d) => via[i].push(d),
                None => bail!("no {name} answer to message {n}"),
            }
        }
    }
    via_hook.sort();
    println!("channels (echo agent, {messages} sequential round trips each, same Gateway)");
    println!("ready after Gateway spawn: webhook {}", ms(webhook_ready));
    for (i, (name, _)) in sides.iter().enumerate() {
        via[i].sort();
        let (m, h) = (memory[i], hook_memory);
        let mb = |k: u64| k as f64 / 1024.0;
        println!(
            "{name}: ready {}  idle RSS {:.1} MB, private {:.1} MB, PSS {:.1} MB \
             (webhook {:.1} / {:.1} / {:.1} MB; private ratio {:.2})",
            ms(ready[i]),
            mb(m.rss),
            mb(m.private),
            mb(m.pss),
            mb(h.rss),
            mb(h.private),
            mb(h.pss),
            m.private as f64 / h.private.max(1) as f64
        );
        for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
            let (c, h) = (pct(&via[i], p), pct(&via_hook, p));
            println!(
                "{name}: round trip {label} {}  webhook {}  ratio {:.2}",
                ms(c),
                ms(h),
                c.as_secs_f64() / h.as_secs_f64().max(1e-9)
            );
        }
    }
    Ok(())
}

/// The server name of a homeserver's users, from a login of the bench's person.
async fn url_server(url: &str) -> Result<String> {
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/_matrix/client/v3/login"))
        .json(&serde_json::json!({"type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": PERSON},
            "password": PASSWORD}))
        .send()
        .await
        .context("reach the homeserver")?
        .json()
        .await?;
    let user = v["user_id"].as_str().with_context(|| {
        format!(
            "cannot log in as {PERSON}: create `{BOT}` and `{PERSON}` with password \
             `{PASSWORD}` first ({v})"
        )
    })?;
    Ok(user
        .split_once(':')
        .map(|(_, s)| s.to_string())
        .unwrap_or_default())
}
