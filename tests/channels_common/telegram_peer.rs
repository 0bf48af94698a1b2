//! The Telegram Bot API stand-in (`tests/peers/telegram/standin.py`, written from the
//! public Bot API documentation) and a person on it, who talks through the stand-in's
//! `/_standin/` control endpoints.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Value};

use super::conformance::{Heard, Peer, Person};
use crate::gateway_common::free_port;

/// The bot's token, as the stand-in knows it.
pub const TOKEN: &str = "7000000001:AAHstandin-token-for-clawos-tests-0001";
/// The bot's username.
pub const BOT_USERNAME: &str = "clawos_bot";

fn peers_dir() -> PathBuf {
    super::peers_dir("telegram")
}

/// A running stand-in in its own folder.
pub struct Standin {
    /// Its state folder.
    pub dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
    http: reqwest::Client,
}

impl Standin {
    /// Start it (python3 only).
    pub fn start() -> Self {
        let s = Standin {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
            http: reqwest::Client::new(),
        };
        s.up();
        s
    }

    /// The Bot API base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn script(&self, name: &str, extra: &[&str]) {
        let out = Command::new("bash")
            .arg(peers_dir().join(name))
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

    /// Start it again (same port, same state).
    pub fn up(&self) {
        self.script("start.sh", &[&self.port.to_string(), TOKEN, BOT_USERNAME]);
    }

    /// Stop it and wait until it is gone.
    pub fn down(&self) {
        self.script("stop.sh", &[]);
    }

    /// One control call (`/_standin/WHAT`); its JSON answer.
    pub async fn control(&self, what: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}/_standin/{what}", self.url()))
            .json(&body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|e| panic!("stand-in {what}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "stand-in {what}: {status} {v}");
        v
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(peers_dir().join("stop.sh"))
            .arg(self.dir.path())
            .output();
    }
}

/// The stand-in with the suite's groups.
pub struct TelegramPeer {
    /// The stand-in.
    pub api: Standin,
    /// Group name (as the suite says it) to chat id.
    pub groups: HashMap<String, i64>,
}

impl TelegramPeer {
    /// Start the stand-in and make the suite's groups.
    pub async fn start(groups: &[&str]) -> Self {
        let api = Standin::start();
        let mut map = HashMap::new();
        for g in groups {
            let v = api.control("group", json!({"title": g})).await;
            map.insert(g.to_string(), v["id"].as_i64().expect("a group id"));
        }
        TelegramPeer { api, groups: map }
    }

    /// `[channels.NAME]` for the bot with `token` and `extra` settings lines.
    pub fn section(&self, name: &str, token: &str, extra: &str) -> String {
        format!(
            "[channels.{name}]\nkind = \"telegram\"\napi_url = \"{}\"\nsecret = \"{token}\"\n\
             dm_policy = \"open\"\n{extra}\n",
            self.api.url()
        )
    }
}

impl Peer for TelegramPeer {
    type P = TelegramPerson;

    fn kind(&self) -> &'static str {
        "telegram"
    }

    fn channel_section(&self, name: &str, _groups: &[&str]) -> String {
        self.section(name, TOKEN, "")
    }

    fn bot(&self) -> &str {
        "@clawos_bot"
    }

    fn max_len(&self) -> usize {
        clawos_channels::telegram::MAX_TEXT_CHARS
    }

