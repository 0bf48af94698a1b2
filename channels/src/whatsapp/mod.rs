//! The WhatsApp channel, through the WhatsApp Business Cloud API: direct messages only
//! (the Cloud API has no group chats), replies threaded with `context`, files both ways.
//!
//! Addresses are `whatsapp:WA_ID@whatsapp` (the person's WhatsApp id, their number).
//! Messages come to a webhook the adapter listens on (setting `listen`; Meta reaches it
//! through a tunnel or proxy); a notification is answered 200 only once each of its
//! messages is committed by the kernel, so one that arrives while the channel process is
//! away is sent again by Meta and answered then (the Gateway drops a message it already
//! has by its `wamid`). Replies go by `POST /{phone_number_id}/messages`. The linked-device
//! (QR code) protocol of WhatsApp Web is not implemented.

pub mod api;
pub mod hook;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

use crate::media::MediaStore;
use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, LengthUnit, Outbox, Outgoing, RateLimit,
    TextFormat,
};
use crate::protocol::Inbound;
use api::{Api, Body};
use hook::Arrived;
pub use settings::{address_of, wa_id_of, WhatsappSettings};

/// Longest text message: the Cloud API's 4,096 characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// The WhatsApp adapter.
pub struct WhatsappAdapter {
    settings: WhatsappSettings,
    secret: Option<String>,
    media: Option<MediaStore>,
    /// The webhook's messages, once it listens (it keeps listening across reconnects).
    arrived: Option<Arc<Mutex<tokio::sync::mpsc::Receiver<Arrived>>>>,
}

impl WhatsappAdapter {
    /// An adapter for these settings and the secret `ACCESS_TOKEN:APP_SECRET`.
    pub fn new(settings: WhatsappSettings, secret: Option<String>) -> Self {
        WhatsappAdapter {
            settings,
            secret,
            media: MediaStore::from_env(),
            arrived: None,
        }
    }
}

/// The sending half.
pub struct WhatsappOutbox {
    api: Api,
    phone_number_id: String,
}

/// Whether WhatsApp shows this media type as an image (JPEG and PNG only).
fn is_image(mime: &str) -> bool {
    matches!(mime, "image/jpeg" | "image/png")
}

impl Outbox for WhatsappOutbox {
    async fn send(&self, message: &Outgoing) -> Result<Option<String>, AdapterError> {
        if message.chat.is_some() {
            return Err(AdapterError::Refused(
                "the WhatsApp Cloud API has no group chats".into(),
            ));
        }
        let to = wa_id_of(&message.to).ok_or_else(|| {
            AdapterError::Refused(format!("`{}` is not a WhatsApp address", message.to))
        })?;
        let mut body = json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                              "to": to});
        match &message.file {
            Some(file) => {
                let mime = file
                    .attachment
                    .mime
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into());
                let upload = Body::File {
                    fields: vec![
                        ("messaging_product".into(), "whatsapp".into()),
                        ("type".into(), mime.clone()),
                    ],
                    name: file.attachment.name.clone(),
                    mime: mime.clone(),
                    bytes: file.read()?,
                };
                let path = format!("/{}/media", self.phone_number_id);
                let up = self
                    .api
                    .call_within(&path, Some(upload), Duration::from_secs(120))
                    .await?;
                let id = up["id"].as_str().ok_or_else(|| {
                    AdapterError::Protocol("POST media: no id in the answer".into())
                })?;
                if is_image(&mime) {
                    body["type"] = json!("image");
                    body["image"] = json!({"id": id});
                } else {
                    body["type"] = json!("document");
                    body["document"] = json!({"id": id, "filename": file.attachment.name});
                }
            }
            None => {
                body["type"] = json!("text");
                body["text"] = json!({"body": message.text, "preview_url": false});
            }
        }
        if let Some(r) = &message.in_reply_to {
            body["context"] = json!({"message_id": r});
        }
        let path = format!("/{}/messages", self.phone_number_id);
        let sent = self.api.call(&path, Some(Body::Json(body))).await?;
        Ok(sent["messages"][0]["id"].as_str().map(String::from))
    }
}

impl Adapter for WhatsappAdapter {
    type Outbox = WhatsappOutbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            threads: true,
            attachments_in: true,
            attachments_out: true,
            groups: false,
            ..Capabilities::text(
                MAX_TEXT_CHARS,
                LengthUnit::Chars,
                TextFormat::Plain,
                RateLimit {
                    burst: 5,
                    every: Duration::from_millis(500),
                },
            )
        }
    }

    async fn connect(&mut self) -> Result<(WhatsappOutbox, InboundStream), AdapterError> {
        let (token, app_secret) = settings::split_secret(self.secret.as_deref())?;
        let http = crate::platform::http::client(self.settings.tls_ca_file.as_deref())?;
        let api = Api::new(http, &self.settings, token);
        let number = format!("/{}", self.settings.phone_number_id);
        let me = api.call(&number, None).await?;
        tracing::info!(number = %me["display_phone_number"], "connected to the WhatsApp Cloud API");
        let arrived = match &self.arrived {
            Some(a) => a.clone(),
            None => {
                let rx = hook::listen(
                    &self.settings.webhook_listen,
                    &app_secret,
                    &self.settings.verify_token,
                )?;
                let a = Arc::new(Mutex::new(rx));
                self.arrived = Some(a.clone());
                a
            }
        };
        let inbox = Inbox {
            arrived: arrived.lock_owned().await,
            api: api.clone(),
            media: self.media.clone(),
            number,
            pending: None,
            probe: tokio::time::interval_at(
                tokio::time::Instant::now()
                    + Duration::from_secs(self.settings.probe_secs.unwrap_or(30)),
                Duration::from_secs(self.settings.probe_secs.unwrap_or(30)),
            ),
        };
        let stream = futures::stream::unfold(inbox, |mut i| async move {
            let item = i.next().await;
            Some((item, i))
        })
        .boxed();
        let outbox = WhatsappOutbox {
            api,
            phone_number_id: self.settings.phone_number_id.clone(),
        };
        Ok((outbox, stream))
    }
}

