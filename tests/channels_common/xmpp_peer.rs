//! The XMPP test server (Prosody 0.12 from Debian, run by `tests/peers/xmpp/start.sh`) and
//! a person on it: a hand client over the channel's own link (STARTTLS, SASL, bind) that
//! joins rooms, talks, shares files (XEP-0363 + OOB) and listens.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clawos_channels::xmpp::link::{
    self, FallibleStreamElement, ReadError, Stream, XmppStreamElement,
};
use clawos_channels::xmpp::parsers::http_upload::SlotRequest;
use clawos_channels::xmpp::parsers::iq::Iq;
use clawos_channels::xmpp::parsers::jid::{BareJid, Jid};
use clawos_channels::xmpp::parsers::message::{Lang, Message, MessageType};
use clawos_channels::xmpp::parsers::muc::muc::{History, Muc};
use clawos_channels::xmpp::parsers::oob::Oob;
use clawos_channels::xmpp::parsers::ping::Ping;
use clawos_channels::xmpp::parsers::presence::{Presence, Type as PresenceType};
use clawos_channels::xmpp::parsers::stanza::Stanza;
use clawos_channels::xmpp::XmppSettings;

use super::conformance::{Heard, Peer, Person};
use crate::gateway_common::free_port;

/// The server's domain.
pub const DOMAIN: &str = "clawos.test";
/// Its rooms service.
pub const ROOMS: &str = "conference.clawos.test";
/// Its upload service.
pub const UPLOAD: &str = "upload.clawos.test";
/// The bot's password.
pub const BOT_PASSWORD: &str = "bot-password-123";

fn peers_dir() -> PathBuf {
    super::peers_dir("xmpp")
}

/// A running Prosody in its own folder.
pub struct XmppServer {
    pub dir: tempfile::TempDir,
    pub c2s_port: u16,
    pub http_port: u16,
    /// How long the first `start.sh` took.
    pub started_in: Duration,
}

impl XmppServer {
    /// Start it; panics naming what is missing when Prosody is not installed
    /// (`bash tests/run.sh` installs it).
    pub fn start() -> Self {
        assert!(
            Path::new("/usr/bin/prosody").exists(),
            "/usr/bin/prosody is missing: the XMPP tests need the Debian package prosody \
             (`bash tests/run.sh` installs it)"
        );
        let mut server = XmppServer {
            dir: tempfile::tempdir().expect("temp dir"),
            c2s_port: free_port(),
            http_port: free_port(),
            started_in: Duration::ZERO,
        };
        let t0 = Instant::now();
        server.up();
        server.started_in = t0.elapsed();
        server
    }

    fn script(&self, name: &str, extra: &[&str]) {
        let out = Command::new("bash")
            .arg(peers_dir().join(name))
            .arg(self.dir.path())
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("run a Prosody script");
        assert!(
            out.status.success(),
            "{name} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Start it (again: same ports, same data).
    pub fn up(&self) {
        self.script(
            "start.sh",
            &[&self.c2s_port.to_string(), &self.http_port.to_string()],
        );
    }

    /// Stop it and wait until it is gone.
    pub fn down(&self) {
        self.script("stop.sh", &[]);
    }

    /// Create an account (or set its password).
    pub fn register(&self, user: &str, password: &str) {
        self.script("register.sh", &[user, password]);
    }

    /// The server's certificate, the only root the clients trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    /// Settings for `user` on this server.
    pub fn settings(&self, user: &str) -> XmppSettings {
        XmppSettings {
            jid: format!("{user}@{DOMAIN}"),
            server: Some(format!("127.0.0.1:{}", self.c2s_port)),
            tls: true,
            tls_ca_file: Some(self.ca_file()),
            resource: Some("person".into()),
            nick: None,
            rooms: vec![],
            upload_service: None,
            burst: None,
            pace_ms: None,
        }
    }

    /// A `[channels.NAME]` section for `user` with this password, in these rooms, open to
    /// every sender.
    pub fn section(&self, name: &str, user: &str, password: &str, rooms: &[String]) -> String {
        let rooms: Vec<String> = rooms.iter().map(|r| format!("\"{r}\"")).collect();
        format!(
            "[channels.{name}]\nkind = \"xmpp\"\njid = \"{user}@{DOMAIN}\"\n\
             server = \"127.0.0.1:{}\"\ntls_ca_file = \"{}\"\nrooms = [{}]\n\
             secret = \"{password}\"\ndm_policy = \"open\"\n\n",
            self.c2s_port,
            self.ca_file().display(),
            rooms.join(", ")
        )
    }
}

impl Drop for XmppServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(peers_dir().join("stop.sh"))
            .arg(self.dir.path())
            .status();
    }
}

/// The room a suite group (`#name`) is: `name@conference.clawos.test`.
pub fn room_of(group: &str) -> BareJid {
    BareJid::new(&format!("{}@{ROOMS}", group.trim_start_matches('#'))).expect("room JID")
}

