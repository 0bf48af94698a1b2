//! The Slack channel: a Slack app in Socket Mode (events in over a WebSocket, no public
//! URL needed), answering over the Web API with its bot token; direct messages and
//! channels, files both ways, replies in channels threaded on the message they answer and
//! streamed by `chat.update`.
//!
//! Addresses are `slack:USERID@slack`; a channel is a chat whose id is Slack's (`C…`,
//! `G…`). In a channel the bot is addressed by a mention (`<@BOTID>`: the `app_mention`
//! event, or a `message` naming it); other channel messages it can read are context.
//! Catch-up: an envelope is acknowledged only once the Gateway committed its message, so
//! what Slack sent while the process was away is sent again on the next connection; the
//! Gateway deduplicates by `channel/ts`.

pub mod api;
pub mod mrkdwn;
pub mod settings;
pub mod socket;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::media::MediaStore;
use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, LengthUnit, Outbox, Outgoing, RateLimit,
    TextFormat,
};
use crate::protocol::Inbound;
use api::Api;
pub use settings::{address_of, user_of, SlackSettings};

/// Longest message text sent at once: Slack truncates at 40,000 characters but advises
/// keeping messages to about 4,000.
pub const MAX_TEXT_CHARS: usize = 4000;

/// The bot, as `auth.test` names it.
struct Bot {
    api: Api,
    user_id: String,
    bot_id: Option<String>,
    /// The direct-message channel with each user, from `conversations.open`.
    dms: Mutex<HashMap<String, String>>,
}

/// The Slack adapter.
pub struct SlackAdapter {
    settings: SlackSettings,
    secret: Option<String>,
    media: Option<MediaStore>,
}

impl SlackAdapter {
    /// An adapter for these settings and secret (the app-level and bot tokens,
    /// `xapp-…:xoxb-…`).
    pub fn new(settings: SlackSettings, secret: Option<String>) -> Self {
        SlackAdapter {
            settings,
            secret,
            media: MediaStore::from_env(),
        }
    }
}

/// The sending half.
pub struct SlackOutbox {
    bot: Arc<Bot>,
}

/// `channel/ts`, with `@thread_ts` when the message is inside a thread: Slack's id of a
/// message as the platform keeps it.
fn message_id(channel: &str, ts: &str, thread: Option<&str>) -> String {
    match thread.filter(|t| *t != ts) {
        Some(t) => format!("{channel}/{ts}@{t}"),
        None => format!("{channel}/{ts}"),
    }
}

/// The parts of a [`message_id`]: channel, ts and the thread's root, if any.
fn split_id(id: &str) -> Option<(&str, &str, Option<&str>)> {
    let (channel, rest) = id.split_once('/')?;
    let (ts, thread) = match rest.split_once('@') {
        Some((ts, t)) => (ts, Some(t)),
        None => (rest, None),
    };
    (!channel.is_empty() && !ts.is_empty()).then_some((channel, ts, thread))
}

impl SlackOutbox {
    /// The channel a message goes to: its chat, or the direct-message channel with its
    /// recipient (opened once).
    async fn channel_of(&self, message: &Outgoing) -> Result<String, AdapterError> {
        if let Some(c) = &message.chat {
            return Ok(c.clone());
        }
        let user = user_of(&message.to).ok_or_else(|| {
            AdapterError::Refused(format!("`{}` is not a Slack address", message.to))
        })?;
        let mut dms = self.bot.dms.lock().await;
        if let Some(c) = dms.get(user) {
            return Ok(c.clone());
        }
        let v = self
            .bot
            .api
            .call("conversations.open", Some(json!({ "users": user })))
            .await?;
        let channel = v["channel"]["id"].as_str().ok_or_else(|| {
            AdapterError::Protocol("conversations.open: the answer has no channel id".into())
        })?;
        dms.insert(user.to_string(), channel.to_string());
        Ok(channel.to_string())
    }

