//! Framing of the agent protocol on a byte stream: JSON lines for the hello, then JSON
//! lines or length-prefixed bincode as negotiated. A [`FrameCodec`] in a
//! `tokio_util::codec::Framed` keeps what it buffered when the encoding switches.

use bytes::{Buf, BufMut, BytesMut};
use serde::{de::DeserializeOwned, Serialize};
use tokio_util::codec::{Decoder, Encoder};

use super::protocol::{Encoding, MAX_FRAME_BYTES};

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The pipe failed.
    #[error("the pipe failed: {0}")]
    Io(#[from] std::io::Error),
    /// A frame above [`MAX_FRAME_BYTES`].
    #[error("a frame of {0} bytes is above the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// Bytes that are not a frame of the protocol.
    #[error("not a frame of the agent protocol: {0}")]
    Malformed(String),
}

/// Frames in one encoding; JSON lines until told otherwise.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    encoding: Encoding,
    /// How far the buffer was searched for a newline already (JSON lines).
    scanned: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(Encoding::Json)
    }
}

/// bincode's configuration for frames: a length read from the wire never allocates more
/// than a frame may hold.
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME_BYTES>()
}

impl FrameCodec {
    /// A codec reading and writing `encoding`.
    pub fn new(encoding: Encoding) -> Self {
        FrameCodec {
            encoding,
            scanned: 0,
        }
    }

    /// Frames from now on are in `encoding` (after the hello).
    pub fn switch_to(&mut self, encoding: Encoding) {
        self.encoding = encoding;
    }

    /// The encoding in use.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Read one frame's value.
    pub fn parse<T: DeserializeOwned>(&self, frame: &[u8]) -> Result<T, FrameError> {
        match self.encoding {
            Encoding::Json => {
                serde_json::from_slice(frame).map_err(|e| FrameError::Malformed(e.to_string()))
            }
            Encoding::Bincode => {
                let (value, read) = bincode::serde::decode_from_slice(frame, bincode_config())
                    .map_err(|e| FrameError::Malformed(e.to_string()))?;
                if read != frame.len() {
                    return Err(FrameError::Malformed(format!(
                        "{} bytes after the frame's value",
                        frame.len() - read
                    )));
                }
                Ok(value)
            }
        }
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        match self.encoding {
            Encoding::Json => loop {
                let from = self.scanned.min(src.len());
                let Some(end) = src[from..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map(|i| from + i)
                else {
                    if src.len() > MAX_FRAME_BYTES {
                        return Err(FrameError::TooLarge(src.len()));
                    }
                    self.scanned = src.len();
                    return Ok(None);
                };
                self.scanned = 0;
                if end > MAX_FRAME_BYTES {
                    return Err(FrameError::TooLarge(end));
                }
                let mut line = src.split_to(end + 1);
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                // Blank lines between frames are allowed.
                if !line.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Some(line));
                }
            },
            Encoding::Bincode => {
                if src.len() < 4 {
                    return Ok(None);
                }
                let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
                if len > MAX_FRAME_BYTES {
                    return Err(FrameError::TooLarge(len));
                }
                if src.len() < 4 + len {
                    src.reserve(4 + len - src.len());
                    return Ok(None);
                }
                src.advance(4);
                Ok(Some(src.split_to(len)))
            }
        }
    }
}

impl<T: Serialize> Encoder<&T> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &T, dst: &mut BytesMut) -> Result<(), FrameError> {
        let body = match self.encoding {
            Encoding::Json => {
                serde_json::to_vec(item).map_err(|e| FrameError::Malformed(e.to_string()))?
            }
            Encoding::Bincode => bincode::serde::encode_to_vec(item, bincode_config())
                .map_err(|e| FrameError::Malformed(e.to_string()))?,
        };
        if body.len() > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(body.len()));
        }
        match self.encoding {
            Encoding::Json => {
                dst.reserve(body.len() + 1);
                dst.put_slice(&body);
                dst.put_u8(b'\n');
            }
            Encoding::Bincode => {
                dst.reserve(body.len() + 4);
                dst.put_u32(body.len() as u32);
                dst.put_slice(&body);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::protocol::{FromAgent, ToAgent};

    fn round_trip(encoding: Encoding) {
        let mut codec = FrameCodec::new(encoding);
        let mut buf = BytesMut::new();
        let frame = FromAgent::Delta {
            turn: uuid::Uuid::now_v7(),
            text: "line one\nline two".into(),
        };
        codec.encode(&frame, &mut buf).unwrap();
        codec.encode(&ToAgent::Ping { n: 7 }, &mut buf).unwrap();
        // Half a frame is not a frame yet.
        let mut half = buf.split_to(buf.len() / 3);
        assert!(codec.decode(&mut half).unwrap().is_none());
        half.unsplit(buf);
        let mut buf = half;
        let first = codec.decode(&mut buf).unwrap().unwrap();
        match codec.parse::<FromAgent>(&first).unwrap() {
            FromAgent::Delta { text, .. } => assert_eq!(text, "line one\nline two"),
            other => panic!("{other:?}"),
        }
        let second = codec.decode(&mut buf).unwrap().unwrap();
        assert!(matches!(
            codec.parse::<ToAgent>(&second).unwrap(),
            ToAgent::Ping { n: 7 }
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn json_and_bincode_frames_round_trip_across_partial_reads() {
        round_trip(Encoding::Json);
        round_trip(Encoding::Bincode);
    }

    #[test]
    fn oversized_and_garbage_frames_are_errors() {
        let mut codec = FrameCodec::new(Encoding::Bincode);
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TooLarge(_))
        ));
        let codec = FrameCodec::new(Encoding::Json);
        assert!(matches!(
            codec.parse::<FromAgent>(b"{\"no_such_frame\": 1}"),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn a_frame_claiming_more_bytes_than_it_holds_is_refused() {
        // A delta whose turn id claims 2^45 bytes: an error, not an allocation or abort.
        let mut frame = vec![2u8]; // variant `delta`
        frame.push(253); // varint u64 follows
        frame.extend_from_slice(&(1u64 << 45).to_le_bytes());
        let codec = FrameCodec::new(Encoding::Bincode);
        assert!(matches!(
            codec.parse::<FromAgent>(&frame),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn json_frames_read_as_documented() {
        let codec = FrameCodec::new(Encoding::Json);
        let pong: FromAgent = codec.parse(br#"{"pong": {"n": 3}}"#).unwrap();
        assert!(matches!(pong, FromAgent::Pong { n: 3 }));
        let done: FromAgent = codec
            .parse(br#"{"done": {"turn": "0190c5d2-1f2e-7a00-8000-000000000001", "reply": "hi", "steps": 0, "attachments": []}}"#)
            .unwrap();
        assert!(matches!(done, FromAgent::Done { steps: 0, .. }));
        assert_eq!(
            serde_json::to_string(&ToAgent::Shutdown).unwrap(),
            "\"shutdown\""
        );
    }
}
