//! The envelope around every payload, what a caller hands to `append`, and stream names.

use serde::Serialize;
use uuid::Uuid;

use crate::catalogue::EventPayload;
use crate::{codec, LogError};

/// An event to append: the payload plus the links that tie it to other events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// What happened.
    pub payload: EventPayload,
    /// The event that directly caused this one.
    pub causation_id: Option<Uuid>,
    /// The conversation or operation it belongs to.
    pub correlation_id: Option<Uuid>,
    /// A key that must be unique in the whole log; a request carrying a key that is
    /// already present appends nothing and returns the original seq.
    pub dedupe_key: Option<String>,
    /// Time of the event (unix ms); `None` lets the writer stamp the commit time.
    pub ts_ms: Option<i64>,
}

impl NewEvent {
    /// An event with no links.
    pub fn new(payload: impl Into<EventPayload>) -> Self {
        NewEvent {
            payload: payload.into(),
            causation_id: None,
            correlation_id: None,
            dedupe_key: None,
            ts_ms: None,
        }
    }

    /// Record which event caused this one.
    pub fn caused_by(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Record the correlation id (conversation, turn).
    pub fn correlated(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Make the append idempotent under this key.
    pub fn dedupe(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    /// Set the event time explicitly (unix ms).
    pub fn at(mut self, ts_ms: i64) -> Self {
        self.ts_ms = Some(ts_ms);
        self
    }
}

/// The dedupe key of an inbound message: unique per (channel, external id).
pub fn inbound_dedupe_key(channel: &str, external_id: &str) -> String {
    format!("in\u{1f}{channel}\u{1f}{external_id}")
}

/// What `append` expects the stream's current version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's current version must be exactly this (its last event's version).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether `actual` satisfies the expectation.
    pub fn admits(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => actual == v,
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => write!(f, "any"),
            ExpectedVersion::NoStream => write!(f, "no stream"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// An event as stored in the log. The payload stays encoded until [`RecordedEvent::decode`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedEvent {
    /// Global position, gapless from 1.
    pub seq: u64,
    /// Unique id (uuid v7).
    pub id: Uuid,
    /// Stream it belongs to.
    pub stream: String,
    /// Position within the stream, from 1.
    pub stream_version: u64,
    /// Time (unix ms).
    pub ts_ms: i64,
    /// Kind tag.
    pub kind: String,
    /// Schema version of the stored payload.
    pub schema_version: u16,
    /// Event that caused it.
    pub causation_id: Option<Uuid>,
    /// Correlation id.
    pub correlation_id: Option<Uuid>,
    /// Dedupe key, if any.
    pub dedupe_key: Option<String>,
    /// Encoded payload.
    #[serde(skip)]
    pub payload: Vec<u8>,
    /// Chain hash: blake3(previous hash || canonical encoding of this event).
    #[serde(serialize_with = "serialize_hex")]
    pub hash: [u8; 32],
}

fn serialize_hex<S: serde::Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(hash))
}

impl RecordedEvent {
    /// Decode the payload (upcasting old versions). An unknown kind or version is an error
    /// naming this event's seq and kind.
    pub fn decode(&self) -> Result<EventPayload, LogError> {
        codec::decode(&self.kind, self.schema_version, &self.payload).map_err(|source| {
            LogError::Decode {
                seq: self.seq,
                kind: self.kind.clone(),
                source,
            }
        })
    }

    /// An event outside any log, as a fold sees it: for given/when/then tests of read
    /// models and decisions. Its id, time and hash are zero; `stream_version` is 0.
    pub fn detached(
        seq: u64,
        stream: &str,
        payload: &EventPayload,
    ) -> Result<Self, crate::CodecError> {
        Ok(RecordedEvent {
            seq,
            id: Uuid::nil(),
            stream: stream.to_string(),
            stream_version: 0,
            ts_ms: 0,
            kind: payload.kind().to_string(),
            schema_version: payload.schema_version(),
            causation_id: None,
            correlation_id: None,
            dedupe_key: None,
            payload: payload.encode()?,
            hash: [0; 32],
        })
    }

    /// The session id if this event is in a session stream.
    pub fn session_id(&self) -> Option<&str> {
        self.stream.strip_prefix(stream::SESSION_PREFIX)
    }
}

/// Stream names. Each event belongs to exactly one stream.
pub mod stream {
    /// Prefix of session streams.
    pub const SESSION_PREFIX: &str = "session:";

    /// The stream of one session: its messages, turns, branches and compactions.
    pub fn session(session_id: &str) -> String {
        format!("{SESSION_PREFIX}{session_id}")
    }

    /// The stream of one identity: address links.
    pub fn identity(identity: &str) -> String {
        format!("identity:{identity}")
    }

    /// The stream of one agent runtime process: starts and exits.
    pub fn agent_process(agent: &str) -> String {
        format!("agent-process:{agent}")
    }

    /// The stream of one channel instance: starts, exits, delivery acks.
    pub fn channel(channel: &str) -> String {
        format!("channel:{channel}")
    }

    /// The single stream of binding changes.
    pub const BINDINGS: &str = "bindings";
    /// The stream of memory writes.
    pub const MEMORY: &str = "memory";
    /// The stream of vault changes (names and versions only).
    pub const VAULT: &str = "vault";
    /// The stream of cron jobs.
    pub const CRON: &str = "cron";
    /// The stream of pairing requests and approvals.
    pub const PAIRING: &str = "pairing";
    /// The stream of approval requests and answers (shell policy `ask`).
    pub const APPROVALS: &str = "approvals";
    /// Devices (Control UIs, companion apps, nodes): pairing requests, approvals, tokens.
    pub const DEVICES: &str = "devices";
    /// Commands invoked on nodes and their results.
    pub const NODES: &str = "nodes";
}
