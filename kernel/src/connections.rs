//! Who may speak for each channel on `/bus`, and when each was last heard from. The
//! supervisor issues a token per process start; the bus checks hellos against it and
//! records heartbeats; the supervisor kills a channel that went silent.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::tokens;

/// The live channel connections' tokens and last-heard times.
#[derive(Debug, Default)]
pub struct Connections {
    tokens: Mutex<HashMap<String, String>>,
    last_seen: Mutex<HashMap<String, Instant>>,
}

impl Connections {
    /// Let the process holding `token` speak for `channel` (replacing any earlier token),
    /// and forget when the channel was last heard from.
    pub fn admit(&self, channel: &str, token: String) {
        lock(&self.tokens).insert(channel.to_string(), token);
        lock(&self.last_seen).remove(channel);
    }

    /// No process may speak for `channel` any more.
    pub fn revoke(&self, channel: &str) {
        lock(&self.tokens).remove(channel);
    }

    /// Whether `token` opens `channel` (compared in constant time).
    pub fn opens(&self, channel: &str, token: &str) -> bool {
        lock(&self.tokens)
            .get(channel)
            .is_some_and(|t| tokens::same(t, token))
    }

    /// Record that `channel` was heard from now.
    pub fn seen(&self, channel: &str) {
        lock(&self.last_seen).insert(channel.to_string(), Instant::now());
    }

    /// How long ago each channel was last heard from.
    pub fn silences(&self) -> Vec<(String, std::time::Duration)> {
        lock(&self.last_seen)
            .iter()
            .map(|(c, t)| (c.clone(), t.elapsed()))
            .collect()
    }

    /// When `channel` was last heard from, if since its process started.
    pub fn last_seen(&self, channel: &str) -> Option<Instant> {
        lock(&self.last_seen).get(channel).copied()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_replaces_the_old_and_revoke_closes() {
        let c = Connections::default();
        c.admit("irc", "a".repeat(32));
        assert!(c.opens("irc", &"a".repeat(32)));
        c.admit("irc", "b".repeat(32));
        assert!(!c.opens("irc", &"a".repeat(32)));
        assert!(c.opens("irc", &"b".repeat(32)));
        assert!(!c.opens("webhook", &"b".repeat(32)));
        c.revoke("irc");
        assert!(!c.opens("irc", &"b".repeat(32)));
    }
}
