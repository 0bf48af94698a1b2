//! The media store seen from the log: which blobs events reference, which referenced blobs
//! are missing (`clawos media check`), and which stored blobs no event references
//! (`clawos media gc`).
//!
//! The log is the truth here too: a blob is kept while any `MessageReceived` or
//! `MessageSent` names its hash. A channel writes a blob before it posts the message that
//! names it, so `gc` spares blobs younger than a grace period: one written a moment ago
//! may belong to a message still on its way to the log.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use clawos_channels::media::{MediaError, MediaStore};
use clawos_events::{Attachment, EventPayload, LogStore};

use crate::KernelError;

/// Events read per page while scanning the log.
const PAGE: u32 = 2048;

/// The default grace period of `clawos media gc`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// Where a blob is referenced first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Seq of the first event naming it.
    pub seq: u64,
    /// The attachment as that event records it.
    pub attachment: Attachment,
}

/// Every blob hash the log references, with its first reference.
pub async fn referenced(log: &LogStore) -> Result<BTreeMap<String, Reference>, KernelError> {
    let mut out = BTreeMap::new();
    let mut from = 1;
    let head = log.head();
    while from <= head {
        let page = log
            .read_kinds(from, head, &["MessageReceived", "MessageSent"], PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        for e in &page {
            let attachments = match e.decode()? {
                EventPayload::MessageReceived(m) => m.attachments,
                EventPayload::MessageSent(m) => m.attachments,
                _ => continue,
            };
            for a in attachments {
                if let Some(hash) = a.blake3.clone() {
                    out.entry(hash).or_insert(Reference {
                        seq: e.seq,
                        attachment: a,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Referenced blobs the store does not hold (or holds damaged), by hash.
pub async fn missing(
    log: &LogStore,
    store: &MediaStore,
) -> Result<Vec<(String, Reference)>, KernelError> {
    let mut out = Vec::new();
    for (hash, r) in referenced(log).await? {
        match store.get(&hash) {
            Ok(_) => {}
            Err(MediaError::Missing(_)) => out.push((hash, r)),
            Err(e) => return Err(KernelError::Media(e)),
        }
    }
    Ok(out)
}

/// What a garbage collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// Blobs removed.
    pub removed: Vec<String>,
    /// Bytes freed.
    pub freed: u64,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub spared: usize,
    /// Referenced blobs kept.
    pub kept: usize,
}

/// Remove the blobs no event references and older than `grace`. With `dry_run`, only say
/// what would go.
pub async fn collect(
    log: &LogStore,
    store: &MediaStore,
    grace: Duration,
    dry_run: bool,
) -> Result<Collected, KernelError> {
    let refs = referenced(log).await?;
    let now = SystemTime::now();
    let mut done = Collected::default();
    for blob in store.list().map_err(KernelError::Media)? {
        if refs.contains_key(&blob.hash) {
            done.kept += 1;
            continue;
        }
        let age = blob
            .modified
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age < grace {
            done.spared += 1;
            continue;
        }
        if !dry_run {
            store.remove(&blob.hash).map_err(KernelError::Media)?;
        }
        done.freed += blob.size;
        done.removed.push(blob.hash);
    }
    Ok(done)
}
