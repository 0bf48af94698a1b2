//! The Matrix test homeserver (Synapse from PyPI, run by `tests/peers/matrix/start.sh`) and
//! a person on it: a small client-server API client that creates rooms, talks, sends
//! files and listens with `/sync`.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::conformance::{Heard, Peer, Person};
use crate::gateway_common::free_port;

/// The homeserver's name.
pub const SERVER: &str = "clawos.test";
/// The bot's password.
pub const BOT_PASSWORD: &str = "bot-password-123";

fn peers_dir() -> PathBuf {
    super::peers_dir("matrix")
}

/// A running Synapse in its own folder.
pub struct Homeserver {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Homeserver {
    /// Start it; panics naming what is missing when Synapse is not installed
    /// (`bash tests/run.sh` installs it).
    pub fn start() -> Self {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".peers/synapse-venv");
        assert!(
            std::env::var_os("CLAWOS_SYNAPSE_VENV").is_some() || venv.join("bin/python").exists(),
            "Synapse is missing: the Matrix tests need `bash tests/peers/matrix/install.sh` \
             (`bash tests/run.sh` runs it)"
        );
        let hs = Homeserver {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
        };
        hs.up();
        hs
    }

    /// The client API base URL.
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
            .expect("run a Synapse script");
        assert!(
            out.status.success(),
            "{name} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn up(&self) {
        self.script("start.sh", &[&self.port.to_string()]);
    }

    /// Stop it and wait until it is gone.
    pub fn down(&self) {
        self.script("stop.sh", &[]);
    }

    /// Create a user (nothing if it exists).
    pub fn register(&self, user: &str, password: &str) {
        self.script("register.sh", &[&self.port.to_string(), user, password]);
    }
}

impl Drop for Homeserver {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(peers_dir().join("stop.sh"))
            .arg(self.dir.path())
            .output();
    }
}

/// The homeserver with the bot's account and the suite's group room.
pub struct MatrixPeer {
    pub hs: Homeserver,
    /// Group name (as the suite says it) to room id.
    pub rooms: HashMap<String, String>,
}

impl MatrixPeer {
    /// Start Synapse, register the bot, and create the suite's group room (public, with
    /// an alias the channel joins at start).
    pub async fn start(groups: &[&str]) -> Self {
        let hs = Homeserver::start();
        hs.register("clawbot", BOT_PASSWORD);
        let mut host = MatrixPerson::new(&hs, "host").await;
        let mut rooms = HashMap::new();
        for g in groups {
            let alias = alias_name(g);
            let v = host
                .call(
                    "POST",
                    "/_matrix/client/v3/createRoom",
                    json!({"preset": "public_chat", "room_alias_name": alias, "name": g}),
                )
                .await;
            let id = v["room_id"].as_str().expect("a room id").to_string();
            rooms.insert(g.to_string(), id);
        }
        MatrixPeer { hs, rooms }
    }

    /// `[channels.NAME]` for the bot in these groups, with `extra` settings lines.
    pub fn section(&self, name: &str, groups: &[&str], extra: &str) -> String {
        let rooms: Vec<String> = groups
            .iter()
            .map(|g| format!("\"#{}:{SERVER}\"", alias_name(g)))
            .collect();
        format!(
            "[channels.{name}]\nkind = \"matrix\"\nhomeserver = \"{}\"\nuser_id = \"@clawbot:{SERVER}\"\n\
             rooms = [{}]\nsecret = \"{BOT_PASSWORD}\"\ndm_policy = \"open\"\n{extra}\n",
            self.hs.url(),
            rooms.join(", ")
        )
    }
}

/// The local alias of a suite group name (`#clawos-suite` is `clawos-suite`).
fn alias_name(group: &str) -> String {
    group.trim_start_matches('#').to_string()
}

impl Peer for MatrixPeer {
    type P = MatrixPerson;

