//! The Telegram channel: a bot on the Bot API, in private chats and groups, files both
//! ways, replies threaded on the message they answer and streamed by edits.
//!
//! Addresses are `telegram:USERID@telegram` (a user's numeric id, which never changes;
//! usernames do); a group or supergroup is a chat whose id is the group's (`-100…`).
//! Updates come by long polling `getUpdates`; the offset after the last update handed
//! out is saved in the channel's folder once the kernel has it, so what was said while the
//! channel was away (Telegram keeps it 24 hours) is caught up. In a group the bot is
//! addressed by `@username`, a reply to one of its messages, or a `/command@username`.

pub mod api;
pub mod html;
pub mod settings;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::media::MediaStore;
use crate::platform::cursor::Cursor;
use crate::platform::format::render;
use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, LengthUnit, Outbox, Outgoing, RateLimit,
    TextFormat,
};
use crate::protocol::Inbound;
use api::{Api, Body};
pub use settings::{address_of, user_of, TelegramSettings};

/// Longest message text: Telegram's 4,096 (counted in UTF-16 units after the markup is
/// parsed), with room left for characters outside the Basic Multilingual Plane.
pub const MAX_TEXT_CHARS: usize = 4000;

/// The bot, as `getMe` names it.
struct Bot {
    api: Api,
    id: i64,
    username: String,
}

/// The Telegram adapter.
pub struct TelegramAdapter {
    settings: TelegramSettings,
    token: Option<String>,
    media: Option<MediaStore>,
}

impl TelegramAdapter {
    /// An adapter for these settings and bot token.
    pub fn new(settings: TelegramSettings, secret: Option<String>) -> Self {
        TelegramAdapter {
            settings,
            token: secret.map(|s| s.trim().to_string()),
            media: MediaStore::from_env(),
        }
    }
}

/// The sending half.
pub struct TelegramOutbox {
    bot: Arc<Bot>,
}

/// The chat a message goes to: its group, or the private chat with its recipient (whose
/// id is the user's).
fn chat_of(to: &str, chat: Option<&str>) -> Result<i64, AdapterError> {
    match chat {
        Some(c) => c
            .parse()
            .map_err(|_| AdapterError::Refused(format!("`{c}` is not a Telegram chat id"))),
        None => user_of(to)
            .ok_or_else(|| AdapterError::Refused(format!("`{to}` is not a Telegram address"))),
    }
}

/// `chat/message` ids as the platform keeps them.
fn split_id(id: &str) -> Option<(i64, i64)> {
    let (c, m) = id.split_once('/')?;
    Some((c.parse().ok()?, m.parse().ok()?))
}

fn cannot_parse(e: &AdapterError) -> bool {
    matches!(e, AdapterError::Refused(w) if w.contains("can't parse entities"))
}

impl Outbox for TelegramOutbox {
    async fn send(&self, message: &Outgoing) -> Result<Option<String>, AdapterError> {
        let chat = chat_of(&message.to, message.chat.as_deref())?;
        let reply = message
            .in_reply_to
            .as_deref()
            .and_then(split_id)
            .filter(|(c, _)| *c == chat)
            .map(|(_, m)| json!({"message_id": m, "allow_sending_without_reply": true}));
        let sent = match &message.file {
            Some(file) => {
                // A document keeps the file's name and bytes (sendPhoto would recompress).
                let mut fields = vec![("chat_id".to_string(), chat.to_string())];
                if let Some(r) = &reply {
                    fields.push(("reply_parameters".into(), r.to_string()));
                }
                let body = Body::File {
                    fields,
                    field: "document".into(),
                    name: file.attachment.name.clone(),
                    mime: file
                        .attachment
                        .mime
                        .clone()
                        .unwrap_or_else(|| "application/octet-stream".into()),
                    bytes: file.read()?,
                };
                self.bot
                    .api
                    .call_within("sendDocument", Some(body), Duration::from_secs(120))
                    .await?
            }
            None => {
                let mut body = json!({"chat_id": chat, "text": html::render(&message.text),
                                      "parse_mode": "HTML"});
                if let Some(r) = &reply {
                    body["reply_parameters"] = r.clone();
                }
                match self
                    .bot
                    .api
                    .call("sendMessage", Some(Body::Json(body.clone())))
                    .await
                {
                    Err(e) if cannot_parse(&e) => {
                        tracing::warn!(error = %e, "Telegram refused the HTML; sent as plain text");
                        body["text"] = json!(render(&message.text, TextFormat::Plain));
                        body.as_object_mut().map(|o| o.remove("parse_mode"));
                        self.bot
                            .api
                            .call("sendMessage", Some(Body::Json(body)))
                            .await?
                    }
                    other => other?,
                }
            }
        };
        Ok(sent["message_id"].as_i64().map(|m| format!("{chat}/{m}")))
    }

