//! The task that owns one logged-in connection: it writes what the outbox asks, answers
//! the server's requests (ping, disco), keeps the link alive (XEP-0199 after
//! [`super::link::KEEPALIVE`] of silence), tracks the rooms it joined and their occupants, catches up
//! from the archives (XEP-0313) and turns messages into [`Item`]s for the inbound stream.
//!
//! Catch-up: the bot's own archive from the position saved in the cursor `mam`, each room's
//! from `mam-ROOM`. Without a saved position, the newest archive id becomes the position
//! (history from before the first start is not answered). Initial presence goes out first,
//! so offline messages are delivered too; they carry the same stanza id as their archive
//! copy, and duplicates are dropped here and by the Gateway.

use std::collections::{HashMap, HashSet, VecDeque};

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::disco::{DiscoInfoResult, Identity};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::mam::{Fin, Query, QueryId};
use tokio_xmpp::parsers::message::{Message, MessageType};
use tokio_xmpp::parsers::muc::muc::{History, Muc};
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::rsm::SetQuery;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::xmlstream::{FallibleStreamElement, ReadError, XmppStreamElement};
use tokio_xmpp::Stanza;

use super::link::{read_error, send, Link, Stream};
use super::read::{archive_result, read, stanza_id, Archived, Me, Room, Said, NS_MUC_USER};
use crate::platform::cursor::Cursor;
use crate::platform::AdapterError;

/// Results per archive page.
pub const PAGE: usize = 100;
/// How many message ids the driver remembers to drop duplicates.
const SEEN: usize = 4096;

/// What the outbox asks of the driver.
pub enum Command {
    /// Write a stanza; answered once it is written.
    Send(Stanza, oneshot::Sender<Result<(), AdapterError>>),
    /// Send an IQ request; answered with its result or error.
    Request(Iq, oneshot::Sender<Result<Iq, AdapterError>>),
}

/// A position in an archive: the cursor file and the archive id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The cursor's file name (`mam`, `mam-ROOM`).
    pub cursor: String,
    /// The id of the last message handled in that archive.
    pub id: String,
}

/// What the driver hands the inbound stream, in order.
#[derive(Debug)]
pub enum Item {
    /// A person's message, and the archive position to save once it is committed.
    Said(Said, Option<Position>),
    /// A position to save (a message that needs no answer was passed).
    Position(Position),
    /// The link is down.
    Down(AdapterError),
}

/// The cursor file of an archive.
pub fn cursor_file(archive: &BareJid, me: &BareJid) -> String {
    if archive == me {
        "mam".into()
    } else {
        format!("mam-{}", archive.as_str().replace(['/', '\\'], "_"))
    }
}

enum Waiter {
    Caller(oneshot::Sender<Result<Iq, AdapterError>>),
    Archive(String),
    Ping,
}

struct ArchiveQuery {
    archive: BareJid,
    /// Only learning the newest id (no position was saved yet).
    positioning: bool,
    last: Option<String>,
    count: usize,
}

/// The connection's state.
pub struct Driver {
    stream: Stream,
    bare: BareJid,
    rooms: HashMap<BareJid, Room>,
    commands: mpsc::Receiver<Command>,
    items: mpsc::UnboundedSender<Item>,
    waiting: HashMap<String, (Option<Jid>, Waiter)>,
    queries: HashMap<String, ArchiveQuery>,
    caught_up: HashSet<BareJid>,
    seen: (HashSet<String>, VecDeque<String>),
    counter: u64,
}

