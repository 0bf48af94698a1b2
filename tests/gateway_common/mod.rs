//! Helpers for the Gateway's whole-system tests: a state folder in a temp dir, the real
//! `clawos` binary run as the Gateway, its channel processes found through `/proc`, HTTP
//! helpers for the webhook channel, the log read back with `LogStore`, and the sockets a
//! process holds (from `/proc`).
//!
//! Every wait is bounded. A [`Harness`] kills everything it started when it is dropped
//! (also when a test panics), and then prints the end of the Gateway's stderr.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use clawos_events::{Durability, EventPayload, LogStore};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// The `clawos` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_clawos")
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A webhook secret (16 characters or more).
pub const SECRET: &str = "test-secret-0123456789abcdef";

/// `[gateway]` (with this durability) + `[agents.echo]`, the echo agent as default.
pub fn echo_config(durability: &str) -> String {
    format!(
        "[gateway]\ndefault_agent = \"echo\"\ndurability = \"{durability}\"\n\n[agents.echo]\nkind = \"echo\"\n\n"
    )
}

/// A `[channels.NAME]` webhook section, open to every sender (no pairing).
pub fn webhook_section(name: &str, port: u16) -> String {
    format!(
        "[channels.{name}]\nkind = \"webhook\"\nlisten = \"127.0.0.1:{port}\"\nsecret = \"{SECRET}\"\ndm_policy = \"open\"\n\n"
    )
}

/// Send a signal to a process with `kill(1)`.
pub fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // `pid (comm) STATE ...`: the state follows the last ')'.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// A `clawos channel ...` process found through `/proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelProc {
    pub pid: u32,
    pub name: String,
    pub token: String,
    pub bus_url: String,
}

/// Every live process whose environment says it is a channel of the Gateway at one of
/// `bus_urls`.
pub fn channel_processes(bus_urls: &BTreeSet<String>) -> Vec<ChannelProc> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let mut name = None;
        let mut token = None;
        let mut url = None;
        for var in environ.split(|b| *b == 0) {
            let var = String::from_utf8_lossy(var);
            if let Some(v) = var.strip_prefix("CLAWOS_CHANNEL_NAME=") {
                name = Some(v.to_string());
            } else if let Some(v) = var.strip_prefix("CLAWOS_CHANNEL_TOKEN=") {
                token = Some(v.to_string());
            } else if let Some(v) = var.strip_prefix("CLAWOS_BUS_URL=") {
                url = Some(v.to_string());
            }
        }
        if let (Some(name), Some(token), Some(bus_url)) = (name, token, url) {
            if bus_urls.contains(&bus_url) && alive(pid) {
                out.push(ChannelProc {
                    pid,
                    name,
                    token,
                    bus_url,
                });
            }
        }
    }
    out.sort_by_key(|c| c.pid);
    out
}

/// Run `clawos --home DIR ARGS...` to completion (stdin closed, output captured), killed
/// if it takes over 60s.
pub async fn cli_in(dir: &Path, args: &[&str]) -> std::process::Output {
    cli_with_input(dir, args, None).await
}

/// Run `clawos --home DIR ARGS...` with `input` on stdin (closed when `None`), output
/// captured, killed if it takes over 60s.
pub async fn cli_with_input(
    dir: &Path,
    args: &[&str],
    input: Option<&str>,
) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(bin())
        .arg("--home")
        .arg(dir)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn clawos");
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).await.expect("write stdin");
    }
    match tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await {
        Ok(out) => out.expect("run clawos"),
        Err(_) => panic!("`clawos {}` did not finish within 60s", args.join(" ")),
    }
}

/// A state folder with a Gateway process in it. Dropping it stops the Gateway (SIGTERM,
/// then SIGKILL) and SIGKILLs any channel process of it that is still alive.
pub struct Harness {
    pub home: tempfile::TempDir,
    child: Option<Child>,
    addr: Option<SocketAddr>,
    bus_urls: BTreeSet<String>,
    runs: u32,
    pub http: reqwest::Client,
}

impl Harness {
    /// A fresh state folder with this `clawos.toml`.
    pub fn new(config: &str) -> Self {
        let home = tempfile::tempdir().expect("temp dir");
        std::fs::write(home.path().join("clawos.toml"), config).expect("write clawos.toml");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()
            .expect("http client");
        Harness {
            home,
            child: None,
            addr: None,
            bus_urls: BTreeSet::new(),
            runs: 0,
            http,
        }
    }

    pub fn dir(&self) -> &Path {
        self.home.path()
    }

