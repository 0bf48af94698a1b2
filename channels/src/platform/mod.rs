//! The channel platform: what every adapter gets for free.
//!
//! An adapter only knows its outside service: it connects, yields the messages people
//! send, and sends one message. It declares what the service can do in [`Capabilities`].
//! The platform ([`runner::run`]) does the rest: the bus (hello, acks, heartbeats),
//! Markdown rendered to the service's text format ([`format`]), long replies split at
//! paragraph, sentence and code-block boundaries ([`split`]), outbound pacing by the
//! service's documented limits and reconnects with backoff and jitter ([`pace`]), and the
//! link state reported to the Gateway so `clawos status` shows why a channel is down.

pub mod cursor;
pub mod format;
pub mod http;
pub mod pace;
pub mod recent;
pub mod runner;
pub mod split;
pub mod stream;
pub mod tls;
pub mod typing;

use std::future::Future;
use std::time::Duration;

use futures::stream::BoxStream;

use crate::protocol::Inbound;

/// How a service shows formatted text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// No markup: Markdown is reduced to its text.
    Plain,
    /// Markdown, passed through.
    Markdown,
    /// HTML (e.g. Matrix `formatted_body`).
    Html,
    /// mIRC control codes (bold `\x02`, italics `\x1d`, monospace `\x11`).
    Irc,
}

/// How a service counts message length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthUnit {
    /// UTF-8 bytes (IRC lines, SMTP).
    Bytes,
    /// Unicode scalar values.
    Chars,
}

/// Outbound limits a service documents: a burst, then a steady rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages that may go at once.
    pub burst: u32,
    /// Then one message per this interval.
    pub every: Duration,
}

/// What a service can do, declared by its adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Longest message, in [`Capabilities::length_unit`].
    pub max_message_len: usize,
    /// How the length is counted.
    pub length_unit: LengthUnit,
    /// The text format it shows.
    pub text_format: TextFormat,
    /// A message may hold line breaks (IRC: no, each line is its own message).
    pub multiline: bool,
    /// Replies can be threaded on the message they answer.
    pub threads: bool,
    /// A sent message can be edited (replies then stream in as edits).
    pub edits: bool,
    /// Shortest time between two edits of one message.
    pub edit_interval: Duration,
    /// A typing indicator can be shown.
    pub typing: bool,
    /// Reactions can be sent.
    pub reactions: bool,
    /// Files and images come in.
    pub attachments_in: bool,
    /// Files and images go out.
    pub attachments_out: bool,
    /// Group chats exist.
    pub groups: bool,
    /// Outbound pacing.
    pub rate_limit: RateLimit,
}

impl Capabilities {
    /// A service of text alone: multiline messages within `max_message_len`, groups,
    /// and nothing else (no threads, edits, typing, reactions or attachments).
    pub fn text(
        max_message_len: usize,
        length_unit: LengthUnit,
        text_format: TextFormat,
        rate_limit: RateLimit,
    ) -> Self {
        Capabilities {
            max_message_len,
            length_unit,
            text_format,
            multiline: true,
            threads: false,
            edits: false,
            edit_interval: Duration::from_secs(1),
            typing: false,
            reactions: false,
            attachments_in: false,
            attachments_out: false,
            groups: true,
            rate_limit,
        }
    }
}

/// One message for the adapter to send: already rendered and within the length limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Recipient address (`kind:local@domain`), for a direct message.
    pub to: String,
    /// Group or chat, `None` for a direct message.
    pub chat: Option<String>,
    /// The text, in the service's format.
    pub text: String,
    /// The service's id of the message this answers, for channels with threads.
    pub in_reply_to: Option<String>,
    /// A file to send as this message (then `text` is empty), for services that take
    /// attachments out.
    pub file: Option<OutgoingFile>,
}

/// A file to send: its description from the event and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingFile {
    /// Name, type, size and hash, as the event records them.
    pub attachment: clawos_events::Attachment,
    /// The blob in the media store.
    pub path: std::path::PathBuf,
}

