//! The ids of the messages the bot sent lately, so an adapter can tell that a message
//! replying to one of them addresses the bot.

use std::collections::VecDeque;
use std::sync::Mutex;

/// How many ids are kept when no other number is given.
pub const KEPT: usize = 512;

/// A bounded set of recent ids, oldest forgotten first; safe to share between the
/// outbox (which remembers) and the inbound stream (which asks).
#[derive(Debug)]
pub struct RecentIds {
    ids: Mutex<VecDeque<String>>,
    kept: usize,
}

impl Default for RecentIds {
    fn default() -> Self {
        RecentIds::new(KEPT)
    }
}

impl RecentIds {
    /// A set keeping the last `kept` ids.
    pub fn new(kept: usize) -> Self {
        RecentIds {
            ids: Mutex::new(VecDeque::new()),
            kept,
        }
    }

    /// Remember `id` (forgetting the oldest beyond the bound).
    pub fn remember(&self, id: String) {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.push_back(id);
        while ids.len() > self.kept {
            ids.pop_front();
        }
    }

    /// Whether `id` is one of the ids kept.
    pub fn contains(&self, id: &str) -> bool {
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|i| i == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_id_is_forgotten_beyond_the_bound() {
        let recent = RecentIds::new(2);
        for id in ["a", "b", "c"] {
            recent.remember(id.into());
        }
        assert!(!recent.contains("a"));
        assert!(recent.contains("b") && recent.contains("c"));
    }
}
