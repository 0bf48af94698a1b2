//! Message stanzas read as what a person said: 1:1 chats, room messages (mentions, the
//! bot's own echo, room history), archived messages (XEP-0313), files (XEP-0066 OOB or a
//! body that is a file's URL), ids (XEP-0359) and timestamps (XEP-0203). Pure functions:
//! no I/O, every input tolerated.

use std::collections::HashMap;

use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::date::DateTime;
use tokio_xmpp::parsers::mam;
use tokio_xmpp::parsers::message::{Message, MessageType};
use uuid::Uuid;

use crate::protocol::Inbound;

/// XEP-0066 Out of Band Data, as used for shared files.
pub const NS_OOB: &str = "jabber:x:oob";
/// XEP-0359 stanza ids.
pub const NS_SID: &str = "urn:xmpp:sid:0";
/// XEP-0203 delayed delivery.
pub const NS_DELAY: &str = "urn:xmpp:delay";
/// XEP-0045 room user data.
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// At most this many files are taken from one message.
pub const MAX_FILES: usize = 8;

/// A room the bot is in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Room {
    /// The bot's nick in it.
    pub nick: String,
    /// Occupants' real JIDs by nick, when the room shows them to the bot.
    pub occupants: HashMap<String, BareJid>,
}

/// What the reader knows of the bot.
pub struct Me<'a> {
    /// Its account.
    pub jid: &'a BareJid,
    /// The rooms it is in, by room JID.
    pub rooms: &'a HashMap<BareJid, Room>,
}

/// A message as an archive (XEP-0313) returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct Archived {
    /// The archive: the bot's account or a room.
    pub archive: BareJid,
    /// The message's id in that archive.
    pub id: String,
    /// When it was archived (unix ms).
    pub stamp_ms: Option<i64>,
}

/// A person's message, read: the inbound message (attachments not yet fetched) and the
/// URLs of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// What goes to the Gateway.
    pub inbound: Inbound,
    /// Files to fetch and attach.
    pub files: Vec<String>,
}

/// One result of an archive query: the query it answers, the id, the message.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveResult {
    /// The query id it answers.
    pub queryid: Option<String>,
    /// The archive id.
    pub id: String,
    /// The archived message.
    pub message: Message,
    /// When it was archived (unix ms).
    pub stamp_ms: Option<i64>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn stamp_ms(stamp: &DateTime) -> i64 {
    stamp.0.timestamp_millis()
}

/// The archive result a message carries, if it is one.
pub fn archive_result(m: &Message) -> Option<ArchiveResult> {
    let el = m.payloads.iter().find(|p| p.is("result", mam_ns()))?;
    let result = match mam::Result_::try_from(el.clone()) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "skipping an archive result that does not parse");
            return None;
        }
    };
    Some(ArchiveResult {
        queryid: result.queryid.map(|q| q.0),
        id: result.id,
        stamp_ms: result.forwarded.delay.as_ref().map(|d| stamp_ms(&d.stamp)),
        message: result.forwarded.message,
    })
}

fn mam_ns() -> &'static str {
    tokio_xmpp::parsers::ns::MAM
}

/// The stanza id (XEP-0359) that `by` gave the message, if it gave one.
pub fn stanza_id(m: &Message, by: &BareJid) -> Option<String> {
    m.payloads
        .iter()
        .filter(|p| p.is("stanza-id", NS_SID))
        .find(|p| {
            p.attr("by")
                .and_then(|b| BareJid::new(b).ok())
                .is_some_and(|b| &b == by)
        })
        .and_then(|p| p.attr("id"))
        .filter(|id| !id.is_empty())
        .map(String::from)
}

fn child<'a>(m: &'a Message, name: &str, ns: &str) -> Option<&'a Element> {
    m.payloads.iter().find(|p| p.is(name, ns))
}

fn delay_ms(m: &Message) -> Option<i64> {
    let stamp = child(m, "delay", NS_DELAY)?.attr("stamp")?;
    stamp.parse::<DateTime>().ok().map(|d| stamp_ms(&d))
}

