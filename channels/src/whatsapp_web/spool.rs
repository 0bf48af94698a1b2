//! Messages WhatsApp handed over, kept on disk until the kernel committed them.
//!
//! WhatsApp's server drops a message from its queue once the device acks it, and the
//! Signal ratchet has moved on: it cannot be fetched again. So a message is written
//! here (one file, fsynced) before the ack, and removed only once the kernel committed
//! it. A channel killed in between finds it here at its next start and posts it again;
//! the Gateway's dedupe by external id keeps it once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::platform::AdapterError;
use crate::protocol::Inbound;

/// The folder of pending messages, in order of arrival.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Pending messages by their number (the file name), read from disk at open.
    pending: Mutex<BTreeMap<u64, Inbound>>,
    next: Mutex<u64>,
    arrived: Notify,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> AdapterError {
    AdapterError::Config(format!("{what} {}: {e}", path.display()))
}

impl Spool {
    /// Open (or create) the spool in `dir`, with what an earlier process left in it.
    pub fn open(dir: &Path) -> Result<Self, AdapterError> {
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
        let mut pending = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io("cannot read", dir, e))? {
            let path = entry.map_err(|e| io("cannot read", dir, e))?.path();
            let Some(n) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let text = std::fs::read(&path).map_err(|e| io("cannot read", &path, e))?;
            match serde_json::from_slice::<Inbound>(&text) {
                Ok(m) => {
                    pending.insert(n, m);
                }
                // A torn write cannot happen (tmp + rename); anything else is kept aside
                // for a person to look at, not lost and not retried forever.
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "an unreadable spooled message; set aside");
                    let aside = path.with_extension("unreadable");
                    std::fs::rename(&path, &aside).map_err(|e| io("cannot move", &path, e))?;
                }
            }
        }
        let next = pending.keys().next_back().map_or(0, |n| n + 1);
        Ok(Spool {
            dir: dir.to_path_buf(),
            pending: Mutex::new(pending),
            next: Mutex::new(next),
            arrived: Notify::new(),
        })
    }

    /// Keep `m` durably (written, fsynced, renamed into place, the folder fsynced).
    pub fn push(&self, m: &Inbound) -> Result<(), AdapterError> {
        let n = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next - 1
        };
        let path = self.dir.join(format!("{n:020}.json"));
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(m)
            .map_err(|e| AdapterError::Protocol(format!("cannot spool a message: {e}")))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| io("cannot spool a message in", &self.dir, e))?;
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(n, m.clone());
        self.arrived.notify_one();
        Ok(())
    }

    /// The oldest pending message and its number, waiting for one.
    pub async fn first(&self) -> (u64, Inbound) {
        loop {
            let notified = self.arrived.notified();
            if let Some((n, m)) = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .first_key_value()
                .map(|(n, m)| (*n, m.clone()))
            {
                return (n, m);
            }
            notified.await;
        }
    }

    /// Message `n` is committed: forget it.
    pub fn done(&self, n: u64) -> Result<(), AdapterError> {
        let path = self.dir.join(format!("{n:020}.json"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("cannot remove", &path, e)),
        }
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&n);
        Ok(())
    }

    /// How many messages wait.
    pub fn len(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> Inbound {
        Inbound {
            external_id: id.into(),
            sender: "whatsapp:1555@whatsapp".into(),
            chat: None,
            text: format!("text of {id}"),
            attachments: vec![],
            sent_at_ms: 1,
            mentioned: true,
        }
    }

    #[tokio::test]
    async fn messages_wait_in_order_until_committed_across_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(dir.path()).expect("open");
        spool.push(&message("a")).expect("push a");
        spool.push(&message("b")).expect("push b");
        let (n, m) = spool.first().await;
        assert_eq!(m.external_id, "a");
        // The process dies before `a` is committed: both are there at the next start.
        drop(spool);
        let spool = Spool::open(dir.path()).expect("reopen");
        assert_eq!(spool.len(), 2);
        let (n2, m) = spool.first().await;
        assert_eq!((n2, m.external_id.as_str()), (n, "a"));
        spool.done(n).expect("done a");
        let (_, m) = spool.first().await;
        assert_eq!(m.external_id, "b");
        // Numbers go on after the highest left, so order holds.
        spool.push(&message("c")).expect("push c");
        drop(spool);
        let spool = Spool::open(dir.path()).expect("reopen");
        let (nb, m) = spool.first().await;
        assert_eq!(m.external_id, "b");
        spool.done(nb).expect("done b");
        assert_eq!(spool.first().await.1.external_id, "c");
    }

    #[tokio::test]
    async fn an_unreadable_file_is_set_aside_not_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(format!("{:020}.json", 7)), b"{not json").expect("write");
        let spool = Spool::open(dir.path()).expect("open");
        assert!(spool.is_empty());
        assert!(dir.path().join(format!("{:020}.unreadable", 7)).exists());
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_when_a_message_arrives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = std::sync::Arc::new(Spool::open(dir.path()).expect("open"));
        let reader = {
            let spool = spool.clone();
            tokio::spawn(async move { spool.first().await.1.external_id })
        };
        tokio::task::yield_now().await;
        spool.push(&message("late")).expect("push");
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(got, "late");
    }
}