impl Driver {
    /// A driver for a logged-in link, the rooms to join (with the bot's nick) and the
    /// channels to the outbox and the inbound stream.
    pub fn new(
        link: Link,
        rooms: Vec<BareJid>,
        nick: &str,
        commands: mpsc::Receiver<Command>,
        items: mpsc::UnboundedSender<Item>,
    ) -> (Self, Vec<Stanza>) {
        let rooms = rooms
            .into_iter()
            .map(|r| {
                let room = Room {
                    nick: nick.to_string(),
                    occupants: HashMap::new(),
                };
                (r, room)
            })
            .collect();
        let driver = Driver {
            stream: link.stream,
            bare: link.jid.to_bare(),
            rooms,
            commands,
            items,
            waiting: HashMap::new(),
            queries: HashMap::new(),
            caught_up: HashSet::new(),
            seen: (HashSet::new(), VecDeque::new()),
            counter: 0,
        };
        (driver, link.early)
    }

    /// Run until the link drops (the reason goes to the inbound stream) or the platform
    /// lets go of both halves.
    pub async fn run(mut self, early: Vec<Stanza>) {
        let ended = self.serve(early).await;
        if let Err(e) = ended {
            let _ = self.items.send(Item::Down(e));
        } else {
            let close = self.stream.shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), close).await;
        }
    }

    async fn serve(&mut self, early: Vec<Stanza>) -> Result<(), AdapterError> {
        for s in early {
            self.stanza(s).await?;
        }
        self.start().await?;
        loop {
            tokio::select! {
                c = self.commands.recv() => match c {
                    Some(c) => self.command(c).await?,
                    None => return Ok(()),
                },
                _ = self.items.closed() => return Ok(()),
                el = self.stream.next() => match el {
                    None => return Err(AdapterError::Link("the server closed the connection".into())),
                    Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(s)))) => self.stanza(s).await?,
                    Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::StreamError(e)))) => {
                        return Err(AdapterError::Link(format!("the server ended the stream: {e}")));
                    }
                    Some(Ok(FallibleStreamElement::Ok(_))) => {}
                    Some(Ok(FallibleStreamElement::Err(e))) => {
                        tracing::warn!(error = %e, "skipping an invalid stanza from the XMPP server");
                    }
                    Some(Err(ReadError::SoftTimeout)) => self.ping().await?,
                    Some(Err(e)) => return Err(read_error(e)),
                },
            }
        }
    }

    fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("clawos-{}", self.counter)
    }

    /// Presence, room joins, then catch-up from each archive.
    async fn start(&mut self) -> Result<(), AdapterError> {
        send(&mut self.stream, Presence::available().into()).await?;
        let rooms: Vec<BareJid> = self.rooms.keys().cloned().collect();
        for room in &rooms {
            self.join(room).await?;
        }
        let me = self.bare.clone();
        self.catch_up(&me).await?;
        for room in &rooms {
            self.catch_up(room).await?;
        }
        Ok(())
    }

    async fn join(&mut self, room: &BareJid) -> Result<(), AdapterError> {
        let Some(nick) = self.rooms.get(room).map(|r| r.nick.clone()) else {
            return Ok(());
        };
        let to = match room.with_resource_str(&nick) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(%room, %nick, error = %e, "cannot join a room with this nick");
                return Ok(());
            }
        };
        let join = Presence::available()
            .with_to(to)
            .with_payload(Muc::new().with_history(History::new().with_maxstanzas(0)));
        send(&mut self.stream, join.into()).await
    }

    /// Ask `archive` for what came after its saved position (or for its newest id).
    async fn catch_up(&mut self, archive: &BareJid) -> Result<(), AdapterError> {
        let saved = Cursor::from_env(&cursor_file(archive, &self.bare)).load();
        let positioning = saved.is_none();
        self.query(archive.clone(), saved, positioning).await
    }

    async fn query(
        &mut self,
        archive: BareJid,
        after: Option<String>,
        positioning: bool,
    ) -> Result<(), AdapterError> {
        let queryid = self.next_id();
        let set = if positioning {
            SetQuery {
                max: Some(1),
                after: None,
                before: Some(String::new()),
                index: None,
            }
        } else {
            SetQuery {
                max: Some(PAGE),
                after,
                before: None,
                index: None,
            }
        };
        let query = Query {
            queryid: Some(QueryId(queryid.clone())),
            node: None,
            form: None,
            set: Some(set),
            flip_page: false,
        };
        let to = (archive != self.bare).then(|| Jid::from(archive.clone()));
        let id = self.next_id();
        let mut iq = Iq::from_set(id.clone(), query);
        if let Some(to) = &to {
            iq = iq.with_to(to.clone());
        }
        self.waiting
            .insert(id, (to, Waiter::Archive(queryid.clone())));
        self.queries.insert(
            queryid,
            ArchiveQuery {
                archive,
                positioning,
                last: None,
                count: 0,
            },
        );
        send(&mut self.stream, iq.into()).await
    }

    async fn ping(&mut self) -> Result<(), AdapterError> {
        let id = self.next_id();
        let to = Jid::from(BareJid::from_parts(None, self.bare.domain()));
        self.waiting
            .insert(id.clone(), (Some(to.clone()), Waiter::Ping));
        send(&mut self.stream, Iq::from_get(id, Ping).with_to(to).into()).await
    }

    async fn command(&mut self, c: Command) -> Result<(), AdapterError> {
        match c {
            Command::Send(stanza, done) => {
                let sent = send(&mut self.stream, stanza).await;
                let _ = done.send(sent.clone());
                sent
            }
            Command::Request(mut iq, done) => {
                if iq.id().is_empty() {
                    *iq.id_mut() = self.next_id();
                }
                let to = iq.to().cloned();
                self.waiting
                    .insert(iq.id().to_string(), (to, Waiter::Caller(done)));
                send(&mut self.stream, iq.into()).await
            }
        }
    }

    /// Whether an answer came from the entity the request went to (the server answers
    /// for requests without an address, and for the account's bare JID).
    fn answered_by_addressee(&self, from: Option<&Jid>, to: Option<&Jid>) -> bool {
        let own = |j: Option<&Jid>| match j {
            None => true,
            Some(j) => {
                let b = j.to_bare();
                b == self.bare || (b.node().is_none() && b.domain() == self.bare.domain())
            }
        };
        match to {
            None => own(from),
            Some(to) if to.to_bare() == self.bare => own(from),
            Some(to) => from == Some(to),
        }
    }

    async fn stanza(&mut self, s: Stanza) -> Result<(), AdapterError> {
        match s {
            Stanza::Iq(iq) => self.iq(iq).await,
            Stanza::Message(m) => self.message(m).await,
            Stanza::Presence(p) => self.presence(p).await,
        }
    }

    async fn iq(&mut self, iq: Iq) -> Result<(), AdapterError> {
        match iq {
            Iq::Result { .. } | Iq::Error { .. } => {
                let id = iq.id().to_string();
                let Some((to, _)) = self.waiting.get(&id) else {
                    return Ok(());
                };
                if !self.answered_by_addressee(iq.from(), to.as_ref()) {
                    tracing::warn!(from = ?iq.from(), "ignoring an answer from the wrong sender");
                    return Ok(());
                }
                let Some((_, waiter)) = self.waiting.remove(&id) else {
                    return Ok(());
                };
                match waiter {
                    Waiter::Caller(tx) => {
                        let _ = tx.send(Ok(iq));
                    }
                    Waiter::Archive(queryid) => self.archive_done(&queryid, iq).await?,
                    Waiter::Ping => {}
                }
                Ok(())
            }
            Iq::Get {
                from, id, payload, ..
            } => {
                let answer = if payload.is("ping", tokio_xmpp::parsers::ns::PING) {
                    Iq::Result {
                        from: None,
                        to: from,
                        id,
                        payload: None,
                    }
                } else if payload.is("query", tokio_xmpp::parsers::ns::DISCO_INFO)
                    && payload.attr("node").is_none()
                {
                    Iq::from_result(id, Some(disco_info())).with_to_opt(from)
                } else {
                    refusal(from, id)
                };
                send(&mut self.stream, answer.into()).await
            }
            Iq::Set {
                from, id, payload, ..
            } => {
                // Roster pushes come from the account itself; anything else is refused.
                let roster = payload.is("query", tokio_xmpp::parsers::ns::ROSTER)
                    && self.answered_by_addressee(from.as_ref(), None);
                let answer = if roster {
                    Iq::Result {
                        from: None,
                        to: from,
                        id,
                        payload: None,
                    }
                } else {
                    refusal(from, id)
                };
                send(&mut self.stream, answer.into()).await
            }
        }
    }

    async fn archive_done(&mut self, queryid: &str, iq: Iq) -> Result<(), AdapterError> {
        let Some(q) = self.queries.remove(queryid) else {
            return Ok(());
        };
        match iq {
            Iq::Result {
                payload: Some(p), ..
            } => {
                let fin = Fin::try_from(p).ok();
                let complete = fin.as_ref().is_none_or(|f| f.complete);
                let last = fin.and_then(|f| f.set.last).or(q.last.clone());
                if q.positioning || complete || q.count == 0 {
                    tracing::info!(archive = %q.archive, caught_up = q.count, "archive caught up");
                    self.caught_up.insert(q.archive);
                    Ok(())
                } else {
                    self.query(q.archive, last, false).await
                }
            }
            Iq::Error { error, .. } => {
                if !q.positioning && error.defined_condition == DefinedCondition::ItemNotFound {
                    tracing::warn!(archive = %q.archive,
                        "the saved archive position is gone; starting from the newest message");
                    return self.query(q.archive, None, true).await;
                }
                tracing::warn!(archive = %q.archive, error = ?error.defined_condition,
                    "the archive cannot be queried; no catch-up for it");
                self.caught_up.insert(q.archive);
                Ok(())
            }
            _ => {
                self.caught_up.insert(q.archive);
                Ok(())
            }
        }
    }

    fn remember(&mut self, id: &str) -> bool {
        let (set, order) = &mut self.seen;
        if !set.insert(id.to_string()) {
            return false;
        }
        order.push_back(id.to_string());
        if order.len() > SEEN {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }

    fn hand(&mut self, said: Option<Said>, position: Option<Position>) {
        let item = match (said, position) {
            (Some(said), p) if self.remember(&said.inbound.external_id) => Item::Said(said, p),
            (_, Some(p)) => Item::Position(p),
            _ => return,
        };
        let _ = self.items.send(item);
    }

    async fn message(&mut self, m: Message) -> Result<(), AdapterError> {
        if let Some(r) = archive_result(&m) {
            let Some(q) = r.queryid.as_deref().and_then(|id| self.queries.get_mut(id)) else {
                return Ok(());
            };
            let archive = q.archive.clone();
            let from_archive = match &m.from {
                None => archive == self.bare,
                Some(f) => f.to_bare() == archive,
            };
            if !from_archive {
                tracing::warn!(from = ?m.from, "ignoring an archive result from the wrong sender");
                return Ok(());
            }
            q.last = Some(r.id.clone());
            q.count += 1;
            let positioning = q.positioning;
            let position = Position {
                cursor: cursor_file(&archive, &self.bare),
                id: r.id.clone(),
            };
            if positioning {
                self.hand(None, Some(position));
                return Ok(());
            }
            let archived = Archived {
                archive,
                id: r.id,
                stamp_ms: r.stamp_ms,
            };
            let me = Me {
                jid: &self.bare,
                rooms: &self.rooms,
            };
            let said = read(&r.message, &me, Some(&archived));
            self.hand(said, Some(position));
            return Ok(());
        }
        if m.type_ == MessageType::Error {
            tracing::warn!(from = ?m.from, "the XMPP server bounced a message");
            return Ok(());
        }
        // The archive this message went into, when its id there can be trusted.
        let archive = match m.type_ {
            MessageType::Groupchat => m.from.as_ref().map(|f| f.to_bare()),
            _ => Some(self.bare.clone()),
        };
        let position = archive
            .filter(|a| self.caught_up.contains(a))
            .and_then(|a| {
                stanza_id(&m, &a).map(|id| Position {
                    cursor: cursor_file(&a, &self.bare),
                    id,
                })
            });
        let me = Me {
            jid: &self.bare,
            rooms: &self.rooms,
        };
        let said = read(&m, &me, None);
        self.hand(said, position);
        Ok(())
    }

    async fn presence(&mut self, p: Presence) -> Result<(), AdapterError> {
        let Some(from) = p.from.clone() else {
            return Ok(());
        };
        let room_jid = from.to_bare();
        if !self.rooms.contains_key(&room_jid) {
            if p.type_ == PresenceType::Subscribe {
                // Let people see that the bot is online; who may talk is the Gateway's call.
                let ok = Presence::new(PresenceType::Subscribed).with_to(room_jid);
                send(&mut self.stream, ok.into()).await?;
            }
            return Ok(());
        }
        let nick = from.resource().map(|r| r.to_string()).unwrap_or_default();
        let x = p.payloads.iter().find(|e| e.is("x", NS_MUC_USER));
        let status = |code: &str| {
            x.is_some_and(|x| {
                x.children()
                    .any(|s| s.is("status", NS_MUC_USER) && s.attr("code") == Some(code))
            })
        };
        let myself = status("110");
        match p.type_ {
            PresenceType::Error => {
                let why = p
                    .payloads
                    .iter()
                    .find(|e| e.name() == "error")
                    .and_then(|e| e.children().next().map(|c| c.name().to_string()))
                    .unwrap_or_default();
                tracing::warn!(room = %room_jid, %why, "cannot join the room");
                let retry = why == "conflict";
                if let Some(room) = self.rooms.get_mut(&room_jid) {
                    if retry && room.nick.len() < 64 {
                        room.nick.push('_');
                        return self.join(&room_jid).await;
                    }
                }
            }
            PresenceType::Unavailable => {
                if let Some(room) = self.rooms.get_mut(&room_jid) {
                    room.occupants.remove(&nick);
                }
                if myself {
                    tracing::warn!(room = %room_jid, "the bot left the room (kicked, or the room is gone)");
                }
            }
            PresenceType::None => {
                let real = x
                    .and_then(|x| x.get_child("item", NS_MUC_USER))
                    .and_then(|i| i.attr("jid"))
                    .and_then(|j| Jid::new(j).ok())
                    .map(|j| j.to_bare());
                if let Some(room) = self.rooms.get_mut(&room_jid) {
                    if myself {
                        tracing::info!(room = %room_jid, nick = %nick, "joined the room");
                        room.nick = nick.clone();
                    } else if let Some(real) = real {
                        room.occupants.insert(nick, real);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

trait WithToOpt {
    fn with_to_opt(self, to: Option<Jid>) -> Self;
}

impl WithToOpt for Iq {
    fn with_to_opt(self, to: Option<Jid>) -> Self {
        match to {
            Some(to) => self.with_to(to),
            None => self,
        }
    }
}

fn refusal(to: Option<Jid>, id: String) -> Iq {
    Iq::from_error(
        id,
        StanzaError::new(
            ErrorType::Cancel,
            DefinedCondition::ServiceUnavailable,
            "en",
            "not supported",
        ),
    )
    .with_to_opt(to)
}

/// What the bot tells `disco#info`: a bot client that pings and takes files.
fn disco_info() -> DiscoInfoResult {
    let features = [
        tokio_xmpp::parsers::ns::DISCO_INFO,
        tokio_xmpp::parsers::ns::PING,
        super::read::NS_OOB,
    ];
    DiscoInfoResult {
        node: None,
        identities: vec![Identity::new("client", "bot", "en", "clawos")],
        features: features.iter().map(|f| f.to_string()).collect(),
        extensions: vec![],
    }
}
