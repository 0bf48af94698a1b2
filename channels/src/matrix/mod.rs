//! The Matrix channel: direct chats and rooms on one homeserver, files both ways, replies
//! threaded on the message they answer.
//!
//! Addresses are `matrix:LOCAL@SERVER` (`@alice:example.org` is `matrix:alice@example.org`).
//! A room with two members is a direct chat; a larger one is a group whose chat is the room
//! id. Invites are accepted per `invites`. What was said while the channel was away is
//! caught up from the `/sync` token, saved in the channel's folder once the messages
//! before it are in the log. End-to-end encrypted rooms are not supported: the bot says so
//! once in such a room and reads nothing there.

pub mod api;
pub mod settings;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::media::MediaStore;
use crate::platform::cursor::Cursor;
use crate::platform::format::render;
use crate::platform::recent::RecentIds;
use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, LengthUnit, Outbox, Outgoing, RateLimit,
    TextFormat,
};
use crate::protocol::Inbound;
use api::Api;
pub use settings::{address_of, user_of, InvitePolicy, MatrixSettings};

/// Longest message body sent (the homeserver caps a whole event at 65,536 bytes).
pub const MAX_BODY_CHARS: usize = 16_000;
/// Timeline events asked per room and sync (more than this while away: the oldest are
/// reported as skipped).
const TIMELINE_LIMIT: u32 = 200;

/// What the adapter and its outbox share.
struct Shared {
    api: Api,
    user_id: String,
    /// Direct chat room of each address, kept in the channel's folder.
    direct: Mutex<HashMap<String, String>>,
    direct_cursor: Cursor,
    /// Event ids the bot sent lately (a reply to one addresses the bot).
    sent: RecentIds,
}

impl Shared {
    fn direct_room(&self, address: &str) -> Option<String> {
        self.direct
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(address)
            .cloned()
    }

    fn remember_direct(&self, address: &str, room: &str) {
        let mut map = self.direct.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(address).map(String::as_str) == Some(room) {
            return;
        }
        map.insert(address.to_string(), room.to_string());
        if let Ok(json) = serde_json::to_string(&*map) {
            if let Err(e) = self.direct_cursor.save(&json) {
                tracing::warn!(error = %e, "cannot save the direct chat rooms");
            }
        }
    }
}

/// The Matrix adapter.
pub struct MatrixAdapter {
    settings: MatrixSettings,
    password: Option<String>,
    media: Option<MediaStore>,
}

impl MatrixAdapter {
    /// An adapter for these settings and password.
    pub fn new(settings: MatrixSettings, password: Option<String>) -> Self {
        MatrixAdapter {
            settings,
            password,
            media: MediaStore::from_env(),
        }
    }

    /// Reuse the saved login if the homeserver still knows it; otherwise log in again.
    async fn log_in(&self, http: &reqwest::Client) -> Result<Api, AdapterError> {
        let saved = Cursor::from_env("session");
        let session: Option<Value> = saved.load().and_then(|s| serde_json::from_str(&s).ok());
        let device = session
            .as_ref()
            .and_then(|s| s["device_id"].as_str())
            .map(String::from);
        if let Some(token) = session.as_ref().and_then(|s| s["access_token"].as_str()) {
            let api = Api::new(http.clone(), &self.settings.homeserver, token.to_string())?;
            match api.whoami().await {
                Ok(who) if who == self.settings.user_id => return Ok(api),
                Ok(_) | Err(AdapterError::AuthRefused(_)) => {
                    tracing::info!("the saved Matrix login is no longer valid; logging in again")
                }
                Err(e) => return Err(e),
            }
        }
        let password = self.password.as_deref().ok_or_else(|| {
            AdapterError::Config("a Matrix channel needs its password: set `secret_name`".into())
        })?;
        let name = self.settings.device_name.as_deref().unwrap_or("clawos");
        let (token, device_id) = api::login(
            http,
            &self.settings.homeserver,
            &self.settings.user_id,
            password,
            device.as_deref(),
            name,
        )
        .await?;
        saved.save(&json!({"access_token": token, "device_id": device_id}).to_string())?;
        Api::new(http.clone(), &self.settings.homeserver, token)
    }
}

/// The sending half.
pub struct MatrixOutbox {
    shared: Arc<Shared>,
}

