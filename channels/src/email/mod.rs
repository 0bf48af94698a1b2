//! The email channel: one mailbox read over IMAP, replies sent over SMTP submission.
//!
//! Addresses are `email:local@domain` (the From address, lowercased). Every mail is a
//! direct message (email has no groups here: a mail to several people is answered to its
//! sender alone), addressed to the agent. Who may write is the Gateway's admission policy
//! (`dm_policy = "allowlist"` with `allow = ["email:alice@example.com"]`); note that a From
//! address is only as trustworthy as the receiving server's spoofing checks
//! (SPF/DKIM/DMARC).
//!
//! - In ([`imap`]): IMAP over TLS or STARTTLS, the mailbox caught up by UID from the saved
//!   position, then IDLE. A mail's external id is its Message-ID (`uid:VALIDITY:UID` when
//!   it has none). Its text is the plain-text part (or the HTML part made text) with the
//!   quoted original at the end and the signature taken off; a mail that starts a thread
//!   gets `Subject: …` in front, unless its text already begins with the subject (a reply
//!   does not: its subject is the thread's). Attachments go into the media store. Mail
//!   from machines (auto-replies, bounces, lists) and from the bot itself is skipped.
//! - Out ([`smtp`]): `Re: <subject>`, `In-Reply-To` and `References` from the mail
//!   answered ([`threads`] keeps the latest threads, across restarts); the agent's
//!   Markdown as `text/plain`; each file of a reply as a mail of its own.
//!
//! Layout: [`settings`], [`imap`], [`read`] (one mail into an inbound message), [`smtp`],
//! [`threads`].

pub mod imap;
pub mod read;
pub mod settings;
pub mod smtp;
pub mod threads;

use std::sync::Arc;
use std::time::Duration;

pub use settings::{EmailSettings, Security};

use crate::media::MediaStore;
use crate::platform::cursor::Cursor;
use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, LengthUnit, Outbox, Outgoing, RateLimit,
    TextFormat,
};

/// The file in the channel's folder holding the IMAP position (`UIDVALIDITY:UID`).
pub const POSITION_FILE: &str = "imap_uid";
/// The file in the channel's folder holding the latest threads.
pub const THREADS_FILE: &str = "email_threads.json";

/// The email adapter.
pub struct EmailAdapter {
    settings: EmailSettings,
    password: Option<String>,
    threads: Arc<threads::Threads>,
    media: Option<MediaStore>,
}

impl EmailAdapter {
    /// An adapter for these settings and the mailbox password (the vault secret).
    pub fn new(settings: EmailSettings, secret: Option<String>) -> Self {
        EmailAdapter {
            settings,
            password: secret.filter(|s| !s.is_empty()),
            threads: Arc::new(threads::Threads::load(Cursor::from_env(THREADS_FILE))),
            media: MediaStore::from_env(),
        }
    }
}

/// The sending half: SMTP.
pub struct EmailOutbox {
    sender: smtp::Sender,
}

impl Outbox for EmailOutbox {
    async fn send(&self, message: &Outgoing) -> Result<Option<String>, AdapterError> {
        self.sender.send(message).await
    }
}

impl Adapter for EmailAdapter {
    type Outbox = EmailOutbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_message_len: self
                .settings
                .max_chars
                .unwrap_or(settings::DEFAULT_MAX_CHARS),
            length_unit: LengthUnit::Chars,
            text_format: TextFormat::Markdown,
            multiline: true,
            threads: true,
            edits: false,
            edit_interval: Duration::from_secs(1),
            typing: false,
            reactions: false,
            attachments_in: true,
            attachments_out: true,
            groups: false,
            // Mail providers count mails per hour and day; a burst of 5, then one every
            // 3 s (20 a minute) stays well inside what they allow a person.
            rate_limit: RateLimit {
                burst: 5,
                every: Duration::from_secs(3),
            },
        }
    }

    async fn connect(&mut self) -> Result<(EmailOutbox, InboundStream), AdapterError> {
        let password = self.password.clone().ok_or_else(|| {
            AdapterError::Config(
                "the email channel needs the mailbox password: set `secret_name` to a vault \
                 secret (`clawos secrets set NAME`)"
                    .into(),
            )
        })?;
        let inbox = imap::Inbox::open(
            &self.settings,
            &password,
            self.media.clone(),
            self.threads.clone(),
            Cursor::from_env(POSITION_FILE),
        )
        .await?;
        let sender = smtp::Sender::connect(&self.settings, &password, self.threads.clone()).await?;
        Ok((EmailOutbox { sender }, inbox.into_stream()))
    }
}
