//! WhatsApp as a linked device: the channel pairs with a person's phone the way WhatsApp
//! Web does (a QR code or an 8-character pairing code, [`pair`]) and then speaks the
//! WhatsApp Web protocol (Noise, Signal sessions) through the `whatsapp-rust` crate. The
//! linked session lives in the channel's state folder ([`store`], mode 0600), so a
//! restart reconnects without pairing again; messages are spooled to disk before
//! WhatsApp is told they arrived ([`spool`]), so none is lost to a crash.

pub mod http;
pub mod inbound;
pub mod pair;
mod serde_pairs;
pub mod settings;
pub mod spool;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use whatsapp_rust::anyhow;
use whatsapp_rust::async_trait;
use whatsapp_rust::buffa::MessageField;
use whatsapp_rust::download::MediaType;
use whatsapp_rust::prelude::{Bot, BotHandle, Client, Event, InboundMessage, MessageBuilderExt};
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{InboundDurabilityHook, Jid, UploadOptions};

use self::inbound::{split_external_id, Me};
use self::settings::{jid_of, WhatsappWebSettings};
use self::spool::Spool;
use self::store::SessionStore;
use crate::media::MediaStore;
use crate::platform::recent::RecentIds;
use crate::platform::{
    AdapterError, Capabilities, InboundStream, LengthUnit, Outbox, Outgoing, RateLimit, TextFormat,
};
use crate::protocol::{Inbound, ENV_CHANNEL_STATE_DIR};

/// WhatsApp's longest text message.
pub const MAX_TEXT_CHARS: usize = 65_536;

/// How long the first connection may take before the link counts as down.
const CONNECT_WITHIN: Duration = Duration::from_secs(20);

/// The words a person reads in `clawos status` while no phone is linked.
pub fn not_linked(channel: &str) -> String {
    format!(
        "no phone is linked to this WhatsApp channel yet: run `clawos channels pair {channel}` \
         and scan the QR code (or type the pairing code) on the phone, \
         Settings → Linked devices"
    )
}

/// The WhatsApp linked-device adapter.
pub struct WhatsappWebAdapter {
    settings: WhatsappWebSettings,
    media: Option<MediaStore>,
    dir: Option<PathBuf>,
    channel: String,
    sent: Arc<RecentIds>,
    running: Option<BotHandle>,
}

impl WhatsappWebAdapter {
    /// An adapter for these settings (the linked session is its secret, kept in the
    /// channel's state folder, so no vault secret is used).
    pub fn new(settings: WhatsappWebSettings, _secret: Option<String>) -> Self {
        WhatsappWebAdapter {
            settings,
            media: MediaStore::from_env(),
            dir: std::env::var_os(ENV_CHANNEL_STATE_DIR).map(PathBuf::from),
            channel: std::env::var(crate::protocol::ENV_CHANNEL_NAME)
                .unwrap_or_else(|_| "NAME".into()),
            sent: Arc::default(),
            running: None,
        }
    }
}

/// Hands each decrypted message to the spool before WhatsApp is told it arrived.
struct SpoolHook {
    spool: Arc<Spool>,
    media: Option<MediaStore>,
    name: Option<String>,
    sent: Arc<RecentIds>,
}

