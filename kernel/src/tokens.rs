//! Tokens: random per-process channel tokens and the admin token, compared in constant time.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::KernelError;

/// A fresh random token (32 bytes, hex).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A one-time pairing code: 8 characters from an alphabet without look-alikes.
pub fn pairing_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect()
}

/// The hash of a pairing code as recorded in `PairingRequested` (blake3, hex).
pub fn code_hash(code: &str) -> String {
    blake3::hash(code.trim().to_ascii_uppercase().as_bytes())
        .to_hex()
        .to_string()
}

/// Constant-time comparison.
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Write a file only its owner can read (mode 0600).
pub fn write_private(path: &std::path::Path, contents: &str) -> Result<(), KernelError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| KernelError::io(format!("cannot write {}", path.display()), e))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| KernelError::io(format!("cannot write {}", path.display()), e))
}
