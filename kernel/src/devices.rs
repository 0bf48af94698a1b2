//! Device identity on `/ws`: a device is an Ed25519 key. Its id is the SHA-256 of the raw
//! public key; it proves it holds the key by signing the connect challenge (the OpenClaw
//! `v3` or `v2` payload); a paired device gets a token per role, derived from the
//! Gateway's key and the generation recorded in the log, so no token is ever stored or
//! logged and a rotation or revocation is one event.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// How far a device's signing time may be from ours.
pub const SIGNATURE_SKEW_MS: i64 = 120_000;

/// Why a device's proof was refused (each maps to an OpenClaw `DEVICE_AUTH_*` code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    /// The public key is not 32 bytes of base64url (or base64).
    PublicKey,
    /// The device id is not the SHA-256 of the public key.
    DeviceId,
    /// The signing time is more than [`SIGNATURE_SKEW_MS`] away.
    Stale,
    /// No nonce was signed.
    NonceMissing,
    /// The signed nonce is not the one this connection was challenged with.
    NonceMismatch,
    /// The signature verifies against neither payload version.
    Signature,
}

impl ProofError {
    /// The OpenClaw `details.code`.
    pub fn code(self) -> &'static str {
        match self {
            ProofError::PublicKey => "DEVICE_AUTH_PUBLIC_KEY_INVALID",
            ProofError::DeviceId => "DEVICE_AUTH_DEVICE_ID_MISMATCH",
            ProofError::Stale => "DEVICE_AUTH_SIGNATURE_EXPIRED",
            ProofError::NonceMissing => "DEVICE_AUTH_NONCE_REQUIRED",
            ProofError::NonceMismatch => "DEVICE_AUTH_NONCE_MISMATCH",
            ProofError::Signature => "DEVICE_AUTH_SIGNATURE_INVALID",
        }
    }

    /// The message the client shows.
    pub fn message(self) -> &'static str {
        match self {
            ProofError::PublicKey => "device public key invalid",
            ProofError::DeviceId => "device identity mismatch",
            ProofError::Stale => "device signature expired",
            ProofError::NonceMissing => "device nonce required",
            ProofError::NonceMismatch => "device nonce mismatch",
            ProofError::Signature => "device signature invalid",
        }
    }
}

/// What a device signed, besides the challenge nonce (the connect request's fields).
#[derive(Debug, Clone, Default)]
pub struct SignedFields<'a> {
    /// Claimed device id.
    pub device_id: &'a str,
    /// `client.id`.
    pub client_id: &'a str,
    /// `client.mode`.
    pub client_mode: &'a str,
    /// Role asked for.
    pub role: &'a str,
    /// Scopes asked for, in the order sent.
    pub scopes: &'a [String],
    /// `device.signedAt` (unix ms).
    pub signed_at_ms: i64,
    /// The token presented (`auth.token`, else `auth.deviceToken`), empty when none.
    pub token: &'a str,
    /// The nonce the device signed.
    pub nonce: &'a str,
    /// `client.platform`.
    pub platform: &'a str,
    /// `client.deviceFamily`.
    pub device_family: &'a str,
}

/// Decode base64url or standard base64, with or without padding.
fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let t = s.trim().trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(t)
        .or_else(|_| STANDARD_NO_PAD.decode(t))
        .ok()
}

/// The device id of a public key: lowercase hex SHA-256 of the raw 32 bytes.
pub fn device_id_of(public_key: &[u8; 32]) -> String {
    hex::encode(Sha256::digest(public_key))
}

/// A public key as sent on the wire, decoded (32 raw bytes).
pub fn public_key(wire: &str) -> Result<[u8; 32], ProofError> {
    decode_b64(wire)
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or(ProofError::PublicKey)
}

/// The public key in the form we record: base64url without padding.
pub fn public_key_wire(raw: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// Trimmed and ASCII-lowercased, as device metadata is signed.
fn metadata(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// The `v2` payload a device signs.
pub fn payload_v2(f: &SignedFields<'_>) -> String {
    [
        "v2",
        f.device_id,
        f.client_id,
        f.client_mode,
        f.role,
        &f.scopes.join(","),
        &f.signed_at_ms.to_string(),
        f.token,
        f.nonce,
    ]
    .join("|")
}

/// The `v3` payload a device signs: `v2`'s fields and its platform and device family.
pub fn payload_v3(f: &SignedFields<'_>) -> String {
    let v2 = payload_v2(f);
    format!(
        "v3{}|{}|{}",
        &v2[2..],
        metadata(f.platform),
        metadata(f.device_family)
    )
}

/// Check a device's proof: its id matches its key, it signed recently, it signed our
/// nonce, and the signature verifies over the `v3` or the `v2` payload. Returns the raw
/// public key.
pub fn verify(
    f: &SignedFields<'_>,
    public_key_wire: &str,
    signature: &str,
    challenge: &str,
    now_ms: i64,
) -> Result<[u8; 32], ProofError> {
    let raw = public_key(public_key_wire)?;
    if device_id_of(&raw) != f.device_id.trim().to_ascii_lowercase() {
        return Err(ProofError::DeviceId);
    }
    if (now_ms - f.signed_at_ms).abs() > SIGNATURE_SKEW_MS {
        return Err(ProofError::Stale);
    }
    let nonce = f.nonce.trim();
    if nonce.is_empty() {
        return Err(ProofError::NonceMissing);
    }
    if nonce != challenge {
        return Err(ProofError::NonceMismatch);
    }
    let key = VerifyingKey::from_bytes(&raw).map_err(|_| ProofError::PublicKey)?;
    let sig = decode_b64(signature)
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .map(|b| Signature::from_bytes(&b))
        .ok_or(ProofError::Signature)?;
    let v3 = payload_v3(f);
    if key.verify(v3.as_bytes(), &sig).is_ok() {
        return Ok(raw);
    }
    if key.verify(payload_v2(f).as_bytes(), &sig).is_ok() {
        return Ok(raw);
    }
    Err(ProofError::Signature)
}

/// Derives device tokens from a Gateway secret (the admin token): rotating that secret
/// replaces every device token at once.
#[derive(Clone)]
pub struct TokenMint {
    key: [u8; 32],
}

impl TokenMint {
    /// A mint keyed by `secret`.
    pub fn new(secret: &str) -> Self {
        TokenMint {
            key: blake3::derive_key("clawos 2026-12 device tokens", secret.as_bytes()),
        }
    }

    /// The token of `device` for `role` at `generation` (base64url, 43 characters).
    pub fn token(&self, device: &str, role: &str, generation: u32) -> String {
        let msg = format!("{device}\u{1f}{role}\u{1f}{generation}");
        URL_SAFE_NO_PAD.encode(blake3::keyed_hash(&self.key, msg.as_bytes()).as_bytes())
    }

    /// Whether `token` is the live token of `device` for `role` (constant time).
    pub fn opens(&self, token: &str, device: &str, role: &str, generation: u32) -> bool {
        crate::tokens::same(token, &self.token(device, role, generation))
    }
}

#[cfg(test)]
mod tests;