/// The text with a leading `NICK:` or `NICK,` removed, and whether the nick was mentioned
/// in it (case-insensitively, not inside a longer word).
pub fn addressing(text: &str, nick: &str) -> (String, bool) {
    let me = nick.to_lowercase();
    if me.trim().is_empty() {
        return (text.to_string(), false);
    }
    let n = nick.chars().count();
    let head: String = text.chars().take(n + 1).collect();
    for sep in [':', ','] {
        if head.to_lowercase() == format!("{me}{sep}") {
            let rest: String = text.chars().skip(n + 1).collect();
            return (rest.trim_start().to_string(), true);
        }
    }
    let lower = text.to_lowercase();
    let mentioned = lower.match_indices(&me).any(|(i, _)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + me.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    });
    (text.to_string(), mentioned)
}

/// Whether `text` is one URL of a file (an `http(s)://` URL whose last path segment has
/// an extension): what clients without OOB send for a shared file.
pub fn is_file_url(text: &str) -> bool {
    let t = text.trim();
    if t.contains(char::is_whitespace) {
        return false;
    }
    let Ok(url) = reqwest::Url::parse(t) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return false;
    }
    let last = url.path_segments().and_then(|mut s| s.next_back());
    last.is_some_and(|seg| {
        seg.rsplit_once('.')
            .is_some_and(|(stem, ext)| !stem.is_empty() && (1..=8).contains(&ext.len()))
    })
}

/// The files a message shares and its text: OOB URLs (the body then usually repeats the
/// URL, which is not text), or a body that is a file's URL.
fn files_and_text(m: &Message) -> (Vec<String>, String) {
    let body = m
        .get_best_body(vec![])
        .map(|(_, b)| b.clone())
        .unwrap_or_default();
    let mut files: Vec<String> = m
        .payloads
        .iter()
        .filter(|p| p.is("x", NS_OOB))
        .filter_map(|x| {
            x.get_child("url", NS_OOB)
                .map(|u| u.text().trim().to_string())
        })
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .take(MAX_FILES)
        .collect();
    if files.is_empty() && is_file_url(&body) {
        files.push(body.trim().to_string());
    }
    let text = if files.iter().any(|f| f == body.trim()) {
        String::new()
    } else {
        body
    };
    (files, text)
}

fn fallback_id(m: &Message, from: &Jid) -> String {
    match &m.id {
        Some(id) if !id.0.is_empty() => format!("{from}#{}", id.0),
        _ => Uuid::now_v7().to_string(),
    }
}

/// Read a message: `None` when it is nothing a person said to the bot (its own messages
/// and echoes, errors, headlines, chat states, room history and subjects, rooms it is
/// not configured for).
pub fn read(m: &Message, me: &Me<'_>, archived: Option<&Archived>) -> Option<Said> {
    let from = m.from.as_ref()?;
    match m.type_ {
        MessageType::Groupchat => group(m, from, me, archived),
        MessageType::Chat | MessageType::Normal => direct(m, from, me, archived),
        MessageType::Error | MessageType::Headline => None,
    }
}

fn direct(m: &Message, from: &Jid, me: &Me<'_>, archived: Option<&Archived>) -> Option<Said> {
    let bare = from.to_bare();
    if &bare == me.jid || bare.node().is_none() {
        return None;
    }
    let (files, text) = files_and_text(m);
    if text.trim().is_empty() && files.is_empty() {
        return None;
    }
    // A private message through a room: the occupant's real JID when the room shows it.
    let sender = match (me.rooms.get(&bare), from.resource()) {
        (Some(room), Some(nick)) => match room.occupants.get(nick.as_str()) {
            Some(real) => format!("xmpp:{real}"),
            None => format!("xmpp:{from}"),
        },
        _ => format!("xmpp:{bare}"),
    };
    let external_id = match archived {
        Some(a) if &a.archive == me.jid => a.id.clone(),
        _ => stanza_id(m, me.jid).unwrap_or_else(|| fallback_id(m, from)),
    };
    Some(Said {
        inbound: Inbound {
            external_id,
            sender,
            chat: None,
            text,
            attachments: Vec::new(),
            sent_at_ms: archived
                .and_then(|a| a.stamp_ms)
                .or_else(|| delay_ms(m))
                .unwrap_or_else(now_ms),
            mentioned: true,
        },
        files,
    })
}