    fn kind(&self) -> &'static str {
        "matrix"
    }

    fn channel_section(&self, name: &str, groups: &[&str]) -> String {
        self.section(name, groups, "")
    }

    fn bot(&self) -> &str {
        "clawbot"
    }

    fn max_len(&self) -> usize {
        clawos_channels::matrix::MAX_BODY_CHARS
    }

    async fn person(&self, name: &str) -> MatrixPerson {
        let mut p = MatrixPerson::new(&self.hs, name).await;
        p.groups = self.rooms.clone();
        p
    }

    fn stop_server(&mut self) {
        self.hs.down();
    }

    fn start_server(&mut self) {
        self.hs.up();
    }

    fn attachments(&self) -> bool {
        true
    }

    fn catches_up(&self) -> bool {
        true
    }
}

/// A person on the homeserver.
pub struct MatrixPerson {
    pub user: String,
    base: String,
    token: String,
    http: reqwest::Client,
    since: Option<String>,
    /// Group name to room id.
    groups: HashMap<String, String>,
    direct: Option<String>,
    heard: VecDeque<Heard>,
    /// The bot was seen typing (an `m.typing` event naming it) in some room.
    pub saw_bot_typing: bool,
}

impl MatrixPerson {
    /// Register `name` and log in.
    pub async fn new(hs: &Homeserver, name: &str) -> Self {
        let password = format!("{name}-password-123");
        hs.register(name, &password);
        let http = reqwest::Client::new();
        let v: Value = http
            .post(format!("{}/_matrix/client/v3/login", hs.url()))
            .json(&json!({"type": "m.login.password",
                          "identifier": {"type": "m.id.user", "user": name},
                          "password": password}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login JSON");
        let token = v["access_token"].as_str().expect("a token").to_string();
        let mut p = MatrixPerson {
            user: format!("@{name}:{SERVER}"),
            base: hs.url(),
            token,
            http,
            since: None,
            groups: HashMap::new(),
            direct: None,
            heard: VecDeque::new(),
            saw_bot_typing: false,
        };
        let v = p
            .call(
                "GET",
                "/_matrix/client/v3/sync?timeout=0&filter={\"room\":{\"timeline\":{\"limit\":0}}}",
                Value::Null,
            )
            .await;
        p.since = v["next_batch"].as_str().map(String::from);
        p
    }

    /// One API call; the JSON answer (panics on an error answer).
    pub async fn call(&mut self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "PUT" => self.http.put(url).json(&body),
            _ => self.http.post(url).json(&body),
        };
        let resp = req
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    fn enc(s: &str) -> String {
        s.replace('!', "%21")
            .replace(':', "%3A")
            .replace('#', "%23")
    }

    async fn send_content(&mut self, room: &str, content: Value) {
        let txn = uuid::Uuid::now_v7().simple().to_string();
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
            Self::enc(room)
        );
        self.call("PUT", &path, content).await;
    }

    async fn direct_room(&mut self, bot: &str) -> String {
        if let Some(r) = &self.direct {
            return r.clone();
        }
        let v = self
            .call(
                "POST",
                "/_matrix/client/v3/createRoom",
                json!({"is_direct": true, "preset": "trusted_private_chat",
                       "invite": [format!("@{bot}:{SERVER}")]}),
            )
            .await;
        let room = v["room_id"].as_str().expect("a room id").to_string();
        self.direct = Some(room.clone());
        room
    }

    async fn members(&mut self, room: &str) -> Vec<String> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/joined_members",
            Self::enc(room)
        );
        let v = self.call("GET", &path, Value::Null).await;
        v["joined"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn download(&mut self, mxc: &str) -> Vec<u8> {
        let rest = mxc.strip_prefix("mxc://").expect("an mxc URI");
        let url = format!("{}/_matrix/client/v1/media/download/{rest}", self.base);
        let resp = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("download");
        assert!(
            resp.status().is_success(),
            "download {mxc}: {}",
            resp.status()
        );
        resp.bytes().await.expect("bytes").to_vec()
    }

    /// Read one `/sync` (up to `wait`) and queue what the bot said.
    async fn poll(&mut self, bot: &str, wait: Duration) {
        let since = self.since.clone().unwrap_or_default();
        let path = format!(
            "/_matrix/client/v3/sync?timeout={}&since={since}",
            wait.as_millis()
        );
        let v = self.call("GET", &path, Value::Null).await;
        self.since = v["next_batch"].as_str().map(String::from);
        let bot_id = format!("@{bot}:{SERVER}");
        let rooms = v["rooms"]["join"].as_object().cloned().unwrap_or_default();
        for (room, joined) in rooms {
            let typing = joined["ephemeral"]["events"]
                .as_array()
                .into_iter()
                .flatten();
            for e in typing.filter(|e| e["type"] == "m.typing") {
                let mut users = e["content"]["user_ids"].as_array().into_iter().flatten();
                self.saw_bot_typing |= users.any(|u| u == bot_id.as_str());
            }
            for e in joined["timeline"]["events"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if e["type"] != "m.room.message" || e["sender"] != bot_id.as_str() {
                    continue;
                }
                let group = self
                    .groups
                    .iter()
                    .find(|(_, id)| **id == room)
                    .map(|(name, _)| name.clone());
                let content = &e["content"];
                let file = match content["url"].as_str() {
                    Some(mxc) => {
                        let mxc = mxc.to_string();
                        let bytes = self.download(&mxc).await;
                        Some((content["body"].as_str().unwrap_or("").to_string(), bytes))
                    }
                    None => None,
                };
                self.heard.push_back(Heard {
                    group,
                    text: if file.is_some() {
                        String::new()
                    } else {
                        content["body"].as_str().unwrap_or("").to_string()
                    },
                    file,
                });
            }
        }
    }
}

impl Person for MatrixPerson {
    fn address(&self) -> String {
        clawos_channels::matrix::address_of(&self.user)
    }

