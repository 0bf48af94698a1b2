//! The IMAP side: connect (TLS, or STARTTLS), log in, select the mailbox, catch up by UID
//! from the saved position, then wait for mail with IDLE (renewed every
//! [`IDLE_RENEW`]) or, on a server without IDLE, by polling with NOOP.
//!
//! # The position and what "handled" means
//! The position is `UIDVALIDITY:UID` in the channel's folder (`imap_uid`): the last mail
//! handled. A mail is handled when the Gateway committed it (the platform polls the
//! inbound stream for the next message only after the kernel acked the last one, and
//! [`Inbox::next`] saves the position of the previous message first thing when polled),
//! or when it was skipped (a machine's mail). A crash between the commit and the save
//! re-posts one mail, which the Gateway drops by its external id (the Message-ID); the
//! position never passes a mail that was not committed. A changed UIDVALIDITY (the
//! mailbox was rebuilt, its UIDs mean something else) and a first start both begin after
//! the newest mail: the channel answers what comes, not the mailbox's history.
//!
//! Mail is read with `BODY.PEEK[]` and marked `\Seen` once handled; nothing is moved or
//! deleted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{BodyStructure, ContentEncoding, Status};
use async_imap::types::{Fetch, UnsolicitedResponse};
use futures::{StreamExt, TryStreamExt};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::read::{read, Read};
use super::settings::{EmailSettings, Security};
use super::threads::Threads;
use crate::media::{MediaStore, DEFAULT_MAX_BYTES};
use crate::platform::cursor::Cursor;
use crate::platform::{AdapterError, InboundStream};
use crate::protocol::Inbound;

/// Longest a connect, TLS handshake, log-in and SELECT may take together.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest one command (other than IDLE) may wait for its answer.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// IDLE is ended and started again this often (RFC 2177: servers may log a client out
/// after 30 minutes of IDLE).
pub const IDLE_RENEW: Duration = Duration::from_secs(20 * 60);
/// A server silent this long during IDLE (no mail, no `* OK Still here`) is asked NOOP,
/// so a dead link is found.
pub const IDLE_SILENCE: Duration = Duration::from_secs(5 * 60);
/// Of a mail too large to read whole, this much of its body is read for the text.
pub const PARTIAL_BYTES: u32 = 256 * 1024;

/// A byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

type Session = async_imap::Session<Box<dyn Io>>;
type Client = async_imap::Client<Box<dyn Io>>;

/// An I/O error of the IMAP stream: async-imap reports an answer it cannot parse (or one
/// past its buffer) as an I/O error of kind `Other`, which is the server's fault, not the
/// link's.
fn io_error(e: std::io::Error, doing: &str) -> AdapterError {
    let text = e.to_string();
    if e.kind() == std::io::ErrorKind::Other
        && (text.contains("during parsing of") || text.contains("incoming data too large"))
    {
        let short: String = text.chars().take(160).collect();
        AdapterError::Protocol(format!(
            "IMAP {doing}: the server's answer cannot be read ({short})"
        ))
    } else {
        AdapterError::Link(format!("IMAP {doing}: {e}"))
    }
}

/// An IMAP error, as the platform should treat it.
fn imap_error(e: async_imap::error::Error, doing: &str) -> AdapterError {
    use async_imap::error::Error;
    match e {
        Error::Io(e) => io_error(e, doing),
        Error::ConnectionLost => {
            AdapterError::Link(format!("IMAP {doing}: the server closed the connection"))
        }
        Error::No(why) => {
            AdapterError::Protocol(format!("IMAP {doing}: the server said NO ({})", tidy(&why)))
        }
        Error::Validate(e) => AdapterError::Config(format!("IMAP {doing}: {e}")),
        e => AdapterError::Protocol(format!("IMAP {doing}: {e}")),
    }
}

/// The human part of async-imap's `code: …, info: Some("…")`.
fn tidy(why: &str) -> String {
    why.split_once("info: Some(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map(|(info, _)| info.to_string())
        .unwrap_or_else(|| why.to_string())
}

/// Run one command within [`COMMAND_TIMEOUT`].
async fn timed<T>(
    doing: &str,
    command: impl std::future::Future<Output = async_imap::error::Result<T>>,
) -> Result<T, AdapterError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
        Ok(r) => r.map_err(|e| imap_error(e, doing)),
        Err(_) => Err(AdapterError::Link(format!(
            "IMAP {doing}: no answer within {COMMAND_TIMEOUT:?}"
        ))),
    }
}

