//! The bus protocol between the kernel and channel processes: binary WebSocket frames,
//! each one bincode-encoded [`ChannelFrame`] (channel to kernel) or [`KernelFrame`]
//! (kernel to channel).
//!
//! A connection starts with [`ChannelFrame::Hello`] carrying the protocol version, the
//! channel's name and its per-process token. Anything else first, or a bad token, gets a
//! [`KernelFrame::Error`] and a close. Frames are capped at [`MAX_FRAME_BYTES`].

use clawos_events::Attachment;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The protocol version both sides must speak.
pub const PROTOCOL_VERSION: u16 = 3;

/// Largest frame either side accepts.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// Environment variable carrying the bus URL to a channel process.
pub const ENV_BUS_URL: &str = "CLAWOS_BUS_URL";
/// Environment variable carrying the channel instance name.
pub const ENV_CHANNEL_NAME: &str = "CLAWOS_CHANNEL_NAME";
/// Environment variable carrying the per-process token (never on the command line).
pub const ENV_CHANNEL_TOKEN: &str = "CLAWOS_CHANNEL_TOKEN";
/// Environment variable carrying the channel kind's own settings, as JSON.
pub const ENV_CHANNEL_SETTINGS: &str = "CLAWOS_CHANNEL_SETTINGS";
/// Environment variable carrying the channel's own folder in the state folder
/// (`STATE/channels/NAME/`), for what it must keep across restarts: a sync token, the last
/// IMAP UID seen. Inbound messages are deduplicated by the Gateway, so a cursor saved after
/// the message's ack can never lose one; at worst a message is posted twice and logged once.
pub const ENV_CHANNEL_STATE_DIR: &str = "CLAWOS_CHANNEL_STATE_DIR";
/// Environment variable carrying the channel's secret (a password or token from the
/// vault); never on the command line, never in the log.
pub const ENV_CHANNEL_SECRET: &str = "CLAWOS_CHANNEL_SECRET";

/// A message a person sent, as the channel saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbound {
    /// The channel's own id for the message (the dedupe key with the channel name).
    pub external_id: String,
    /// Sender address, `kind:local@domain`.
    pub sender: String,
    /// Chat or group, `None` for a direct message.
    pub chat: Option<String>,
    /// Text.
    pub text: String,
    /// What came with it; each one's bytes already in the media store (or not kept, with
    /// no hash, when above the size cap).
    pub attachments: Vec<Attachment>,
    /// When it was sent (unix ms).
    pub sent_at_ms: i64,
    /// It addresses the agent: a direct message, a mention of the bot's name, or a reply
    /// to one of its messages. In a group, the group policy decides whether an
    /// unaddressed message gets an answer.
    pub mentioned: bool,
}

/// A reply for the channel to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Ack this id with [`ChannelFrame::Delivered`] once delivered.
    pub delivery_id: Uuid,
    /// Recipient address.
    pub to: String,
    /// Chat or group, `None` for a direct message.
    pub chat: Option<String>,
    /// Text.
    pub text: String,
    /// External id of the inbound message this answers, when known.
    pub in_reply_to: Option<String>,
    /// Seq of the `MessageSent` event.
    pub seq: u64,
    /// Files to send with it, their bytes in the media store under their hash.
    pub attachments: Vec<Attachment>,
}

/// Frames from a channel process to the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelFrame {
    /// First frame of every connection.
    Hello {
        /// Must equal [`PROTOCOL_VERSION`].
        protocol: u16,
        /// Channel instance name.
        channel: String,
        /// Channel kind.
        kind: String,
        /// The per-process token from the environment.
        token: String,
    },
    /// A person's message; re-sent until acked.
    Inbound(Inbound),
    /// A reply was delivered.
    Delivered {
        /// The delivery id.
        delivery_id: Uuid,
    },
    /// The link to the outside service came up or went down (shown by `clawos status`).
    Link {
        /// It is up.
        up: bool,
        /// What happened, for a person (`connected to irc.example:6697`, `SASL refused`).
        detail: String,
    },
    /// Liveness.
    Heartbeat {
        /// Echoed back.
        nonce: u64,
    },
}