    async fn join(&mut self, group: &str, bot: &str) {
        let room = self.groups.get(group).cloned().expect("a suite group");
        let path = format!("/_matrix/client/v3/join/{}", Self::enc(&room));
        self.call("POST", &path, json!({})).await;
        self.wait_for_bot(Some(group), bot, Duration::from_secs(30))
            .await;
    }

    async fn say(&mut self, group: Option<&str>, bot: &str, text: &str) {
        let room = match group {
            Some(g) => self.groups.get(g).cloned().expect("a suite group"),
            None => self.direct_room(bot).await,
        };
        self.send_content(&room, json!({"msgtype": "m.text", "body": text}))
            .await;
    }

    async fn hear(&mut self, bot: &str, within: Duration) -> Option<Heard> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(h) = self.heard.pop_front() {
                return Some(h);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.poll(bot, left.min(Duration::from_secs(10))).await;
        }
    }

    async fn wait_for_bot(&mut self, group: Option<&str>, bot: &str, within: Duration) {
        let room = match group {
            Some(g) => self.groups.get(g).cloned().expect("a suite group"),
            None => self.direct_room(bot).await,
        };
        let bot_id = format!("@{bot}:{SERVER}");
        let deadline = Instant::now() + within;
        while !self.members(&room).await.contains(&bot_id) {
            assert!(
                Instant::now() < deadline,
                "the bot did not join {room} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn send_file(&mut self, bot: &str, name: &str, mime: &str, bytes: &[u8]) {
        let room = self.direct_room(bot).await;
        let url = format!("{}/_matrix/media/v3/upload?filename={name}", self.base);
        let v: Value = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("content-type", mime)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("upload")
            .json()
            .await
            .expect("upload JSON");
        let uri = v["content_uri"]
            .as_str()
            .expect("a content uri")
            .to_string();
        self.send_content(
            &room,
            json!({"msgtype": "m.image", "body": name, "url": uri,
                   "info": {"mimetype": mime, "size": bytes.len()}}),
        )
        .await;
    }
}