    /// The thread a reply goes in: in a channel, the thread of the message it answers
    /// (started on that message); in a direct message only an existing thread.
    fn thread_of(message: &Outgoing, channel: &str) -> Option<String> {
        let (c, ts, root) = split_id(message.in_reply_to.as_deref()?)?;
        if c != channel {
            return None;
        }
        match (root, message.chat.is_some()) {
            (Some(r), _) => Some(r.to_string()),
            (None, true) => Some(ts.to_string()),
            (None, false) => None,
        }
    }
}

impl Outbox for SlackOutbox {
    async fn send(&self, message: &Outgoing) -> Result<Option<String>, AdapterError> {
        let channel = self.channel_of(message).await?;
        let thread = Self::thread_of(message, &channel);
        if let Some(file) = &message.file {
            let bytes = file.read()?;
            let name = &file.attachment.name;
            let url = self
                .bot
                .api
                .call(
                    "files.getUploadURLExternal",
                    Some(json!({"filename": name, "length": bytes.len()})),
                )
                .await?;
            let (Some(upload), Some(file_id)) =
                (url["upload_url"].as_str(), url["file_id"].as_str())
            else {
                return Err(AdapterError::Protocol(
                    "files.getUploadURLExternal: no upload_url or file_id".into(),
                ));
            };
            self.bot.api.upload(upload, name, bytes).await?;
            let mut body = json!({"files": [{"id": file_id, "title": name}],
                                  "channel_id": channel});
            if let Some(t) = &thread {
                body["thread_ts"] = json!(t);
            }
            self.bot
                .api
                .call("files.completeUploadExternal", Some(body))
                .await?;
            return Ok(None);
        }
        let mut body = json!({"channel": channel, "text": mrkdwn::render(&message.text),
                              "unfurl_links": false});
        if let Some(t) = &thread {
            body["thread_ts"] = json!(t);
        }
        let sent = self.bot.api.call("chat.postMessage", Some(body)).await?;
        let channel = sent["channel"].as_str().unwrap_or(&channel);
        Ok(sent["ts"]
            .as_str()
            .map(|ts| message_id(channel, ts, thread.as_deref())))
    }

    async fn edit(&self, id: &str, message: &Outgoing) -> Result<(), AdapterError> {
        let (channel, ts, _) = split_id(id)
            .ok_or_else(|| AdapterError::Refused(format!("`{id}` is not a Slack message id")))?;
        let body = json!({"channel": channel, "ts": ts, "text": mrkdwn::render(&message.text)});
        self.bot.api.call("chat.update", Some(body)).await?;
        Ok(())
    }
}

impl Adapter for SlackAdapter {
    type Outbox = SlackOutbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            threads: true,
            edits: true,
            edit_interval: Duration::from_secs(1),
            attachments_in: true,
            attachments_out: true,
            ..Capabilities::text(
                MAX_TEXT_CHARS,
                LengthUnit::Chars,
                // Rendered to mrkdwn by the outbox.
                TextFormat::Markdown,
                RateLimit {
                    burst: self.settings.burst.unwrap_or(3),
                    every: Duration::from_millis(self.settings.pace_ms.unwrap_or(1000)),
                },
            )
        }
    }

    async fn connect(&mut self) -> Result<(SlackOutbox, InboundStream), AdapterError> {
        let secret = self.secret.as_deref().unwrap_or("").trim();
        if secret.is_empty() {
            return Err(AdapterError::Config(
                "a Slack channel needs its app's tokens: set `secret_name` and store \
                 `xapp-…:xoxb-…` (app-level token, bot token) in the vault"
                    .into(),
            ));
        }
        let tokens = settings::tokens_of(secret).map_err(AdapterError::AuthRefused)?;
        let http = crate::platform::http::client(self.settings.tls_ca_file.as_deref())?;
        let api = Api::new(http.clone(), &self.settings, tokens.bot.clone());
        let app = Api::new(http, &self.settings, tokens.app.clone());
        let me = api.call("auth.test", None).await?;
        let Some(user_id) = me["user_id"].as_str() else {
            return Err(AdapterError::Protocol(
                "auth.test: the answer has no user_id".into(),
            ));
        };
        let bot = Arc::new(Bot {
            api,
            user_id: user_id.to_string(),
            bot_id: me["bot_id"].as_str().map(String::from),
            dms: Mutex::new(HashMap::new()),
        });
        let ca = self.settings.tls_ca_file.clone();
        let ws = socket::connect(&app, ca.as_deref()).await?;
        tracing::info!(bot = %bot.user_id, team = ?me["team"].as_str(), "connected to Slack");
        let link = Link {
            bot: bot.clone(),
            app,
            ca,
            ws,
            media: self.media.clone(),
            to_ack: None,
            queue: VecDeque::new(),
        };
        let stream = futures::stream::unfold(link, |mut l| async move {
            let item = l.next().await;
            Some((item, l))
        })
        .boxed();
        Ok((SlackOutbox { bot }, stream))
    }
}

