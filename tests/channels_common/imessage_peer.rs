//! The BlueBubbles stand-in (`tests/peers/imessage/standin.py`, started by `start.sh`)
//! and a person on it, who talks through the stand-in's `/_standin/*` control endpoints:
//! what they say becomes a message the server's `message/query` returns, what the bot
//! sent (`message/text`, `message/attachment`) is read back from `/_standin/sent`.

use std::collections::{HashMap, VecDeque};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::conformance::{Heard, Peer, Person};
use crate::gateway_common::free_port;

/// The BlueBubbles server password.
pub const PASSWORD: &str = "bb-password-123";
/// The name people write to address the bot in a group.
pub const BOT_NAME: &str = "clawbot";

/// A running stand-in in its own folder.
pub struct Standin {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Standin {
    /// Start it with the server password.
    pub fn start() -> Self {
        let s = Standin {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
        };
        s.up();
        s
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn script(&self, name: &str, extra: &[&str]) {
        let out = Command::new("bash")
            .arg(super::peers_dir("imessage").join(name))
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
        self.script("start.sh", &[&self.port.to_string(), PASSWORD]);
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
            .arg(super::peers_dir("imessage").join("stop.sh"))
            .arg(self.dir.path())
            .output();
    }
}

/// The stand-in with the suite's groups.
pub struct ImessagePeer {
    pub standin: Standin,
    /// Group name (as the suite says it) to group id.
    pub groups: HashMap<String, String>,
    people: std::cell::Cell<u32>,
}

impl ImessagePeer {
    /// Start the stand-in and make the group chats.
    pub async fn start(groups: &[&str]) -> Self {
        let standin = Standin::start();
        let mut ids = HashMap::new();
        for g in groups {
            let v = standin.control("group", json!({"name": g})).await;
            ids.insert(
                g.to_string(),
                v["chatGuid"].as_str().expect("a chat guid").to_string(),
            );
        }
        ImessagePeer {
            standin,
            groups: ids,
            people: std::cell::Cell::new(0),
        }
    }

    /// `[channels.NAME]` for the bot on this stand-in, with `extra` settings lines.
    pub fn section(&self, name: &str, extra: &str) -> String {
        format!(
            "[channels.{name}]\nkind = \"imessage\"\nurl = \"{}\"\nname = \"{BOT_NAME}\"\n\
             private_api = true\npoll_ms = 300\nsecret = \"{PASSWORD}\"\ndm_policy = \"open\"\n{extra}\n",
            self.standin.url()
        )
    }
}

impl Peer for ImessagePeer {
    type P = ImessagePerson;

    fn kind(&self) -> &'static str {
        "imessage"
    }

    fn channel_section(&self, name: &str, _groups: &[&str]) -> String {
        self.section(name, "")
    }

    fn bot(&self) -> &str {
        BOT_NAME
    }

    fn max_len(&self) -> usize {
        clawos_channels::imessage::MAX_TEXT_CHARS
    }

    async fn person(&self, _name: &str) -> ImessagePerson {
        let n = self.people.get() + 1;
        self.people.set(n);
        let number = format!("+1555000{:04}", 100 + n);
        let sent = self.standin.control("sent", json!({})).await;
        ImessagePerson {
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

/// A person on iMessage.
pub struct ImessagePerson {
    pub number: String,
    url: String,
    groups: HashMap<String, String>,
    joined: Vec<String>,
    /// How many of the stand-in's sent messages were looked at.
    seen: usize,
    heard: VecDeque<Heard>,
}

impl ImessagePerson {
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

    /// Say `text` with the stand-in's extra fields (`replyTo`, `assocType`, `itemType`);
    /// the new message's GUID.
    pub async fn say_with(&mut self, group: Option<&str>, text: &str, extra: Value) -> String {
        let mut body = json!({"from": self.number, "text": text});
        if let Some(g) = group {
            body["chatGuid"] = json!(self.groups.get(g).expect("a suite group"));
        }
        if let Some(o) = extra.as_object() {
            for (k, v) in o {
                body[k] = v.clone();
            }
        }
        let v = self.control("say", body).await;
        v["guid"].as_str().unwrap_or_default().to_string()
    }

    /// Everything the stand-in says the bot sent to this person since last asked.
    async fn poll(&mut self) {
        let sent: Value = reqwest::Client::new()
            .post(format!("{}/_standin/sent", self.url))
            .json(&json!({}))
            .send()
            .await
            .expect("/_standin/sent")
            .json()
            .await
            .expect("sent JSON");
        let all = sent.as_array().cloned().unwrap_or_default();
        let direct = format!("iMessage;-;{}", self.number);
        for m in all.iter().skip(self.seen) {
            let chat = m["chatGuid"].as_str().unwrap_or_default();
            let group = self
                .groups
                .iter()
                .find(|(name, id)| id.as_str() == chat && self.joined.contains(name))
                .map(|(name, _)| name.clone());
            if chat != direct && group.is_none() {
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
                text: if file.is_some() {
                    String::new()
                } else {
                    m["text"].as_str().unwrap_or("").to_string()
                },
                file,
            });
        }
        self.seen = all.len();
    }
}

impl Person for ImessagePerson {
    fn address(&self) -> String {
        clawos_channels::imessage::address_of(&self.number)
    }

    async fn join(&mut self, group: &str, _bot: &str) {
        let gid = self.groups.get(group).expect("a suite group").clone();
        self.control("join", json!({"chatGuid": gid, "handle": self.number}))
            .await;
        self.joined.push(group.to_string());
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
                .post(format!("{}/_standin/state", self.url))
                .json(&json!({}))
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            if state["polled_ago"].as_f64().is_some_and(|s| s < 2.0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the bot did not poll the server within {within:?}"
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
