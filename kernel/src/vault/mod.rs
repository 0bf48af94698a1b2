//! The vault: secret values (provider API keys, channel secrets, the admin token) sealed
//! with XChaCha20-Poly1305 in `vault.db`, a SQLite file beside the log and outside it.
//!
//! The master key lives in the OS keychain, or in a 0600 key file when no keychain service
//! is reachable ([`keystore`]). The log only ever records a secret's name and version
//! (`SecretStored`, `SecretDeleted`); values never leave this module unencrypted except as
//! the return value of [`Vault::get`].
//!
//! **Fail closed:** a wrong key, a missing key or a tampered row is an error that names
//! the problem; nothing is decrypted and nothing is overwritten.

mod error;
mod key;
pub mod keystore;
pub mod seal;

pub use error::VaultError;
pub use key::MasterKey;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use clawos_events::{stream, ExpectedVersion, LogStore, NewEvent, SecretDeleted, SecretStored};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use zeroize::Zeroizing;

use keystore::{Chosen, KeyStore, Slot};
use seal::Sealed;

/// The vault's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/vault");

/// The name the admin token is kept under.
pub const ADMIN_TOKEN: &str = "clawos.admin-token";

/// One secret as `list` shows it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretInfo {
    /// Name.
    pub name: String,
    /// Version (1 for the first write).
    pub version: u32,
    /// Last write, milliseconds since the Unix epoch.
    pub updated_ms: i64,
}

/// An open vault.
pub struct Vault {
    pool: SqlitePool,
    path: PathBuf,
    key: MasterKey,
    store: Box<dyn KeyStore>,
    fallback: Option<String>,
}