impl OutgoingFile {
    /// The file's bytes, checked against their hash: a missing or damaged blob is an
    /// error naming the hash, and the delivery reports it instead of sending other bytes.
    pub fn read(&self) -> Result<Vec<u8>, AdapterError> {
        let bytes = std::fs::read(&self.path).map_err(|e| {
            AdapterError::Refused(format!(
                "attachment {} ({}): {e}",
                self.attachment.name,
                self.path.display()
            ))
        })?;
        let hash = blake3::hash(&bytes).to_hex();
        if self.attachment.blake3.as_deref() != Some(hash.as_str()) {
            return Err(AdapterError::Refused(format!(
                "attachment {}: the media store's bytes do not match their hash",
                self.attachment.name
            )));
        }
        Ok(bytes)
    }
}

/// Errors of an adapter, each telling the platform what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// The service refused our credentials: reported, retried with the longest backoff.
    #[error("authentication refused: {0}")]
    AuthRefused(String),
    /// The service could not be reached or the link dropped: reconnect with backoff.
    #[error("link down: {0}")]
    Link(String),
    /// The service said something we cannot understand: reconnect with backoff.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The service refused this one message (no such recipient, too large): it is
    /// reported and not sent again.
    #[error("message refused: {0}")]
    Refused(String),
    /// The adapter's settings are wrong: reported, retried with the longest backoff so a
    /// fixed configuration is picked up after a restart.
    #[error("configuration: {0}")]
    Config(String),
}

impl AdapterError {
    /// Whether retrying soon cannot help (the person must act).
    pub fn needs_a_person(&self) -> bool {
        matches!(self, AdapterError::AuthRefused(_) | AdapterError::Config(_))
    }
}

/// A channel kind's own `[channels.NAME]` settings: read by the Gateway's configuration
/// check and, as JSON in `CLAWOS_CHANNEL_SETTINGS`, by the channel process.
pub trait KindSettings: serde::de::DeserializeOwned {
    /// Check what serde cannot (addresses, names); the reason for a person.
    fn validate(&self) -> Result<(), String>;
}

/// The messages people send, as the adapter yields them. It ends (or yields an error)
/// when the link drops. The platform polls it for the next message only after the kernel
/// committed the previous one, so code after a `yield` runs once that message is safe.
pub type InboundStream = BoxStream<'static, Result<Inbound, AdapterError>>;

/// The sending half of a live link.
pub trait Outbox: Send + Sync + 'static {
    /// Send one message; returns the service's id for it, when it gives one.
    fn send(
        &self,
        message: &Outgoing,
    ) -> impl Future<Output = Result<Option<String>, AdapterError>> + Send;

    /// Replace the text of the message `message_id` this outbox sent (services that
    /// declare [`Capabilities::edits`]).
    fn edit(
        &self,
        message_id: &str,
        message: &Outgoing,
    ) -> impl Future<Output = Result<(), AdapterError>> + Send {
        let _ = (message_id, message);
        async {
            Err(AdapterError::Refused(
                "this service cannot edit messages".into(),
            ))
        }
    }

    /// Show that the bot is typing to `to` (or in `chat`) while it answers the message
    /// `answering` (the service's id for it), for services that declare
    /// [`Capabilities::typing`]. Best effort: an error is logged, never retried.
    fn typing(
        &self,
        to: &str,
        chat: Option<&str>,
        answering: &str,
    ) -> impl Future<Output = Result<(), AdapterError>> + Send {
        let _ = (to, chat, answering);
        async { Ok(()) }
    }
}

/// A channel adapter: one outside service.
pub trait Adapter: Send + 'static {
    /// Its sending half.
    type Outbox: Outbox;

    /// What the service can do.
    fn capabilities(&self) -> Capabilities;

    /// Open a link: log in, join, and return the sending half and the inbound stream.
    /// Called again after the link drops.
    fn connect(
        &mut self,
    ) -> impl Future<Output = Result<(Self::Outbox, InboundStream), AdapterError>> + Send;

    /// After an error that needs a person ([`AdapterError::needs_a_person`]), resolves
    /// once what they had to do may be done (a phone linked, a file written), so the
    /// platform tries again at once rather than after the long wait. Default: never.
    fn retry_hint(&self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}
