//! The signal-cli stand-in (`tests/peers/signal/standin.py`, started by `start.sh`) and a
//! person on it, who talks through the stand-in's `/_standin/*` control endpoints: what
//! they say becomes a `receive` event on the daemon's event stream, what the bot sent
//! (`send`) is read back from `/_standin/sent`.

use std::collections::{HashMap, VecDeque};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::conformance::{Heard, Peer, Person};
use crate::gateway_common::free_port;

/// The bot's Signal account.
pub const BOT: &str = "+15550000001";
/// The name people write to address the bot in a group.
pub const BOT_NAME: &str = "clawbot";

/// A running stand-in in its own folder.
pub struct Standin {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Standin {
    /// Start it for the bot's account.
    pub fn start() -> Self {
        let s = Standin {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
        };
        s.up();
        s
    }

    /// The daemon's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The folder signal-cli keeps received files in.
    pub fn attachments_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("attachments")
    }

    fn script(&self, name: &str, extra: &[&str]) {
        let out = Command::new("bash")
            .arg(super::peers_dir("signal").join(name))
            .arg(self.dir.path())
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("run a stand-in script");
        assert!(
            out.status.success(),
            "{name} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Start (again, same port and folder).
    pub fn up(&self) {
        self.script("start.sh", &[&self.port.to_string(), BOT]);
    }

    /// Stop it and wait until it is gone.
    pub fn down(&self) {
        self.script("stop.sh", &[]);
    }

    /// One control call; the JSON answer (panics on an error).
    pub async fn control(&self, what: &str, body: Value) -> Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/_standin/{what}", self.url()))
            .json(&body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|e| panic!("/_standin/{what}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "/_standin/{what}: {status} {v}");
        v
    }

    /// A GET of the stand-in.
    pub async fn get(&self, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.url()))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .json()
            .await
            .unwrap_or(Value::Null)
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(super::peers_dir("signal").join("stop.sh"))
            .arg(self.dir.path())
            .output();
    }
}

/// The stand-in with the suite's groups.
pub struct SignalPeer {
    pub standin: Standin,
    /// Group name (as the suite says it) to group id.
    pub groups: HashMap<String, String>,
    people: std::cell::Cell<u32>,
}

impl SignalPeer {
    /// Start the stand-in and make the groups (the bot a member of each).
    pub async fn start(groups: &[&str]) -> Self {
        let standin = Standin::start();
        let mut ids = HashMap::new();
        for g in groups {
            let v = standin.control("group", json!({"name": g})).await;
            ids.insert(
                g.to_string(),
                v["groupId"].as_str().expect("a group id").to_string(),
            );
        }
        SignalPeer {
            standin,
            groups: ids,
            people: std::cell::Cell::new(0),
        }
    }

    /// `[channels.NAME]` for the bot on this stand-in, with `extra` settings lines.
    pub fn section(&self, name: &str, extra: &str) -> String {
        format!(
            "[channels.{name}]\nkind = \"signal\"\nurl = \"{}\"\naccount = \"{BOT}\"\n\
             attachments_dir = \"{}\"\nname = \"{BOT_NAME}\"\ndm_policy = \"open\"\n{extra}\n",
            self.standin.url(),
            self.standin.attachments_dir().display()
        )
    }
}

impl Peer for SignalPeer {
    type P = SignalPerson;

    fn kind(&self) -> &'static str {
        "signal"
    }

    fn channel_section(&self, name: &str, _groups: &[&str]) -> String {
        self.section(name, "")
    }

    fn bot(&self) -> &str {
        BOT_NAME
    }

    fn max_len(&self) -> usize {
        clawos_channels::signal::MAX_TEXT_CHARS
    }

    async fn person(&self, _name: &str) -> SignalPerson {
        let n = self.people.get() + 1;
        self.people.set(n);
        let number = format!("+1555000{:04}", 100 + n);
        let sent = self.standin.get("/_standin/sent").await;
        SignalPerson {
            number,
            url: self.standin.url(),
            groups: self.groups.clone(),
            joined: Vec::new(),
            seen: sent.as_array().map(Vec::len).unwrap_or(0),
            heard: VecDeque::new(),
        }
    }

    fn stop_server(&mut self) {
        self.standin.down();
    }

    fn start_server(&mut self) {
        self.standin.up();
    }

    fn attachments(&self) -> bool {
        true
    }

    fn catches_up(&self) -> bool {
        true
    }
}