#[async_trait]
impl InboundDurabilityHook for SpoolHook {
    async fn on_messages(
        &self,
        client: Arc<Client>,
        batch: &[InboundMessage],
    ) -> anyhow::Result<()> {
        let me = Me {
            number: client.pn().map(|j| j.user.to_string()),
            lid: client.lid().map(|j| j.user.to_string()),
            name: self.name.clone(),
        };
        for m in batch {
            let Some(read) = inbound::read(m, &me, |id| self.sent.contains(id)) else {
                continue;
            };
            let mut message = read.inbound;
            if let Some(media) = read.media {
                message
                    .attachments
                    .push(fetch(&client, self.media.as_ref(), media).await);
            }
            // An error here leaves the message unacked: WhatsApp sends it again.
            self.spool
                .push(&message)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    }
}

/// Download a file into the media store (recorded without its bytes when it is above
/// the cap or cannot be fetched: the message itself is never dropped for its file).
async fn fetch(
    client: &Client,
    store: Option<&MediaStore>,
    media: inbound::Media<'_>,
) -> clawos_events::Attachment {
    let (name, mime) = media.name_and_type();
    let unkept = clawos_events::Attachment {
        name: name.clone(),
        mime: Some(mime.clone()),
        size: media.declared_len(),
        blake3: None,
        location: None,
    };
    let Some(store) = store else { return unkept };
    if let Err(e) = store.check_size(&name, media.declared_len()) {
        tracing::warn!(error = %e, "a WhatsApp file was not kept");
        return unkept;
    }
    let bytes = match media {
        inbound::Media::Image(i) => client.download(i).await,
        inbound::Media::Document(d) => client.download(d).await,
    };
    match bytes
        .map_err(|e| e.to_string())
        .and_then(|b| store.put(&name, Some(&mime), &b).map_err(|e| e.to_string()))
    {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, file = %name, "a WhatsApp file could not be fetched");
            unkept
        }
    }
}

/// The sending half.
pub struct WhatsappWebOutbox {
    client: Arc<Client>,
    sent: Arc<RecentIds>,
}

fn target(to: &str, chat: Option<&str>) -> Result<Jid, AdapterError> {
    let jid = match chat {
        Some(c) => c.to_string(),
        None => jid_of(to)
            .ok_or_else(|| AdapterError::Refused(format!("`{to}` is not a WhatsApp address")))?,
    };
    jid.parse()
        .map_err(|_| AdapterError::Refused(format!("`{jid}` is not a WhatsApp id")))
}

impl WhatsappWebOutbox {
    fn failed(&self, what: &str, e: impl std::fmt::Display) -> AdapterError {
        if self.client.is_connected() {
            AdapterError::Refused(format!("{what}: {e}"))
        } else {
            AdapterError::Link(format!("{what}: {e}"))
        }
    }

