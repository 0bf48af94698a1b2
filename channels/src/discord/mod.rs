//! The Discord channel: a bot on the Gateway (WebSocket) and the REST API v10. Direct
//! messages and guild text channels, replies threaded with `message_reference`, replies
//! streamed by editing the message, files both ways.
//!
//! Addresses are `discord:USER_ID`; a guild channel is a group whose chat is the channel
//! id. In a guild channel the bot is addressed by a mention (`<@BOT_ID>`), its name at the
//! start, or a reply to one of its messages. What was said while the channel was away is
//! caught up by resuming the Gateway session: its id and the last sequence number handled
//! are the cursor, saved once the messages before it are in the log, and the Gateway
//! replays the dispatches after it.

pub mod api;
pub mod gateway;
pub mod settings;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::media::MediaStore;
use crate::platform::cursor::Cursor;
use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, LengthUnit, Outbox, Outgoing, RateLimit,
    TextFormat,
};
use crate::protocol::Inbound;
use api::{Api, Body};
use gateway::{Event, Session};
pub use settings::{address_of, user_of, DiscordSettings};

/// Longest message content (Discord's limit, in characters).
pub const MAX_CONTENT_CHARS: usize = 2000;

/// What the adapter and its outbox share.
struct Shared {
    api: Api,
    /// DM channel of each address, kept in the channel's folder.
    dms: Mutex<HashMap<String, String>>,
    dm_cursor: Cursor,
}

impl Shared {
    fn dm_of(&self, address: &str) -> Option<String> {
        let dms = self.dms.lock().unwrap_or_else(|p| p.into_inner());
        dms.get(address).cloned()
    }

    fn remember_dm(&self, address: &str, channel: &str) {
        let mut dms = self.dms.lock().unwrap_or_else(|p| p.into_inner());
        if dms.get(address).map(String::as_str) == Some(channel) {
            return;
        }
        dms.insert(address.to_string(), channel.to_string());
        if let Ok(text) = serde_json::to_string(&*dms) {
            if let Err(e) = self.dm_cursor.save(&text) {
                tracing::warn!(error = %e, "cannot save the DM channels");
            }
        }
    }
}

/// The Discord adapter.
pub struct DiscordAdapter {
    settings: DiscordSettings,
    token: Option<String>,
    media: Option<MediaStore>,
}

impl DiscordAdapter {
    /// An adapter for these settings and bot token.
    pub fn new(settings: DiscordSettings, secret: Option<String>) -> Self {
        DiscordAdapter {
            settings,
            token: secret.map(|s| s.trim().to_string()),
            media: MediaStore::from_env(),
        }
    }
}

/// The sending half.
pub struct DiscordOutbox {
    shared: Arc<Shared>,
}

impl DiscordOutbox {
    /// The channel a message goes to: its chat, or the DM channel with its recipient
    /// (opened when not known yet).
    async fn channel_for(&self, to: &str, chat: Option<&str>) -> Result<String, AdapterError> {
        if let Some(chat) = chat {
            return Ok(chat.to_string());
        }
        if let Some(c) = self.shared.dm_of(to) {
            return Ok(c);
        }
        let user = user_of(to)
            .ok_or_else(|| AdapterError::Refused(format!("`{to}` is not a Discord address")))?;
        let channel = self.shared.api.open_dm(user).await?;
        self.shared.remember_dm(to, &channel);
        Ok(channel)
    }
}

impl Outbox for DiscordOutbox {
    async fn typing(&self, to: &str, chat: Option<&str>, _: &str) -> Result<(), AdapterError> {
        let channel = self.channel_for(to, chat).await?;
        self.shared.api.typing(&channel).await
    }

