//! What went wrong in the vault.

use std::path::PathBuf;

/// What went wrong in the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The vault database could not be read or written.
    #[error("vault database: {0}")]
    Storage(#[from] sqlx::Error),
    /// The vault database could not be migrated.
    #[error("vault database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The keychain answered with an error.
    #[error("OS keychain: {0}")]
    Keychain(String),
    /// A key store holds something unusable.
    #[error("{0}")]
    BadKey(String),
    /// The vault holds secrets but its key is nowhere to be found.
    #[error(
        "the vault {vault} was sealed with a key that is not in {source_desc}; restore that key \
         (or point {} at it). Nothing was decrypted or changed.",
        super::key::ENV_KEY_FILE
    )]
    KeyMissing {
        /// The vault file.
        vault: PathBuf,
        /// Where the key was looked for.
        source_desc: String,
    },
    /// The key found is not the one the vault was sealed with.
    #[error(
        "the key in {source_desc} is not the key of the vault {vault}; nothing was decrypted \
         or changed"
    )]
    WrongKey {
        /// The vault file.
        vault: PathBuf,
        /// Where the key came from.
        source_desc: String,
    },
    /// A stored value does not open: it was altered after it was written.
    #[error("secret `{0}` does not decrypt: its stored ciphertext was altered; set it again")]
    Tampered(String),
    /// A secret name is not allowed.
    #[error("bad secret name `{0}`: use 1 to 128 of A-Z a-z 0-9 . _ -")]
    BadName(String),
    /// Appending `SecretStored`/`SecretDeleted` failed.
    #[error(transparent)]
    Log(#[from] clawos_events::LogError),
}

impl VaultError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        VaultError::Io {
            context: context.into(),
            source,
        }
    }
}