    /// The message carrying `file`: uploaded (encrypted) to WhatsApp's media servers.
    async fn file_message(
        &self,
        file: &crate::platform::OutgoingFile,
    ) -> Result<wa::Message, AdapterError> {
        let bytes = file.read()?;
        let mime = file
            .attachment
            .mime
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into());
        let image = mime.starts_with("image/");
        let kind = if image {
            MediaType::Image
        } else {
            MediaType::Document
        };
        let up = self
            .client
            .upload(bytes, kind, UploadOptions::default())
            .await
            .map_err(|e| self.failed("upload", e))?;
        Ok(if image {
            wa::Message {
                image_message: MessageField::some(wa::message::ImageMessage {
                    url: Some(up.url),
                    direct_path: Some(up.direct_path),
                    media_key: Some(up.media_key.to_vec()),
                    file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
                    file_sha256: Some(up.file_sha256.to_vec()),
                    file_length: Some(up.file_length),
                    mimetype: Some(mime),
                    ..Default::default()
                }),
                ..Default::default()
            }
        } else {
            wa::Message {
                document_message: MessageField::some(wa::message::DocumentMessage {
                    url: Some(up.url),
                    direct_path: Some(up.direct_path),
                    media_key: Some(up.media_key.to_vec()),
                    file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
                    file_sha256: Some(up.file_sha256.to_vec()),
                    file_length: Some(up.file_length),
                    mimetype: Some(mime),
                    file_name: Some(file.attachment.name.clone()),
                    title: Some(file.attachment.name.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
    }
}

impl Outbox for WhatsappWebOutbox {
    async fn send(&self, message: &Outgoing) -> Result<Option<String>, AdapterError> {
        let to = target(&message.to, message.chat.as_deref())?;
        let body = match &message.file {
            Some(file) => self.file_message(file).await?,
            None => match message.in_reply_to.as_deref().and_then(split_external_id) {
                // A reply quotes the message it answers.
                Some((_, sender, id)) => wa::Message::text_with_context(
                    message.text.clone(),
                    wa::ContextInfo {
                        stanza_id: Some(id.to_string()),
                        participant: Some(sender.to_string()),
                        ..Default::default()
                    },
                ),
                None => wa::Message::text(message.text.clone()),
            },
        };
        let sent = self
            .client
            .send_message(to.clone(), body)
            .await
            .map_err(|e| self.failed("send", e))?;
        self.sent.remember(sent.message_id.clone());
        Ok(Some(format!("{}/{}", to, sent.message_id)))
    }

    async fn edit(&self, message_id: &str, message: &Outgoing) -> Result<(), AdapterError> {
        let (chat, id) = message_id.rsplit_once('/').ok_or_else(|| {
            AdapterError::Refused(format!("`{message_id}` is not a WhatsApp message id"))
        })?;
        let chat: Jid = chat
            .parse()
            .map_err(|_| AdapterError::Refused(format!("`{chat}` is not a WhatsApp id")))?;
        self.client
            .edit_message(
                chat,
                id.to_string(),
                wa::Message::text(message.text.clone()),
            )
            .await
            .map(|_| ())
            .map_err(|e| self.failed("edit", e))
    }

    async fn typing(&self, to: &str, chat: Option<&str>, _: &str) -> Result<(), AdapterError> {
        let jid = target(to, chat)?;
        self.client
            .chatstate()
            .send_composing(&jid)
            .await
            .map_err(|e| self.failed("typing", e))
    }
}

/// What the link reports while it is up.
enum LinkNews {
    Down(AdapterError),
}

fn news_of(event: &Event, store: &SessionStore, channel: &str) -> Option<LinkNews> {
    let down = match event {
        Event::LoggedOut(l) => {
            // The phone removed this device: its keys are worthless now.
            if let Err(e) = store.forget() {
                tracing::warn!(error = %e, "cannot forget the unlinked session");
            }
            AdapterError::AuthRefused(format!(
                "the phone unlinked this device ({:?}); {}",
                l.reason,
                not_linked(channel)
            ))
        }
        Event::Disconnected(d) => AdapterError::Link(format!("disconnected ({:?})", d.reason)),
        Event::StreamReplaced(_) => AdapterError::AuthRefused(
            "another program logged in with this linked session; \
             stop it or pair this channel again"
                .into(),
        ),
        Event::TemporaryBan(b) => {
            AdapterError::AuthRefused(format!("WhatsApp banned this number for now: {b:?}"))
        }
        Event::ClientOutdated(_) => {
            AdapterError::Config("WhatsApp refuses this client version: update clawos".into())
        }
        Event::ConnectFailure(f) => AdapterError::Link(format!("connection refused: {f:?}")),
        _ => return None,
    };
    Some(LinkNews::Down(down))
}

impl crate::platform::Adapter for WhatsappWebAdapter {
    type Outbox = WhatsappWebOutbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            threads: true,
            edits: true,
            edit_interval: Duration::from_secs(2),
            typing: true,
            attachments_in: true,
            attachments_out: true,
            ..Capabilities::text(
                MAX_TEXT_CHARS,
                LengthUnit::Chars,
                TextFormat::Plain,
                RateLimit {
                    burst: self.settings.burst.unwrap_or(3),
                    every: Duration::from_millis(self.settings.pace_ms.unwrap_or(1500)),
                },
            )
        }
    }

    /// Unlinked, the channel waits for `clawos channels pair`: it looks for a linked
    /// session every few seconds.
    async fn retry_hint(&self) {
        let Some(dir) = self.dir.clone() else {
            return std::future::pending().await;
        };
        // Linked already (the phone is not what is missing): no hint to give.
        if SessionStore::open(&dir).is_ok_and(|s| s.is_linked()) {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            if SessionStore::open(&dir).is_ok_and(|s| s.is_linked()) {
                return;
            }
        }
    }

    async fn connect(&mut self) -> Result<(WhatsappWebOutbox, InboundStream), AdapterError> {
        if let Some(old) = self.running.take() {
            old.abort();
        }
        let dir = self.dir.clone().ok_or_else(|| {
            AdapterError::Config(
                "a WhatsApp channel keeps its linked session in its state folder: \
                 run it from the Gateway"
                    .into(),
            )
        })?;
        let store =
            Arc::new(SessionStore::open(&dir).map_err(|e| AdapterError::Config(e.to_string()))?);
        if !store.is_linked() {
            return Err(AdapterError::AuthRefused(not_linked(&self.channel)));
        }
        let spool = Arc::new(Spool::open(&dir.join("inbox"))?);
        let (news_tx, mut news_rx) = mpsc::channel::<Arc<Event>>(16);
        let hook = SpoolHook {
            spool: spool.clone(),
            media: self.media.clone(),
            name: self.settings.name.clone(),
            sent: self.sent.clone(),
        };
        let bot = Bot::builder()
            .with_backend_arc(store.clone())
            .with_transport_factory(
                TokioWebSocketTransportFactory::new().with_url(self.settings.url()),
            )
            .with_http_client(http::ReqwestHttp::new()?)
            .with_inbound_durability_hook(hook)
            .skip_history_sync()
            .on_event(move |event, _client| {
                let tx = news_tx.clone();
                async move {
                    if matches!(
                        &*event,
                        Event::Connected(_)
                            | Event::LoggedOut(_)
                            | Event::Disconnected(_)
                            | Event::StreamReplaced(_)
                            | Event::TemporaryBan(_)
                            | Event::ClientOutdated(_)
                            | Event::ConnectFailure(_)
                    ) {
                        let _ = tx.send(event).await;
                    }
                }
            })
            .build()
            .await
            .map_err(|e| AdapterError::Config(format!("WhatsApp client: {e}")))?;
        let client = bot.client();
        let handle = bot.spawn();
        let first = tokio::time::timeout(CONNECT_WITHIN, news_rx.recv()).await;
        match first {
            Ok(Some(e)) if matches!(&*e, Event::Connected(_)) => {}
            Ok(Some(e)) => {
                handle.abort();
                return Err(match news_of(&e, &store, &self.channel) {
                    Some(LinkNews::Down(d)) => d,
                    None => AdapterError::Link("WhatsApp closed the connection".into()),
                });
            }
            Ok(None) => {
                handle.abort();
                return Err(AdapterError::Link("WhatsApp closed the connection".into()));
            }
            Err(_) => {
                handle.abort();
                return Err(AdapterError::Link(format!(
                    "no answer from {} within {}s",
                    self.settings.url(),
                    CONNECT_WITHIN.as_secs()
                )));
            }
        }
        self.running = Some(handle);
        let channel = self.channel.clone();
        let stream = futures::stream::unfold(
            (spool, news_rx, store, None::<u64>, channel),
            |(spool, mut news, store, committed, channel)| async move {
                // Polled again: the message handed out last is committed.
                if let Some(n) = committed {
                    if let Err(e) = spool.done(n) {
                        return Some((Err(e), (spool, news, store, None, channel)));
                    }
                }
                let item = loop {
                    tokio::select! {
                        (n, m) = spool.first() => break Ok((n, m)),
                        e = news.recv() => match e {
                            None => break Err(AdapterError::Link("the WhatsApp client stopped".into())),
                            Some(e) => match news_of(&e, &store, &channel) {
                                Some(LinkNews::Down(d)) => break Err(d),
                                // Connected again after the client's own reconnect.
                                None => continue,
                            },
                        },
                    }
                };
                match item {
                    Ok((n, m)) => Some((Ok::<Inbound, _>(m), (spool, news, store, Some(n), channel))),
                    Err(e) => Some((Err(e), (spool, news, store, None, channel))),
                }
            },
        )
        .boxed();
        let outbox = WhatsappWebOutbox {
            client,
            sent: self.sent.clone(),
        };
        Ok((outbox, stream))
    }
}
