//! The versioned payload codec.
//!
//! A payload is stored as `(kind, schema_version, bincode bytes)` (the bytes: `body.rs`).
//! Decoding looks the pair up in the catalogue; a payload written by an older schema
//! version goes through the upcasters below, which turn the old shape into the current
//! one. A kind or version this build does not know is a [`CodecError`] value, never a
//! panic and never a silent skip.

use serde::{Deserialize, Serialize};

use crate::body::decode_body;
use crate::catalogue::{Attachment, EventPayload, MessageReceived, MessageSent};
use crate::CodecError;

/// Decode a stored payload, upcasting older schema versions to the current shape.
pub fn decode(kind: &str, schema_version: u16, bytes: &[u8]) -> Result<EventPayload, CodecError> {
    if let Some(result) = EventPayload::decode_current(kind, schema_version, bytes) {
        return result;
    }
    upcast(kind, schema_version, bytes)
}

/// `Attachment` as recorded before the media store: no hash, the bytes were never kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachmentV1 {
    /// See [`Attachment::name`].
    pub name: String,
    /// See [`Attachment::mime`].
    pub mime: Option<String>,
    /// See [`Attachment::size`].
    pub size: u64,
    /// See [`Attachment::location`].
    pub location: Option<String>,
}

impl From<AttachmentV1> for Attachment {
    fn from(v1: AttachmentV1) -> Self {
        Attachment {
            name: v1.name,
            mime: v1.mime,
            size: v1.size,
            blake3: None,
            location: v1.location,
        }
    }
}

/// `MessageReceived` as written by schema version 1, before attachments were recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageReceivedV1 {
    /// See [`MessageReceived::channel`].
    pub channel: String,
    /// See [`MessageReceived::external_id`].
    pub external_id: String,
    /// See [`MessageReceived::sender`].
    pub sender: String,
    /// See [`MessageReceived::chat`].
    pub chat: Option<String>,
    /// See [`MessageReceived::text`].
    pub text: String,
    /// See [`MessageReceived::branch`].
    pub branch: String,
    /// See [`MessageReceived::sent_at_ms`].
    pub sent_at_ms: i64,
}

impl From<MessageReceivedV1> for MessageReceivedV3 {
    fn from(v1: MessageReceivedV1) -> Self {
        MessageReceivedV2 {
            channel: v1.channel,
            external_id: v1.external_id,
            sender: v1.sender,
            chat: v1.chat,
            text: v1.text,
            attachments: Vec::new(),
            branch: v1.branch,
            sent_at_ms: v1.sent_at_ms,
        }
        .into()
    }
}

/// `MessageReceived` as written by schema version 2, before group messages could be
/// kept as context only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageReceivedV2 {
    /// See [`MessageReceived::channel`].
    pub channel: String,
    /// See [`MessageReceived::external_id`].
    pub external_id: String,
    /// See [`MessageReceived::sender`].
    pub sender: String,
    /// See [`MessageReceived::chat`].
    pub chat: Option<String>,
    /// See [`MessageReceived::text`].
    pub text: String,
    /// See [`MessageReceived::attachments`].
    pub attachments: Vec<AttachmentV1>,
    /// See [`MessageReceived::branch`].
    pub branch: String,
    /// See [`MessageReceived::sent_at_ms`].
    pub sent_at_ms: i64,
}

impl From<MessageReceivedV2> for MessageReceivedV3 {
    fn from(v2: MessageReceivedV2) -> Self {
        MessageReceivedV3 {
            channel: v2.channel,
            external_id: v2.external_id,
            sender: v2.sender,
            chat: v2.chat,
            text: v2.text,
            attachments: v2.attachments,
            branch: v2.branch,
            sent_at_ms: v2.sent_at_ms,
            // Before group policies, every message asked for an answer.
            addressed: true,
        }
    }
}

/// `MessageReceived` as written by schema version 3, before attachments carried the hash
/// of their bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageReceivedV3 {
    /// See [`MessageReceived::channel`].
    pub channel: String,
    /// See [`MessageReceived::external_id`].
    pub external_id: String,
    /// See [`MessageReceived::sender`].
    pub sender: String,
    /// See [`MessageReceived::chat`].
    pub chat: Option<String>,
    /// See [`MessageReceived::text`].
    pub text: String,
    /// See [`MessageReceived::attachments`].
    pub attachments: Vec<AttachmentV1>,
    /// See [`MessageReceived::branch`].
    pub branch: String,
    /// See [`MessageReceived::sent_at_ms`].
    pub sent_at_ms: i64,
    /// See [`MessageReceived::addressed`].
    pub addressed: bool,
}

