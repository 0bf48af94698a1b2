//! The hash chain: `hash(n) = blake3(hash(n-1) || canonical(n))`, with 32 zero bytes
//! before the first event. Every envelope field goes into `canonical`, length-prefixed, so
//! changing any byte of any stored column changes the hash.

use uuid::Uuid;

/// The hash before the first event.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// The envelope fields that the hash covers.
pub struct HashInput<'a> {
    /// Seq.
    pub seq: u64,
    /// Event id.
    pub id: &'a Uuid,
    /// Stream.
    pub stream: &'a str,
    /// Stream version.
    pub stream_version: u64,
    /// Timestamp.
    pub ts_ms: i64,
    /// Kind tag.
    pub kind: &'a str,
    /// Schema version.
    pub schema_version: u16,
    /// Causation id.
    pub causation_id: Option<&'a Uuid>,
    /// Correlation id.
    pub correlation_id: Option<&'a Uuid>,
    /// Dedupe key.
    pub dedupe_key: Option<&'a str>,
    /// Encoded payload.
    pub payload: &'a [u8],
}

fn bytes(h: &mut blake3::Hasher, b: &[u8]) {
    h.update(&(b.len() as u64).to_le_bytes());
    h.update(b);
}

fn optional(h: &mut blake3::Hasher, b: Option<&[u8]>) {
    match b {
        None => {
            h.update(&[0]);
        }
        Some(b) => {
            h.update(&[1]);
            bytes(h, b);
        }
    }
}

/// Chain `input` onto `prev`.
pub fn chain(prev: &[u8; 32], input: &HashInput<'_>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(&input.seq.to_le_bytes());
    h.update(input.id.as_bytes());
    bytes(&mut h, input.stream.as_bytes());
    h.update(&input.stream_version.to_le_bytes());
    h.update(&input.ts_ms.to_le_bytes());
    bytes(&mut h, input.kind.as_bytes());
    h.update(&input.schema_version.to_le_bytes());
    optional(&mut h, input.causation_id.map(|u| u.as_bytes().as_slice()));
    optional(
        &mut h,
        input.correlation_id.map(|u| u.as_bytes().as_slice()),
    );
    optional(&mut h, input.dedupe_key.map(str::as_bytes));
    bytes(&mut h, input.payload);
    *h.finalize().as_bytes()
}

impl<'a> HashInput<'a> {
    /// The hash input of a stored event.
    pub fn of(e: &'a crate::RecordedEvent) -> Self {
        HashInput {
            seq: e.seq,
            id: &e.id,
            stream: &e.stream,
            stream_version: e.stream_version,
            ts_ms: e.ts_ms,
            kind: &e.kind,
            schema_version: e.schema_version,
            causation_id: e.causation_id.as_ref(),
            correlation_id: e.correlation_id.as_ref(),
            dedupe_key: e.dedupe_key.as_deref(),
            payload: &e.payload,
        }
    }
}
