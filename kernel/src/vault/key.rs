//! The vault's master key: 256 random bits, wiped from memory when dropped.

use rand::RngCore;
use zeroize::Zeroizing;

/// The environment variable that names the key file (and so chooses the file store).
pub const ENV_KEY_FILE: &str = "CLAWOS_VAULT_KEY_FILE";

/// A 256-bit master key, wiped from memory when dropped.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        MasterKey(k)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut k = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), k.as_mut()).ok()?;
        Some(MasterKey(k))
    }

    /// 64 hex digits.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The check value stored in the vault: tells whether this is its key without
    /// revealing the key.
    pub(crate) fn check_value(&self) -> [u8; 32] {
        *blake3::keyed_hash(self.bytes(), b"clawos vault key check v1").as_bytes()
    }
}