impl From<MessageReceivedV3> for MessageReceived {
    fn from(v3: MessageReceivedV3) -> Self {
        MessageReceived {
            channel: v3.channel,
            external_id: v3.external_id,
            sender: v3.sender,
            chat: v3.chat,
            text: v3.text,
            attachments: v3.attachments.into_iter().map(Attachment::from).collect(),
            branch: v3.branch,
            sent_at_ms: v3.sent_at_ms,
            addressed: v3.addressed,
        }
    }
}

/// `MessageSent` as written by schema version 1, before the reply key was recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageSentV1 {
    /// See [`MessageSent::delivery_id`].
    pub delivery_id: uuid::Uuid,
    /// See [`MessageSent::agent`].
    pub agent: String,
    /// See [`MessageSent::branch`].
    pub branch: String,
    /// See [`MessageSent::channel`].
    pub channel: String,
    /// See [`MessageSent::to`].
    pub to: String,
    /// See [`MessageSent::chat`].
    pub chat: Option<String>,
    /// See [`MessageSent::text`].
    pub text: String,
    /// See [`MessageSent::in_reply_to`].
    pub in_reply_to: Option<u64>,
}

impl From<MessageSentV1> for MessageSentV2 {
    fn from(v1: MessageSentV1) -> Self {
        MessageSentV2 {
            delivery_id: v1.delivery_id,
            agent: v1.agent,
            branch: v1.branch,
            channel: v1.channel,
            to: v1.to,
            chat: v1.chat,
            text: v1.text,
            in_reply_to: v1.in_reply_to,
            reply_key: None,
        }
    }
}

/// `MessageSent` as written by schema version 2, before replies carried attachments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageSentV2 {
    /// See [`MessageSent::delivery_id`].
    pub delivery_id: uuid::Uuid,
    /// See [`MessageSent::agent`].
    pub agent: String,
    /// See [`MessageSent::branch`].
    pub branch: String,
    /// See [`MessageSent::channel`].
    pub channel: String,
    /// See [`MessageSent::to`].
    pub to: String,
    /// See [`MessageSent::chat`].
    pub chat: Option<String>,
    /// See [`MessageSent::text`].
    pub text: String,
    /// See [`MessageSent::in_reply_to`].
    pub in_reply_to: Option<u64>,
    /// See [`MessageSent::reply_key`].
    pub reply_key: Option<String>,
}

impl From<MessageSentV2> for MessageSent {
    fn from(v2: MessageSentV2) -> Self {
        MessageSent {
            delivery_id: v2.delivery_id,
            agent: v2.agent,
            branch: v2.branch,
            channel: v2.channel,
            to: v2.to,
            chat: v2.chat,
            text: v2.text,
            in_reply_to: v2.in_reply_to,
            reply_key: v2.reply_key,
            attachments: Vec::new(),
        }
    }
}

