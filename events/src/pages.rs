//! Reading the log forward in pages, with the next page read (on sqlx's worker thread)
//! while the caller works on the current one: what a catch-up or a fold does with every
//! page it gets.

use tokio::task::JoinHandle;

use crate::envelope::RecordedEvent;
use crate::store::LogStore;
use crate::LogError;

/// Pages of the log in seq order, from [`LogStore::pages`].
pub struct Pages {
    store: LogStore,
    /// First seq of the next page.
    next: u64,
    /// Last seq wanted; `None` reads on until an empty page, so events another process
    /// appended (beyond this process's head) are read too.
    end: Option<u64>,
    size: u32,
    ahead: Option<JoinHandle<Result<Vec<RecordedEvent>, LogError>>>,
}

impl Pages {
    pub(crate) fn new(store: LogStore, from: u64, end: Option<u64>, size: u32) -> Self {
        Pages {
            store,
            next: from,
            end,
            size: size.max(1),
            ahead: None,
        }
    }

    /// The next page; empty once the end (or the log's end) is reached.
    pub async fn next_page(&mut self) -> Result<Vec<RecordedEvent>, LogError> {
        if self.end.is_some_and(|end| self.next > end) {
            return Ok(Vec::new());
        }
        let page = match self.ahead.take() {
            Some(read) => match read.await {
                Ok(page) => page?,
                Err(_) => read_page(&self.store, self.next, self.end, self.size).await?,
            },
            None => read_page(&self.store, self.next, self.end, self.size).await?,
        };
        let Some(last) = page.last().map(|e| e.seq) else {
            return Ok(page);
        };
        self.next = last + 1;
        if self.next <= self.end.unwrap_or_else(|| self.store.head()) {
            let (store, from, end, size) = (self.store.clone(), self.next, self.end, self.size);
            self.ahead = Some(tokio::spawn(async move {
                read_page(&store, from, end, size).await
            }));
        }
        Ok(page)
    }
}

async fn read_page(
    store: &LogStore,
    from: u64,
    end: Option<u64>,
    size: u32,
) -> Result<Vec<RecordedEvent>, LogError> {
    match end {
        Some(end) => {
            let to = end.min(from.saturating_add(u64::from(size) - 1));
            store.read_range(from, to).await
        }
        None => store.read_from(from, size).await,
    }
}
