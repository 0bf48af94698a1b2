//! Replies that grow in place: on a service that can edit a message, the first words of a
//! reply go out as soon as the agent writes them, and the message is edited as more come,
//! no more often than the service allows. The final delivery edits it one last time (its
//! first part) and sends the rest, if any, as new messages.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::format::render;
use super::split::split;
use super::{Capabilities, Outgoing};

/// One reply being written.
#[derive(Debug)]
pub struct Live {
    /// Where it goes.
    pub to: String,
    /// Its chat.
    pub chat: Option<String>,
    /// The text so far (Markdown).
    pub text: String,
    /// The service's id of the message showing it, once sent.
    pub message_id: Option<String>,
    /// The text that message shows.
    pub shown: String,
    /// When it was last sent or edited.
    pub at: Option<Instant>,
}

/// The replies being written, by the external id of the message each answers.
#[derive(Debug, Default)]
pub struct Growing {
    live: HashMap<String, Live>,
}

impl Growing {
    /// The agent wrote more of the reply to `key`.
    pub fn update(&mut self, key: String, to: String, chat: Option<String>, text: String) {
        let live = self.live.entry(key).or_insert(Live {
            to,
            chat,
            text: String::new(),
            message_id: None,
            shown: String::new(),
            at: None,
        });
        live.text = text;
    }

    /// The reply to `key` is final: the id of the message that shows it so far, if any.
    pub fn finish(&mut self, key: &str) -> Option<String> {
        self.live.remove(key).and_then(|l| l.message_id)
    }

    /// The reply that should be shown next (sent or edited), and when it may be, if any.
    pub fn next_due(&self, interval: Duration) -> Option<(String, Instant)> {
        self.live
            .iter()
            .filter(|(_, l)| l.text.trim() != l.shown.trim() && !l.text.trim().is_empty())
            .map(|(k, l)| {
                (
                    k.clone(),
                    l.at.map(|t| t + interval).unwrap_or_else(Instant::now),
                )
            })
            .min_by_key(|(_, t)| *t)
    }

    /// What to show for `key` now: the message (its first part only, rendered), and the
    /// id of the message to edit (`None`: send it new).
    pub fn preview(&self, key: &str, caps: &Capabilities) -> Option<(Outgoing, Option<String>)> {
        let l = self.live.get(key)?;
        let first = split(&l.text, caps.max_message_len, caps.length_unit)
            .into_iter()
            .next()?;
        let message = Outgoing {
            to: l.to.clone(),
            chat: l.chat.clone(),
            text: render(&first, caps.text_format),
            in_reply_to: caps.threads.then(|| key.to_string()),
            file: None,
        };
        Some((message, l.message_id.clone()))
    }

    /// `key`'s preview went out as message `id` (or could not: `None` stops its growth).
    pub fn shown(&mut self, key: &str, id: Option<String>) {
        if let Some(l) = self.live.get_mut(key) {
            l.at = Some(Instant::now());
            match id.or(l.message_id.take()) {
                Some(id) => {
                    l.message_id = Some(id);
                    l.shown = l.text.clone();
                }
                // Nothing to edit: show nothing more until the final delivery.
                None => l.shown = l.text.clone(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{LengthUnit, RateLimit, TextFormat};

    #[test]
    fn a_reply_is_sent_once_then_edited_no_faster_than_allowed() {
        let mut caps = Capabilities::text(
            20,
            LengthUnit::Chars,
            TextFormat::Plain,
            RateLimit {
                burst: 1,
                every: Duration::from_secs(1),
            },
        );
        caps.edits = true;
        let mut g = Growing::default();
        g.update("m1".into(), "a".into(), None, "Hello".into());
        let (key, due) = g.next_due(Duration::from_secs(1)).unwrap();
        assert!(due <= Instant::now());
        let (msg, edit) = g.preview(&key, &caps).unwrap();
        assert_eq!((msg.text.as_str(), edit), ("Hello", None));
        g.shown(&key, Some("$1".into()));
        assert!(g.next_due(Duration::from_secs(1)).is_none(), "nothing new");
        g.update(
            "m1".into(),
            "a".into(),
            None,
            "Hello there. And a long tail".into(),
        );
        let (_, due) = g.next_due(Duration::from_secs(1)).unwrap();
        assert!(due > Instant::now(), "the next edit waits for the interval");
        let (msg, edit) = g.preview("m1", &caps).unwrap();
        assert_eq!(edit.as_deref(), Some("$1"));
        assert!(msg.text.chars().count() <= 20, "{}", msg.text);
        assert_eq!(g.finish("m1").as_deref(), Some("$1"));
        assert!(g.next_due(Duration::from_secs(1)).is_none());
    }
}
