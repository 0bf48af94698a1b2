//! Where the vault's master key lives: the OS keychain (through `keyring`), or a key file
//! with mode 0600 when no keychain service is reachable (a headless server, CI).
//!
//! Each store has two slots: `Current`, the key the vault is sealed under, and `Next`, a
//! key being rotated in. `rotate-key` writes `Next` before it re-encrypts and promotes it
//! after, so a crash at any point leaves a key that opens the vault.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::error::VaultError;
use super::key::MasterKey;

pub use super::key::ENV_KEY_FILE;
/// `keychain`, `file` or `auto` (default): which store to use for a new vault.
pub const ENV_KEY_STORE: &str = "CLAWOS_VAULT_KEYSTORE";
/// The keychain service name.
pub const KEYCHAIN_SERVICE: &str = "clawos";

/// A key slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The key the vault is sealed under.
    Current,
    /// A key being rotated in.
    Next,
}

/// Where the master key is kept.
pub trait KeyStore: Send + Sync {
    /// The key in `slot`, if any.
    fn load(&self, slot: Slot) -> Result<Option<MasterKey>, VaultError>;
    /// Keep `key` in `slot`, replacing what was there.
    fn save(&self, slot: Slot, key: &MasterKey) -> Result<(), VaultError>;
    /// Remove the key in `slot` (no error when there is none).
    fn delete(&self, slot: Slot) -> Result<(), VaultError>;
    /// For people: "OS keychain (service clawos, ...)" or "key file /path".
    fn describe(&self) -> String;
    /// True for the OS keychain.
    fn is_keychain(&self) -> bool;
}

/// The OS keychain (Secret Service on Linux, Keychain on macOS) through `keyring`.
pub struct KeychainStore {
    account: String,
}

impl KeychainStore {
    /// The keychain entry for the state folder `dir` (one key per state folder).
    pub fn for_home(dir: &Path) -> Self {
        let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let id = blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex();
        KeychainStore {
            account: format!("vault-key-{}", &id[..16]),
        }
    }

    fn entry(&self, slot: Slot) -> Result<keyring::Entry, VaultError> {
        let account = match slot {
            Slot::Current => self.account.clone(),
            Slot::Next => format!("{}-next", self.account),
        };
        keyring::Entry::new(KEYCHAIN_SERVICE, &account)
            .map_err(|e| VaultError::Keychain(e.to_string()))
    }
}

impl KeyStore for KeychainStore {
    fn load(&self, slot: Slot) -> Result<Option<MasterKey>, VaultError> {
        match self.entry(slot)?.get_password() {
            Ok(hex) => MasterKey::from_hex(&hex).map(Some).ok_or_else(|| {
                VaultError::BadKey(format!(
                    "{} holds something that is not a key",
                    self.describe()
                ))
            }),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(VaultError::Keychain(e.to_string())),
        }
    }

    fn save(&self, slot: Slot, key: &MasterKey) -> Result<(), VaultError> {
        self.entry(slot)?
            .set_password(&key.to_hex())
            .map_err(|e| VaultError::Keychain(e.to_string()))
    }

    fn delete(&self, slot: Slot) -> Result<(), VaultError> {
        match self.entry(slot)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(VaultError::Keychain(e.to_string())),
        }
    }

    fn describe(&self) -> String {
        format!(
            "OS keychain (service {KEYCHAIN_SERVICE}, account {})",
            self.account
        )
    }

    fn is_keychain(&self) -> bool {
        true
    }
}

/// A key file only its owner can read (mode 0600); `Next` is the same path + `.next`.
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// The key file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore { path: path.into() }
    }

    /// The default key file of a state folder.
    pub fn default_path(dir: &Path) -> PathBuf {
        dir.join("vault.key")
    }

    fn path(&self, slot: Slot) -> PathBuf {
        match slot {
            Slot::Current => self.path.clone(),
            Slot::Next => {
                let mut p = self.path.clone().into_os_string();
                p.push(".next");
                PathBuf::from(p)
            }
        }
    }
}