/// The upcasters: one arm per (kind, old version).
fn upcast(kind: &str, schema_version: u16, bytes: &[u8]) -> Result<EventPayload, CodecError> {
    match (kind, schema_version) {
        ("MessageReceived", 1) => {
            let v1: MessageReceivedV1 = decode_body(bytes)?;
            Ok(EventPayload::MessageReceived(
                MessageReceivedV3::from(v1).into(),
            ))
        }
        ("MessageReceived", 2) => {
            let v2: MessageReceivedV2 = decode_body(bytes)?;
            Ok(EventPayload::MessageReceived(
                MessageReceivedV3::from(v2).into(),
            ))
        }
        ("MessageReceived", 3) => {
            let v3: MessageReceivedV3 = decode_body(bytes)?;
            Ok(EventPayload::MessageReceived(v3.into()))
        }
        ("MessageSent", 1) => {
            let v1: MessageSentV1 = decode_body(bytes)?;
            Ok(EventPayload::MessageSent(MessageSentV2::from(v1).into()))
        }
        ("MessageSent", 2) => {
            let v2: MessageSentV2 = decode_body(bytes)?;
            Ok(EventPayload::MessageSent(v2.into()))
        }
        _ if crate::catalogue::KINDS.iter().any(|(k, _)| *k == kind) => {
            Err(CodecError::UnknownVersion {
                kind: kind.to_string(),
                schema_version,
            })
        }
        _ => Err(CodecError::UnknownKind {
            kind: kind.to_string(),
            schema_version,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::encode_body;
    use crate::catalogue::BindingRemoved;

    #[test]
    fn current_payload_round_trips() {
        let p = EventPayload::BindingRemoved(BindingRemoved {
            binding_id: "b1".into(),
        });
        let bytes = p.encode().unwrap();
        assert_eq!(decode(p.kind(), p.schema_version(), &bytes).unwrap(), p);
    }

    #[test]
    fn v1_message_received_is_upcast() {
        let v1 = MessageReceivedV1 {
            channel: "terminal".into(),
            external_id: "x1".into(),
            sender: "terminal:alice".into(),
            chat: None,
            text: "hi".into(),
            branch: "main".into(),
            sent_at_ms: 5,
        };
        let bytes = encode_body(&v1).unwrap();
        match decode("MessageReceived", 1, &bytes).unwrap() {
            EventPayload::MessageReceived(m) => {
                assert_eq!(m.text, "hi");
                assert!(m.attachments.is_empty());
                assert!(m.addressed);
            }
            other => panic!("wrong kind {other:?}"),
        }
    }

    #[test]
    fn v2_message_received_is_upcast_as_addressed() {
        let v2 = MessageReceivedV2 {
            channel: "irc".into(),
            external_id: "x2".into(),
            sender: "irc:alice@net".into(),
            chat: Some("#room".into()),
            text: "hi all".into(),
            attachments: vec![],
            branch: "main".into(),
            sent_at_ms: 5,
        };
        let bytes = encode_body(&v2).unwrap();
        match decode("MessageReceived", 2, &bytes).unwrap() {
            EventPayload::MessageReceived(m) => {
                assert_eq!(m.chat.as_deref(), Some("#room"));
                assert!(m.addressed, "every message before v3 asked for an answer");
            }
            other => panic!("wrong kind {other:?}"),
        }
        assert!(decode("MessageReceived", 4, &bytes).is_err());
    }

    #[test]
    fn v3_attachments_are_upcast_without_a_hash() {
        let v3 = MessageReceivedV3 {
            channel: "webhook".into(),
            external_id: "x3".into(),
            sender: "webhook:bob".into(),
            chat: None,
            text: "see file".into(),
            attachments: vec![AttachmentV1 {
                name: "a.png".into(),
                mime: Some("image/png".into()),
                size: 3,
                location: Some("https://example.test/a.png".into()),
            }],
            branch: "main".into(),
            sent_at_ms: 5,
            addressed: false,
        };
        let bytes = encode_body(&v3).unwrap();
        match decode("MessageReceived", 3, &bytes).unwrap() {
            EventPayload::MessageReceived(m) => {
                assert!(!m.addressed);
                assert_eq!(m.attachments.len(), 1);
                assert_eq!(m.attachments[0].blake3, None, "the bytes were never kept");
                assert_eq!(m.attachments[0].size, 3);
            }
            other => panic!("wrong kind {other:?}"),
        }
    }

    #[test]
    fn v1_message_sent_is_upcast_without_a_reply_key() {
        let v1 = MessageSentV1 {
            delivery_id: uuid::Uuid::nil(),
            agent: "pi".into(),
            branch: "main".into(),
            channel: "webhook".into(),
            to: "webhook:bob".into(),
            chat: None,
            text: "hello".into(),
            in_reply_to: Some(7),
        };
        let bytes = encode_body(&v1).unwrap();
        match decode("MessageSent", 1, &bytes).unwrap() {
            EventPayload::MessageSent(m) => {
                assert_eq!(m.text, "hello");
                assert_eq!(m.in_reply_to, Some(7));
                assert_eq!(m.reply_key, None);
                assert!(m.attachments.is_empty());
            }
            other => panic!("wrong kind {other:?}"),
        }
        // A v1 body is not a valid v2 body: the version decides the shape.
        assert!(decode("MessageSent", 2, &bytes).is_err());
        assert!(decode("MessageSent", 3, &bytes).is_err());
    }

    #[test]
    fn unknown_kind_and_version_are_errors() {
        assert!(matches!(
            decode("Teleported", 1, &[]),
            Err(CodecError::UnknownKind { .. })
        ));
        assert!(matches!(
            decode("BindingRemoved", 99, &[]),
            Err(CodecError::UnknownVersion { .. })
        ));
        assert!(matches!(
            decode("BindingRemoved", 1, &[0xff, 0xff, 0xff]),
            Err(CodecError::Malformed(_))
        ));
    }
}
