//! The Signal channel, through a `signal-cli` daemon in JSON-RPC mode over HTTP
//! (`signal-cli -a +NUMBER daemon --http 127.0.0.1:8080`): direct messages and groups,
//! mentions, replies quoted in groups, files both ways.
//!
//! Addresses are `signal:+NUMBER@signal` (or `signal:UUID@signal` for a sender whose
//! number is hidden); a group's chat is its base64 group id. Incoming messages are the
//! `receive` events of `GET /api/v1/events`; the id of the last one the Gateway committed
//! is kept in the channel's folder and sent back as `Last-Event-ID`, so what arrived while
//! the channel was away is caught up. A message's external id is `SOURCE:TIMESTAMP`,
//! which also makes a repeated event a duplicate. Receipts, typing, sync messages (what the
//! account's other devices sent), reactions and group updates are not messages and are
//! skipped. Received files are read from signal-cli's attachments folder into the media
//! store; files sent are written to a temporary file signal-cli reads, then removed.

pub mod api;
pub mod settings;

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::media::MediaStore;
use crate::platform::cursor::Cursor;
use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, LengthUnit, Outbox, Outgoing, RateLimit,
    TextFormat,
};
use crate::protocol::Inbound;
use api::Api;
pub use settings::{address_of, recipient_of, SignalSettings};

/// Longest text sent in one message (Signal shows longer ones as a "read more" file).
pub const MAX_TEXT_CHARS: usize = 2000;
/// External ids remembered to skip an event seen twice.
const SEEN: usize = 2048;

/// The Signal adapter.
pub struct SignalAdapter {
    settings: SignalSettings,
    media: Option<MediaStore>,
}

impl SignalAdapter {
    /// An adapter for these settings (signal-cli has no password: the secret is unused).
    pub fn new(settings: SignalSettings, _secret: Option<String>) -> Self {
        SignalAdapter {
            settings,
            media: MediaStore::from_env(),
        }
    }
}

/// The sending half.
pub struct SignalOutbox {
    api: Api,
}

/// A blob written where signal-cli can read it, removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// A file name safe to put in a folder (no separators, not empty, not `..`).
fn safe_name(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let n = n.trim_start_matches('.').to_string();
    if n.is_empty() {
        "file".into()
    } else {
        n
    }
}

impl SignalOutbox {
    fn temp_file(file: &crate::platform::OutgoingFile) -> Result<TempFile, AdapterError> {
        let bytes = file.read()?;
        let dir =
            std::env::temp_dir().join(format!("clawos-signal-{}", uuid::Uuid::now_v7().simple()));
        let fail = |e: std::io::Error| {
            AdapterError::Refused(format!(
                "cannot write {} for signal-cli: {e}",
                dir.display()
            ))
        };
        std::fs::create_dir_all(&dir).map_err(fail)?;
        let path = dir.join(safe_name(&file.attachment.name));
        let temp = TempFile(path.clone());
        std::fs::write(&path, bytes).map_err(fail)?;
        Ok(temp)
    }
}

impl Outbox for SignalOutbox {
    async fn send(&self, message: &Outgoing) -> Result<Option<String>, AdapterError> {
        let mut params = json!({"message": message.text});
        match &message.chat {
            Some(group) => params["groupId"] = json!(group),
            None => {
                let to = recipient_of(&message.to).ok_or_else(|| {
                    AdapterError::Refused(format!("`{}` is not a Signal address", message.to))
                })?;
                params["recipient"] = json!([to]);
            }
        }
        // A reply in a group quotes the message it answers (`SOURCE:TIMESTAMP`).
        if let Some((author, ts)) = message
            .in_reply_to
            .as_deref()
            .filter(|_| message.chat.is_some())
            .and_then(|r| r.rsplit_once(':'))
            .and_then(|(a, t)| Some((a, t.parse::<i64>().ok()?)))
        {
            params["quoteAuthor"] = json!(author);
            params["quoteTimestamp"] = json!(ts);
        }
        let temp = match &message.file {
            Some(file) => {
                let t = Self::temp_file(file)?;
                params["attachments"] = json!([t.0.to_string_lossy()]);
                Some(t)
            }
            None => None,
        };
        let result = self.api.call("send", params).await;
        drop(temp);
        let v = result?;
        Ok(v["timestamp"].as_i64().map(|t| t.to_string()))
    }