impl KeyStore for FileStore {
    fn load(&self, slot: Slot) -> Result<Option<MasterKey>, VaultError> {
        let path = self.path(slot);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(VaultError::io(format!("cannot read {}", path.display()), e)),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(VaultError::BadKey(format!(
                "the key file {} can be read by others (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            )));
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(&path)
                .map_err(|e| VaultError::io(format!("cannot read {}", path.display()), e))?,
        );
        MasterKey::from_hex(text.trim()).map(Some).ok_or_else(|| {
            VaultError::BadKey(format!(
                "{} does not hold a key (64 hex digits)",
                path.display()
            ))
        })
    }

    fn save(&self, slot: Slot, key: &MasterKey) -> Result<(), VaultError> {
        let path = self.path(slot);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| VaultError::io(format!("cannot create {}", parent.display()), e))?;
        }
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let write = || -> std::io::Result<()> {
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(key.to_hex().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            if let Some(parent) = path.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| VaultError::io(format!("cannot write {}", path.display()), e))
    }

    fn delete(&self, slot: Slot) -> Result<(), VaultError> {
        let path = self.path(slot);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(VaultError::io(
                format!("cannot remove {}", path.display()),
                e,
            )),
        }
    }

    fn describe(&self) -> String {
        format!("key file {}", self.path.display())
    }

    fn is_keychain(&self) -> bool {
        false
    }
}

/// The store chosen for a state folder, with the reason when it is the file fallback.
pub struct Chosen {
    /// The store.
    pub store: Box<dyn KeyStore>,
    /// Why the keychain is not used (absent when it is, or when a file was asked for).
    pub fallback: Option<String>,
}

/// Choose the key store for the state folder `dir`:
/// 1. `CLAWOS_VAULT_KEY_FILE` names a file: that file.
/// 2. The state folder already has `vault.key`: that file (the key this vault was made with).
/// 3. `CLAWOS_VAULT_KEYSTORE=file`: `vault.key`.
/// 4. The OS keychain, when its service answers; otherwise `vault.key`, with the reason.
pub fn choose(dir: &Path) -> Chosen {
    if let Some(p) = std::env::var_os(ENV_KEY_FILE).filter(|p| !p.is_empty()) {
        return Chosen {
            store: Box::new(FileStore::new(p)),
            fallback: None,
        };
    }
    let default_file = FileStore::default_path(dir);
    let asked = std::env::var(ENV_KEY_STORE).unwrap_or_default();
    if asked == "file" {
        return Chosen {
            store: Box::new(FileStore::new(default_file)),
            fallback: None,
        };
    }
    if default_file.exists() {
        return Chosen {
            store: Box::new(FileStore::new(default_file)),
            fallback: Some(
                "this vault's key was put in a file because no OS keychain was reachable \
                 when the vault was created"
                    .into(),
            ),
        };
    }
    let keychain = KeychainStore::for_home(dir);
    match keychain.load(Slot::Current) {
        Ok(_) => Chosen {
            store: Box::new(keychain),
            fallback: None,
        },
        Err(e) => Chosen {
            store: Box::new(FileStore::new(default_file)),
            fallback: Some(format!("no OS keychain is reachable ({e})")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips_with_mode_0600_and_refuses_a_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("k"));
        assert!(store.load(Slot::Current).unwrap().is_none());
        let key = MasterKey::generate();
        store.save(Slot::Current, &key).unwrap();
        let mode = std::fs::metadata(dir.path().join("k"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            store.load(Slot::Current).unwrap().unwrap().to_hex(),
            key.to_hex()
        );
        assert!(store.load(Slot::Next).unwrap().is_none());
        std::fs::set_permissions(dir.path().join("k"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let err = store.load(Slot::Current).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_key_file_of_garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "not a key").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = FileStore::new(&path)
            .load(Slot::Current)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not hold a key"), "{err}");
    }
}
