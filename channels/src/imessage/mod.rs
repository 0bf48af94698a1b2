//! The iMessage channel, through a BlueBubbles server on a Mac signed in to the bot's
//! Apple ID: direct chats and groups, files both ways, replies threaded with the Private
//! API.
//!
//! Addresses are `imessage:HANDLE@imessage` (a phone number or an Apple ID email); a
//! group's chat is its chat GUID (`iMessage;+;chat…`), a direct chat is
//! `iMessage;-;HANDLE`. New messages are asked for with `POST /api/v1/message/query`
//! (`after` the last one read, oldest first); the position (the newest creation time and
//! the GUIDs seen at it) is saved in the channel's folder once the batch before it is in
//! the log, so what was said while the channel was away is caught up. A message's GUID is
//! its external id. The bot's own messages, tapbacks (`associatedMessageType`) and group
//! events (`itemType`) are skipped.

pub mod api;
pub mod settings;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::media::MediaStore;
use crate::platform::cursor::Cursor;
use crate::platform::recent::RecentIds;
use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, LengthUnit, Outbox, Outgoing, RateLimit,
    TextFormat,
};
use crate::protocol::Inbound;
use api::Api;
pub use settings::{address_of, direct_chat, handle_of, is_group, ImessageSettings};

/// Longest text sent in one message.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Messages asked for per query.
const PAGE: u32 = 100;

/// The iMessage adapter.
pub struct ImessageAdapter {
    settings: ImessageSettings,
    password: Option<String>,
    media: Option<MediaStore>,
    sent: Arc<RecentIds>,
}

impl ImessageAdapter {
    /// An adapter for these settings and the server password.
    pub fn new(settings: ImessageSettings, password: Option<String>) -> Self {
        ImessageAdapter {
            settings,
            password,
            media: MediaStore::from_env(),
            sent: Arc::default(),
        }
    }
}

/// The sending half.
pub struct ImessageOutbox {
    api: Api,
    private_api: bool,
    sent: Arc<RecentIds>,
}

/// The chat GUID a message goes to: its chat, or the direct chat with its recipient.
fn chat_of(to: &str, chat: Option<&str>) -> Result<String, AdapterError> {
    match chat {
        Some(c) => Ok(c.to_string()),
        None => Ok(direct_chat(&handle_of(to).ok_or_else(|| {
            AdapterError::Refused(format!("`{to}` is not an iMessage address"))
        })?)),
    }
}

impl Outbox for ImessageOutbox {
    async fn typing(&self, to: &str, chat: Option<&str>, _: &str) -> Result<(), AdapterError> {
        self.api.typing(&chat_of(to, chat)?).await
    }

    async fn send(&self, message: &Outgoing) -> Result<Option<String>, AdapterError> {
        let chat = chat_of(&message.to, message.chat.as_deref())?;
        let guid = match &message.file {
            Some(file) => {
                let bytes = file.read()?;
                let mime = file
                    .attachment
                    .mime
                    .as_deref()
                    .unwrap_or("application/octet-stream");
                self.api
                    .send_attachment(&chat, &file.attachment.name, mime, &bytes, self.private_api)
                    .await?
            }
            None => {
                let reply = message.in_reply_to.as_deref().filter(|_| self.private_api);
                self.api
                    .send_text(&chat, &message.text, reply, self.private_api)
                    .await?
            }
        };
        if let Some(g) = &guid {
            self.sent.remember(g.clone());
        }
        Ok(guid)
    }
}

impl Adapter for ImessageAdapter {
    type Outbox = ImessageOutbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            threads: self.settings.private_api,
            // The typing indicator needs the Private API too.
            typing: self.settings.private_api,
            attachments_in: true,
            attachments_out: true,
            ..Capabilities::text(
                MAX_TEXT_CHARS,
                LengthUnit::Chars,
                TextFormat::Plain,
                RateLimit {
                    burst: self.settings.burst.unwrap_or(5),
                    every: Duration::from_millis(self.settings.pace_ms.unwrap_or(1000)),
                },
            )
        }
    }

    async fn connect(&mut self) -> Result<(ImessageOutbox, InboundStream), AdapterError> {
        let password = self.password.as_deref().ok_or_else(|| {
            AdapterError::Config(
                "an iMessage channel needs the BlueBubbles server password: set `secret_name`"
                    .into(),
            )
        })?;
        let api = Api::new(&self.settings, password)?;
        api.ping().await?;
        let poller = Poller {
            api: api.clone(),
            settings: self.settings.clone(),
            media: self.media.clone(),
            sent: self.sent.clone(),
            cursor: Cursor::from_env("position"),
            at: None,
            pending: None,
            queue: VecDeque::new(),
        };
        let stream = futures::stream::unfold(poller, |mut p| async move {
            let item = p.next().await;
            Some((item, p))
        })
        .boxed();
        let outbox = ImessageOutbox {
            api,
            private_api: self.settings.private_api,
            sent: self.sent.clone(),
        };
        Ok((outbox, stream))
    }
}

/// Where reading has got to: the newest creation time read, and the GUIDs read at it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Position {
    ts: i64,
    guids: Vec<String>,
}

/// The polling loop behind the inbound stream.
struct Poller {
    api: Api,
    settings: ImessageSettings,
    media: Option<MediaStore>,
    sent: Arc<RecentIds>,
    cursor: Cursor,
    at: Option<Position>,
    /// The position after the batch being handed out, saved once it is committed.
    pending: Option<Position>,
    queue: VecDeque<Inbound>,
}

