//! The threads of the latest mails, by Message-ID: what a reply needs to say `Re:` to the
//! right subject and carry `In-Reply-To` and `References`. Kept in memory and in the
//! channel's folder (`email_threads.json`), so a reply that was pending when the process
//! was restarted is still threaded.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::read::Thread;
use crate::platform::cursor::Cursor;

/// How many threads are kept (the oldest go first).
pub const KEPT: usize = 256;

#[derive(Default)]
struct Inner {
    order: VecDeque<String>,
    map: HashMap<String, Thread>,
}

/// Threads by the Message-ID of the mail they end with.
pub struct Threads {
    inner: Mutex<Inner>,
    store: Cursor,
}

impl Threads {
    /// The threads saved in `store`, if any.
    pub fn load(store: Cursor) -> Self {
        let mut inner = Inner::default();
        let saved: Vec<(String, Thread)> = store
            .load()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        for (id, thread) in saved {
            inner.order.push_back(id.clone());
            inner.map.insert(id, thread);
        }
        Threads {
            inner: Mutex::new(inner),
            store,
        }
    }

    /// Remember the thread of mail `id` (and save the list; a failure to save is logged,
    /// it only costs threading after a restart).
    pub fn remember(&self, id: &str, thread: Thread) {
        let saved = {
            let Ok(mut inner) = self.inner.lock() else {
                return;
            };
            if inner.map.insert(id.to_string(), thread).is_none() {
                inner.order.push_back(id.to_string());
            }
            while inner.order.len() > KEPT {
                if let Some(old) = inner.order.pop_front() {
                    inner.map.remove(&old);
                }
            }
            let list: Vec<(&String, &Thread)> = inner
                .order
                .iter()
                .filter_map(|id| inner.map.get(id).map(|t| (id, t)))
                .collect();
            serde_json::to_string(&list).unwrap_or_default()
        };
        if let Err(e) = self.store.save(&saved) {
            tracing::warn!(error = %e, "cannot save the email threads");
        }
    }

    /// The thread of mail `id`.
    pub fn get(&self, id: &str) -> Option<Thread> {
        self.inner.lock().ok()?.map.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_survive_a_restart_and_the_oldest_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("threads.json");
        let t = Threads::load(Cursor::at(&path));
        for i in 0..KEPT + 3 {
            t.remember(
                &format!("m{i}@x"),
                Thread {
                    subject: format!("s{i}"),
                    references: vec![format!("m{i}@x")],
                },
            );
        }
        let again = Threads::load(Cursor::at(&path));
        assert_eq!(again.get("m0@x"), None);
        assert_eq!(again.get("m3@x").map(|t| t.subject), Some("s3".into()));
        assert_eq!(
            again.get(&format!("m{}@x", KEPT + 2)).map(|t| t.subject),
            Some(format!("s{}", KEPT + 2))
        );
    }
}