impl MatrixOutbox {
    /// The room a message goes to: its chat, or the direct chat with its recipient
    /// (created when there is none yet).
    async fn room_for(&self, to: &str, chat: Option<&str>) -> Result<String, AdapterError> {
        if let Some(room) = chat {
            return Ok(room.to_string());
        }
        if let Some(room) = self.shared.direct_room(to) {
            return Ok(room);
        }
        let user = user_of(to)
            .ok_or_else(|| AdapterError::Refused(format!("`{to}` is not a Matrix address")))?;
        let room = self.shared.api.create_direct(&user).await?;
        self.shared.remember_direct(to, &room);
        Ok(room)
    }
}

/// An `m.text` content: the plain body and its HTML.
fn text_content(markdown: &str) -> Value {
    json!({
        "msgtype": "m.text",
        "body": render(markdown, TextFormat::Plain),
        "format": "org.matrix.custom.html",
        "formatted_body": render(markdown, TextFormat::Html),
    })
}

impl Outbox for MatrixOutbox {
    async fn typing(&self, to: &str, chat: Option<&str>, _: &str) -> Result<(), AdapterError> {
        let room = self.room_for(to, chat).await?;
        // Lapses by itself a little after the platform's next renewal.
        let lasts = crate::platform::typing::REFRESH * 2;
        let api = &self.shared.api;
        api.typing(&room, &self.shared.user_id, lasts).await
    }

    async fn edit(&self, message_id: &str, message: &Outgoing) -> Result<(), AdapterError> {
        let room = self.room_for(&message.to, message.chat.as_deref()).await?;
        let new = text_content(&message.text);
        let mut content = json!({
            "msgtype": "m.text",
            "body": format!("* {}", new["body"].as_str().unwrap_or_default()),
            "m.new_content": new,
            "m.relates_to": {"rel_type": "m.replace", "event_id": message_id},
        });
        content["format"] = json!("org.matrix.custom.html");
        content["formatted_body"] = json!(format!(
            "* {}",
            content["m.new_content"]["formatted_body"]
                .as_str()
                .unwrap_or_default()
        ));
        let txn = Uuid::now_v7().simple().to_string();
        self.shared
            .api
            .send(&room, "m.room.message", &txn, content)
            .await
            .map(|_| ())
    }

    async fn send(&self, message: &Outgoing) -> Result<Option<String>, AdapterError> {
        let room = self.room_for(&message.to, message.chat.as_deref()).await?;
        let mut content = match &message.file {
            Some(file) => {
                let bytes = file.read()?;
                let mime = file
                    .attachment
                    .mime
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into());
                let uri = self
                    .shared
                    .api
                    .upload(&file.attachment.name, &mime, bytes)
                    .await?;
                let msgtype = match mime.split('/').next() {
                    Some("image") => "m.image",
                    Some("audio") => "m.audio",
                    Some("video") => "m.video",
                    _ => "m.file",
                };
                json!({"msgtype": msgtype, "body": file.attachment.name, "url": uri,
                       "info": {"mimetype": mime, "size": file.attachment.size}})
            }
            None => text_content(&message.text),
        };
        if let Some(reply_to) = message
            .in_reply_to
            .as_deref()
            .filter(|e| e.starts_with('$'))
        {
            content["m.relates_to"] = json!({"m.in_reply_to": {"event_id": reply_to}});
        }
        let txn = Uuid::now_v7().simple().to_string();
        let event_id = self
            .shared
            .api
            .send(&room, "m.room.message", &txn, content)
            .await?;
        self.shared.sent.remember(event_id.clone());
        Ok(Some(event_id))
    }
}

impl Adapter for MatrixAdapter {
    type Outbox = MatrixOutbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            threads: true,
            edits: true,
            edit_interval: Duration::from_millis(1500),
            typing: true,
            attachments_in: true,
            attachments_out: true,
            ..Capabilities::text(
                MAX_BODY_CHARS,
                LengthUnit::Chars,
                TextFormat::Markdown,
                // Synapse's default rc_message: 0.2/s with a burst of 10.
                RateLimit {
                    burst: self.settings.burst.unwrap_or(10),
                    every: Duration::from_millis(self.settings.pace_ms.unwrap_or(5000)),
                },
            )
        }
    }

    async fn connect(&mut self) -> Result<(MatrixOutbox, InboundStream), AdapterError> {
        let http = crate::platform::http::client(self.settings.tls_ca_file.as_deref())?;
        let api = self.log_in(&http).await?;
        let direct_cursor = Cursor::from_env("direct_rooms");
        let direct = direct_cursor
            .load()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            api: api.clone(),
            user_id: self.settings.user_id.clone(),
            direct: Mutex::new(direct),
            direct_cursor,
            sent: RecentIds::default(),
        });
        for room in &self.settings.rooms {
            if let Err(e) = api.join(room).await {
                tracing::warn!(%room, error = %e, "cannot join a configured room");
            }
        }
        let sync = SyncLoop {
            shared: shared.clone(),
            settings: self.settings.clone(),
            media: self.media.clone(),
            token: Cursor::from_env("sync_token"),
            since: None,
            pending: None,
            queue: VecDeque::new(),
            members: HashMap::new(),
            encrypted_noticed: HashSet::new(),
        };
        let stream = futures::stream::unfold(sync, |mut s| async move {
            let item = s.next().await;
            Some((item, s))
        })
        .boxed();
        Ok((MatrixOutbox { shared }, stream))
    }
}

