//! Typing indicators: while the agent works on a reply, a service that can show one
//! shows that the bot is typing. Services let an indicator lapse after a few seconds
//! (Telegram 5 s, Discord 10 s, Matrix by the timeout sent), so it is sent again every
//! [`REFRESH`] until the reply arrives or [`GIVE_UP`] has passed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often an indicator is sent again while the reply is not there.
pub const REFRESH: Duration = Duration::from_secs(4);

/// After this long without a reply the indicator is no longer renewed.
pub const GIVE_UP: Duration = Duration::from_secs(120);

/// Where an indicator shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// Recipient address, for a direct message.
    pub to: String,
    /// Group or chat, `None` for a direct message.
    pub chat: Option<String>,
}

#[derive(Debug)]
struct Pending {
    place: Place,
    next: Instant,
    until: Instant,
}

/// The replies being worked on, by the external id of the message each answers.
#[derive(Debug, Default)]
pub struct Typing {
    pending: HashMap<String, Pending>,
}

impl Typing {
    /// The agent began answering `key`: show the indicator now.
    pub fn start(&mut self, key: String, place: Place, now: Instant) {
        self.pending.insert(
            key,
            Pending {
                place,
                next: now,
                until: now + GIVE_UP,
            },
        );
    }

    /// The reply to `key` came (or began to show): no more indicator.
    pub fn stop(&mut self, key: &str) {
        self.pending.remove(key);
    }

    /// The indicator due next, and when.
    pub fn next_due(&self) -> Option<(String, Instant)> {
        self.pending
            .iter()
            .map(|(k, p)| (k.clone(), p.next))
            .min_by_key(|(_, at)| *at)
    }

    /// The indicator for `key` is being sent at `now`: where it shows, and the next one
    /// is scheduled (or none, once the reply has been awaited too long).
    pub fn sending(&mut self, key: &str, now: Instant) -> Option<Place> {
        let p = self.pending.get_mut(key)?;
        let place = p.place.clone();
        p.next = now + REFRESH;
        if p.next > p.until {
            self.pending.remove(key);
        }
        Some(place)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> Place {
        Place {
            to: "telegram:1@telegram".into(),
            chat: None,
        }
    }

    #[test]
    fn an_indicator_is_renewed_until_the_reply_comes() {
        let t0 = Instant::now();
        let mut t = Typing::default();
        t.start("m1".into(), place(), t0);
        assert_eq!(t.next_due(), Some(("m1".into(), t0)));
        assert_eq!(t.sending("m1", t0), Some(place()));
        assert_eq!(t.next_due(), Some(("m1".into(), t0 + REFRESH)));
        t.stop("m1");
        assert_eq!(t.next_due(), None);
        assert_eq!(t.sending("m1", t0), None);
    }

    #[test]
    fn an_indicator_is_not_renewed_forever() {
        let t0 = Instant::now();
        let mut t = Typing::default();
        t.start("m1".into(), place(), t0);
        let mut now = t0;
        let mut sent = 0;
        while t.sending("m1", now).is_some() {
            sent += 1;
            now += REFRESH;
            assert!(sent < 1000, "the indicator never lapsed");
        }
        // Sent at 0, 4, ..., 120 s: the last one within GIVE_UP ends it.
        assert_eq!(sent as u64, GIVE_UP.as_secs() / REFRESH.as_secs() + 1);
        assert_eq!(t.next_due(), None);
    }
}