fn group_of(room: &BareJid) -> String {
    format!("#{}", room.node().map(|n| n.as_str()).unwrap_or_default())
}

/// A person on the server.
pub struct XmppPerson {
    pub name: String,
    stream: Stream,
    /// Messages read while waiting for something else, for `hear` to find.
    said: VecDeque<Message>,
    /// Occupants seen in rooms: (room, nick).
    present: HashSet<(BareJid, String)>,
    http: reqwest::Client,
    counter: u64,
}

impl XmppPerson {
    /// Register `name` and log in (with initial presence).
    pub async fn connect(server: &XmppServer, name: &str) -> Self {
        let password = format!("{name}-password");
        server.register(name, &password);
        let link = link::connect(&server.settings(name), Some(&password))
            .await
            .unwrap_or_else(|e| panic!("{name} cannot log in: {e}"));
        let mut p = XmppPerson {
            name: name.to_string(),
            stream: link.stream,
            said: VecDeque::new(),
            present: HashSet::new(),
            http: reqwest::Client::new(),
            counter: 0,
        };
        p.send(Presence::available().into()).await;
        p
    }

    fn bare(bot: &str) -> BareJid {
        BareJid::new(&format!("{bot}@{DOMAIN}")).expect("bot JID")
    }

    pub async fn send(&mut self, stanza: Stanza) {
        link::send(&mut self.stream, stanza)
            .await
            .unwrap_or_else(|e| panic!("{} cannot write: {e}", self.name));
    }

    /// The next stanza before `deadline` (room presence noted on the way, the server
    /// pinged when it is quiet), `None` then.
    pub async fn next(&mut self, deadline: Instant) -> Option<Stanza> {
        use futures::StreamExt;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let el = match tokio::time::timeout(left, self.stream.next()).await {
                Err(_) => return None,
                Ok(None) => panic!("the server closed the connection of {}", self.name),
                Ok(Some(Err(ReadError::SoftTimeout))) => {
                    let ping =
                        Iq::from_get("keepalive", Ping).with_to(Jid::new(DOMAIN).expect("domain"));
                    self.send(ping.into()).await;
                    continue;
                }
                Ok(Some(Err(e))) => panic!("{} lost the server: {e}", self.name),
                Ok(Some(Ok(el))) => el,
            };
            let FallibleStreamElement::Ok(XmppStreamElement::Stanza(stanza)) = el else {
                continue;
            };
            if let Stanza::Presence(p) = &stanza {
                if let Some(from) = p.from.as_ref().and_then(|f| f.try_as_full().ok()) {
                    let key = (from.to_bare(), from.resource().to_string());
                    if p.type_ == PresenceType::Unavailable {
                        self.present.remove(&key);
                    } else if p.type_ == PresenceType::None {
                        self.present.insert(key);
                    }
                }
            }
            if let Stanza::Message(m) = &stanza {
                self.said.push_back(m.clone());
            }
            return Some(stanza);
        }
    }

    /// Send an IQ and wait for its answer.
    pub async fn request(&mut self, mut iq: Iq) -> Iq {
        self.counter += 1;
        let id = format!("{}-{}", self.name, self.counter);
        *iq.id_mut() = id.clone();
        self.send(iq.into()).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.next(deadline).await {
                None => panic!("no answer to {id}"),
                Some(Stanza::Iq(answer))
                    if answer.id() == id
                        && matches!(answer, Iq::Result { .. } | Iq::Error { .. }) =>
                {
                    return answer
                }
                Some(_) => {}
            }
        }
    }

    /// A heard message as the suite sees it (files fetched).
    async fn heard(&self, m: &Message, group: Option<String>) -> Heard {
        let body = m
            .get_best_body(vec![])
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        let url = m
            .payloads
            .iter()
            .find(|p| p.is("x", "jabber:x:oob"))
            .and_then(|x| x.get_child("url", "jabber:x:oob"))
            .map(|u| u.text());
        let file = match &url {
            Some(url) => {
                let resp = self.http.get(url).send().await.expect("GET the file");
                assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
                let bytes = resp.bytes().await.expect("the file's bytes").to_vec();
                let name = url.rsplit('/').next().unwrap_or("file").to_string();
                Some((name, bytes))
            }
            None => None,
        };
        let text = if url.as_deref() == Some(body.as_str()) {
            String::new()
        } else {
            body
        };
        Heard { group, text, file }
    }
}

/// The conformance suite's view of XMPP.
pub struct XmppPeer {
    pub server: XmppServer,
    pub bot: String,
}

impl XmppPeer {
    /// Start the server and create the bot's account.
    pub fn start() -> Self {
        let server = XmppServer::start();
        server.register("clawbot", BOT_PASSWORD);
        XmppPeer {
            server,
            bot: "clawbot".into(),
        }
    }
}

