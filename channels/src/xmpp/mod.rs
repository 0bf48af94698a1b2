//! The XMPP channel: 1:1 chats and group chats (XEP-0045 rooms) on one account, over
//! STARTTLS, with files both ways (XEP-0066 in, XEP-0363 out) and catch-up from the
//! server's archive (XEP-0313) after the channel was away.
//!
//! Addresses are `xmpp:local@domain` (a bare JID); a room message carries the room's JID
//! as its chat and the occupant's real JID as its sender when the room shows it to the
//! bot (else `xmpp:room@service/nick`). In a room the bot answers when addressed: its nick
//! in the text, or `nick:` in front.
//!
//! # The link: tokio-xmpp's pieces, our own STARTTLS
//! tokio-xmpp 6 is used for the XML stream (framing, parsing into `xmpp-parsers` types,
//! read timeouts), SASL (SCRAM-SHA-256/1 with channel binding, PLAIN) and the stanza
//! types, but not for connecting: its STARTTLS connector builds its own rustls root store
//! (webpki or the system's) with no way to add a private CA, and its `Client`
//! reconnects by itself, which would hide a dropped link and a refused password from the
//! platform. So [`link`] opens TCP, sends `<starttls/>`, runs the TLS handshake with
//! tokio-rustls (public roots plus `tls_ca_file`, as the IRC channel does), and hands the
//! TLS stream back to tokio-xmpp for SASL and binding. Without its `starttls` feature
//! tokio-xmpp pulls no DNS resolver; the server is `host:port` (default: the JID's domain,
//! port 5222; no SRV lookup).
//!
//! # Catch-up
//! After a restart the channel asks the archives (its account's and each room's) for what
//! came after the last position it saved ([`driver`]); a position is saved only once the
//! Gateway committed the message before it, and the Gateway drops duplicates by external
//! id (the XEP-0359 stanza id, which equals the archive id), so a message is answered
//! exactly once. Initial presence goes out before the archive query: offline messages
//! arrive as well and are deduplicated by the same id.
//!
//! Layout: [`settings`], [`link`] (connect, TLS, log-in), [`driver`] (the connection's
//! task), [`read`] (stanzas to inbound messages), [`files`] (HTTP fetch and upload).

pub mod driver;
pub mod files;
pub mod link;
pub mod read;
pub mod settings;

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::disco::{
    DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult,
};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::{Id, Lang, Message, MessageType};
use tokio_xmpp::parsers::oob::Oob;
use tokio_xmpp::Stanza;
use uuid::Uuid;

use crate::media::MediaStore;
use crate::platform::cursor::Cursor;
use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, LengthUnit, Outbox, Outgoing, OutgoingFile,
    RateLimit, TextFormat,
};
use driver::{Command, Driver, Item, Position};
use files::{parse_slot, slot_request, upload_service, Http, UploadService};
use link::Link;
pub use settings::XmppSettings;
/// The `xmpp-parsers` stanza types the channel speaks (for its tests' hand clients).
pub use tokio_xmpp::parsers;

/// Longest message, in characters. XMPP sets no limit, but clients show very long
/// messages badly and servers cap stanzas (often at 256 KiB).
pub const MAX_TEXT_CHARS: usize = 4000;
/// Longest the server may take to answer a request (an upload slot).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The XMPP adapter.
pub struct XmppAdapter {
    settings: XmppSettings,
    password: Option<String>,
    media: Option<MediaStore>,
}

impl XmppAdapter {
    /// An adapter for these settings and the account's password.
    pub fn new(settings: XmppSettings, secret: Option<String>) -> Self {
        XmppAdapter {
            settings,
            password: secret,
            media: MediaStore::from_env(),
        }
    }
}

/// The sending half: stanzas go to the connection's driver, files over HTTP.
pub struct XmppOutbox {
    commands: mpsc::Sender<Command>,
    http: Http,
    upload: Option<UploadService>,
}

fn closed() -> AdapterError {
    AdapterError::Link("the connection closed".into())
}