pub use crate::platform::tls::client_config as tls_config;

async fn tls(io: Box<dyn Io>, settings: &EmailSettings) -> Result<Box<dyn Io>, AdapterError> {
    let (host, _) = settings.imap_host_port()?;
    let config = tls_config(settings.tls_ca_file.as_deref())?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| AdapterError::Config(format!("server name {host}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, io)
        .await
        .map_err(|e| AdapterError::Link(format!("TLS with {}: {e}", settings.imap_server)))?;
    Ok(Box::new(stream))
}

/// Read the server's greeting: `* OK` (or `* PREAUTH`) goes on, `* BYE` is a link error.
async fn greeting(client: &mut Client) -> Result<(), AdapterError> {
    let first = client
        .read_response()
        .await
        .map_err(|e| io_error(e, "greeting"))?
        .ok_or_else(|| AdapterError::Link("the IMAP server closed before its greeting".into()))?;
    match first.parsed() {
        async_imap::imap_proto::Response::Data {
            status,
            information,
            ..
        } => match status {
            Status::Ok | Status::PreAuth => Ok(()),
            Status::Bye => Err(AdapterError::Link(format!(
                "the IMAP server turned us away: {}",
                information.as_deref().unwrap_or_default()
            ))),
            _ => Err(AdapterError::Protocol(format!(
                "the IMAP server greeted with {status:?}"
            ))),
        },
        other => Err(AdapterError::Protocol(format!(
            "the IMAP server's greeting is not one: {other:?}"
        ))),
    }
}

/// Check the IMAP server answers with a greeting over the configured TLS (and STARTTLS),
/// for `clawos doctor`. Does not log in.
pub async fn probe(settings: &EmailSettings, within: Duration) -> Result<(), AdapterError> {
    tokio::time::timeout(within, open_client(settings))
        .await
        .map_err(|_| {
            AdapterError::Link(format!(
                "{} did not answer within {within:?}",
                settings.imap_server
            ))
        })?
        .map(|_| ())
}

async fn open_client(settings: &EmailSettings) -> Result<Client, AdapterError> {
    let tcp = TcpStream::connect(&settings.imap_server)
        .await
        .map_err(|e| AdapterError::Link(format!("cannot reach {}: {e}", settings.imap_server)))?;
    let _ = tcp.set_nodelay(true);
    match settings.imap_tls {
        Security::Tls => {
            let mut client = Client::new(tls(Box::new(tcp), settings).await?);
            greeting(&mut client).await?;
            Ok(client)
        }
        Security::Starttls => {
            let mut client = Client::new(Box::new(tcp) as Box<dyn Io>);
            greeting(&mut client).await?;
            timed(
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            Ok(Client::new(tls(client.into_inner(), settings).await?))
        }
    }
}

/// The position saved as `UIDVALIDITY:UID`.
fn parse_position(text: &str) -> Option<(u32, u32)> {
    let (validity, uid) = text.trim().split_once(':')?;
    Some((validity.parse().ok()?, uid.parse().ok()?))
}

/// The mailbox, read in UID order from the saved position.
pub struct Inbox {
    session: Option<Session>,
    idle: bool,
    poll: Duration,
    validity: u32,
    /// The highest UID found so far (queued, yielded or handled).
    last: u32,
    queue: VecDeque<u32>,
    /// The UID of the mail yielded last, handled once the stream is polled again.
    pending: Option<u32>,
    cursor: Cursor,
    bot: String,
    media: Option<MediaStore>,
    threads: Arc<Threads>,
}

impl Inbox {
    /// Connect, log in and select the mailbox, within [`OPEN_TIMEOUT`].
    pub async fn open(
        settings: &EmailSettings,
        password: &str,
        media: Option<MediaStore>,
        threads: Arc<Threads>,
        cursor: Cursor,
    ) -> Result<Self, AdapterError> {
        let opening = Self::open_now(settings, password, media, threads, cursor);
        tokio::time::timeout(OPEN_TIMEOUT, opening)
            .await
            .map_err(|_| {
                AdapterError::Link(format!(
                    "{} did not let us in within {OPEN_TIMEOUT:?}",
                    settings.imap_server
                ))
            })?
    }

    async fn open_now(
        settings: &EmailSettings,
        password: &str,
        media: Option<MediaStore>,
        threads: Arc<Threads>,
        cursor: Cursor,
    ) -> Result<Self, AdapterError> {
        let client = open_client(settings).await?;
        let user = settings.imap_user();
        let mut session = match client.login(user, password).await {
            Ok(s) => s,
            Err((async_imap::error::Error::No(why), _)) => {
                let why = tidy(&why);
                // RFC 5530: UNAVAILABLE is the server's trouble, not the password's.
                return Err(if why.to_ascii_lowercase().contains("unavailable") {
                    AdapterError::Link(format!("the IMAP server cannot log us in now: {why}"))
                } else {
                    AdapterError::AuthRefused(format!(
                        "the IMAP server refused the login of {user} ({why})"
                    ))
                });
            }
            Err((e, _)) => return Err(imap_error(e, "LOGIN")),
        };
        let idle = timed("CAPABILITY", session.capabilities())
            .await?
            .has_str("IDLE");
        let mailbox = match session.select(&settings.mailbox).await {
            Ok(m) => m,
            Err(async_imap::error::Error::No(why)) => {
                return Err(AdapterError::Config(format!(
                    "mailbox `{}`: {}",
                    settings.mailbox,
                    tidy(&why)
                )))
            }
            Err(e) => return Err(imap_error(e, "SELECT")),
        };
        let validity = mailbox
            .uid_validity
            .ok_or_else(|| AdapterError::Protocol("the IMAP server gave no UIDVALIDITY".into()))?;
        let newest = match mailbox.uid_next {
            Some(next) => next.saturating_sub(1),
            None => timed("UID SEARCH", session.uid_search("ALL"))
                .await?
                .into_iter()
                .max()
                .unwrap_or(0),
        };
        let last = match cursor.load().as_deref().and_then(parse_position) {
            Some((v, uid)) if v == validity => uid,
            saved => {
                if let Some((v, _)) = saved {
                    tracing::warn!(old = v, new = validity, "the mailbox's UIDVALIDITY changed \
                        (it was rebuilt): going on after its newest mail, older mail is not read again");
                }
                cursor.save(&format!("{validity}:{newest}"))?;
                newest
            }
        };
        tracing::info!(mailbox = %settings.mailbox, validity, last, idle, "mailbox selected");
        Ok(Inbox {
            session: Some(session),
            idle,
            poll: settings.poll_every(),
            validity,
            last,
            queue: VecDeque::new(),
            pending: None,
            cursor,
            bot: settings.address_lower(),
            media,
            threads,
        })
    }

    /// The inbound stream: ends after its first error.
    pub fn into_stream(self) -> InboundStream {
        futures::stream::unfold(Some(self), |inbox| async move {
            let mut inbox = inbox?;
            match inbox.next().await {
                Ok(m) => Some((Ok(m), Some(inbox))),
                Err(e) => Some((Err(e), None)),
            }
        })
        .boxed()
    }

    fn session(&mut self) -> Result<&mut Session, AdapterError> {
        self.session
            .as_mut()
            .ok_or_else(|| AdapterError::Link("the IMAP session ended".into()))
    }

    /// The next mail for the Gateway, waiting for one as long as it takes.
    pub async fn next(&mut self) -> Result<Inbound, AdapterError> {
        loop {
            // Polled again: the Gateway committed the mail yielded last.
            if let Some(uid) = self.pending.take() {
                self.handled(uid, true).await?;
            }
            if let Some(uid) = self.queue.pop_front() {
                match self.fetch(uid).await? {
                    Read::Message(m, thread) => {
                        self.threads.remember(&m.external_id, thread);
                        self.pending = Some(uid);
                        return Ok(*m);
                    }
                    Read::Skip(why) => {
                        tracing::info!(uid, %why, "a mail is not for the agent; skipped");
                        self.handled(uid, false).await?;
                    }
                }
                continue;
            }
            self.find_new().await?;
            if self.queue.is_empty() {
                self.wait().await?;
            }
        }
    }

    /// Save the position at `uid`; mark the mail `\Seen` when it was posted.
    async fn handled(&mut self, uid: u32, posted: bool) -> Result<(), AdapterError> {
        self.cursor.save(&format!("{}:{uid}", self.validity))?;
        if posted {
            let session = self.session()?;
            let stored = timed("UID STORE", async {
                session
                    .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)")
                    .await?
                    .try_collect::<Vec<Fetch>>()
                    .await
            })
            .await;
            match stored {
                Ok(_) => {}
                // A read-only mailbox: the mail stays unseen, nothing else is wrong.
                Err(AdapterError::Protocol(why)) => {
                    tracing::warn!(uid, %why, "cannot mark a mail seen")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Queue the UIDs after the last one found. `UID SEARCH UID n:*` also answers the
    /// highest UID when there is nothing after `n` (RFC 3501: `*` is the highest), so UIDs
    /// not above the last are dropped.
    async fn find_new(&mut self) -> Result<(), AdapterError> {
        let from = self.last.saturating_add(1);
        let session = self.session()?;
        let found = timed("UID SEARCH", session.uid_search(format!("UID {from}:*"))).await?;
        let mut new: Vec<u32> = found.into_iter().filter(|u| *u > self.last).collect();
        new.sort_unstable();
        if let Some(max) = new.last() {
            self.last = *max;
        }
        self.queue.extend(new);
        Ok(())
    }

    /// Wait for the mailbox to change: IDLE until the server says something, or the
    /// renewal or silence time passed; or sleep and NOOP without IDLE.
    async fn wait(&mut self) -> Result<(), AdapterError> {
        if !self.idle {
            tokio::time::sleep(self.poll).await;
            let session = self.session()?;
            return timed("NOOP", session.noop()).await;
        }
        let session = self
            .session
            .take()
            .ok_or_else(|| AdapterError::Link("the IMAP session ended".into()))?;
        let unsolicited = session.unsolicited_responses.clone();
        let mut handle = session.idle();
        timed("IDLE", handle.init()).await?;
        // Mail that came in just before IDLE was announced while it started.
        let mut changed = false;
        while let Ok(r) = unsolicited.try_recv() {
            changed |= matches!(r, UnsolicitedResponse::Exists(_));
        }
        let mut quiet = false;
        if !changed {
            let (waiting, stop) = handle.wait_with_timeout(IDLE_SILENCE);
            let waited = tokio::time::timeout(IDLE_RENEW, waiting).await;
            drop(stop);
            match waited {
                Ok(Ok(IdleResponse::NewData(data))) => {
                    if let async_imap::imap_proto::Response::Data {
                        status: Status::Bye,
                        information,
                        ..
                    } = data.parsed()
                    {
                        return Err(AdapterError::Link(format!(
                            "the IMAP server closed the link: {}",
                            information.as_deref().unwrap_or("BYE")
                        )));
                    }
                }
                Ok(Ok(_)) | Err(_) => quiet = true,
                Ok(Err(e)) => return Err(imap_error(e, "IDLE")),
            }
        }
        let session = self.session.insert(timed("DONE", handle.done()).await?);
        if quiet {
            timed("NOOP", session.noop()).await?;
        }
        Ok(())
    }

    /// Read the mail `uid`: whole when its size allows, else its header, the start of its
    /// body and the list of its parts.
    async fn fetch(&mut self, uid: u32) -> Result<Read, AdapterError> {
        let whole_limit = self
            .media
            .as_ref()
            .map(|m| m.max_bytes())
            .unwrap_or(DEFAULT_MAX_BYTES)
            .saturating_mul(4)
            / 3
            + 1024 * 1024;
        let fallback = format!("uid:{}:{uid}", self.validity);
        let session = self.session()?;
        let one = |fetches: Vec<Fetch>| fetches.into_iter().find(|f| f.uid == Some(uid));
        let sized = one(fetch(session, uid, "(UID RFC822.SIZE)").await?);
        let Some(size) = sized.map(|f| f.size.unwrap_or(0)) else {
            return Ok(Read::Skip("deleted before it was read".into()));
        };
        if u64::from(size) <= whole_limit {
            let whole = one(fetch(session, uid, "(UID BODY.PEEK[])").await?);
            let Some(raw) = whole.as_ref().and_then(|f| f.body()) else {
                return Ok(Read::Skip("deleted before it was read".into()));
            };
            return read(raw, &fallback, &self.bot, self.media.as_ref());
        }
        let query =
            format!("(UID BODYSTRUCTURE BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.{PARTIAL_BYTES}>)");
        let Some(part) = one(fetch(session, uid, &query).await?) else {
            return Ok(Read::Skip("deleted before it was read".into()));
        };
        let mut raw = part.header().unwrap_or_default().to_vec();
        raw.extend_from_slice(part.text().unwrap_or_default());
        let mut listed = Vec::new();
        if let Some(structure) = part.bodystructure() {
            list_attachments(structure, &mut listed);
        }
        Ok(match read(&raw, &fallback, &self.bot, None)? {
            Read::Message(mut m, thread) => {
                m.attachments = listed;
                m.text.push_str(&format!(
                    "\n\n(This mail is {:.1} MB, more than the channel reads whole: its \
                     attachments were not kept.)",
                    f64::from(size) / 1_048_576.0
                ));
                Read::Message(m, thread)
            }
            skip => skip,
        })
    }
}

/// `UID FETCH uid query`, every answer collected.
async fn fetch(session: &mut Session, uid: u32, query: &str) -> Result<Vec<Fetch>, AdapterError> {
    timed("UID FETCH", async {
        session
            .uid_fetch(uid.to_string(), query)
            .await?
            .try_collect::<Vec<Fetch>>()
            .await
    })
    .await
}

/// The attachments a BODYSTRUCTURE names (parts with a file name or an `attachment`
/// disposition), with their decoded size estimated and no bytes kept.
fn list_attachments(structure: &BodyStructure<'_>, out: &mut Vec<clawos_events::Attachment>) {
    let (common, other) = match structure {
        BodyStructure::Multipart { bodies, .. } => {
            for b in bodies {
                list_attachments(b, out);
            }
            return;
        }
        BodyStructure::Basic { common, other, .. }
        | BodyStructure::Text { common, other, .. }
        | BodyStructure::Message { common, other, .. } => (common, other),
    };
    let param = |params: &Option<Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)>>,
                 key: &str| {
        params.as_ref().and_then(|ps| {
            ps.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.to_string())
        })
    };
    let disposition = common.disposition.as_ref();
    let name = disposition
        .and_then(|d| param(&d.params, "filename"))
        .or_else(|| param(&common.ty.params, "name"));
    let attached = disposition.is_some_and(|d| d.ty.eq_ignore_ascii_case("attachment"));
    if name.is_none() && !attached {
        return;
    }
    let size = match other.transfer_encoding {
        ContentEncoding::Base64 => u64::from(other.octets) * 3 / 4,
        _ => u64::from(other.octets),
    };
    out.push(clawos_events::Attachment {
        name: name.unwrap_or_else(|| format!("attachment-{}", out.len() + 1)),
        mime: Some(format!("{}/{}", common.ty.ty, common.ty.subtype).to_lowercase()),
        size,
        blake3: None,
        location: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_server_words_are_read() {
        assert_eq!(parse_position("1751:42\n"), Some((1751, 42)));
        assert_eq!(parse_position("1751"), None);
        assert_eq!(parse_position("x:1"), None);
        assert_eq!(
            tidy("code: Some(AuthenticationFailed), info: Some(\"Authentication failed.\")"),
            "Authentication failed."
        );
        assert_eq!(tidy("plain"), "plain");
        let e = imap_error(async_imap::error::Error::ConnectionLost, "IDLE");
        assert!(matches!(e, AdapterError::Link(_)));
        let e = imap_error(async_imap::error::Error::Bad("x".into()), "FETCH");
        assert!(matches!(e, AdapterError::Protocol(_)));
        let garbage = std::io::Error::other("Error(..) during parsing of \"* NONSENSE\"");
        assert!(matches!(
            io_error(garbage, "greeting"),
            AdapterError::Protocol(_)
        ));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(matches!(io_error(reset, "IDLE"), AdapterError::Link(_)));
    }
}