/// The `/sync` loop behind the inbound stream.
struct SyncLoop {
    shared: Arc<Shared>,
    settings: MatrixSettings,
    media: Option<MediaStore>,
    token: Cursor,
    since: Option<String>,
    /// The token after the batch being handed out, saved once the batch is committed.
    pending: Option<String>,
    queue: VecDeque<Inbound>,
    /// Joined members per room, for telling direct chats from groups.
    members: HashMap<String, usize>,
    encrypted_noticed: HashSet<String>,
}

impl SyncLoop {
    /// The next inbound message. The platform polls again only after the kernel committed
    /// the last one, so the sync token after a batch is saved when its queue ran dry.
    async fn next(&mut self) -> Result<Inbound, AdapterError> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                return Ok(m);
            }
            if let Some(t) = self.pending.take() {
                self.token.save(&t)?;
                self.since = Some(t);
            }
            if self.since.is_none() {
                self.since = match self.token.load() {
                    Some(t) => Some(t),
                    // A first start answers nothing from before it: skip the history.
                    None => Some(self.first_sync().await?),
                };
            }
            let batch = self
                .shared
                .api
                .sync(self.since.as_deref(), api::SYNC_TIMEOUT, TIMELINE_LIMIT)
                .await?;
            let next = batch["next_batch"]
                .as_str()
                .ok_or_else(|| AdapterError::Protocol("sync: no next_batch".into()))?
                .to_string();
            self.handle_invites(&batch).await;
            self.read_rooms(&batch).await?;
            self.pending = Some(next);
        }
    }

    async fn first_sync(&mut self) -> Result<String, AdapterError> {
        let batch = self.shared.api.sync(None, Duration::ZERO, 0).await?;
        self.handle_invites(&batch).await;
        let next = batch["next_batch"]
            .as_str()
            .ok_or_else(|| AdapterError::Protocol("sync: no next_batch".into()))?
            .to_string();
        self.token.save(&next)?;
        Ok(next)
    }

    async fn handle_invites(&mut self, batch: &Value) {
        let Some(invites) = batch["rooms"]["invite"].as_object() else {
            return;
        };
        for (room, invite) in invites {
            let inviter = invite["invite_state"]["events"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| {
                    e["type"] == "m.room.member"
                        && e["state_key"] == self.shared.user_id.as_str()
                        && e["content"]["membership"] == "invite"
                })
                .and_then(|e| e["sender"].as_str())
                .unwrap_or_default()
                .to_string();
            let accept = match self.settings.invites {
                InvitePolicy::All => true,
                InvitePolicy::Listed => self.settings.invite_from.contains(&inviter),
                InvitePolicy::None => false,
            };
            let done = if accept {
                self.shared.api.join(room).await.map(|_| ())
            } else {
                self.shared.api.leave(room).await
            };
            match done {
                Ok(()) => tracing::info!(%room, %inviter, accept, "answered an invite"),
                Err(e) => tracing::warn!(%room, error = %e, "cannot answer an invite"),
            }
            self.members.remove(room);
        }
    }

    async fn read_rooms(&mut self, batch: &Value) -> Result<(), AdapterError> {
        let Some(rooms) = batch["rooms"]["join"].as_object() else {
            return Ok(());
        };
        for (room, joined) in rooms {
            let timeline = &joined["timeline"];
            if timeline["limited"].as_bool() == Some(true) && self.since.is_some() {
                // A room just joined shows its history this way too: only read what is new.
                tracing::info!(%room, "a gap in the room's timeline (more than {TIMELINE_LIMIT} events, or just joined); older events are not read");
            }
            for event in timeline["events"].as_array().into_iter().flatten() {
                self.read_event(room, event).await?;
            }
        }
        Ok(())
    }

    async fn read_event(&mut self, room: &str, event: &Value) -> Result<(), AdapterError> {
        let kind = event["type"].as_str().unwrap_or_default();
        let sender = event["sender"].as_str().unwrap_or_default();
        if kind == "m.room.member" {
            self.members.remove(room);
            return Ok(());
        }
        if sender == self.shared.user_id || sender.is_empty() {
            return Ok(());
        }
        if kind == "m.room.encrypted" {
            return self.notice_encrypted(room).await;
        }
        if kind != "m.room.message" {
            return Ok(());
        }
        let content = &event["content"];
        // An edit is shown by the sender's client; the agent answered the original.
        if content["m.relates_to"]["rel_type"] == "m.replace" {
            return Ok(());
        }
        let Some(event_id) = event["event_id"].as_str() else {
            return Ok(());
        };
        let members = match self.members.get(room) {
            Some(n) => *n,
            None => {
                let n = self.shared.api.joined_members(room).await?;
                self.members.insert(room.to_string(), n);
                n
            }
        };
        let address = address_of(sender);
        let direct = members <= 2;
        let body = content["body"].as_str().unwrap_or_default();
        let (text, named) = match settings::user_parts(&self.shared.user_id) {
            Ok((local, _)) => crate::irc::addressing(body, local),
            Err(_) => (body.to_string(), false),
        };
        let mentioned = direct
            || named
            || content["m.mentions"]["user_ids"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|i| i == self.shared.user_id.as_str()))
            || content["m.relates_to"]["m.in_reply_to"]["event_id"]
                .as_str()
                .is_some_and(|e| self.shared.sent.contains(e));
        if direct {
            self.shared.remember_direct(&address, room);
        }
        let attachments = self.attachments(content).await;
        self.queue.push_back(Inbound {
            external_id: event_id.to_string(),
            sender: address,
            chat: (!direct).then(|| room.to_string()),
            text,
            attachments,
            sent_at_ms: event["origin_server_ts"].as_i64().unwrap_or(0),
            mentioned,
        });
        Ok(())
    }

    /// The file of an `m.image`/`m.file`/`m.audio`/`m.video`, kept in the media store
    /// (above the cap, or without a store, recorded without its bytes).
    async fn attachments(&self, content: &Value) -> Vec<clawos_events::Attachment> {
        let msgtype = content["msgtype"].as_str().unwrap_or_default();
        if !matches!(msgtype, "m.image" | "m.file" | "m.audio" | "m.video") {
            return Vec::new();
        }
        let Some(url) = content["url"].as_str() else {
            return Vec::new();
        };
        let name = content["filename"]
            .as_str()
            .or(content["body"].as_str())
            .unwrap_or("file")
            .to_string();
        let mime = content["info"]["mimetype"].as_str().map(String::from);
        let size = content["info"]["size"].as_u64().unwrap_or(0);
        let unkept = clawos_events::Attachment {
            name: name.clone(),
            mime: mime.clone(),
            size,
            blake3: None,
            location: Some(url.to_string()),
        };
        let Some(store) = &self.media else {
            return vec![unkept];
        };
        if let Err(e) = store.check_size(&name, size) {
            tracing::warn!(error = %e, "an attachment was not kept");
            return vec![unkept];
        }
        let kept = match self.shared.api.download(url, store.max_bytes()).await {
            Ok(bytes) => store
                .put(&name, mime.as_deref(), &bytes)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match kept {
            Ok(mut a) => {
                a.location = Some(url.to_string());
                vec![a]
            }
            Err(why) => {
                tracing::warn!(%url, %why, "an attachment was not kept");
                vec![unkept]
            }
        }
    }

    async fn notice_encrypted(&mut self, room: &str) -> Result<(), AdapterError> {
        if !self.encrypted_noticed.insert(room.to_string()) {
            return Ok(());
        }
        tracing::warn!(%room, "an end-to-end encrypted room: not supported");
        let text = "This room is end-to-end encrypted, which clawos does not support yet: \
                    I cannot read messages here. Please talk to me in an unencrypted room.";
        let txn = Uuid::now_v7().simple().to_string();
        self.shared
            .api
            .send(
                room,
                "m.room.message",
                &txn,
                json!({"msgtype": "m.notice", "body": text}),
            )
            .await
            .map(|_| ())
    }
}
