//! Sealing one secret value: XChaCha20-Poly1305 with a fresh random 24-byte nonce and the
//! secret's name and version as associated data.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use super::key::MasterKey;

/// Length of an XChaCha20 nonce.
pub const NONCE_LEN: usize = 24;

/// A sealed value: the nonce and the ciphertext with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Random nonce used for this write.
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// The associated data binding a ciphertext to its name and version.
fn associated_data(name: &str, version: u32) -> Vec<u8> {
    let mut ad = b"clawos-vault-v1\0".to_vec();
    ad.extend_from_slice(name.as_bytes());
    ad.push(0);
    ad.extend_from_slice(&version.to_le_bytes());
    ad
}

/// Encrypt `value` for `name` at `version` under `key`.
pub fn seal(key: &MasterKey, name: &str, version: u32, value: &[u8]) -> Sealed {
    let cipher = XChaCha20Poly1305::new(key.bytes().into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ad = associated_data(name, version);
    // Encryption with a valid key and nonce length cannot fail for in-memory buffers.
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: value,
                aad: &ad,
            },
        )
        .unwrap_or_default();
    Sealed {
        nonce: nonce.to_vec(),
        ciphertext,
    }
}

/// Decrypt a sealed value; `None` when the key, the name, the version, the nonce or the
/// ciphertext is not the one it was sealed with (tampering included).
pub fn open(
    key: &MasterKey,
    name: &str,
    version: u32,
    sealed: &Sealed,
) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.nonce.len() != NONCE_LEN {
        return None;
    }
    let cipher = XChaCha20Poly1305::new(key.bytes().into());
    let ad = associated_data(name, version);
    cipher
        .decrypt(
            XNonce::from_slice(&sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &ad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_tamper_fails_closed() {
        let key = MasterKey::generate();
        let s = seal(&key, "openai", 3, b"sk-live-123");
        assert_eq!(
            open(&key, "openai", 3, &s).as_deref().map(|v| v.as_slice()),
            Some(&b"sk-live-123"[..])
        );
        assert!(
            open(&MasterKey::generate(), "openai", 3, &s).is_none(),
            "wrong key"
        );
        assert!(open(&key, "anthropic", 3, &s).is_none(), "other name");
        assert!(open(&key, "openai", 2, &s).is_none(), "other version");
        for i in 0..s.ciphertext.len() {
            let mut t = s.clone();
            t.ciphertext[i] ^= 0x01;
            assert!(open(&key, "openai", 3, &t).is_none(), "flipped byte {i}");
        }
        let mut t = s.clone();
        t.nonce[0] ^= 1;
        assert!(open(&key, "openai", 3, &t).is_none(), "flipped nonce");
        t.nonce.pop();
        assert!(open(&key, "openai", 3, &t).is_none(), "short nonce");
    }

    #[test]
    fn every_write_uses_a_fresh_nonce() {
        let key = MasterKey::generate();
        let a = seal(&key, "n", 1, b"same");
        let b = seal(&key, "n", 1, b"same");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }
}