/// The Socket Mode connection behind the inbound stream.
struct Link {
    bot: Arc<Bot>,
    app: Api,
    ca: Option<PathBuf>,
    ws: socket::Ws,
    media: Option<MediaStore>,
    /// The envelope of the message handed out last, acknowledged once it is committed.
    to_ack: Option<String>,
    queue: VecDeque<Inbound>,
}

impl Link {
    /// The next inbound message. The platform polls again only after the kernel committed
    /// the last one, so its envelope is acknowledged here: an envelope never acknowledged
    /// (the process died) is sent again by Slack on the next connection.
    async fn next(&mut self) -> Result<Inbound, AdapterError> {
        loop {
            if let Some(id) = self.to_ack.take() {
                socket::ack(&mut self.ws, &id).await?;
            }
            if let Some(m) = self.queue.pop_front() {
                return Ok(m);
            }
            let v = socket::read(&mut self.ws).await?;
            match v["type"].as_str() {
                Some("hello") => {}
                Some("disconnect") if v["reason"] == "refresh_requested" => {
                    tracing::info!("Slack asked for a fresh Socket Mode connection");
                    self.ws = socket::connect(&self.app, self.ca.as_deref()).await?;
                }
                Some("disconnect") => return Err(socket::disconnected(&v)),
                Some("events_api") => {
                    let Some(id) = v["envelope_id"].as_str().map(String::from) else {
                        return Err(AdapterError::Protocol(
                            "Socket Mode: an events_api envelope without an envelope_id".into(),
                        ));
                    };
                    if v["retry_attempt"].as_u64().unwrap_or(0) > 0 {
                        tracing::info!(envelope = %id, reason = ?v["retry_reason"].as_str(),
                            "an envelope sent again");
                    }
                    match self.read_event(&v["payload"]["event"]).await {
                        Some(m) => {
                            self.to_ack = Some(id);
                            return Ok(m);
                        }
                        None => socket::ack(&mut self.ws, &id).await?,
                    }
                }
                other => {
                    tracing::debug!(kind = ?other, "a Socket Mode message of another kind");
                    if let Some(id) = v["envelope_id"].as_str() {
                        socket::ack(&mut self.ws, id).await?;
                    }
                }
            }
        }
    }

    /// An event as an inbound message (`None`: not one for the agent, or malformed).
    async fn read_event(&self, e: &Value) -> Option<Inbound> {
        let kind = e["type"].as_str()?;
        if kind != "message" && kind != "app_mention" {
            tracing::debug!(%kind, "an event of another kind");
            return None;
        }
        // Edits, deletions, joins and the like are not someone saying something.
        match e["subtype"].as_str() {
            None | Some("file_share") | Some("thread_broadcast") => {}
            Some(_) => return None,
        }
        if !e["bot_id"].is_null() || e["user"].as_str() == Some(self.bot.user_id.as_str()) {
            return None;
        }
        if self.bot.bot_id.is_some() && e["bot_id"].as_str() == self.bot.bot_id.as_deref() {
            return None;
        }
        let (Some(user), Some(channel), Some(ts)) =
            (e["user"].as_str(), e["channel"].as_str(), e["ts"].as_str())
        else {
            tracing::warn!("a message without a user, channel or ts skipped");
            return None;
        };
        let direct = kind == "message" && e["channel_type"].as_str() == Some("im");
        let raw = e["text"].as_str().unwrap_or_default();
        let mention = format!("<@{}>", self.bot.user_id);
        let mentioned = direct || kind == "app_mention" || raw.contains(&mention);
        let stripped = raw.replace(&mention, "");
        let text = plain_text(stripped.trim_start_matches([':', ',', ' ']));
        let attachments = self.attachments(e).await;
        if text.is_empty() && attachments.is_empty() {
            return None;
        }
        let sent_at_ms = ts.parse::<f64>().map(|t| (t * 1000.0) as i64).unwrap_or(0);
        Some(Inbound {
            external_id: message_id(channel, ts, e["thread_ts"].as_str()),
            sender: address_of(user),
            chat: (!direct).then(|| channel.to_string()),
            text,
            attachments,
            sent_at_ms,
            mentioned,
        })
    }

