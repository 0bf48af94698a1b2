//! The crate's error types.

use thiserror::Error;

/// A payload that could not be encoded or decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The kind tag is not in this build's catalogue.
    #[error("unknown event kind `{kind}` (schema version {schema_version})")]
    UnknownKind {
        /// The stored kind tag.
        kind: String,
        /// The stored schema version.
        schema_version: u16,
    },
    /// The kind is known but this schema version is neither current nor upcastable.
    #[error("event kind `{kind}` has unknown schema version {schema_version}")]
    UnknownVersion {
        /// The stored kind tag.
        kind: String,
        /// The stored schema version.
        schema_version: u16,
    },
    /// The bytes do not decode as the payload they claim to be.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// The payload could not be encoded.
    #[error("cannot encode payload: {0}")]
    Encode(String),
}

/// Errors of the log store.
#[derive(Debug, Error)]
pub enum LogError {
    /// `append` was called with an expected stream version that is not the current one.
    #[error("version conflict on stream `{stream}`: expected {expected}, found {actual}")]
    Conflict {
        /// The stream.
        stream: String,
        /// What the caller expected.
        expected: String,
        /// The stream's current version.
        actual: u64,
    },
    /// A stored event could not be decoded; the rest of the log stays readable.
    #[error("event seq {seq} (kind `{kind}`) cannot be decoded: {source}")]
    Decode {
        /// Seq of the event.
        seq: u64,
        /// Its kind tag.
        kind: String,
        /// Why.
        #[source]
        source: CodecError,
    },
    /// A payload could not be encoded for append.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// An append carried no events.
    #[error("append needs at least one event")]
    EmptyAppend,
    /// Two events of one append request carry the same dedupe key: the request can never
    /// be stored whole, so it is refused before it reaches the writer (where it would fail
    /// the unique index and with it every other request of its group-commit batch).
    #[error("dedupe key `{0}` appears on more than one event of the same append")]
    DuplicateKeyInRequest(String),
    /// SQLite failed (disk full, I/O error, corrupt file...). Nothing of the failed batch
    /// was committed.
    #[error("log storage error: {0}")]
    Storage(#[from] sqlx::Error),
    /// Running the schema migrations failed.
    #[error("log migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The writer task is gone (the store was closed).
    #[error("the log writer has stopped")]
    WriterClosed,
    /// A stored row is not a valid envelope (wrong blob sizes, negative seq...).
    #[error("event row seq {seq} is malformed: {reason}")]
    BadRow {
        /// Seq of the row.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
    /// A file system operation on the state folder failed.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
