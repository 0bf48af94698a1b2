//! The Slack stand-in (`tests/peers/slack/standin.py`, the Web API and Socket Mode
//! written from Slack's public documentation) and a person on it, who talks through the
//! stand-in's `/_standin/` control endpoints.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::conformance::{Heard, Peer, Person};
use crate::gateway_common::free_port;

/// The app-level token, as the stand-in knows it.
pub const APP_TOKEN: &str = "xapp-1-A0CLAWOS-1-standinapptoken";
/// The bot token, as the stand-in knows it.
pub const BOT_TOKEN: &str = "xoxb-1-1-standinbottoken";
/// The bot's user id.
pub const BOT_USER: &str = "U0CLAWOSBOT";

/// The vault secret of the app: both tokens.
pub fn secret() -> String {
    format!("{APP_TOKEN}:{BOT_TOKEN}")
}

fn peers_dir() -> PathBuf {
    super::peers_dir("slack")
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

    /// The Web API base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api", self.port)
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
        self.script("start.sh", &[&self.port.to_string(), APP_TOKEN, BOT_TOKEN]);
    }

    /// Stop it and wait until it is gone.
    pub fn down(&self) {
        self.script("stop.sh", &[]);
    }

    /// One control call (`/_standin/WHAT`); its JSON answer.
    pub async fn control(&self, what: &str, body: Value) -> Value {
        control(&self.http, self.port, what, body).await
    }
}

async fn control(http: &reqwest::Client, port: u16, what: &str, body: Value) -> Value {
    let resp = http
        .post(format!("http://127.0.0.1:{port}/_standin/{what}"))
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

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(peers_dir().join("stop.sh"))
            .arg(self.dir.path())
            .output();
    }
}

/// The stand-in with the suite's channels.
pub struct SlackPeer {
    /// The stand-in.
    pub api: Standin,
    /// Channel name (as the suite says it) to channel id.
    pub groups: HashMap<String, String>,
}

impl SlackPeer {
    /// Start the stand-in and make the suite's channels (the bot is in each).
    pub async fn start(groups: &[&str]) -> Self {
        let api = Standin::start();
        let mut map = HashMap::new();
        for g in groups {
            let v = api.control("channel", json!({"name": g})).await;
            map.insert(g.to_string(), v["id"].as_str().expect("an id").to_string());
        }
        SlackPeer { api, groups: map }
    }

    /// `[channels.NAME]` for the app with `secret` and `extra` settings lines.
    pub fn section(&self, name: &str, secret: &str, extra: &str) -> String {
        format!(
            "[channels.{name}]\nkind = \"slack\"\napi_url = \"{}\"\nsecret = \"{secret}\"\n\
             dm_policy = \"open\"\n{extra}\n",
            self.api.url()
        )
    }
}

impl Peer for SlackPeer {
    type P = SlackPerson;

    fn kind(&self) -> &'static str {
        "slack"
    }

    fn channel_section(&self, name: &str, _groups: &[&str]) -> String {
        self.section(name, &secret(), "")
    }

    fn bot(&self) -> &str {
        "@clawos"
    }

    fn max_len(&self) -> usize {
        clawos_channels::slack::MAX_TEXT_CHARS
    }

    async fn person(&self, name: &str) -> SlackPerson {
        let v = self.api.control("person", json!({"name": name})).await;
        let sent = self.api.control("stats", json!({})).await["sent"]
            .as_u64()
            .unwrap_or(0) as usize;
        SlackPerson {
            id: v["id"].as_str().expect("a user id").to_string(),
            dm: v["dm"].as_str().expect("a dm id").to_string(),
            port: self.api.port,
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
pub struct SlackPerson {
    /// Their user id.
    pub id: String,
    /// Their direct-message channel with the bot.
    pub dm: String,
    port: u16,
    http: reqwest::Client,
    groups: HashMap<String, String>,
    member_of: Vec<String>,
    after: usize,
    heard: VecDeque<Heard>,
    /// The texts of the edits the bot made to its messages here, in order.
    pub edits: Vec<String>,
    /// Every record of what the bot sent here (posts, updates, files), as the stand-in
    /// keeps them.
    pub seen: Vec<Value>,
}

impl SlackPerson {
    /// One control call.
    pub async fn control(&self, what: &str, body: Value) -> Value {
        control(&self.http, self.port, what, body).await
    }

    /// Say `text` in `group` (or directly), with `extra` fields (`thread_ts`, `file`); the
    /// message's ts. As Slack's client does, `&`, `<` and `>` are escaped and `@clawos`
    /// becomes the mention `<@BOTID>`.
    pub async fn say_with(&mut self, group: Option<&str>, text: &str, extra: Value) -> String {
        let text = text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace("@clawos", &format!("<@{BOT_USER}>"));
        let channel = group.map(|g| self.groups.get(g).cloned().expect("a suite channel"));
        let mut body = json!({"user": self.id, "channel": channel, "text": text});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.control("say", body).await["ts"]
            .as_str()
            .expect("a ts")
            .to_string()
    }

    async fn poll(&mut self, wait: Duration) {
        let url = format!(
            "http://127.0.0.1:{}/_standin/sent?after={}&wait={}",
            self.port,
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
            let channel = s["channel"].as_str().unwrap_or_default().to_string();
            let group = if channel == self.dm {
                None
            } else if self.member_of.contains(&channel) {
                self.groups
                    .iter()
                    .find(|(_, id)| **id == channel)
                    .map(|(n, _)| n.clone())
            } else {
                continue;
            };
            self.seen.push(s.clone());
            let text = s["text"].as_str().unwrap_or_default().to_string();
            match s["kind"].as_str() {
                Some("update") => self.edits.push(text),
                Some("file") => {
                    let fid = s["file_id"].as_str().unwrap_or_default();
                    let bytes = self
                        .http
                        .post(format!(
                            "http://127.0.0.1:{}/_standin/blob?file_id={fid}",
                            self.port
                        ))
                        .send()
                        .await
                        .expect("stand-in blob")
                        .bytes()
                        .await
                        .expect("bytes")
                        .to_vec();
                    let name = s["name"].as_str().unwrap_or_default().to_string();
                    self.heard.push_back(Heard {
                        group,
                        text: String::new(),
                        file: Some((name, bytes)),
                    });
                }
                _ => self.heard.push_back(Heard {
                    group,
                    text,
                    file: None,
                }),
            }
        }
    }
}

impl Person for SlackPerson {
    fn address(&self) -> String {
        clawos_channels::slack::address_of(&self.id)
    }

    async fn join(&mut self, group: &str, _bot: &str) {
        let channel = match self.groups.get(group) {
            Some(c) => c.clone(),
            None => {
                let v = self.control("channel", json!({"name": group})).await;
                let id = v["id"].as_str().expect("a channel id").to_string();
                self.groups.insert(group.to_string(), id.clone());
                id
            }
        };
        self.control("join", json!({"user": self.id, "channel": channel}))
            .await;
        self.member_of.push(channel);
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
        // Slack keeps what is said for the app: it is reachable once a socket is open.
        let deadline = Instant::now() + within;
        loop {
            let connected = self.control("stats", json!({})).await["connected"]
                .as_u64()
                .unwrap_or(0);
            if connected > 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the app did not connect within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn send_file(&mut self, _bot: &str, name: &str, mime: &str, bytes: &[u8]) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let body = json!({"user": self.id, "text": "",
                          "file": {"name": name, "mime": mime, "b64": b64}});
        self.control("say", body).await;
    }
}