/// A person on Signal.
pub struct SignalPerson {
    pub number: String,
    url: String,
    groups: HashMap<String, String>,
    joined: Vec<String>,
    /// How many of the stand-in's sent messages were looked at.
    seen: usize,
    heard: VecDeque<Heard>,
}

impl SignalPerson {
    async fn control(&self, what: &str, body: Value) -> Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/_standin/{what}", self.url))
            .json(&body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|e| panic!("/_standin/{what}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "/_standin/{what}: {status} {v}");
        v
    }

    /// Say `text` with the stand-in's extra fields (`mentions`, `quote`).
    pub async fn say_with(&mut self, group: Option<&str>, text: &str, extra: Value) -> i64 {
        let mut body = json!({"from": self.number, "text": text});
        if let Some(g) = group {
            body["groupId"] = json!(self.groups.get(g).expect("a suite group"));
        }
        if let Some(o) = extra.as_object() {
            for (k, v) in o {
                body[k] = v.clone();
            }
        }
        let v = self.control("say", body).await;
        v["timestamp"].as_i64().unwrap_or(0)
    }

    /// Everything the stand-in says the bot sent to this person since last asked.
    async fn poll(&mut self) {
        let sent: Value = reqwest::Client::new()
            .get(format!("{}/_standin/sent", self.url))
            .send()
            .await
            .expect("GET /_standin/sent")
            .json()
            .await
            .expect("sent JSON");
        let all = sent.as_array().cloned().unwrap_or_default();
        for m in all.iter().skip(self.seen) {
            let to_me = m["recipient"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| *x == self.number.as_str()));
            let gid = m["groupId"].as_str();
            let group = gid.and_then(|g| {
                self.groups
                    .iter()
                    .find(|(name, id)| id.as_str() == g && self.joined.contains(name))
                    .map(|(name, _)| name.clone())
            });
            if !to_me && group.is_none() {
                continue;
            }
            let file = m["attachments"]
                .as_array()
                .and_then(|a| a.first())
                .map(|f| {
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(f["data"].as_str().unwrap_or(""))
                        .expect("base64 attachment");
                    (f["name"].as_str().unwrap_or("").to_string(), data)
                });
            self.heard.push_back(Heard {
                group,
                text: m["message"].as_str().unwrap_or("").to_string(),
                file,
            });
        }
        self.seen = all.len();
    }
}

impl Person for SignalPerson {
    fn address(&self) -> String {
        clawos_channels::signal::address_of(&self.number)
    }

    async fn join(&mut self, group: &str, _bot: &str) {
        let gid = self.groups.get(group).expect("a suite group").clone();
        self.control("join", json!({"groupId": gid, "number": self.number}))
            .await;
        self.joined.push(group.to_string());
    }

    async fn say(&mut self, group: Option<&str>, bot: &str, text: &str) {
        // `clawbot: …` in a group is a real Signal mention: U+FFFC and a mentions entry.
        if let (Some(_), Some(rest)) = (group, text.strip_prefix(bot)) {
            let mention = json!([{"name": "Claw Bot", "number": BOT, "start": 0, "length": 1,
                                  "uuid": "8a6f2b64-0f43-4a5e-9c1e-3c2d1b0a9f87"}]);
            self.say_with(
                group,
                &format!("\u{FFFC}{rest}"),
                json!({"mentions": mention}),
            )
            .await;
            return;
        }
        self.say_with(group, text, json!({})).await;
    }

    async fn hear(&mut self, _bot: &str, within: Duration) -> Option<Heard> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(h) = self.heard.pop_front() {
                return Some(h);
            }
            if Instant::now() >= deadline {
                return None;
            }
            self.poll().await;
            if self.heard.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    async fn wait_for_bot(&mut self, _group: Option<&str>, _bot: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let state: Value = match reqwest::Client::new()
                .get(format!("{}/_standin/state", self.url))
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            if state["clients"].as_u64().unwrap_or(0) > 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the bot did not listen to the daemon within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn send_file(&mut self, _bot: &str, name: &str, mime: &str, bytes: &[u8]) {
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.control(
            "file",
            json!({"from": self.number, "name": name, "mime": mime, "data": data}),
        )
        .await;
    }
}

impl SignalPerson {
    /// The stand-in sends, from this person, a receipt, a typing notice, a sync message,
    /// a reaction, a story with an unknown field, and an event of an unknown name.
    pub async fn control_noise(&mut self) {
        self.control("noise", json!({"from": self.number})).await;
    }
}