    async fn send(&self, message: &Outgoing) -> Result<Option<String>, AdapterError> {
        let channel = self
            .channel_for(&message.to, message.chat.as_deref())
            .await?;
        let mut payload = json!({"content": message.text, "allowed_mentions": {"parse": []}});
        if let Some(id) = message
            .in_reply_to
            .as_deref()
            .filter(|id| id.bytes().all(|b| b.is_ascii_digit()) && !id.is_empty())
        {
            payload["message_reference"] = json!({"message_id": id, "fail_if_not_exists": false});
        }
        let body = match &message.file {
            Some(file) => Body::File {
                payload,
                name: file.attachment.name.clone(),
                mime: file
                    .attachment
                    .mime
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into()),
                bytes: file.read()?,
            },
            None => Body::Json(payload),
        };
        self.shared.api.post(&channel, body).await.map(Some)
    }

    async fn edit(&self, message_id: &str, message: &Outgoing) -> Result<(), AdapterError> {
        let channel = self
            .channel_for(&message.to, message.chat.as_deref())
            .await?;
        self.shared
            .api
            .edit(&channel, message_id, &message.text)
            .await
    }
}

impl Adapter for DiscordAdapter {
    type Outbox = DiscordOutbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            threads: true,
            edits: true,
            edit_interval: Duration::from_millis(1200),
            typing: true,
            attachments_in: true,
            attachments_out: true,
            ..Capabilities::text(
                MAX_CONTENT_CHARS,
                LengthUnit::Chars,
                TextFormat::Markdown,
                RateLimit {
                    burst: self.settings.burst.unwrap_or(5),
                    every: Duration::from_millis(self.settings.pace_ms.unwrap_or(1000)),
                },
            )
        }
    }

    async fn connect(&mut self) -> Result<(DiscordOutbox, InboundStream), AdapterError> {
        let token = self
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AdapterError::Config(
                    "a Discord channel needs its bot token: set `secret_name` to a vault secret"
                        .into(),
                )
            })?;
        let api = Api::new(&self.settings, token.clone())?;
        let (bot_id, bot_name) = api.me().await?;
        let cursor = Cursor::from_env("gateway_session");
        let saved: Option<Session> = cursor
            .load()
            .and_then(|s| serde_json::from_str(&s).ok())
            .filter(|s: &Session| s.bot_id == bot_id);
        let url = match &saved {
            Some(s) => s.resume_url.clone(),
            None => api.gateway_url().await?,
        };
        let ca = self.settings.tls_ca_file.as_deref();
        let (ws, interval, session, replayed) =
            match gateway::handshake(&url, &token, saved.clone(), ca).await {
                Ok(done) => done,
                Err((e, forget)) => {
                    if forget || saved.is_some() && matches!(e, AdapterError::Link(_)) {
                        // A resume URL that no longer answers: identify anew next time.
                        cursor.save("")?;
                    }
                    return Err(e);
                }
            };
        cursor.save(&serde_json::to_string(&session).unwrap_or_default())?;
        let (tx, rx) = mpsc::channel(256);
        // Heartbeats carry the last sequence received, replayed ones included.
        let last = replayed
            .iter()
            .filter_map(|e| match e {
                Event::Dispatch(seq, _, _) => Some(*seq),
                Event::Failed(..) => None,
            })
            .fold(session.seq, u64::max);
        tokio::spawn(gateway::pump(ws, interval, last, tx));
        let dm_cursor = Cursor::from_env("dm_channels");
        let dms = dm_cursor
            .load()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            api,
            dms: Mutex::new(dms),
            dm_cursor,
        });
        let reader = Reader {
            shared: shared.clone(),
            media: self.media.clone(),
            cursor,
            session,
            bot_name,
            replayed: replayed.into(),
            rx,
            pending: None,
        };
        let stream = futures::stream::unfold(reader, |mut r| async move {
            let item = r.next().await;
            Some((item, r))
        })
        .boxed();
        Ok((DiscordOutbox { shared }, stream))
    }
}

/// The inbound side: dispatches into messages, the cursor saved behind them.
struct Reader {
    shared: Arc<Shared>,
    media: Option<MediaStore>,
    cursor: Cursor,
    session: Session,
    bot_name: String,
    replayed: std::collections::VecDeque<Event>,
    rx: mpsc::Receiver<Event>,
    /// The sequence number of the message handed out last, saved once it is committed.
    pending: Option<u64>,
}