    async fn person(&self, name: &str) -> TelegramPerson {
        let id = self.api.control("person", json!({"name": name})).await["id"]
            .as_i64()
            .expect("a user id");
        let sent = self.api.control("stats", json!({})).await["sent"]
            .as_u64()
            .unwrap_or(0) as usize;
        TelegramPerson {
            id,
            base: self.api.url(),
            http: reqwest::Client::new(),
            groups: self.groups.clone(),
            member_of: Vec::new(),
            after: sent,
            heard: VecDeque::new(),
            edits: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn stop_server(&mut self) {
        self.api.down();
    }

    fn start_server(&mut self) {
        self.api.up();
    }

    fn attachments(&self) -> bool {
        true
    }

    fn catches_up(&self) -> bool {
        true
    }
}

/// A person on the stand-in.
pub struct TelegramPerson {
    /// Their user id (also their private chat's id with the bot).
    pub id: i64,
    base: String,
    http: reqwest::Client,
    groups: HashMap<String, i64>,
    member_of: Vec<i64>,
    after: usize,
    heard: VecDeque<Heard>,
    /// The texts of the edits the bot made to its messages here, in order.
    pub edits: Vec<String>,
    /// Every message the bot sent here (new ones and edits), as the API shows them.
    pub seen: Vec<Value>,
}

impl TelegramPerson {
    async fn control(&self, what: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}/_standin/{what}", self.base))
            .json(&body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|e| panic!("stand-in {what}: {e}"));
        assert!(
            resp.status().is_success(),
            "stand-in {what}: {}",
            resp.status()
        );
        resp.json().await.unwrap_or(Value::Null)
    }

    fn chat(&self, group: Option<&str>) -> i64 {
        match group {
            Some(g) => *self.groups.get(g).expect("a suite group"),
            None => self.id,
        }
    }

    /// Say `text` in `group` (or privately), with `extra` fields (e.g. `reply_to`); the
    /// message id.
    pub async fn say_with(&mut self, group: Option<&str>, text: &str, extra: Value) -> i64 {
        let mut body = json!({"from": self.id, "chat": self.chat(group), "text": text});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.control("say", body).await["message_id"]
            .as_i64()
            .expect("a message id")
    }

    /// Read what the bot sent since the last read (waiting up to `wait`).
    async fn poll(&mut self, wait: Duration) {
        let url = format!(
            "{}/_standin/sent?after={}&wait={}",
            self.base,
            self.after,
            wait.as_secs_f64()
        );
        let v: Value = self
            .http
            .get(url)
            .timeout(wait + Duration::from_secs(30))
            .send()
            .await
            .expect("stand-in sent")
            .json()
            .await
            .expect("stand-in sent JSON");
        for s in v["sent"].as_array().cloned().unwrap_or_default() {
            self.after += 1;
            let m = &s["message"];
            let chat = m["chat"]["id"].as_i64().unwrap_or(0);
            let group = if chat == self.id {
                None
            } else if self.member_of.contains(&chat) {
                self.groups
                    .iter()
                    .find(|(_, id)| **id == chat)
                    .map(|(n, _)| n.clone())
            } else {
                continue;
            };
            self.seen.push(m.clone());
            let text = m["text"].as_str().unwrap_or_default().to_string();
            if s["edit"] == true {
                self.edits.push(text);
                continue;
            }
            let file = match m["document"]["file_id"].as_str() {
                Some(fid) => {
                    let bytes = self
                        .http
                        .post(format!("{}/_standin/blob?file_id={fid}", self.base))
                        .send()
                        .await
                        .expect("stand-in blob")
                        .bytes()
                        .await
                        .expect("bytes")
                        .to_vec();
                    let name = m["document"]["file_name"].as_str().unwrap_or_default();
                    Some((name.to_string(), bytes))
                }
                None => None,
            };
            self.heard.push_back(Heard { group, text, file });
        }
    }
}

impl Person for TelegramPerson {
    fn address(&self) -> String {
        clawos_channels::telegram::address_of(self.id)
    }

    async fn join(&mut self, group: &str, _bot: &str) {
        let title = group.to_string();
        let v = self
            .control("group", json!({"title": title, "members": [self.id]}))
            .await;
        let id = v["id"].as_i64().expect("a group id");
        self.groups.insert(group.to_string(), id);
        self.member_of.push(id);
    }

    async fn say(&mut self, group: Option<&str>, _bot: &str, text: &str) {
        self.say_with(group, text, json!({})).await;
    }

    async fn hear(&mut self, _bot: &str, within: Duration) -> Option<Heard> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(h) = self.heard.pop_front() {
                return Some(h);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.poll(left.min(Duration::from_secs(10))).await;
        }
    }

    async fn wait_for_bot(&mut self, _group: Option<&str>, _bot: &str, within: Duration) {
        // Telegram keeps what is said for the bot: it is reachable once it polls.
        let deadline = Instant::now() + within;
        loop {
            let seen = self.control("stats", json!({})).await["poll_seen"]
                .as_f64()
                .unwrap_or(0.0);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            if seen > 0.0 && now - seen < 40.0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the bot did not poll within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn send_file(&mut self, _bot: &str, name: &str, mime: &str, bytes: &[u8]) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let body = json!({"from": self.id, "chat": self.id,
                          "document": {"name": name, "mime": mime, "b64": b64}});
        self.control("say", body).await;
    }
}