    async fn typing(&self, to: &str, chat: Option<&str>, _: &str) -> Result<(), AdapterError> {
        let chat = chat_of(to, chat)?;
        let body = json!({"chat_id": chat, "action": "typing"});
        self.bot
            .api
            .call("sendChatAction", Some(Body::Json(body)))
            .await
            .map(|_| ())
    }

    async fn edit(&self, message_id: &str, message: &Outgoing) -> Result<(), AdapterError> {
        let (chat, id) = split_id(message_id).ok_or_else(|| {
            AdapterError::Refused(format!("`{message_id}` is not a Telegram message id"))
        })?;
        let mut body = json!({"chat_id": chat, "message_id": id,
                              "text": html::render(&message.text), "parse_mode": "HTML"});
        let mut r = self
            .bot
            .api
            .call("editMessageText", Some(Body::Json(body.clone())))
            .await;
        if matches!(&r, Err(e) if cannot_parse(e)) {
            body["text"] = json!(render(&message.text, TextFormat::Plain));
            body.as_object_mut().map(|o| o.remove("parse_mode"));
            r = self
                .bot
                .api
                .call("editMessageText", Some(Body::Json(body)))
                .await;
        }
        match r {
            Ok(_) => Ok(()),
            // The same text again (the final delivery of a reply shown whole): done.
            Err(AdapterError::Refused(w)) if w.contains("message is not modified") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Adapter for TelegramAdapter {
    type Outbox = TelegramOutbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            threads: true,
            edits: true,
            edit_interval: Duration::from_secs(1),
            typing: true,
            attachments_in: true,
            attachments_out: true,
            ..Capabilities::text(
                MAX_TEXT_CHARS,
                LengthUnit::Chars,
                // Rendered to Telegram's HTML by the outbox (only the tags it shows).
                TextFormat::Markdown,
                RateLimit {
                    burst: self.settings.burst.unwrap_or(3),
                    every: Duration::from_millis(self.settings.pace_ms.unwrap_or(1000)),
                },
            )
        }
    }

    async fn connect(&mut self) -> Result<(TelegramOutbox, InboundStream), AdapterError> {
        let token = self
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AdapterError::Config(
                    "a Telegram channel needs its bot token: set `secret_name` and store the \
                 token from @BotFather in the vault"
                        .into(),
                )
            })?;
        if !settings::token_shape_ok(&token) {
            return Err(AdapterError::AuthRefused(
                "the secret is not a bot token (`123456:ABC…`); copy it again from @BotFather"
                    .into(),
            ));
        }
        let http = crate::platform::http::client(self.settings.tls_ca_file.as_deref())?;
        let api = Api::new(http, &self.settings, token);
        let me = api.call("getMe", None).await?;
        let (Some(id), Some(username)) = (me["id"].as_i64(), me["username"].as_str()) else {
            return Err(AdapterError::Protocol(
                "getMe: the answer has no id or username".into(),
            ));
        };
        let bot = Arc::new(Bot {
            api,
            id,
            username: username.to_string(),
        });
        let cursor = Cursor::from_env("offset");
        let offset = match cursor.load().and_then(|s| s.parse().ok()) {
            Some(o) => Some(o),
            // A first start answers nothing from before it: skip what is queued.
            None => skip_history(&bot.api, &cursor).await?,
        };
        tracing::info!(bot = %bot.username, ?offset, "connected to Telegram");
        let poll = Poll {
            bot: bot.clone(),
            media: self.media.clone(),
            cursor,
            offset,
            pending: None,
            queue: VecDeque::new(),
        };
        let stream = futures::stream::unfold(poll, |mut p| async move {
            let item = p.next().await;
            Some((item, p))
        })
        .boxed();
        Ok((TelegramOutbox { bot }, stream))
    }
}