    async fn typing(&self, to: &str, chat: Option<&str>, _: &str) -> Result<(), AdapterError> {
        let params = match chat {
            Some(group) => json!({"groupId": group}),
            None => {
                let to = recipient_of(to).ok_or_else(|| {
                    AdapterError::Refused(format!("`{to}` is not a Signal address"))
                })?;
                json!({"recipient": [to]})
            }
        };
        self.api.call("sendTyping", params).await.map(|_| ())
    }
}

impl Adapter for SignalAdapter {
    type Outbox = SignalOutbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            threads: true,
            typing: true,
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

    async fn connect(&mut self) -> Result<(SignalOutbox, InboundStream), AdapterError> {
        let api = Api::new(crate::platform::http::client(None)?, &self.settings)?;
        api.call("version", json!({})).await?;
        // Asks for the account: a daemon that does not know it says so here.
        api.call("listGroups", json!({})).await?;
        let cursor = Cursor::from_env("last_event_id");
        let events = api.events(cursor.load().as_deref()).await?;
        let receiver = Receiver {
            events,
            settings: self.settings.clone(),
            media: self.media.clone(),
            cursor,
            pending: None,
            seen: VecDeque::new(),
            seen_set: HashSet::new(),
        };
        let stream = futures::stream::unfold(receiver, |mut r| async move {
            let item = r.next().await;
            Some((item, r))
        })
        .boxed();
        Ok((SignalOutbox { api }, stream))
    }
}

/// The event stream behind the inbound stream.
struct Receiver {
    events: api::Events,
    settings: SignalSettings,
    media: Option<MediaStore>,
    cursor: Cursor,
    /// The id of the event handed out last, saved once the kernel committed it.
    pending: Option<String>,
    seen: VecDeque<String>,
    seen_set: HashSet<String>,
}

impl Receiver {
    async fn next(&mut self) -> Result<Inbound, AdapterError> {
        if let Some(id) = self.pending.take() {
            self.cursor.save(&id)?;
        }
        loop {
            let event = self.events.next().await?;
            // A bad event is skipped for good (its id saved: every message before it is
            // committed), then reported, so a reconnect does not read it again.
            let cursor = self.cursor.clone();
            let bad = |why: String| {
                if let Some(id) = &event.id {
                    cursor.save(id)?;
                }
                Err(AdapterError::Protocol(why))
            };
            if event.oversize {
                return bad(format!(
                    "events: an event larger than {} bytes (skipped)",
                    api::MAX_EVENT_BYTES
                ));
            }
            let message = if event.name == "receive" || event.name == "message" {
                match self.read(&event.data) {
                    Ok(m) => m,
                    Err(AdapterError::Protocol(why)) => return bad(format!("{why} (skipped)")),
                    Err(e) => return Err(e),
                }
            } else {
                None
            };
            match (message, event.id) {
                (Some(m), id) => {
                    self.pending = id;
                    return Ok(m);
                }
                (None, Some(id)) => self.cursor.save(&id)?,
                (None, None) => {}
            }
        }
    }

    fn remember(&mut self, id: &str) -> bool {
        if !self.seen_set.insert(id.to_string()) {
            return false;
        }
        self.seen.push_back(id.to_string());
        while self.seen.len() > SEEN {
            if let Some(old) = self.seen.pop_front() {
                self.seen_set.remove(&old);
            }
        }
        true
    }