/// The inbound stream's state: the webhook's messages, read one at a time.
struct Inbox {
    arrived: OwnedMutexGuard<tokio::sync::mpsc::Receiver<Arrived>>,
    api: Api,
    media: Option<MediaStore>,
    /// `/{phone_number_id}`, probed now and then so a refused token shows as a link down.
    number: String,
    /// The completion of the message handed out last: the platform polls again only once
    /// the kernel committed it.
    pending: Option<oneshot::Sender<()>>,
    probe: tokio::time::Interval,
}

impl Inbox {
    async fn next(&mut self) -> Result<Inbound, AdapterError> {
        loop {
            if let Some(done) = self.pending.take() {
                let _ = done.send(());
            }
            tokio::select! {
                a = self.arrived.recv() => {
                    let Some(a) = a else {
                        return Err(AdapterError::Link("the webhook listener stopped".into()));
                    };
                    if a.phone_number_id.as_deref().is_some_and(|p| Some(p) != self.number.get(1..)) {
                        tracing::warn!(to = ?a.phone_number_id, "a message for another number skipped");
                        let _ = a.done.send(());
                        continue;
                    }
                    match self.read(&a.message).await {
                        Some(m) => {
                            self.pending = Some(a.done);
                            return Ok(m);
                        }
                        None => {
                            let _ = a.done.send(());
                        }
                    }
                }
                _ = self.probe.tick() => {
                    self.api.call(&self.number, None).await?;
                }
            }
        }
    }

    /// A message as an inbound message (`None`: a reaction, a type the agent cannot
    /// read, or malformed).
    async fn read(&self, m: &Value) -> Option<Inbound> {
        let (Some(from), Some(id)) = (m["from"].as_str(), m["id"].as_str()) else {
            tracing::warn!("a message without a sender or id skipped");
            return None;
        };
        if from.is_empty() || !from.bytes().all(|b| b.is_ascii_digit()) {
            tracing::warn!(%from, "a message from a malformed WhatsApp id skipped");
            return None;
        }
        let kind = m["type"].as_str().unwrap_or("");
        let (text, attachments) = match kind {
            "text" => (
                m["text"]["body"].as_str().unwrap_or("").to_string(),
                Vec::new(),
            ),
            "image" | "document" | "audio" | "video" | "sticker" => {
                let f = &m[kind];
                let caption = f["caption"].as_str().unwrap_or("").to_string();
                (caption, self.attachment(kind, f).await)
            }
            other => {
                tracing::info!(kind = %other, "a message of a type the agent does not read skipped");
                return None;
            }
        };
        let text = text.trim().to_string();
        if text.is_empty() && attachments.is_empty() {
            return None;
        }
        let sent_at = m["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0);
        Some(Inbound {
            external_id: id.to_string(),
            sender: address_of(from),
            chat: None,
            text,
            attachments,
            sent_at_ms: sent_at.saturating_mul(1000),
            mentioned: true,
        })
    }

    /// A media message's file, kept in the media store (without a store, or when it
    /// cannot be fetched, recorded without its bytes).
    async fn attachment(&self, kind: &str, f: &Value) -> Vec<clawos_events::Attachment> {
        let Some(media_id) = f["id"].as_str() else {
            return Vec::new();
        };
        let mime = f["mime_type"]
            .as_str()
            .map(|m| m.split(';').next().unwrap_or(m).trim().to_string());
        let ext = mime
            .as_deref()
            .and_then(|m| m.split('/').nth(1))
            .unwrap_or("bin");
        let name = f["filename"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("{kind}_{media_id}.{ext}"));
        let unkept = clawos_events::Attachment {
            name: name.clone(),
            mime: mime.clone(),
            size: 0,
            blake3: None,
            location: Some(format!("whatsapp-media:{media_id}")),
        };
        let Some(store) = &self.media else {
            return vec![unkept];
        };
        let kept = async {
            let info = self.api.call(&format!("/{media_id}"), None).await?;
            let size = info["file_size"].as_u64().unwrap_or(0);
            store
                .check_size(&name, size)
                .map_err(|e| AdapterError::Refused(e.to_string()))?;
            let url = info["url"].as_str().ok_or_else(|| {
                AdapterError::Protocol(format!("GET /{media_id}: no url in the answer"))
            })?;
            let bytes = self.api.download(url, store.max_bytes()).await?;
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