/// Error codes the kernel sends before closing or refusing a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The first frame was not a hello.
    HelloRequired,
    /// Unknown channel, or a token that does not open it.
    Unauthorized,
    /// A protocol version the kernel does not speak.
    UnsupportedProtocol,
    /// A frame that does not decode.
    MalformedFrame,
    /// A frame over the size cap.
    FrameTooLarge,
    /// The kernel could not record the message (the channel should re-send later).
    Unavailable,
}

/// Frames from the kernel to a channel process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KernelFrame {
    /// The hello was accepted.
    Welcome {
        /// The kernel's protocol version.
        protocol: u16,
    },
    /// An inbound message is committed to the log.
    InboundAck {
        /// The channel's id for it.
        external_id: String,
        /// Its seq in the log (the original seq for a re-send).
        seq: u64,
        /// True when it was already in the log.
        duplicate: bool,
    },
    /// Deliver this reply.
    Deliver(Delivery),
    /// Answer to a heartbeat.
    HeartbeatAck {
        /// The nonce sent.
        nonce: u64,
    },
    /// Something was refused.
    Error {
        /// What kind of error.
        code: ErrorCode,
        /// Details for a person.
        message: String,
    },
    /// A reply still being written, for channels that can show it growing (the whole
    /// reply still comes as one [`KernelFrame::Deliver`]). Each frame carries the whole
    /// text so far, so a dropped frame only skips a step.
    Partial {
        /// External id of the inbound message it answers.
        in_reply_to: String,
        /// Recipient address.
        to: String,
        /// Chat or group, `None` for a direct message.
        chat: Option<String>,
        /// The reply so far.
        text: String,
    },
    /// The agent began answering `in_reply_to`: channels that can show a typing
    /// indicator show it until the reply comes.
    Typing {
        /// External id of the inbound message it answers.
        in_reply_to: String,
        /// Recipient address.
        to: String,
        /// Chat or group, `None` for a direct message.
        chat: Option<String>,
    },
}

/// A frame that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Over [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte cap")]
    TooLarge(usize),
    /// Not a valid frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_FRAME_BYTES>,
> {
    bincode::config::standard().with_limit::<MAX_FRAME_BYTES>()
}

/// Encode a frame.
pub fn encode<T: Serialize>(frame: &T) -> Vec<u8> {
    // Frames are plain data; encoding into a Vec cannot fail except past the size limit,
    // which `decode` on the other side reports.
    bincode::serde::encode_to_vec(frame, bincode::config::standard()).unwrap_or_default()
}

/// Decode a frame, refusing oversize input and trailing bytes.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    let (frame, read) = bincode::serde::decode_from_slice::<T, _>(bytes, config())
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(FrameError::Malformed(format!(
            "{} trailing bytes",
            bytes.len() - read
        )));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip() {
        let f = ChannelFrame::Hello {
            protocol: PROTOCOL_VERSION,
            channel: "terminal".into(),
            kind: "terminal".into(),
            token: "t".into(),
        };
        assert_eq!(decode::<ChannelFrame>(&encode(&f)).unwrap(), f);
    }

    #[test]
    fn oversize_and_trailing_bytes_are_refused() {
        let big = vec![0u8; MAX_FRAME_BYTES + 1];
        assert_eq!(
            decode::<ChannelFrame>(&big),
            Err(FrameError::TooLarge(MAX_FRAME_BYTES + 1))
        );
        let mut b = encode(&ChannelFrame::Heartbeat { nonce: 1 });
        b.push(0);
        assert!(matches!(
            decode::<ChannelFrame>(&b),
            Err(FrameError::Malformed(_))
        ));
    }

    proptest! {
        // Fuzz the decoder: arbitrary bytes give a value or an error, never a panic, and
        // never allocate past the cap.
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = decode::<ChannelFrame>(&bytes);
            let _ = decode::<KernelFrame>(&bytes);
        }

        #[test]
        fn mutated_valid_frames_never_panic(text in ".{0,200}", flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut b = encode(&ChannelFrame::Inbound(Inbound {
                external_id: "x".into(), sender: "terminal:a".into(), chat: None, text,
                attachments: vec![], sent_at_ms: 1, mentioned: true }));
            for (i, v) in flips { let n = b.len(); b[i % n] = v; }
            let _ = decode::<ChannelFrame>(&b);
        }
    }
}