    /// The message's files, kept in the media store (above the cap, without a store, or
    /// when the download fails, recorded without their bytes).
    async fn attachments(&self, e: &Value) -> Vec<clawos_events::Attachment> {
        let mut out = Vec::new();
        for f in e["files"].as_array().into_iter().flatten() {
            let Some(id) = f["id"].as_str() else {
                continue;
            };
            let name = f["name"].as_str().unwrap_or(id).to_string();
            let mime = f["mimetype"].as_str().map(String::from);
            let unkept = clawos_events::Attachment {
                name: name.clone(),
                mime: mime.clone(),
                size: f["size"].as_u64().unwrap_or(0),
                blake3: None,
                location: Some(format!("slack-file:{id}")),
            };
            let url = f["url_private_download"]
                .as_str()
                .or(f["url_private"].as_str());
            let (Some(store), Some(url)) = (&self.media, url) else {
                out.push(unkept);
                continue;
            };
            if let Err(e) = store.check_size(&name, unkept.size) {
                tracing::warn!(error = %e, "an attachment was not kept");
                out.push(unkept);
                continue;
            }
            let kept = match self.bot.api.download(url, store.max_bytes()).await {
                Ok(bytes) => store
                    .put(&name, mime.as_deref(), &bytes)
                    .map_err(|e| AdapterError::Refused(e.to_string())),
                Err(e) => Err(e),
            };
            match kept {
                Ok(mut a) => {
                    a.location = unkept.location;
                    out.push(a);
                }
                Err(why) => {
                    tracing::warn!(%name, %why, "an attachment was not kept");
                    out.push(unkept);
                }
            }
        }
        out
    }
}

/// Slack's message text as a person wrote it: `<@U1>` as `@U1`, `<url|label>` as
/// `label (url)`, `<url>` as the url, and the three escaped characters back.
fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &rest[open + 1..open + close];
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        match (target.chars().next(), label) {
            (Some('@') | Some('#'), Some(l)) => out.push_str(l),
            (Some('@'), None) => out.push_str(target),
            (Some('!'), _) => out.push_str(&format!("@{}", &target[1..])),
            (_, Some(l)) => out.push_str(&format!("{l} ({target})")),
            (_, None) => out.push_str(target),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_text() {
        assert_eq!(message_id("C1", "1.2", None), "C1/1.2");
        assert_eq!(message_id("C1", "1.2", Some("1.2")), "C1/1.2");
        assert_eq!(message_id("C1", "1.3", Some("1.2")), "C1/1.3@1.2");
        assert_eq!(split_id("C1/1.3@1.2"), Some(("C1", "1.3", Some("1.2"))));
        assert_eq!(split_id("C1/1.3"), Some(("C1", "1.3", None)));
        assert_eq!(split_id("nothing"), None);
        assert_eq!(
            plain_text("hi <@U2> see <https://a.b|docs> &amp; <https://c.d> &lt;3"),
            "hi @U2 see docs (https://a.b) & https://c.d <3"
        );
        assert_eq!(plain_text("<!here> unclosed <"), "@here unclosed <");
    }
}