impl Poller {
    async fn next(&mut self) -> Result<Inbound, AdapterError> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                return Ok(m);
            }
            if let Some(p) = self.pending.take() {
                if let Ok(text) = serde_json::to_string(&p) {
                    self.cursor.save(&text)?;
                }
                self.at = Some(p);
            }
            let at = match self.at.clone() {
                Some(a) => a,
                None => self.start().await?,
            };
            self.at = Some(at.clone());
            // From the last millisecond read again (more may have come in it).
            let batch = self.api.messages(Some(at.ts - 1), PAGE, false).await?;
            let full = batch.len() as u32 >= PAGE;
            let mut next = at.clone();
            for m in &batch {
                let (Some(guid), Some(ts)) = (m["guid"].as_str(), m["dateCreated"].as_i64()) else {
                    tracing::warn!("a message without guid or dateCreated; skipped");
                    continue;
                };
                if ts < at.ts || (ts == at.ts && at.guids.iter().any(|g| g == guid)) {
                    continue;
                }
                if ts > next.ts {
                    next = Position {
                        ts,
                        guids: Vec::new(),
                    };
                }
                if ts == next.ts {
                    next.guids.push(guid.to_string());
                }
                if let Some(inbound) = self.read(m, guid, ts).await {
                    self.queue.push_back(inbound);
                }
            }
            if next != at {
                self.pending = Some(next);
            }
            if self.queue.is_empty() && !full {
                let every = Duration::from_millis(self.settings.poll_ms.unwrap_or(1000));
                tokio::time::sleep(every).await;
            }
        }
    }

    /// The saved position, or (a first start answers nothing from before it) the newest
    /// message's.
    async fn start(&mut self) -> Result<Position, AdapterError> {
        if let Some(p) = self
            .cursor
            .load()
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            return Ok(p);
        }
        let newest = self.api.messages(None, 1, true).await?;
        let p = newest
            .first()
            .map(|m| Position {
                ts: m["dateCreated"].as_i64().unwrap_or(0),
                guids: m["guid"].as_str().map(String::from).into_iter().collect(),
            })
            .unwrap_or_default();
        if let Ok(text) = serde_json::to_string(&p) {
            self.cursor.save(&text)?;
        }
        Ok(p)
    }

    /// One message as an inbound message, if it is one a person wrote.
    async fn read(&self, m: &Value, guid: &str, ts: i64) -> Option<Inbound> {
        if m["isFromMe"].as_bool() == Some(true) {
            return None;
        }
        // Tapbacks (love, like, …; 2000-2005 or their names) and their removals.
        let assoc = &m["associatedMessageType"];
        if !(assoc.is_null() || assoc == 0 || assoc == "") {
            return None;
        }
        // Group renames, members added or removed.
        if m["itemType"].as_i64().is_some_and(|t| t != 0) {
            return None;
        }
        let handle = m["handle"]["address"].as_str().filter(|h| !h.is_empty());
        let Some(handle) = handle else {
            tracing::warn!(%guid, "a message without a sender handle; skipped");
            return None;
        };
        let chat = m["chats"][0]["guid"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| direct_chat(handle));
        let group = is_group(&chat);
        let body = m["text"].as_str().unwrap_or_default();
        // Attachments show as U+FFFC in the text.
        let body = body.replace('\u{FFFC}', "");
        let files: &[Value] = m["attachments"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if body.trim().is_empty() && files.is_empty() {
            return None;
        }
        let (text, named) = match &self.settings.name {
            Some(n) => crate::irc::addressing(body.trim(), n),
            None => (body.trim().to_string(), false),
        };
        let replied = ["threadOriginatorGuid", "replyToGuid"]
            .iter()
            .filter_map(|k| m[*k].as_str())
            .any(|g| self.sent.contains(g));
        let mut attachments = Vec::new();
        for f in files {
            if let Some(a) = self.attachment(f).await {
                attachments.push(a);
            }
        }
        Some(Inbound {
            external_id: guid.to_string(),
            sender: address_of(handle),
            chat: group.then_some(chat),
            text,
            attachments,
            sent_at_ms: ts,
            mentioned: !group || named || replied,
        })
    }

    /// A file, downloaded into the media store (recorded without its bytes above the cap
    /// or when it cannot be had).
    async fn attachment(&self, f: &Value) -> Option<clawos_events::Attachment> {
        let guid = f["guid"].as_str()?;
        let name = f["transferName"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(guid)
            .to_string();
        let mime = f["mimeType"].as_str().map(String::from);
        let size = f["totalBytes"].as_u64().unwrap_or(0);
        let unkept = clawos_events::Attachment {
            name: name.clone(),
            mime: mime.clone(),
            size,
            blake3: None,
            location: Some(guid.to_string()),
        };
        let Some(store) = &self.media else {
            return Some(unkept);
        };
        if let Err(e) = store.check_size(&name, size) {
            tracing::warn!(error = %e, "an attachment was not kept");
            return Some(unkept);
        }
        let kept = match self.api.download(guid, store.max_bytes()).await {
            Ok(bytes) => store
                .put(&name, mime.as_deref(), &bytes)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match kept {
            Ok(mut a) => {
                a.location = Some(guid.to_string());
                Some(a)
            }
            Err(why) => {
                tracing::warn!(%guid, %why, "an attachment was not kept");
                Some(unkept)
            }
        }
    }
}