impl Reader {
    fn save(&mut self, seq: u64) -> Result<(), AdapterError> {
        if seq <= self.session.seq {
            return Ok(());
        }
        self.session.seq = seq;
        self.cursor
            .save(&serde_json::to_string(&self.session).unwrap_or_default())
    }

    /// The next message. The platform polls again only after the kernel committed the
    /// last one, so its sequence number is saved here.
    async fn next(&mut self) -> Result<Inbound, AdapterError> {
        if let Some(seq) = self.pending.take() {
            self.save(seq)?;
        }
        loop {
            let event = match self.replayed.pop_front() {
                Some(e) => e,
                None => self.rx.recv().await.unwrap_or_else(|| {
                    Event::Failed(AdapterError::Link("the Gateway link ended".into()), false)
                }),
            };
            match event {
                Event::Failed(e, forget) => {
                    if forget {
                        self.cursor.save("")?;
                    }
                    return Err(e);
                }
                Event::Dispatch(seq, t, d) => {
                    let message = if t == "MESSAGE_CREATE" {
                        self.message(&d).await
                    } else {
                        None
                    };
                    match message {
                        Some(m) => {
                            self.pending = Some(seq);
                            return Ok(m);
                        }
                        None => self.save(seq)?,
                    }
                }
            }
        }
    }

    /// A MESSAGE_CREATE as an inbound message (`None`: the bot's own, a system message,
    /// or not a message at all).
    async fn message(&mut self, d: &Value) -> Option<Inbound> {
        let id = d["id"].as_str()?;
        let channel = d["channel_id"].as_str()?;
        let author = d["author"]["id"].as_str()?;
        let bot_id = self.session.bot_id.clone();
        if author == bot_id || !matches!(d["type"].as_u64(), Some(0) | Some(19)) {
            return None;
        }
        let address = address_of(author);
        let direct = d.get("guild_id").is_none_or(Value::is_null);
        let content = d["content"].as_str().unwrap_or_default();
        let stripped = content
            .replace(&format!("<@{bot_id}>"), "")
            .replace(&format!("<@!{bot_id}>"), "");
        let (text, named) = crate::irc::addressing(stripped.trim(), &self.bot_name);
        let mentioned = direct
            || named
            || d["mentions"]
                .as_array()
                .is_some_and(|m| m.iter().any(|u| u["id"] == bot_id.as_str()))
            || d["referenced_message"]["author"]["id"] == bot_id.as_str();
        if direct {
            self.shared.remember_dm(&address, channel);
        }
        let attachments = self.attachments(d).await;
        Some(Inbound {
            external_id: id.to_string(),
            sender: address,
            chat: (!direct).then(|| channel.to_string()),
            text: text.trim().to_string(),
            attachments,
            sent_at_ms: settings::snowflake_ms(id),
            mentioned,
        })
    }

    /// Each `attachments[]` entry, kept in the media store (above the cap, or without a
    /// store, recorded without its bytes).
    async fn attachments(&self, d: &Value) -> Vec<clawos_events::Attachment> {
        let mut out = Vec::new();
        for a in d["attachments"].as_array().into_iter().flatten() {
            let Some(url) = a["url"].as_str() else {
                continue;
            };
            let name = a["filename"].as_str().unwrap_or("file").to_string();
            let mime = a["content_type"].as_str().map(String::from);
            let size = a["size"].as_u64().unwrap_or(0);
            let unkept = clawos_events::Attachment {
                name: name.clone(),
                mime: mime.clone(),
                size,
                blake3: None,
                location: Some(url.to_string()),
            };
            let Some(store) = &self.media else {
                out.push(unkept);
                continue;
            };
            if let Err(e) = store.check_size(&name, size) {
                tracing::warn!(error = %e, "an attachment was not kept");
                out.push(unkept);
                continue;
            }
            let kept = match self.shared.api.download(url, store.max_bytes()).await {
                Ok(bytes) => store
                    .put(&name, mime.as_deref(), &bytes)
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match kept {
                Ok(mut a) => {
                    a.location = Some(url.to_string());
                    out.push(a);
                }
                Err(why) => {
                    tracing::warn!(%url, %why, "an attachment was not kept");
                    out.push(unkept);
                }
            }
        }
        out
    }
}