    /// One event's data: the message it carries, if any.
    fn read(&mut self, data: &str) -> Result<Option<Inbound>, AdapterError> {
        let v: Value = serde_json::from_str(data).map_err(|e| {
            AdapterError::Protocol(format!("events: an event that is not JSON ({e})"))
        })?;
        // The data is the notification's params; accept the whole notification too.
        let params = if v["method"] == "receive" {
            &v["params"]
        } else {
            &v
        };
        // A subscription wraps it in `result`.
        let params = if params["result"].is_object() {
            &params["result"]
        } else {
            params
        };
        let envelope = params
            .get("envelope")
            .filter(|e| e.is_object())
            .ok_or_else(|| {
                AdapterError::Protocol("events: a receive event without an envelope".into())
            })?;
        if params["account"]
            .as_str()
            .is_some_and(|a| a != self.settings.account)
        {
            return Ok(None);
        }
        let data = &envelope["dataMessage"];
        if !data.is_object() {
            // Receipts, typing, sync messages, calls, stories: not messages to answer.
            return Ok(None);
        }
        let source = ["sourceNumber", "source", "sourceUuid"]
            .iter()
            .find_map(|k| envelope[*k].as_str().filter(|s| !s.is_empty()));
        let Some(source) = source else {
            tracing::warn!("a Signal message without a sender; skipped");
            return Ok(None);
        };
        if source == self.settings.account {
            return Ok(None);
        }
        let ts = envelope["timestamp"]
            .as_i64()
            .or(data["timestamp"].as_i64())
            .unwrap_or(0);
        let external_id = format!("{source}:{ts}");
        let text = data["message"].as_str().unwrap_or_default();
        let files = data["attachments"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if text.is_empty() && files.is_empty() {
            // Reactions, group updates, deletions, expiry timer changes.
            return Ok(None);
        }
        if !self.remember(&external_id) {
            return Ok(None);
        }
        let group = data["groupInfo"]["groupId"].as_str().map(String::from);
        let (text, mentioned) = self.addressing(text, data, group.is_none());
        let attachments = files.iter().filter_map(|f| self.attachment(f)).collect();
        Ok(Some(Inbound {
            external_id,
            sender: address_of(source),
            chat: group,
            text,
            attachments,
            sent_at_ms: ts,
            mentioned,
        }))
    }

    /// The text with mentions written out (`@name`), a leading mention of the bot or its
    /// name removed, and whether the message addresses the bot.
    fn addressing(&self, text: &str, data: &Value, direct: bool) -> (String, bool) {
        let me = self.settings.account.as_str();
        let mut named_me = false;
        // Mentions replace one U+FFFC each, in order.
        let mut mentions: Vec<&Value> = data["mentions"].as_array().into_iter().flatten().collect();
        mentions.sort_by_key(|m| m["start"].as_i64().unwrap_or(0));
        let mut out = String::new();
        let mut it = mentions.iter();
        for c in text.chars() {
            if c != '\u{FFFC}' {
                out.push(c);
                continue;
            }
            let Some(m) = it.next() else { continue };
            let is_me = m["number"] == me;
            named_me |= is_me;
            let name = if is_me {
                self.settings.name.as_deref().unwrap_or(me)
            } else {
                m["name"]
                    .as_str()
                    .or(m["number"].as_str())
                    .unwrap_or("someone")
            };
            out.push('@');
            out.push_str(name);
        }
        let quoted_me = data["quote"]["authorNumber"] == me || data["quote"]["author"] == me;
        let mut text = out;
        for name in [self.settings.name.as_deref(), Some(me)]
            .into_iter()
            .flatten()
        {
            let (rest, named) = crate::irc::addressing(text.trim_start_matches('@'), name);
            if named {
                named_me = true;
                if rest.len() < text.trim_start_matches('@').len() {
                    text = rest;
                }
            }
        }
        (text, direct || named_me || quoted_me)
    }

    /// A received file, read from signal-cli's folder into the media store (recorded
    /// without its bytes above the cap or when it cannot be read).
    fn attachment(&self, f: &Value) -> Option<clawos_events::Attachment> {
        let id = f["id"].as_str()?;
        let name = f["filename"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(id)
            .to_string();
        let mime = f["contentType"].as_str().map(String::from);
        let size = f["size"].as_u64().unwrap_or(0);
        let unkept = clawos_events::Attachment {
            name: name.clone(),
            mime: mime.clone(),
            size,
            blake3: None,
            location: Some(id.to_string()),
        };
        if id.contains(['/', '\\']) || id.starts_with('.') {
            tracing::warn!(%id, "an attachment id that is not a file name; not read");
            return Some(unkept);
        }
        let Some(store) = &self.media else {
            return Some(unkept);
        };
        if let Err(e) = store.check_size(&name, size) {
            tracing::warn!(error = %e, "an attachment was not kept");
            return Some(unkept);
        }
        let path = self.settings.attachments_dir().join(id);
        let kept = std::fs::read(&path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|bytes| {
                store
                    .check_size(&name, bytes.len() as u64)
                    .map_err(|e| e.to_string())?;
                store
                    .put(&name, mime.as_deref(), &bytes)
                    .map_err(|e| e.to_string())
            });
        match kept {
            Ok(mut a) => {
                a.location = Some(id.to_string());
                Some(a)
            }
            Err(why) => {
                tracing::warn!(%why, "an attachment was not kept");
                Some(unkept)
            }
        }
    }
}