fn group(m: &Message, from: &Jid, me: &Me<'_>, archived: Option<&Archived>) -> Option<Said> {
    let room_jid = from.to_bare();
    let room = me.rooms.get(&room_jid)?;
    let nick = from.resource()?.as_str();
    if nick == room.nick {
        return None;
    }
    // Room history on join (a server that ignores maxstanzas="0"): the archive catches up.
    if archived.is_none() && child(m, "delay", NS_DELAY).is_some() {
        return None;
    }
    let (files, body) = files_and_text(m);
    if body.trim().is_empty() && files.is_empty() {
        return None;
    }
    let (text, mentioned) = addressing(&body, &room.nick);
    let shown = child(m, "x", NS_MUC_USER)
        .and_then(|x| x.get_child("item", NS_MUC_USER))
        .and_then(|i| i.attr("jid"))
        .and_then(|j| Jid::new(j).ok())
        .map(|j| j.to_bare());
    let sender = match shown.or_else(|| room.occupants.get(nick).cloned()) {
        Some(real) => format!("xmpp:{real}"),
        None => format!("xmpp:{from}"),
    };
    let external_id = match archived {
        Some(a) if a.archive == room_jid => a.id.clone(),
        _ => stanza_id(m, &room_jid).unwrap_or_else(|| fallback_id(m, from)),
    };
    Some(Said {
        inbound: Inbound {
            external_id,
            sender,
            chat: Some(room_jid.to_string()),
            text,
            attachments: Vec::new(),
            sent_at_ms: archived
                .and_then(|a| a.stamp_ms)
                .or_else(|| delay_ms(m))
                .unwrap_or_else(now_ms),
            mentioned,
        },
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(xml: &str) -> Message {
        let el: Element = xml.parse().expect("xml");
        Message::try_from(el).expect("message")
    }

    fn me_and_rooms() -> (BareJid, HashMap<BareJid, Room>) {
        let mut rooms = HashMap::new();
        let mut occupants = HashMap::new();
        occupants.insert(
            "alice".to_string(),
            BareJid::new("alice@clawos.test").unwrap(),
        );
        rooms.insert(
            BareJid::new("team@conference.clawos.test").unwrap(),
            Room {
                nick: "clawbot".into(),
                occupants,
            },
        );
        (BareJid::new("clawbot@clawos.test").unwrap(), rooms)
    }

    #[test]
    fn a_chat_message_is_read_with_its_stanza_id() {
        let (jid, rooms) = me_and_rooms();
        let me = Me {
            jid: &jid,
            rooms: &rooms,
        };
        let m = msg("<message xmlns='jabber:client' type='chat' from='alice@clawos.test/a' id='m1' to='clawbot@clawos.test'><body>hello</body><stanza-id xmlns='urn:xmpp:sid:0' by='clawbot@clawos.test' id='S1'/><stanza-id xmlns='urn:xmpp:sid:0' by='evil@clawos.test' id='X'/></message>");
        let said = read(&m, &me, None).expect("read");
        assert_eq!(said.inbound.external_id, "S1");
        assert_eq!(said.inbound.sender, "xmpp:alice@clawos.test");
        assert_eq!((said.inbound.chat, said.inbound.mentioned), (None, true));
        assert_eq!(said.inbound.text, "hello");
        // Without a stanza id from our server: the sender's id, qualified by the sender.
        let m = msg("<message xmlns='jabber:client' type='chat' from='alice@clawos.test/a' id='m1'><body>hi</body></message>");
        assert_eq!(
            read(&m, &me, None).unwrap().inbound.external_id,
            "alice@clawos.test/a#m1"
        );
        // Chat states, errors, our own messages and server notices are nothing.
        for xml in [
            "<message xmlns='jabber:client' type='chat' from='alice@clawos.test/a'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
            "<message xmlns='jabber:client' type='error' from='alice@clawos.test/a'><body>x</body></message>",
            "<message xmlns='jabber:client' type='chat' from='clawbot@clawos.test/other'><body>x</body></message>",
            "<message xmlns='jabber:client' from='clawos.test'><body>motd</body></message>",
            "<message xmlns='jabber:client' type='chat'><body>no sender</body></message>",
        ] {
            assert_eq!(read(&msg(xml), &me, None), None, "{xml}");
        }
    }

    #[test]
    fn room_messages_know_mentions_echoes_and_history() {
        let (jid, rooms) = me_and_rooms();
        let me = Me {
            jid: &jid,
            rooms: &rooms,
        };
        let m = msg("<message xmlns='jabber:client' type='groupchat' from='team@conference.clawos.test/alice' id='g1'><body>ClawBot: are you there</body><stanza-id xmlns='urn:xmpp:sid:0' by='team@conference.clawos.test' id='R1'/></message>");
        let said = read(&m, &me, None).expect("read");
        assert_eq!(
            said.inbound.chat.as_deref(),
            Some("team@conference.clawos.test")
        );
        assert_eq!(said.inbound.external_id, "R1");
        assert_eq!(said.inbound.sender, "xmpp:alice@clawos.test");
        assert_eq!(
            (said.inbound.text.as_str(), said.inbound.mentioned),
            ("are you there", true)
        );
        let m = msg("<message xmlns='jabber:client' type='groupchat' from='team@conference.clawos.test/bob'><body>just chatting, clawbots</body></message>");
        let said = read(&m, &me, None).expect("read");
        assert!(!said.inbound.mentioned);
        assert_eq!(said.inbound.sender, "xmpp:team@conference.clawos.test/bob");
        for xml in [
            "<message xmlns='jabber:client' type='groupchat' from='team@conference.clawos.test/clawbot'><body>my echo</body></message>",
            "<message xmlns='jabber:client' type='groupchat' from='team@conference.clawos.test/alice'><body>old</body><delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/></message>",
            "<message xmlns='jabber:client' type='groupchat' from='team@conference.clawos.test'><subject>topic</subject></message>",
            "<message xmlns='jabber:client' type='groupchat' from='other@conference.clawos.test/alice'><body>not ours</body></message>",
        ] {
            assert_eq!(read(&msg(xml), &me, None), None, "{xml}");
        }
    }

    #[test]
    fn archive_results_and_files_are_read() {
        let (jid, rooms) = me_and_rooms();
        let me = Me {
            jid: &jid,
            rooms: &rooms,
        };
        let m = msg("<message xmlns='jabber:client' to='clawbot@clawos.test/clawos'><result xmlns='urn:xmpp:mam:2' queryid='q1' id='A7'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2024-05-01T10:00:00Z'/><message xmlns='jabber:client' type='chat' from='alice@clawos.test/a' to='clawbot@clawos.test' id='m9'><body>https://up.example.org/f/1/cat.png</body><x xmlns='jabber:x:oob'><url>https://up.example.org/f/1/cat.png</url></x></message></forwarded></result></message>");
        let r = archive_result(&m).expect("a result");
        assert_eq!((r.queryid.as_deref(), r.id.as_str()), (Some("q1"), "A7"));
        let archived = Archived {
            archive: jid.clone(),
            id: r.id.clone(),
            stamp_ms: r.stamp_ms,
        };
        let said = read(&r.message, &me, Some(&archived)).expect("read");
        assert_eq!(said.inbound.external_id, "A7");
        assert_eq!(said.inbound.sent_at_ms, 1_714_557_600_000);
        assert_eq!(
            said.files,
            vec!["https://up.example.org/f/1/cat.png".to_string()]
        );
        assert_eq!(said.inbound.text, "");
        // A body that is a file's URL, without OOB; a link to a page is text.
        assert!(is_file_url("http://127.0.0.1:5280/file_share/x/t%20x.txt"));
        assert!(!is_file_url("https://example.org/"));
        assert!(!is_file_url("see https://example.org/a.png"));
        assert!(!is_file_url("ftp://example.org/a.png"));
    }

    #[test]
    fn addressing_strips_the_nick_and_finds_mentions() {
        assert_eq!(addressing("clawbot: hi", "clawbot"), ("hi".into(), true));
        assert_eq!(addressing("Claw Bot, hi", "claw bot"), ("hi".into(), true));
        assert!(addressing("ask clawbot please", "clawbot").1);
        assert!(addressing("ask clawbot.", "clawbot").1);
        assert!(!addressing("clawbotty is not me", "clawbot").1);
        assert!(!addressing("İİİ", "clawbot").1);
        assert!(!addressing("anything", "").1);
    }
}