/// The offset after the last queued update (`offset=-1` returns only that one), saved.
async fn skip_history(api: &Api, cursor: &Cursor) -> Result<Option<i64>, AdapterError> {
    let last = api
        .call(
            "getUpdates",
            Some(Body::Json(json!({"offset": -1, "timeout": 0}))),
        )
        .await?;
    let next = last
        .as_array()
        .and_then(|a| a.last())
        .and_then(|u| u["update_id"].as_i64())
        .map(|id| id + 1);
    if let Some(n) = next {
        cursor.save(&n.to_string())?;
    }
    Ok(next)
}

/// The `getUpdates` loop behind the inbound stream.
struct Poll {
    bot: Arc<Bot>,
    media: Option<MediaStore>,
    cursor: Cursor,
    offset: Option<i64>,
    /// The offset after the batch being handed out, saved once the batch is committed.
    pending: Option<i64>,
    queue: VecDeque<Inbound>,
}

impl Poll {
    /// The next inbound message. The platform polls again only after the kernel committed
    /// the last one, so the offset after a batch is saved (and sent, which confirms the
    /// batch to Telegram) once its queue ran dry.
    async fn next(&mut self) -> Result<Inbound, AdapterError> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                return Ok(m);
            }
            if let Some(o) = self.pending.take() {
                self.cursor.save(&o.to_string())?;
                self.offset = Some(o);
            }
            let mut params = json!({"timeout": api::POLL_TIMEOUT.as_secs(),
                                    "allowed_updates": ["message"]});
            if let Some(o) = self.offset {
                params["offset"] = json!(o);
            }
            let result = self
                .bot
                .api
                .call_within(
                    "getUpdates",
                    Some(Body::Json(params)),
                    api::POLL_TIMEOUT + Duration::from_secs(15),
                )
                .await?;
            let updates = result.as_array().ok_or_else(|| {
                AdapterError::Protocol("getUpdates: the result is not a list of updates".into())
            })?;
            let mut last = None;
            for u in updates {
                let id = u["update_id"].as_i64().ok_or_else(|| {
                    AdapterError::Protocol("getUpdates: an update without an update_id".into())
                })?;
                last = last.max(Some(id));
                match &u["message"] {
                    Value::Object(_) => {
                        if let Some(m) = self.read_message(&u["message"]).await {
                            self.queue.push_back(m);
                        }
                    }
                    Value::Null => tracing::debug!(update = id, "an update of another kind"),
                    _ => tracing::warn!(update = id, "a malformed update skipped"),
                }
            }
            if let Some(id) = last {
                self.pending = Some(id + 1);
            }
        }
    }

    /// A message as an inbound message (`None`: not one for the agent, or malformed).
    async fn read_message(&self, m: &Value) -> Option<Inbound> {
        let from = &m["from"];
        let (Some(sender), Some(chat), Some(message_id)) = (
            from["id"].as_i64(),
            m["chat"]["id"].as_i64(),
            m["message_id"].as_i64(),
        ) else {
            tracing::warn!("a message without a sender, chat or id skipped");
            return None;
        };
        if from["is_bot"].as_bool() == Some(true) || sender == self.bot.id {
            return None;
        }
        let direct = m["chat"]["type"].as_str() == Some("private");
        let (raw, entities) = match m["text"].as_str() {
            Some(t) => (t, &m["entities"]),
            None => (
                m["caption"].as_str().unwrap_or_default(),
                &m["caption_entities"],
            ),
        };
        let mentioned = direct
            || self.names_bot(raw, entities)
            || m["reply_to_message"]["from"]["id"].as_i64() == Some(self.bot.id);
        let text = self.strip_mention(raw);
        let attachments = self.attachments(m).await;
        if text.is_empty() && attachments.is_empty() {
            return None;
        }
        Some(Inbound {
            external_id: format!("{chat}/{message_id}"),
            sender: address_of(sender),
            chat: (!direct).then(|| chat.to_string()),
            text,
            attachments,
            sent_at_ms: m["date"].as_i64().unwrap_or(0).saturating_mul(1000),
            mentioned,
        })
    }

    /// Whether an entity names the bot: `@username`, a `text_mention` of it, or a
    /// `/command@username`.
    fn names_bot(&self, text: &str, entities: &Value) -> bool {
        let units: Vec<u16> = text.encode_utf16().collect();
        let at = format!("@{}", self.bot.username).to_lowercase();
        entities.as_array().into_iter().flatten().any(|e| {
            let part = || {
                let start = e["offset"].as_u64()? as usize;
                let end = start.checked_add(e["length"].as_u64()? as usize)?;
                Some(String::from_utf16_lossy(units.get(start..end)?).to_lowercase())
            };
            match e["type"].as_str() {
                Some("mention") => part().is_some_and(|p| p == at),
                Some("bot_command") => part().is_some_and(|p| p.ends_with(&at)),
                Some("text_mention") => e["user"]["id"].as_i64() == Some(self.bot.id),
                _ => false,
            }
        })
    }

    /// The text without a leading `@username` (and its `:` or `,`).
    fn strip_mention(&self, text: &str) -> String {
        let at = format!("@{}", self.bot.username);
        let trimmed = text.trim_start();
        match trimmed.get(..at.len()) {
            Some(head) if head.eq_ignore_ascii_case(&at) => trimmed[at.len()..]
                .trim_start_matches([':', ','])
                .trim()
                .to_string(),
            _ => text.trim().to_string(),
        }
    }

    /// The message's file (document, photo — its largest size —, audio, video, voice,
    /// animation), kept in the media store (above the cap, or without a store, recorded
    /// without its bytes).
    async fn attachments(&self, m: &Value) -> Vec<clawos_events::Attachment> {
        let (file, name, mime) = if let Some(photo) = m["photo"].as_array() {
            let Some(big) = photo.last() else {
                return Vec::new();
            };
            let name = format!(
                "photo_{}.jpg",
                big["file_unique_id"].as_str().unwrap_or("0")
            );
            (big, name, Some("image/jpeg".to_string()))
        } else if let Some(kind) = ["document", "video", "audio", "voice", "animation"]
            .into_iter()
            .find(|k| m[*k].is_object())
        {
            let f = &m[kind];
            let name = f["file_name"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| {
                    format!("{kind}_{}", f["file_unique_id"].as_str().unwrap_or("0"))
                });
            (f, name, f["mime_type"].as_str().map(String::from))
        } else {
            return Vec::new();
        };
        let Some(file_id) = file["file_id"].as_str() else {
            return Vec::new();
        };
        let size = file["file_size"].as_u64().unwrap_or(0);
        let unkept = clawos_events::Attachment {
            name: name.clone(),
            mime: mime.clone(),
            size,
            blake3: None,
            location: Some(format!("telegram-file:{file_id}")),
        };
        let Some(store) = &self.media else {
            return vec![unkept];
        };
        if let Err(e) = store.check_size(&name, size) {
            tracing::warn!(error = %e, "an attachment was not kept");
            return vec![unkept];
        }
        let kept = async {
            let f = self
                .bot
                .api
                .call("getFile", Some(Body::Json(json!({"file_id": file_id}))))
                .await?;
            let path = f["file_path"].as_str().ok_or_else(|| {
                AdapterError::Protocol("getFile: no file_path in the answer".into())
            })?;
            let bytes = self.bot.api.download(path, store.max_bytes()).await?;
            store
                .put(&name, mime.as_deref(), &bytes)
                .map_err(|e| AdapterError::Refused(e.to_string()))
        }
        .await;
        match kept {
            Ok(mut a) => {
                a.location = unkept.location;
                vec![a]
            }
            Err(why) => {
                tracing::warn!(%name, %why, "an attachment was not kept");
                vec![unkept]
            }
        }
    }
}