/// Where a message goes: a room (groupchat) or an address (chat).
fn target(message: &Outgoing) -> Result<(Jid, MessageType), AdapterError> {
    if let Some(chat) = &message.chat {
        let room = BareJid::new(chat)
            .map_err(|e| AdapterError::Refused(format!("no room address in `{chat}`: {e}")))?;
        return Ok((Jid::from(room), MessageType::Groupchat));
    }
    let address = message.to.strip_prefix("xmpp:").unwrap_or(&message.to);
    let to = Jid::new(address)
        .map_err(|e| AdapterError::Refused(format!("no XMPP address in `{}`: {e}", message.to)))?;
    Ok((to, MessageType::Chat))
}

impl XmppOutbox {
    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, AdapterError>>) -> Command,
    ) -> Result<T, AdapterError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(command(tx))
            .await
            .map_err(|_| closed())?;
        tokio::time::timeout(REQUEST_TIMEOUT, rx)
            .await
            .map_err(|_| {
                AdapterError::Link(format!(
                    "the server did not answer within {REQUEST_TIMEOUT:?}"
                ))
            })?
            .map_err(|_| closed())?
    }

    /// Upload a file; the body and OOB URL to send, or a line saying why it was not sent.
    async fn upload(&self, file: &OutgoingFile) -> Result<(String, Option<String>), AdapterError> {
        let name = &file.attachment.name;
        let note = |why: String| Ok((format!("(attachment {name} not sent: {why})"), None));
        let Some(service) = &self.upload else {
            return note("this XMPP server takes no file uploads (XEP-0363)".into());
        };
        let bytes = file.read()?;
        let size = bytes.len() as u64;
        if let Some(max) = service.max_bytes.filter(|max| size > *max) {
            return note(format!(
                "it is {size} bytes, above the server's {max}-byte upload limit"
            ));
        }
        let mime = file.attachment.mime.as_deref();
        let request = slot_request(service, name, size, mime);
        let slot = match self.call(|tx| Command::Request(request, tx)).await? {
            Iq::Result {
                payload: Some(p), ..
            } => parse_slot(&p)?,
            Iq::Error { error, .. } => {
                return note(format!(
                    "the server refused an upload slot ({:?})",
                    error.defined_condition
                ))
            }
            _ => return Err(AdapterError::Protocol("an empty upload slot answer".into())),
        };
        match self.http.put(&slot, bytes, mime).await {
            Ok(()) => Ok((slot.get.clone(), Some(slot.get))),
            Err(AdapterError::Refused(why)) => note(why),
            Err(e) => Err(e),
        }
    }
}

impl Outbox for XmppOutbox {
    async fn send(&self, message: &Outgoing) -> Result<Option<String>, AdapterError> {
        let (to, kind) = target(message)?;
        let (body, oob) = match &message.file {
            Some(file) => self.upload(file).await?,
            None => (message.text.clone(), None),
        };
        let id = Uuid::now_v7().to_string();
        let mut m = Message::new_with_type(kind, Some(to));
        m.id = Some(Id(id.clone()));
        m.bodies.insert(Lang::default(), body);
        if let Some(url) = oob {
            m.payloads.push(Oob { url, desc: None }.into());
        }
        self.call(|tx| Command::Send(Stanza::Message(m), tx))
            .await?;
        Ok(Some(id))
    }
}

