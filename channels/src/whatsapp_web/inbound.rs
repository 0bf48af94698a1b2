//! What a WhatsApp message means to the bot: who said what where, whether it addresses
//! the bot, and which file came with it. Pure functions over the decrypted message, so
//! every rule is tested without a phone.

use whatsapp_rust::prelude::{InboundMessage, MessageExt};
use whatsapp_rust::wacore_binary::{Jid, JidExt};
use whatsapp_rust::waproto::whatsapp as wa;

use super::settings::address_of;
use crate::protocol::Inbound;

/// What the bot knows of itself, to tell whether a group message addresses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Me {
    /// Its phone number's user part.
    pub number: Option<String>,
    /// Its hidden-number id (LID) user part.
    pub lid: Option<String>,
    /// A name people may write to address it.
    pub name: Option<String>,
}

impl Me {
    fn is(&self, jid: &str) -> bool {
        let user = jid.split(['@', ':']).next().unwrap_or_default();
        !user.is_empty()
            && (self.number.as_deref() == Some(user) || self.lid.as_deref() == Some(user))
    }
}

/// A file that came with a message, still on WhatsApp's servers.
#[derive(Debug, Clone, Copy)]
pub enum Media<'a> {
    /// A photo.
    Image(&'a wa::message::ImageMessage),
    /// A document (any file).
    Document(&'a wa::message::DocumentMessage),
}

impl Media<'_> {
    /// Its file name (WhatsApp gives photos none) and type.
    pub fn name_and_type(&self) -> (String, String) {
        match self {
            Media::Image(i) => {
                let mime = i.mimetype.clone().unwrap_or_else(|| "image/jpeg".into());
                let ext = mime.rsplit('/').next().unwrap_or("jpeg").to_string();
                (format!("photo.{ext}"), mime)
            }
            Media::Document(d) => (
                d.file_name
                    .clone()
                    .or_else(|| d.title.clone())
                    .unwrap_or_else(|| "document".into()),
                d.mimetype
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into()),
            ),
        }
    }

    /// Its size as WhatsApp declares it.
    pub fn declared_len(&self) -> u64 {
        match self {
            Media::Image(i) => i.file_length.unwrap_or(0),
            Media::Document(d) => d.file_length.unwrap_or(0),
        }
    }
}

/// One message read: the inbound message (without its file yet) and the file to fetch.
#[derive(Debug)]
pub struct Read<'a> {
    /// The message for the kernel; its attachments are added once fetched.
    pub inbound: Inbound,
    /// The file that came with it.
    pub media: Option<Media<'a>>,
}

/// The external id of a message: chat, sender and stanza id (ids are unique only
/// within a chat and sender).
pub fn external_id(chat: &str, sender: &str, id: &str) -> String {
    format!("{chat}/{sender}/{id}")
}