impl Peer for XmppPeer {
    type P = XmppPerson;

    fn kind(&self) -> &'static str {
        "xmpp"
    }

    fn channel_section(&self, name: &str, groups: &[&str]) -> String {
        let rooms: Vec<String> = groups.iter().map(|g| room_of(g).to_string()).collect();
        self.server.section(name, &self.bot, BOT_PASSWORD, &rooms)
    }

    fn bot(&self) -> &str {
        &self.bot
    }

    fn max_len(&self) -> usize {
        clawos_channels::xmpp::MAX_TEXT_CHARS
    }

    async fn person(&self, name: &str) -> XmppPerson {
        XmppPerson::connect(&self.server, name).await
    }

    fn stop_server(&mut self) {
        self.server.down();
    }

    fn start_server(&mut self) {
        self.server.up();
    }

    fn attachments(&self) -> bool {
        true
    }

    fn catches_up(&self) -> bool {
        true
    }

    fn groups(&self) -> bool {
        true
    }
}

impl Person for XmppPerson {
    fn address(&self) -> String {
        format!("xmpp:{}@{DOMAIN}", self.name)
    }

    async fn join(&mut self, group: &str, bot: &str) {
        let room = room_of(group);
        let me = room.with_resource_str(&self.name).expect("occupant JID");
        let join = Presence::available()
            .with_to(me)
            .with_payload(Muc::new().with_history(History::new().with_maxstanzas(0)));
        self.send(join.into()).await;
        self.wait_for_bot(Some(group), bot, Duration::from_secs(30))
            .await;
    }

    async fn say(&mut self, group: Option<&str>, bot: &str, text: &str) {
        let m = match group {
            Some(g) => Message::groupchat(Jid::from(room_of(g))),
            None => Message::chat(Jid::from(Self::bare(bot))),
        }
        .with_body(Lang::default(), text.to_string());
        self.send(m.into()).await;
    }

    async fn hear(&mut self, bot: &str, within: Duration) -> Option<Heard> {
        let deadline = Instant::now() + within;
        let bot_jid = Self::bare(bot);
        loop {
            while let Some(m) = self.said.pop_front() {
                let Some(from) = m.from.clone() else { continue };
                let has_body = !m.bodies.is_empty();
                match m.type_ {
                    MessageType::Chat | MessageType::Normal
                        if from.to_bare() == bot_jid && has_body =>
                    {
                        return Some(self.heard(&m, None).await);
                    }
                    MessageType::Groupchat
                        if from.resource().is_some_and(|r| r.as_str() == bot) && has_body =>
                    {
                        let group = group_of(&from.to_bare());
                        return Some(self.heard(&m, Some(group)).await);
                    }
                    _ => {}
                }
            }
            self.next(deadline).await?;
        }
    }

    async fn wait_for_bot(&mut self, group: Option<&str>, bot: &str, within: Duration) {
        let deadline = Instant::now() + within;
        match group {
            Some(g) => {
                let key = (room_of(g), bot.to_string());
                while !self.present.contains(&key) {
                    assert!(
                        self.next(deadline).await.is_some() || self.present.contains(&key),
                        "{bot} is not in {g} within {within:?}"
                    );
                }
            }
            None => {
                // The bot's session answers a ping once it is logged in.
                let to = Self::bare(bot)
                    .with_resource_str(clawos_channels::xmpp::settings::DEFAULT_RESOURCE)
                    .expect("bot JID");
                loop {
                    let answer = self
                        .request(Iq::from_get("", Ping).with_to(to.clone().into()))
                        .await;
                    if matches!(answer, Iq::Result { .. }) {
                        return;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{bot} did not come back within {within:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    async fn send_file(&mut self, bot: &str, name: &str, mime: &str, bytes: &[u8]) {
        let upload: Jid = Jid::new(UPLOAD).expect("upload JID");
        let ask = Iq::from_get(
            "",
            SlotRequest {
                filename: name.to_string(),
                size: bytes.len() as u64,
                content_type: Some(mime.to_string()),
            },
        )
        .with_to(upload);
        let slot = match self.request(ask).await {
            Iq::Result {
                payload: Some(p), ..
            } => clawos_channels::xmpp::files::parse_slot(&p).expect("a slot"),
            other => panic!("no upload slot: {other:?}"),
        };
        let mut put = self
            .http
            .put(&slot.put)
            .header("content-type", mime)
            .body(bytes.to_vec());
        for (k, v) in &slot.headers {
            put = put.header(k.as_str(), v.as_str());
        }
        let resp = put.send().await.expect("PUT the file");
        assert!(resp.status().is_success(), "PUT: {}", resp.status());
        let m = Message::chat(Jid::from(Self::bare(bot)))
            .with_body(Lang::default(), slot.get.clone())
            .with_payload(Oob {
                url: slot.get,
                desc: None,
            });
        self.send(m.into()).await;
    }
}
