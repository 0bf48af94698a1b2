//! Images in a user message: [`ImagePart`] (the bytes, their type and their blake3 hash),
//! the base64 the HTTP dialects send, the placeholder the log keeps instead
//! ([`redact_images`]), and the type a file really has ([`sniff_mime`]).
//!
//! The bytes of an image are already in the media store, so the `LlmRequested` event of a
//! request that carried one records a placeholder naming the image's blake3 hash and size
//! (`data:image/png;blake3=<hex>;bytes=1234`) where the request had its base64.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The image types the HTTP providers take (OpenAI and Anthropic agree on these four).
pub const IMAGE_MIMES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// One image sent with a user message.
///
/// Its blake3 hash is computed from the bytes when it is made, so the placeholder
/// recorded in the log always names the bytes that were sent.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ImagePartSerde", from = "ImagePartSerde")]
pub struct ImagePart {
    name: String,
    mime: String,
    data: Vec<u8>,
    blake3: String,
}

/// The serialized form of an [`ImagePart`] (the hash is recomputed when read back).
#[derive(Serialize, Deserialize)]
struct ImagePartSerde {
    name: String,
    mime: String,
    data: Vec<u8>,
}

impl From<ImagePartSerde> for ImagePart {
    fn from(s: ImagePartSerde) -> Self {
        ImagePart::new(s.name, s.mime, s.data)
    }
}

impl From<ImagePart> for ImagePartSerde {
    fn from(p: ImagePart) -> Self {
        ImagePartSerde {
            name: p.name,
            mime: p.mime,
            data: p.data,
        }
    }
}

impl std::fmt::Debug for ImagePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImagePart")
            .field("name", &self.name)
            .field("mime", &self.mime)
            .field("bytes", &self.data.len())
            .field("blake3", &self.blake3)
            .finish()
    }
}

impl ImagePart {
    /// The image `data` of type `mime` (one of [`IMAGE_MIMES`]), from the file `name`.
    pub fn new(name: impl Into<String>, mime: impl Into<String>, data: Vec<u8>) -> Self {
        let blake3 = blake3::hash(&data).to_hex().to_string();
        ImagePart {
            name: name.into(),
            mime: mime.into(),
            data,
            blake3,
        }
    }

    /// The file name it came as (named in notes to the model).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its MIME type (`image/png`, ...).
    pub fn mime(&self) -> &str {
        &self.mime
    }

    /// The bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The blake3 hash of the bytes, 64 hex digits (its name in the media store).
    pub fn blake3(&self) -> &str {
        &self.blake3
    }

    /// The bytes in standard base64 (with padding), as the Anthropic API takes them.
    pub fn base64(&self) -> String {
        base64(&self.data)
    }

    /// A `data:<mime>;base64,<...>` URL, as the OpenAI API takes it.
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.mime, self.base64())
    }

    /// What the log records instead of the bytes: `data:<mime>;blake3=<hex>;bytes=<n>`.
    pub fn placeholder(&self) -> String {
        format!(
            "data:{};blake3={};bytes={}",
            self.mime,
            self.blake3,
            self.data.len()
        )
    }
}

/// Replace, anywhere in `body`, each string that is the base64 or the data URL of one of
/// `images` by that image's [`placeholder`](ImagePart::placeholder). Nothing else of
/// the body changes.
pub fn redact_images<'a>(body: &mut Value, images: impl IntoIterator<Item = &'a ImagePart>) {
    let known: Vec<(String, String)> = images
        .into_iter()
        // An empty image's base64 is "", which every empty string would match.
        .filter(|image| !image.data.is_empty())
        .map(|image| (image.base64(), image.placeholder()))
        .collect();
    if !known.is_empty() {
        redact(body, &known);
    }
}

fn redact(value: &mut Value, known: &[(String, String)]) {
    match value {
        Value::String(s) => {
            let b64 = match s.strip_prefix("data:") {
                Some(rest) => rest.split_once(";base64,").map_or(s.as_str(), |(_, b)| b),
                None => s.as_str(),
            };
            if let Some((_, placeholder)) = known.iter().find(|(k, _)| k.as_str() == b64) {
                *s = placeholder.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, known)),
        Value::Object(map) => map.values_mut().for_each(|v| redact(v, known)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The image type `data` really is, from its first bytes: one of [`IMAGE_MIMES`], or
/// `None` for anything else.
pub fn sniff_mime(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Standard base64 (RFC 4648 §4) with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
        assert_eq!(base64(&[0xFB, 0xFF, 0xBF]), "+/+/");
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff_mime(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_mime(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff_mime(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff_mime(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_mime(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(sniff_mime(b"<svg"), None);
        assert_eq!(sniff_mime(b""), None);
    }

    #[test]
    fn redaction_replaces_base64_and_data_urls_only() {
        let image = ImagePart::new("a.png", "image/png", b"\x89PNG\r\n\x1a\nxyz".to_vec());
        let other = ImagePart::new("b.png", "image/png", b"\x89PNG\r\n\x1a\nother".to_vec());
        let mut body = json!({
            "messages": [
                {"content": [{"type": "image_url", "image_url": {"url": image.data_url()}}]},
                {"content": [{"source": {"type": "base64", "data": image.base64()}}]},
                {"content": "text that is not an image", "n": 3},
                {"content": other.base64()},
            ]
        });
        redact_images(&mut body, [&image]);
        let placeholder = format!(
            "data:image/png;blake3={};bytes=11",
            blake3::hash(image.data()).to_hex()
        );
        assert_eq!(image.placeholder(), placeholder);
        assert_eq!(
            body,
            json!({
                "messages": [
                    {"content": [{"type": "image_url", "image_url": {"url": placeholder}}]},
                    {"content": [{"source": {"type": "base64", "data": placeholder}}]},
                    {"content": "text that is not an image", "n": 3},
                    {"content": other.base64()},
                ]
            })
        );
    }

    #[test]
    fn serde_round_trip_recomputes_the_hash() {
        let image = ImagePart::new("a.gif", "image/gif", b"GIF89a".to_vec());
        let text = serde_json::to_string(&image).expect("serialize");
        assert!(!text.contains("blake3"), "{text}");
        let back: ImagePart = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, image);
        assert_eq!(back.blake3(), image.blake3());
    }
}