/// The parts of an external id made by [`external_id`].
pub fn split_external_id(id: &str) -> Option<(&str, &str, &str)> {
    let mut parts = id.splitn(3, '/');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// The clawos address of a sender: by phone number when known (a hidden-number
/// sender's number is sometimes given beside it), else by its LID.
fn sender_address(sender: &Jid, alt: Option<&Jid>) -> String {
    if sender.is_pn() {
        return address_of(sender.user(), false);
    }
    match alt.filter(|a| a.is_pn()) {
        Some(pn) => address_of(pn.user(), false),
        None => address_of(sender.user(), sender.is_lid()),
    }
}

/// The context (reply, mentions) of the message's main part.
fn context(base: &wa::Message) -> Option<&wa::ContextInfo> {
    if let Some(m) = base.extended_text_message.as_option() {
        return m.context_info.as_option();
    }
    if let Some(m) = base.image_message.as_option() {
        return m.context_info.as_option();
    }
    base.document_message
        .as_option()
        .and_then(|m| m.context_info.as_option())
}

/// Read one decrypted message. `None` for what is not a message to answer: the bot's
/// own (sent from the phone), status updates, channels and broadcast lists, reactions,
/// edits, deletions, stickers, polls, calls and empty messages. `sent_by_me` tells
/// whether a stanza id is one the bot sent (a reply to it addresses the bot).
pub fn read<'a>(
    m: &'a InboundMessage,
    me: &Me,
    sent_by_me: impl Fn(&str) -> bool,
) -> Option<Read<'a>> {
    let info = &m.info;
    let source = &info.source;
    let chat = &source.chat;
    if source.is_from_me
        || chat.is_status_broadcast()
        || chat.is_broadcast_list()
        || chat.server() == whatsapp_rust::Server::Newsletter
    {
        return None;
    }
    let base = m.message.get_base_message();
    let media = if let Some(i) = base.image_message.as_option() {
        Some(Media::Image(i))
    } else {
        base.document_message.as_option().map(Media::Document)
    };
    let text = m
        .message
        .text_content()
        .or_else(|| m.message.get_caption())
        .unwrap_or_default()
        .to_string();
    if text.trim().is_empty() && media.is_none() {
        return None;
    }
    let group = source.is_group || chat.is_group();
    let ctx = context(base);
    let mentioned = !group
        || ctx.is_some_and(|c| {
            c.mentioned_jid.iter().any(|j| me.is(j))
                || c.participant.as_deref().is_some_and(|p| me.is(p))
                || c.stanza_id.as_deref().is_some_and(&sent_by_me)
        })
        || me.name.as_deref().is_some_and(|n| {
            let t = text.trim_start().to_lowercase();
            let n = n.to_lowercase();
            t.starts_with(&n) || t.starts_with(&format!("@{n}"))
        });
    let sender = source.sender.to_non_ad_string();
    Some(Read {
        inbound: Inbound {
            external_id: external_id(&chat.to_non_ad_string(), &sender, &info.id),
            sender: sender_address(&source.sender, source.sender_alt.as_ref()),
            chat: group.then(|| chat.to_non_ad_string()),
            text,
            attachments: vec![],
            sent_at_ms: info.timestamp.timestamp_millis(),
            mentioned,
        },
        media,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use whatsapp_rust::buffa::MessageField;
    use whatsapp_rust::prelude::MessageInfo;
    use whatsapp_rust::wacore::types::message::MessageSource;

    use super::*;

    const ALICE: &str = "15550001111@s.whatsapp.net";
    const GROUP: &str = "120363000000000001@g.us";

    fn me() -> Me {
        Me {
            number: Some("15559990000".into()),
            lid: Some("88001".into()),
            name: Some("clawbot".into()),
        }
    }

    fn msg(chat: &str, sender: &str, message: wa::Message) -> InboundMessage {
        let chat: Jid = chat.parse().expect("chat jid");
        let info = MessageInfo {
            source: MessageSource {
                is_group: chat.is_group(),
                chat,
                sender: sender.parse().expect("sender jid"),
                ..Default::default()
            },
            id: "3EB0AAA".into(),
            ..Default::default()
        };
        InboundMessage::builder()
            .message(Arc::new(message))
            .info(Arc::new(info))
            .build()
    }

    fn text(t: &str) -> wa::Message {
        wa::Message {
            conversation: Some(t.into()),
            ..Default::default()
        }
    }

    fn with_context(t: &str, ctx: wa::ContextInfo) -> wa::Message {
        wa::Message {
            extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
                text: Some(t.into()),
                context_info: MessageField::some(ctx),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_direct_message_addresses_the_bot() {
        let m = msg(ALICE, ALICE, text("hello"));
        let r = read(&m, &me(), |_| false).expect("a message");
        assert_eq!(r.inbound.sender, "whatsapp:15550001111@whatsapp");
        assert_eq!(r.inbound.chat, None);
        assert_eq!(r.inbound.text, "hello");
        assert!(r.inbound.mentioned);
        assert_eq!(
            split_external_id(&r.inbound.external_id),
            Some((ALICE, ALICE, "3EB0AAA"))
        );
    }

    #[test]
    fn in_a_group_a_mention_a_reply_or_the_name_addresses_the_bot() {
        let plain = msg(GROUP, ALICE, text("lunch?"));
        let r = read(&plain, &me(), |_| false).expect("a message");
        assert_eq!(r.inbound.chat.as_deref(), Some(GROUP));
        assert!(!r.inbound.mentioned, "a plain group message");

        let mention = wa::ContextInfo {
            mentioned_jid: vec!["88001@lid".into()],
            ..Default::default()
        };
        let m = msg(GROUP, ALICE, with_context("@88001 hi", mention));
        assert!(
            read(&m, &me(), |_| false)
                .expect("a message")
                .inbound
                .mentioned
        );

        let reply = wa::ContextInfo {
            stanza_id: Some("BOT1".into()),
            ..Default::default()
        };
        let m = msg(GROUP, ALICE, with_context("and then?", reply));
        assert!(
            !read(&m, &me(), |_| false)
                .expect("a message")
                .inbound
                .mentioned
        );
        assert!(
            read(&m, &me(), |id| id == "BOT1")
                .expect("a message")
                .inbound
                .mentioned
        );

        let named = msg(GROUP, ALICE, text("Clawbot: what time is it"));
        assert!(
            read(&named, &me(), |_| false)
                .expect("a message")
                .inbound
                .mentioned
        );
    }

    #[test]
    fn what_is_not_a_message_is_skipped() {
        let mut own = msg(ALICE, ALICE, text("from my phone"));
        Arc::make_mut(&mut own.info).source.is_from_me = true;
        assert!(read(&own, &me(), |_| false).is_none());
        let status = msg("status@broadcast", ALICE, text("my story"));
        assert!(read(&status, &me(), |_| false).is_none());
        let reaction = wa::Message {
            reaction_message: MessageField::some(wa::message::ReactionMessage {
                text: Some("👍".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(read(&msg(ALICE, ALICE, reaction), &me(), |_| false).is_none());
        assert!(read(&msg(ALICE, ALICE, text("  ")), &me(), |_| false).is_none());
    }

    #[test]
    fn a_photo_and_a_document_come_with_their_caption() {
        let photo = wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage {
                caption: Some("look".into()),
                mimetype: Some("image/png".into()),
                file_length: Some(1234),
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = msg(ALICE, ALICE, photo);
        let r = read(&m, &me(), |_| false).expect("a message");
        assert_eq!(r.inbound.text, "look");
        let media = r.media.expect("the photo");
        assert_eq!(
            media.name_and_type(),
            ("photo.png".into(), "image/png".into())
        );
        assert_eq!(media.declared_len(), 1234);

        let doc = wa::Message {
            document_message: MessageField::some(wa::message::DocumentMessage {
                file_name: Some("notes.pdf".into()),
                mimetype: Some("application/pdf".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = msg(ALICE, ALICE, doc);
        let r = read(&m, &me(), |_| false).expect("a message");
        assert_eq!(r.inbound.text, "");
        let (name, mime) = r.media.expect("the document").name_and_type();
        assert_eq!(
            (name.as_str(), mime.as_str()),
            ("notes.pdf", "application/pdf")
        );
    }

    #[test]
    fn a_hidden_number_is_addressed_by_its_lid_or_its_number_when_given() {
        let m = msg(ALICE, "77001@lid", text("hi"));
        let r = read(&m, &me(), |_| false).expect("a message");
        assert_eq!(r.inbound.sender, "whatsapp:77001@lid.whatsapp");
        let mut m = msg(ALICE, "77001@lid", text("hi"));
        Arc::make_mut(&mut m.info).source.sender_alt = ALICE.parse().ok();
        let r = read(&m, &me(), |_| false).expect("a message");
        assert_eq!(r.inbound.sender, "whatsapp:15550001111@whatsapp");
    }
}
