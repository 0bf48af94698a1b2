//! Tail subscriptions: wake on commit, then read from the subscriber's own position.

use std::collections::VecDeque;

use tokio::sync::watch;

use crate::{LogError, LogStore, RecordedEvent};

/// How often a waiting subscriber looks for events appended by other processes.
pub const FOREIGN_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Events read per query while catching up.
const PAGE: u32 = 1024;

/// A cursor that follows the log. Created by [`LogStore::subscribe`].
pub struct Subscription {
    store: LogStore,
    next_seq: u64,
    buffer: VecDeque<RecordedEvent>,
    head: watch::Receiver<u64>,
}

impl Subscription {
    pub(crate) fn new(store: LogStore, from_seq: u64) -> Self {
        let head = store.watch_head();
        Subscription {
            store,
            next_seq: from_seq,
            buffer: VecDeque::new(),
            head,
        }
    }

    /// The seq the next call to [`Subscription::next`] returns.
    pub fn position(&self) -> u64 {
        self.buffer.front().map(|e| e.seq).unwrap_or(self.next_seq)
    }

    /// The next event, waiting for an append when the subscriber is at the end.
    pub async fn next(&mut self) -> Result<RecordedEvent, LogError> {
        loop {
            if let Some(e) = self.buffer.pop_front() {
                return Ok(e);
            }
            let head = *self.head.borrow_and_update();
            if head >= self.next_seq {
                let page = self.store.read_from(self.next_seq, PAGE).await?;
                if let Some(last) = page.last() {
                    self.next_seq = last.seq + 1;
                }
                self.buffer.extend(page);
                continue;
            }
            // Wake on our own commits, and poll now and then for events another process
            // (a CLI command) appended to the same file.
            tokio::select! {
                changed = self.head.changed() => if changed.is_err() {
                    return Err(LogError::WriterClosed);
                },
                _ = tokio::time::sleep(FOREIGN_POLL) => {
                    let page = self.store.read_from(self.next_seq, PAGE).await?;
                    if let Some(last) = page.last() {
                        self.next_seq = last.seq + 1;
                    }
                    self.buffer.extend(page);
                }
            }
        }
    }

    /// Every event available now without waiting (up to `max`), possibly none.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let head = *self.head.borrow_and_update();
        if self.buffer.is_empty() && head >= self.next_seq {
            let page = self
                .store
                .read_from(self.next_seq, PAGE.max(max as u32))
                .await?;
            if let Some(last) = page.last() {
                self.next_seq = last.seq + 1;
            }
            self.buffer.extend(page);
        }
        let n = self.buffer.len().min(max);
        Ok(self.buffer.drain(..n).collect())
    }

    /// Wait until the log has an event at or beyond the subscriber's position.
    pub async fn wait(&mut self) -> Result<(), LogError> {
        loop {
            if !self.buffer.is_empty() || *self.head.borrow_and_update() >= self.next_seq {
                return Ok(());
            }
            if self.head.changed().await.is_err() {
                return Err(LogError::WriterClosed);
            }
        }
    }
}
