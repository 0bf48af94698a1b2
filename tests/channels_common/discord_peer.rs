//! The Discord stand-in (`tests/peers/discord/standin.py`, run by `start.sh`) and a person
//! on it, who talks through the stand-in's control endpoints (`/_standin/...`): creates
//! users, says things in DMs and guild channels, and reads what the bot sent.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::conformance::{Heard, Peer, Person};
use crate::gateway_common::free_port;

/// The bot's token at the stand-in.
pub const TOKEN: &str = "standin-bot-token.clawos";
/// The bot's user id at the stand-in.
pub const BOT_ID: &str = "1000000000000000001";

fn peers_dir() -> PathBuf {
    super::peers_dir("discord")
}

/// A running stand-in in its own folder, with the suite's guild channels.
pub struct DiscordPeer {
    /// Its state folder.
    pub dir: tempfile::TempDir,
    /// Its port.
    pub port: u16,
    /// Group name (as the suite says it) to channel id.
    pub groups: HashMap<String, String>,
}

impl DiscordPeer {
    /// Start the stand-in and create a guild text channel per group.
    pub async fn start(groups: &[&str]) -> Self {
        let mut peer = DiscordPeer {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
            groups: HashMap::new(),
        };
        peer.start_server();
        for g in groups {
            let v = peer.control("POST", "channels", json!({"name": g})).await;
            let id = v["id"].as_str().expect("a channel id").to_string();
            peer.groups.insert(g.to_string(), id);
        }
        peer
    }

    /// The REST API base the bot is given.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v10", self.port)
    }

    /// Call a control endpoint.
    pub async fn control(&self, method: &str, path: &str, body: Value) -> Value {
        control(self.port, method, path, body).await
    }

    /// `[channels.NAME]` for the bot with `extra` settings lines.
    pub fn section(&self, name: &str, extra: &str) -> String {
        format!(
            "[channels.{name}]\nkind = \"discord\"\napi_url = \"{}\"\nsecret = \"{TOKEN}\"\n\
             dm_policy = \"open\"\n{extra}\n",
            self.api_url()
        )
    }
}

/// Call a control endpoint of the stand-in on `port`.
pub async fn control(port: u16, method: &str, path: &str, body: Value) -> Value {
    let url = format!("http://127.0.0.1:{port}/_standin/{path}");
    let http = reqwest::Client::new();
    let req = match method {
        "GET" => http.get(url),
        _ => http.post(url).json(&body),
    };
    let resp = req.send().await.expect("the stand-in answers");
    assert!(
        resp.status().is_success(),
        "control {path}: {}",
        resp.status()
    );
    resp.json().await.expect("JSON from the stand-in")
}

impl Drop for DiscordPeer {
    fn drop(&mut self) {
        self.stop_server();
    }
}

impl Peer for DiscordPeer {
    type P = DiscordPerson;

    fn kind(&self) -> &'static str {
        "discord"
    }

    fn channel_section(&self, name: &str, _groups: &[&str]) -> String {
        self.section(name, "")
    }

    fn bot(&self) -> &str {
        "clawbot"
    }

    fn max_len(&self) -> usize {
        clawos_channels::discord::MAX_CONTENT_CHARS
    }

    async fn person(&self, name: &str) -> DiscordPerson {
        let v = self.control("POST", "users", json!({"name": name})).await;
        let id = v["id"].as_str().expect("a user id").to_string();
        let dm = self.control("POST", "dm", json!({"user": id})).await;
        let feed = self.control("GET", "feed?after=0", Value::Null).await;
        DiscordPerson {
            port: self.port,
            id,
            dm: dm["id"].as_str().expect("a DM channel").to_string(),
            groups: HashMap::new(),
            all_groups: self.groups.clone(),
            next: feed["next"].as_u64().unwrap_or(0),
            heard: VecDeque::new(),
        }
    }

    fn stop_server(&mut self) {
        let _ = Command::new("bash")
            .arg(peers_dir().join("stop.sh"))
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .output();
    }

    fn start_server(&mut self) {
        let out = Command::new("bash")
            .arg(peers_dir().join("start.sh"))
            .arg(self.dir.path())
            .arg(self.port.to_string())
            .arg(TOKEN)
            .env("STANDIN_HEARTBEAT_MS", "5000")
            .stdin(Stdio::null())
            .output()
            .expect("run start.sh");
        assert!(
            out.status.success(),
            "start.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn attachments(&self) -> bool {
        true
    }

    fn catches_up(&self) -> bool {
        true
    }
}

