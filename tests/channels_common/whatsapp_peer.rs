//! The WhatsApp Cloud API stand-in (`tests/peers/whatsapp/standin.py`, written from
//! Meta's public Cloud API and webhook documentation) and a person on it, who talks
//! through the stand-in's `/_standin/` control endpoints: what they say is posted, signed,
//! to the channel's webhook and retried until it is answered 200.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::conformance::{Heard, Peer, Person};
use crate::gateway_common::free_port;

/// The access token, as the stand-in knows it.
pub const TOKEN: &str = "EAAstandinTOKENforCLAWOStests0001";
/// The Meta app's secret, which signs the webhook notifications.
pub const APP_SECRET: &str = "standin-app-secret-0001";
/// The business number's id.
pub const PHONE_NUMBER_ID: &str = "106540352242922";
/// The verify token of the webhook subscription.
pub const VERIFY_TOKEN: &str = "clawos-verify-0001";

fn peers_dir() -> PathBuf {
    super::peers_dir("whatsapp")
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

    /// The Graph API base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v21.0", self.port)
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
        self.script(
            "start.sh",
            &[&self.port.to_string(), TOKEN, APP_SECRET, PHONE_NUMBER_ID],
        );
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

/// The stand-in, and the webhook address the channel listens on.
pub struct WhatsappPeer {
    /// The stand-in.
    pub api: Standin,
    /// The channel's `listen` port.
    pub listen_port: u16,
}

impl WhatsappPeer {
    /// Start the stand-in, its notifications going to a fresh port.
    pub async fn start() -> Self {
        let api = Standin::start();
        let peer = WhatsappPeer {
            api,
            listen_port: free_port(),
        };
        peer.point_webhook(peer.listen_port).await;
        peer
    }

    /// Send the stand-in's notifications to `port` from now on.
    pub async fn point_webhook(&self, port: u16) {
        self.api
            .control(
                "webhook",
                json!({"url": format!("http://127.0.0.1:{port}/webhook"),
                       "verify_token": VERIFY_TOKEN}),
            )
            .await;
    }

    /// `[channels.NAME]` listening on `port`, with `secret` and `extra` settings lines.
    pub fn section(&self, name: &str, port: u16, secret: &str, extra: &str) -> String {
        format!(
            "[channels.{name}]\nkind = \"whatsapp\"\napi_url = \"{}\"\nphone_number_id = \
             \"{PHONE_NUMBER_ID}\"\nwebhook_listen = \"127.0.0.1:{port}\"\nverify_token = \
             \"{VERIFY_TOKEN}\"\nprobe_secs = 1\nsecret = \"{secret}\"\ndm_policy = \"open\"\n{extra}\n",
            self.api.url()
        )
    }
}

impl Peer for WhatsappPeer {
    type P = WhatsappPerson;

    fn kind(&self) -> &'static str {
        "whatsapp"
    }

    fn channel_section(&self, name: &str, _groups: &[&str]) -> String {
        self.section(name, self.listen_port, &format!("{TOKEN}:{APP_SECRET}"), "")
    }

    fn bot(&self) -> &str {
        "+1 555-078-3881"
    }

    fn max_len(&self) -> usize {
        clawos_channels::whatsapp::MAX_TEXT_CHARS
    }

    async fn person(&self, name: &str) -> WhatsappPerson {
        let wa_id = self.api.control("person", json!({"name": name})).await["wa_id"]
            .as_str()
            .expect("a wa_id")
            .to_string();
        let sent = self.api.control("stats", json!({})).await["sent"]
            .as_u64()
            .unwrap_or(0) as usize;
        WhatsappPerson {
            wa_id,
            port: self.api.port,
            http: reqwest::Client::new(),
            after: sent,
            heard: VecDeque::new(),
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

    fn groups(&self) -> bool {
        false
    }
}

/// A person on the stand-in.
pub struct WhatsappPerson {
    /// Their WhatsApp id.
    pub wa_id: String,
    port: u16,
    http: reqwest::Client,
    after: usize,
    heard: VecDeque<Heard>,
    /// Every message the bot sent them, as the stand-in took it.
    pub seen: Vec<Value>,
}

impl WhatsappPerson {
    /// A control call.
    pub async fn control(&self, what: &str, body: Value) -> Value {
        control(&self.http, self.port, what, body).await
    }

    /// Say `text`, optionally as a reply to the bot's message `context`; the wamid.
    pub async fn say_with(&mut self, text: &str, context: Option<&str>) -> String {
        self.control(
            "say",
            json!({"from": self.wa_id, "text": text, "context": context}),
        )
        .await["id"]
            .as_str()
            .expect("a wamid")
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
            let m = &s["message"];
            if m["to"].as_str() != Some(self.wa_id.as_str()) {
                continue;
            }
            self.seen.push(m.clone());
            let text = m["text"]["body"].as_str().unwrap_or_default().to_string();
            let kind = m["type"].as_str().unwrap_or_default().to_string();
            let file = match m[&kind]["id"].as_str() {
                Some(id) if kind != "text" => {
                    let bytes = self
                        .http
                        .get(format!(
                            "http://127.0.0.1:{}/_standin/blob?id={id}",
                            self.port
                        ))
                        .send()
                        .await
                        .expect("stand-in blob")
                        .bytes()
                        .await
                        .expect("bytes")
                        .to_vec();
                    let name = m[&kind]["filename"].as_str().unwrap_or("image");
                    Some((name.to_string(), bytes))
                }
                _ => None,
            };
            self.heard.push_back(Heard {
                group: None,
                text,
                file,
            });
        }
    }
}

impl Person for WhatsappPerson {
    fn address(&self) -> String {
        clawos_channels::whatsapp::address_of(&self.wa_id)
    }

    async fn join(&mut self, _group: &str, _bot: &str) {
        panic!("the WhatsApp Cloud API has no group chats");
    }

    async fn say(&mut self, _group: Option<&str>, _bot: &str, text: &str) {
        self.say_with(text, None).await;
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
        // The webhook answers Meta's subscription check once the channel listens.
        let deadline = Instant::now() + within;
        loop {
            if self.control("verify", json!({})).await["ok"] == true {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the webhook did not answer the verification within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn send_file(&mut self, _bot: &str, name: &str, mime: &str, bytes: &[u8]) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.control(
            "say",
            json!({"from": self.wa_id, "file": {"name": name, "mime": mime, "b64": b64}}),
        )
        .await;
    }
}