    /// Run `clawos --home DIR ARGS...` to completion (stdin closed, output captured),
    /// killed if it takes over 60s.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        cli_in(self.dir(), args).await
    }

    fn stderr_path(&self, run: u32) -> PathBuf {
        self.dir().join(format!("gateway-{run}.stderr"))
    }

    /// Start `clawos --home DIR gateway --listen LISTEN` and wait until `/health` answers.
    pub async fn start(&mut self, listen: &str) {
        self.spawn(
            &["gateway", "--listen", listen],
            Stdio::null(),
            Stdio::null(),
        )
        .await;
    }

    /// Spawn `clawos --home DIR ARGS` as the Gateway with the given stdin/stdout, wait for
    /// `gateway.json` and `/health`.
    pub async fn spawn(&mut self, args: &[&str], stdin: Stdio, stdout: Stdio) -> &mut Child {
        assert!(self.child.is_none(), "a Gateway is already running");
        let _ = std::fs::remove_file(self.dir().join("gateway.json"));
        self.runs += 1;
        let stderr = std::fs::File::create(self.stderr_path(self.runs)).expect("stderr file");
        let child = Command::new(bin())
            .arg("--home")
            .arg(self.dir())
            .args(args)
            .env("CLAWOS_LOG", "info")
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn clawos");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "the Gateway exited at start with {status}:\n{}",
                    self.stderr_tail()
                );
            }
            if let Ok(text) = std::fs::read_to_string(self.dir().join("gateway.json")) {
                if let Ok(v) = serde_json::from_str::<Value>(&text) {
                    if let Some(a) = v["listen"].as_str().and_then(|a| a.parse().ok()) {
                        break a;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "gateway.json did not appear within 30s:\n{}",
                self.stderr_tail()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        self.addr = Some(addr);
        self.bus_urls.insert(format!("ws://{addr}/bus"));
        loop {
            if let Ok(r) = self.http.get(self.url("/health")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "/health did not answer within 30s:\n{}",
                self.stderr_tail()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.child.as_mut().expect("child")
    }

    /// The running Gateway process.
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("no Gateway running")
    }

    pub fn gateway_pid(&self) -> u32 {
        self.child.as_ref().expect("no Gateway running").id()
    }

    /// The Gateway's address (from `gateway.json`).
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("the Gateway has not started")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    pub fn bus_url(&self) -> String {
        format!("ws://{}/bus", self.addr())
    }

    /// The admin token, read from the vault by `clawos admin token`.
    pub fn admin_token(&self) -> String {
        let out = Command::new(bin())
            .arg("--home")
            .arg(self.dir())
            .args(["admin", "token"])
            .stdin(Stdio::null())
            .output()
            .expect("run clawos admin token");
        assert!(
            out.status.success(),
            "clawos admin token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the /metrics body")
    }

    /// `GET /api/status` with the admin token.
    pub async fn status(&self) -> Value {
        self.api("/api/status").await
    }

    /// Wait until the read models hold every event logged so far (`/health`).
    pub async fn projected_through_head(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let h: Value = self
                .http
                .get(self.url("/health"))
                .send()
                .await
                .expect("GET /health")
                .json()
                .await
                .expect("health JSON");
            if h["projected"].as_u64() >= h["seq"].as_u64() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the read models stay behind: {h}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET PATH` with the admin token: the JSON answer of a successful request.
    pub async fn api(&self, path: &str) -> Value {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(self.admin_token().trim())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.expect("a JSON answer")
    }

    /// Pid of channel `name` once `/api/status` shows it up (and its process exists),
    /// different from `not`.
    pub async fn channel_pid(&self, name: &str, not: Option<u32>, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            let s = self.status().await;
            let pid = s["channels"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["channel"] == name && c["state"] == "up")
                .and_then(|c| c["pid"].as_u64())
                .map(|p| p as u32);
            if let Some(pid) = pid {
                if Some(pid) != not && alive(pid) {
                    return pid;
                }
            }
            assert!(
                Instant::now() < deadline,
                "channel {name} is not up (other than pid {not:?}) after {within:?}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Live channel processes of this Gateway (any run).
    pub fn channel_processes(&self) -> Vec<ChannelProc> {
        channel_processes(&self.bus_urls)
    }

    /// Wait for the Gateway to exit, up to `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGTERM the Gateway and wait (bounded) for it to exit.
    pub async fn stop(&mut self) -> ExitStatus {
        let pid = self.gateway_pid();
        signal(pid, "TERM");
        match self.wait_exit(Duration::from_secs(20)).await {
            Some(s) => s,
            None => panic!(
                "the Gateway did not exit within 20s of SIGTERM:\n{}",
                self.stderr_tail()
            ),
        }
    }

    /// SIGKILL the Gateway and reap it.
    pub fn kill9(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("no Gateway running");
        let _ = child.kill();
        child.wait().expect("wait for the killed Gateway")
    }

    /// The last lines the Gateway (and its channels) wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        let mut out = String::new();
        for run in 1..=self.runs {
            let text = std::fs::read_to_string(self.stderr_path(run)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(40);
            out.push_str(&format!(
                "--- gateway run {run} stderr (last 40 lines) ---\n"
            ));
            for l in &lines[from..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Read the whole log (the Gateway may be running: the store only reads).
    pub async fn log(&self) -> Vec<Ev> {
        read_log(self.dir()).await
    }

    /// Poll the log until `pred` holds, up to `within`; returns the log it held for.
    pub async fn wait_log(
        &self,
        what: &str,
        within: Duration,
        pred: impl Fn(&[Ev]) -> bool,
    ) -> Vec<Ev> {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log().await;
            if pred(&log) {
                return log;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {within:?} waiting for: {what}\nlog:\n{}\n{}",
                    summary(&log),
                    self.stderr_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for c in channel_processes(&self.bus_urls) {
            signal(c.pid, "KILL");
        }
        if std::thread::panicking() {
            eprintln!("{}", self.stderr_tail());
        }
    }
}

/// One event read back from the log.
#[derive(Debug, Clone)]
pub struct Ev {
    pub seq: u64,
    pub kind: String,
    pub stream: String,
    pub dedupe_key: Option<String>,
    pub payload: EventPayload,
}

/// Every event of the log in `dir`, decoded.
pub async fn read_log(dir: &Path) -> Vec<Ev> {
    let store = LogStore::open(dir.join("clawos.db"), Durability::Normal)
        .await
        .expect("open the log");
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let page = store.read_from(from, 1000).await.expect("read the log");
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        for e in page {
            let payload = e
                .decode()
                .unwrap_or_else(|err| panic!("event {} does not decode: {err}", e.seq));
            out.push(Ev {
                seq: e.seq,
                kind: e.kind.clone(),
                stream: e.stream.clone(),
                dedupe_key: e.dedupe_key.clone(),
                payload,
            });
        }
    }
    store.close().await;
    out
}

/// Every event of the log in `dir` through a plain read-only connection: no writer, no
/// migrations, so it works while the Gateway is stopped (SIGSTOP) holding locks.
pub async fn read_log_readonly(dir: &Path) -> Vec<Ev> {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("clawos.db"))
        .read_only(true)
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("open the log read-only");
    type RawRow = (i64, String, String, i64, Option<String>, Vec<u8>);
    let rows: Vec<RawRow> = sqlx::query_as(
        "SELECT seq, kind, stream, schema_version, dedupe_key, payload FROM events ORDER BY seq",
    )
    .fetch_all(&mut conn)
    .await
    .expect("read the log");
    rows.into_iter()
        .map(|(seq, kind, stream, version, dedupe_key, payload)| Ev {
            seq: seq as u64,
            payload: clawos_events::codec::decode(&kind, version as u16, &payload)
                .unwrap_or_else(|e| panic!("event {seq} does not decode: {e}")),
            kind,
            stream,
            dedupe_key,
        })
        .collect()
}

/// One line per event, for failure messages.
pub fn summary(log: &[Ev]) -> String {
    log.iter()
        .map(|e| {
            let p = serde_json::to_value(&e.payload)
                .map(|v| v["payload"].to_string())
                .unwrap_or_default();
            format!("{:>6} {:<18} {:<40} {}", e.seq, e.kind, e.stream, p)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The kinds of a log, in order.
pub fn kinds(log: &[Ev]) -> Vec<&str> {
    log.iter().map(|e| e.kind.as_str()).collect()
}

/// `MessageReceived` events with this external id (on any channel).
pub fn received<'a>(log: &'a [Ev], external_id: &str) -> Vec<&'a Ev> {
    log.iter()
        .filter(|e| matches!(&e.payload, EventPayload::MessageReceived(m) if m.external_id == external_id))
        .collect()
}

/// The `MessageSent` events answering the message at `seq`.
pub fn replies_to(log: &[Ev], seq: u64) -> Vec<(u64, clawos_events::MessageSent)> {
    log.iter()
        .filter_map(|e| match &e.payload {
            EventPayload::MessageSent(m) if m.in_reply_to == Some(seq) => Some((e.seq, m.clone())),
            _ => None,
        })
        .collect()
}

/// Seqs of the `DeliveryAcked` events for a delivery id.
pub fn acks_of(log: &[Ev], delivery_id: uuid::Uuid) -> Vec<u64> {
    log.iter()
        .filter(|e| matches!(&e.payload, EventPayload::DeliveryAcked(a) if a.delivery_id == delivery_id))
        .map(|e| e.seq)
        .collect()
}

// ---- the webhook channel from the outside ----------------------------------------------

/// The value of the `/metrics` line that starts with `name` (labels included).
pub fn metric_value(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
}

/// `hex(hmac_sha256(secret, body))`.
pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What `POST /message` answered.
#[derive(Debug, Clone)]
pub struct Posted {
    pub status: u16,
    pub body: Value,
}

impl Posted {
    pub fn seq(&self) -> u64 {
        self.body["seq"].as_u64().unwrap_or(0)
    }
    pub fn reply(&self) -> Option<&str> {
        self.body["reply"].as_str()
    }
    pub fn duplicate(&self) -> bool {
        self.body["duplicate"].as_bool().unwrap_or(false)
    }
}

/// `POST http://127.0.0.1:PORT/message` with the bearer token.
pub async fn post(
    http: &reqwest::Client,
    port: u16,
    id: &str,
    from: &str,
    text: &str,
    wait_ms: u64,
) -> Result<Posted, reqwest::Error> {
    let body = json!({"id": id, "from": from, "text": text, "wait_ms": wait_ms});
    let r = http
        .post(format!("http://127.0.0.1:{port}/message"))
        .bearer_auth(SECRET)
        .json(&body)
        .send()
        .await?;
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    Ok(Posted { status, body })
}

/// A Gateway started on a fresh state folder with `config`, once the webhook channel it
/// configures on `port` answers.
pub async fn started_with_webhook(config: &str, port: u16) -> Harness {
    let mut h = Harness::new(config);
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, port, Duration::from_secs(30)).await;
    h
}

/// Wait until the webhook channel on `port` answers HTTP (a `GET` of an unknown reply
/// gives 404 once it listens).
pub async fn wait_webhook(http: &reqwest::Client, port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let r = http
            .get(format!("http://127.0.0.1:{port}/message/none/reply"))
            .bearer_auth(SECRET)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if let Ok(r) = r {
            if r.status().as_u16() == 404 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the webhook channel on port {port} did not answer within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Poll `GET /message/{id}/reply` until it has the reply, up to `within`.
pub async fn poll_reply(
    http: &reqwest::Client,
    port: u16,
    id: &str,
    within: Duration,
) -> Option<String> {
    let deadline = Instant::now() + within;
    loop {
        let r = http
            .get(format!("http://127.0.0.1:{port}/message/{id}/reply"))
            .bearer_auth(SECRET)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if let Ok(r) = r {
            if r.status().is_success() {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                return v["reply"].as_str().map(String::from);
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Median of some durations.
pub fn median(mut v: Vec<Duration>) -> Duration {
    assert!(!v.is_empty());
    v.sort();
    v[v.len() / 2]
}

/// One TCP or UDP socket of a process, from `/proc/PID/fd` and `/proc/PID/net/*`.
#[derive(Debug)]
pub struct Sock {
    pub proto: &'static str,
    pub local: std::net::SocketAddr,
    pub remote: std::net::SocketAddr,
    pub listening: bool,
}

/// Parse `0100007F:1F90` (IPv4) or the 32-hex-digit IPv6 form of `/proc/net/tcp*`: the
/// address is printed as 32-bit words in host byte order.
fn proc_addr(field: &str) -> Option<std::net::SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::new();
    for i in 0..ip.len() / 8 {
        let word = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip: std::net::IpAddr = match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into(),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
            v6.to_ipv4_mapped().map(Into::into).unwrap_or(v6.into())
        }
        _ => return None,
    };
    Some(std::net::SocketAddr::new(ip, port))
}

/// Every TCP and UDP socket process `pid` holds.
pub fn sockets_of(pid: u32) -> Vec<Sock> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    l.to_str()
                        .and_then(|s| s.strip_prefix("socket:["))
                        .and_then(|s| s.strip_suffix(']'))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for proto in ["tcp", "tcp6", "udp", "udp6"] {
        let table = std::fs::read_to_string(format!("/proc/{pid}/net/{proto}")).unwrap_or_default();
        for line in table.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || !inodes.contains(f[9]) {
                continue;
            }
            let (Some(local), Some(remote)) = (proc_addr(f[1]), proc_addr(f[2])) else {
                continue;
            };
            out.push(Sock {
                proto,
                local,
                remote,
                listening: proto.starts_with("tcp") && f[3] == "0A",
            });
        }
    }
    out
}