/// Check a secret name.
pub fn check_name(name: &str) -> Result<(), VaultError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(VaultError::BadName(name.to_string()))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Vault {
    /// The vault file of a state folder.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join("vault.db")
    }

    /// Open (or create) the vault of the state folder `dir`, with its key from the store
    /// [`keystore::choose`] picks. A new vault gets a new key; a vault whose key cannot be
    /// found or does not match is refused.
    pub async fn open(dir: &Path) -> Result<Vault, VaultError> {
        let chosen = keystore::choose(dir);
        Self::open_with(dir, chosen.store, chosen.fallback).await
    }

    /// Open the vault of `dir` with its key in `store` (`fallback`: why this is not the
    /// keychain, reported by [`Vault::fallback`]).
    pub async fn open_with(
        dir: &Path,
        store: Box<dyn KeyStore>,
        fallback: Option<String>,
    ) -> Result<Vault, VaultError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| VaultError::io(format!("cannot create {}", dir.display()), e))?;
        let path = Self::path_in(dir);
        // Created 0600 before SQLite opens it: its WAL and shared-memory files take the
        // database file's mode.
        create_private(&path)?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;

        let check: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT value FROM vault_meta WHERE key = 'key_check'")
                .fetch_optional(&pool)
                .await?;
        let (store, fallback, key) = match check {
            Some(check) => {
                let key = Self::existing_key(&path, store.as_ref(), &check)?;
                (store, fallback, key)
            }
            None => {
                let (Chosen { store, fallback }, key) =
                    Self::new_key(dir, Chosen { store, fallback })?;
                sqlx::query(
                    "INSERT OR REPLACE INTO vault_meta (key, value) VALUES ('key_check', ?)",
                )
                .bind(key.check_value().to_vec())
                .execute(&pool)
                .await?;
                (store, fallback, key)
            }
        };
        Ok(Vault {
            pool,
            path,
            key,
            store,
            fallback,
        })
    }

    /// The key of a vault that already has one: `Current`, or `Next` when a rotation
    /// committed but did not get to promote it.
    fn existing_key(
        path: &Path,
        store: &dyn KeyStore,
        check: &[u8],
    ) -> Result<MasterKey, VaultError> {
        let current = store.load(Slot::Current)?;
        let had_current = current.is_some();
        if let Some(k) = current {
            if k.check_value().as_slice() == check {
                // A rotation that never committed leaves a stale `Next`.
                store.delete(Slot::Next)?;
                return Ok(k);
            }
        }
        if let Some(next) = store.load(Slot::Next)? {
            if next.check_value().as_slice() == check {
                store.save(Slot::Current, &next)?;
                store.delete(Slot::Next)?;
                tracing::info!("vault: finished an interrupted key rotation");
                return Ok(next);
            }
        }
        let source_desc = store.describe();
        match had_current {
            true => Err(VaultError::WrongKey {
                vault: path.to_path_buf(),
                source_desc,
            }),
            false => Err(VaultError::KeyMissing {
                vault: path.to_path_buf(),
                source_desc,
            }),
        }
    }

    /// A key for a new vault: the one already in the store (a vault file was removed), or a
    /// fresh one. A keychain that refuses to keep it falls back to the key file.
    fn new_key(dir: &Path, chosen: Chosen) -> Result<(Chosen, MasterKey), VaultError> {
        let Chosen { store, fallback } = chosen;
        if let Some(k) = store.load(Slot::Current)? {
            return Ok((Chosen { store, fallback }, k));
        }
        let key = MasterKey::generate();
        let kept = store
            .save(Slot::Current, &key)
            .and_then(|()| store.load(Slot::Current))
            .map(|k| k.is_some_and(|k| k.bytes() == key.bytes()));
        match kept {
            Ok(true) => Ok((Chosen { store, fallback }, key)),
            Ok(false) | Err(_) if store.is_keychain() => {
                let why = match kept {
                    Err(e) => e.to_string(),
                    _ => "it did not keep the key".to_string(),
                };
                let file = keystore::FileStore::new(keystore::FileStore::default_path(dir));
                file.save(Slot::Current, &key)?;
                Ok((
                    Chosen {
                        store: Box::new(file),
                        fallback: Some(format!("the OS keychain cannot keep the key ({why})")),
                    },
                    key,
                ))
            }
            Ok(false) => Err(VaultError::BadKey(format!(
                "{} did not keep the new key",
                store.describe()
            ))),
            Err(e) => Err(e),
        }
    }

    /// Where the key is kept, for people.
    pub fn key_source(&self) -> String {
        self.store.describe()
    }

    /// True when the key is in the OS keychain.
    pub fn uses_keychain(&self) -> bool {
        self.store.is_keychain()
    }

    /// Why the key is in a file rather than the keychain, when that is a fallback.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The vault file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Store `value` under `name`; returns the new version (1 for a new secret).
    pub async fn set(&self, name: &str, value: &[u8]) -> Result<u32, VaultError> {
        check_name(name)?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let old: Option<i64> = sqlx::query_scalar("SELECT version FROM secrets WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let version = old.map(|v| v as u32 + 1).unwrap_or(1);
        let sealed = seal::seal(&self.key, name, version, value);
        sqlx::query(
            "INSERT OR REPLACE INTO secrets (name, version, nonce, ciphertext, updated_ms) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(name)
        .bind(version as i64)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// The value of `name`, if there is one.
    pub async fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        let row = sqlx::query("SELECT version, nonce, ciphertext FROM secrets WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let version: i64 = row.try_get("version")?;
        let sealed = Sealed {
            nonce: row.try_get("nonce")?,
            ciphertext: row.try_get("ciphertext")?,
        };
        seal::open(&self.key, name, version as u32, &sealed)
            .map(Some)
            .ok_or_else(|| VaultError::Tampered(name.to_string()))
    }

    /// The value of `name` as UTF-8 text.
    pub async fn get_text(&self, name: &str) -> Result<Option<Zeroizing<String>>, VaultError> {
        Ok(self
            .get(name)
            .await?
            .map(|v| Zeroizing::new(String::from_utf8_lossy(&v).into_owned())))
    }

    /// Every secret's name and version, by name.
    pub async fn list(&self) -> Result<Vec<SecretInfo>, VaultError> {
        let rows = sqlx::query("SELECT name, version, updated_ms FROM secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SecretInfo {
                    name: r.try_get("name")?,
                    version: r.try_get::<i64, _>("version")? as u32,
                    updated_ms: r.try_get("updated_ms")?,
                })
            })
            .collect()
    }

    /// Remove `name`; false when there was no such secret.
    pub async fn remove(&self, name: &str) -> Result<bool, VaultError> {
        let done = sqlx::query("DELETE FROM secrets WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Re-encrypt every secret under a new key, atomically: the new key goes into the
    /// `Next` slot first, the secrets and the key check change in one transaction, then the
    /// new key is promoted. Returns how many secrets were re-encrypted.
    pub async fn rotate_key(&mut self) -> Result<usize, VaultError> {
        let new_key = MasterKey::generate();
        self.store.save(Slot::Next, &new_key)?;
        let n = self.reseal_all(&new_key).await?;
        self.store.save(Slot::Current, &new_key)?;
        self.store.delete(Slot::Next)?;
        self.key = new_key;
        Ok(n)
    }

    /// The transaction of a rotation: every secret re-sealed under `new_key` and the key
    /// check switched, or nothing changed.
    async fn reseal_all(&self, new_key: &MasterKey) -> Result<usize, VaultError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query("SELECT name, version, nonce, ciphertext FROM secrets")
            .fetch_all(&mut *tx)
            .await?;
        for r in &rows {
            let name: String = r.try_get("name")?;
            let version = r.try_get::<i64, _>("version")? as u32;
            let sealed = Sealed {
                nonce: r.try_get("nonce")?,
                ciphertext: r.try_get("ciphertext")?,
            };
            let value = seal::open(&self.key, &name, version, &sealed)
                .ok_or_else(|| VaultError::Tampered(name.clone()))?;
            let resealed = seal::seal(new_key, &name, version, &value);
            sqlx::query("UPDATE secrets SET nonce = ?, ciphertext = ? WHERE name = ?")
                .bind(&resealed.nonce)
                .bind(&resealed.ciphertext)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE vault_meta SET value = ? WHERE key = 'key_check'")
            .bind(new_key.check_value().to_vec())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Store a secret and record `SecretStored` (name and version only) in the log.
    pub async fn set_recorded(
        &self,
        log: &LogStore,
        name: &str,
        value: &[u8],
    ) -> Result<u32, VaultError> {
        let version = self.set(name, value).await?;
        log.append(
            stream::VAULT,
            ExpectedVersion::Any,
            vec![NewEvent::new(SecretStored {
                name: name.to_string(),
                version,
            })],
        )
        .await?;
        Ok(version)
    }

    /// Remove a secret and record `SecretDeleted` in the log; false when there was none.
    pub async fn remove_recorded(&self, log: &LogStore, name: &str) -> Result<bool, VaultError> {
        if !self.remove(name).await? {
            return Ok(false);
        }
        log.append(
            stream::VAULT,
            ExpectedVersion::Any,
            vec![NewEvent::new(SecretDeleted {
                name: name.to_string(),
            })],
        )
        .await?;
        Ok(true)
    }

    /// The admin token: created at the first start (and recorded), then read back. An
    /// `admin.token` file from before the vault is moved in and removed.
    pub async fn admin_token(&self, log: &LogStore) -> Result<Zeroizing<String>, VaultError> {
        if let Some(t) = self.get_text(ADMIN_TOKEN).await? {
            return Ok(t);
        }
        let dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let legacy = dir.join("admin.token");
        let token = match std::fs::read_to_string(&legacy) {
            Ok(t) if t.trim().len() >= 32 => Zeroizing::new(t.trim().to_string()),
            _ => Zeroizing::new(crate::tokens::random_token()),
        };
        self.set_recorded(log, ADMIN_TOKEN, token.as_bytes())
            .await?;
        let _ = std::fs::remove_file(&legacy);
        Ok(token)
    }

    /// Close the database.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Create the vault file (empty, mode 0600) unless it exists.
fn create_private(path: &Path) -> Result<(), VaultError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(VaultError::io(
            format!("cannot create {}", path.display()),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::keystore::FileStore;
    use super::*;

    async fn open(dir: &Path) -> Result<Vault, VaultError> {
        let store = FileStore::new(dir.join("vault.key"));
        Vault::open_with(dir, Box::new(store), None).await
    }

    fn key_file(dir: &Path, slot: Slot) -> Option<String> {
        FileStore::new(dir.join("vault.key"))
            .load(slot)
            .unwrap()
            .map(|k| k.to_hex().to_string())
    }

    #[tokio::test]
    async fn a_rotation_interrupted_after_its_commit_finishes_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let v = open(dir.path()).await.unwrap();
        v.set("a", b"one").await.unwrap();
        let old = key_file(dir.path(), Slot::Current).unwrap();
        // The crash: `Next` written, the transaction committed, `Current` not promoted.
        let new_key = MasterKey::generate();
        v.store.save(Slot::Next, &new_key).unwrap();
        v.reseal_all(&new_key).await.unwrap();
        v.close().await;
        drop(v);
        assert_eq!(key_file(dir.path(), Slot::Current).unwrap(), old);

        let v = open(dir.path()).await.unwrap();
        assert_eq!(v.get("a").await.unwrap().unwrap().as_slice(), b"one");
        assert_eq!(
            key_file(dir.path(), Slot::Current).unwrap(),
            new_key.to_hex().to_string()
        );
        assert!(key_file(dir.path(), Slot::Next).is_none());
    }

    #[tokio::test]
    async fn a_rotation_interrupted_before_its_commit_keeps_the_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let v = open(dir.path()).await.unwrap();
        v.set("a", b"one").await.unwrap();
        let old = key_file(dir.path(), Slot::Current).unwrap();
        v.store.save(Slot::Next, &MasterKey::generate()).unwrap();
        v.close().await;
        drop(v);

        let v = open(dir.path()).await.unwrap();
        assert_eq!(v.get("a").await.unwrap().unwrap().as_slice(), b"one");
        assert_eq!(key_file(dir.path(), Slot::Current).unwrap(), old);
        assert!(
            key_file(dir.path(), Slot::Next).is_none(),
            "stale next key kept"
        );
    }

    #[tokio::test]
    async fn versions_count_writes_and_a_row_moved_to_another_name_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let v = open(dir.path()).await.unwrap();
        assert_eq!(v.set("a", b"one").await.unwrap(), 1);
        assert_eq!(v.set("a", b"two").await.unwrap(), 2);
        v.set("b", b"bee").await.unwrap();
        assert!(matches!(
            v.set("bad name", b"x").await,
            Err(VaultError::BadName(_))
        ));
        // Copy a's sealed row onto b: the associated data (name) no longer matches.
        sqlx::query(
            "UPDATE secrets SET nonce = (SELECT nonce FROM secrets WHERE name = 'a'), \
             ciphertext = (SELECT ciphertext FROM secrets WHERE name = 'a'), version = 2 \
             WHERE name = 'b'",
        )
        .execute(&v.pool)
        .await
        .unwrap();
        assert!(matches!(v.get("b").await, Err(VaultError::Tampered(_))));
        assert_eq!(v.get("a").await.unwrap().unwrap().as_slice(), b"two");
        let names: Vec<_> = v
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }
}