impl Adapter for XmppAdapter {
    type Outbox = XmppOutbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            attachments_in: true,
            attachments_out: true,
            // Clients show Markdown's marks as XEP-0393 styling (*bold*, `code`, fences).
            ..Capabilities::text(
                MAX_TEXT_CHARS,
                LengthUnit::Chars,
                TextFormat::Markdown,
                RateLimit {
                    burst: self.settings.burst.unwrap_or(5),
                    every: Duration::from_millis(self.settings.pace_ms.unwrap_or(1000)),
                },
            )
        }
    }

    async fn connect(&mut self) -> Result<(XmppOutbox, InboundStream), AdapterError> {
        let http = Http::new(&self.settings)?;
        let rooms = self
            .settings
            .rooms
            .iter()
            .map(|r| BareJid::new(r).map_err(|e| AdapterError::Config(format!("room `{r}`: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut link = link::connect(&self.settings, self.password.as_deref()).await?;
        let upload = discover_upload(&mut link, &self.settings).await?;
        if upload.is_none() {
            tracing::warn!(
                "the XMPP server offers no file upload (XEP-0363): files are named, not sent"
            );
        }
        let (commands, command_rx) = mpsc::channel(64);
        let (items, item_rx) = mpsc::unbounded_channel();
        let (driver, early) = Driver::new(link, rooms, &self.settings.nick(), command_rx, items);
        tokio::spawn(driver.run(early));
        let outbox = XmppOutbox {
            commands,
            http: http.clone(),
            upload,
        };
        let inflow = Inflow {
            items: item_rx,
            http,
            media: self.media.clone(),
            pending: None,
        };
        Ok((outbox, inflow.stream()))
    }
}

/// Find the upload service: the configured one, or the first of the server's items whose
/// disco#info says XEP-0363. A service that does not answer is no service.
async fn discover_upload(
    link: &mut Link,
    settings: &XmppSettings,
) -> Result<Option<UploadService>, AdapterError> {
    let Link { stream, early, jid } = link;
    let candidates: Vec<Jid> = match &settings.upload_service {
        Some(s) => {
            vec![Jid::new(s).map_err(|e| AdapterError::Config(format!("upload_service: {e}")))?]
        }
        None => {
            let server = Jid::from(BareJid::from_parts(None, jid.domain()));
            let items = DiscoItemsQuery {
                node: None,
                rsm: None,
            };
            let ask = Iq::from_get("disco-items", items).with_to(server);
            match link::request(stream, early, ask).await? {
                Iq::Result {
                    payload: Some(p), ..
                } => DiscoItemsResult::try_from(p)
                    .map(|r| r.items.into_iter().map(|i| i.jid).take(20).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            }
        }
    };
    for (n, candidate) in candidates.into_iter().enumerate() {
        let ask = Iq::from_get(format!("disco-info-{n}"), DiscoInfoQuery { node: None })
            .with_to(candidate.clone());
        let info = match link::request(stream, early, ask).await? {
            Iq::Result {
                payload: Some(p), ..
            } => DiscoInfoResult::try_from(p).ok(),
            _ => None,
        };
        let found = info.and_then(|i| upload_service(candidate.clone(), &i));
        match (found, &settings.upload_service) {
            (Some(u), _) => return Ok(Some(u)),
            (None, Some(_)) => {
                return Ok(Some(UploadService {
                    jid: candidate,
                    max_bytes: None,
                }))
            }
            (None, None) => {}
        }
    }
    Ok(None)
}

/// The inbound side: items from the driver, files fetched, archive positions saved once
/// the message before them is committed (the platform polls for the next message only
/// then).
struct Inflow {
    items: mpsc::UnboundedReceiver<Item>,
    http: Http,
    media: Option<MediaStore>,
    pending: Option<Position>,
}

impl Inflow {
    fn save(&self, p: &Position) {
        if let Err(e) = Cursor::from_env(&p.cursor).save(&p.id) {
            tracing::warn!(error = %e, "cannot save the archive position");
        }
    }

    fn stream(self) -> InboundStream {
        futures::stream::unfold(self, |mut f| async move {
            if let Some(p) = f.pending.take() {
                f.save(&p);
            }
            loop {
                match f.items.recv().await? {
                    Item::Position(p) => f.save(&p),
                    Item::Down(e) => return Some((Err(e), f)),
                    Item::Said(said, position) => {
                        let mut inbound = said.inbound;
                        for url in &said.files {
                            inbound
                                .attachments
                                .push(f.http.fetch(url, f.media.as_ref()).await);
                        }
                        f.pending = position;
                        return Some((Ok(inbound), f));
                    }
                }
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_go_to_rooms_or_addresses() {
        let mut out = Outgoing {
            to: "xmpp:alice@clawos.test".into(),
            chat: None,
            text: "hi".into(),
            in_reply_to: None,
            file: None,
        };
        let (to, kind) = target(&out).unwrap();
        assert_eq!(
            (to.as_str(), kind),
            ("alice@clawos.test", MessageType::Chat)
        );
        out.to = "xmpp:team@conference.clawos.test/alice".into();
        assert!(target(&out).unwrap().0.is_full());
        out.chat = Some("team@conference.clawos.test".into());
        let (to, kind) = target(&out).unwrap();
        assert_eq!(
            (to.as_str(), kind),
            ("team@conference.clawos.test", MessageType::Groupchat)
        );
        out.chat = Some("@@".into());
        assert!(matches!(target(&out), Err(AdapterError::Refused(_))));
    }
}