/// A person on the stand-in.
pub struct DiscordPerson {
    port: u16,
    /// Their user id.
    pub id: String,
    /// Their DM channel with the bot.
    pub dm: String,
    /// Group name to channel id, of the groups joined.
    groups: HashMap<String, String>,
    all_groups: HashMap<String, String>,
    next: u64,
    heard: VecDeque<Heard>,
}

impl DiscordPerson {
    /// Say `content` in `channel` (their DM when `None`); the message as the stand-in
    /// dispatched it.
    pub async fn say_raw(&self, channel: Option<&str>, content: &str, extra: Value) -> Value {
        let mut body = json!({"user": self.id, "channel": channel, "content": content});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        control(self.port, "POST", "say", body).await
    }

    /// Read the bot's new messages and edits in this person's channels (edits as `* TEXT`).
    async fn poll(&mut self) {
        let feed = control(
            self.port,
            "GET",
            &format!("feed?after={}", self.next),
            Value::Null,
        )
        .await;
        self.next = feed["next"].as_u64().unwrap_or(self.next);
        for entry in feed["feed"].as_array().into_iter().flatten() {
            let m = &entry["message"];
            let channel = m["channel_id"].as_str().unwrap_or_default();
            let group = self
                .groups
                .iter()
                .find(|(_, id)| id.as_str() == channel)
                .map(|(g, _)| g.clone());
            if group.is_none() && channel != self.dm {
                continue;
            }
            let mut text = m["content"].as_str().unwrap_or_default().to_string();
            if entry["kind"] == "update" {
                text = format!("* {text}");
            }
            let mut file = None;
            if let Some(a) = m["attachments"].as_array().and_then(|a| a.first()) {
                let url = a["url"].as_str().expect("an attachment url");
                let bytes = reqwest::get(url)
                    .await
                    .expect("download")
                    .bytes()
                    .await
                    .expect("the file");
                let name = a["filename"].as_str().unwrap_or_default().to_string();
                file = Some((name, bytes.to_vec()));
            }
            self.heard.push_back(Heard { group, text, file });
        }
    }
}

impl Person for DiscordPerson {
    fn address(&self) -> String {
        format!("discord:{}", self.id)
    }

    async fn join(&mut self, group: &str, _bot: &str) {
        let id = self.all_groups.get(group).expect("a suite group").clone();
        self.groups.insert(group.to_string(), id);
    }

    async fn say(&mut self, group: Option<&str>, bot: &str, text: &str) {
        let channel = group.map(|g| self.groups.get(g).expect("a joined group").clone());
        let (content, mention) = match text.strip_prefix(&format!("{bot}: ")) {
            Some(rest) if channel.is_some() => (format!("<@{BOT_ID}> {rest}"), true),
            _ => (text.to_string(), false),
        };
        self.say_raw(channel.as_deref(), &content, json!({"mention": mention}))
            .await;
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
            let s = control(self.port, "GET", "stats", Value::Null).await;
            if s["connected"].as_u64().unwrap_or(0) > 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the bot was not on the Gateway within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn send_file(&mut self, _bot: &str, name: &str, mime: &str, bytes: &[u8]) {
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.say_raw(
            None,
            "",
            json!({"file": {"name": name, "mime": mime, "data": data}}),
        )
        .await;
    }
}
