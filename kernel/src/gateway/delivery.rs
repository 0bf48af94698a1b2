//! Delivery: the one owner of what a channel is sent, what it acked, and what it gets
//! again. A reply (`MessageSent`) is pending until its `DeliveryAcked`; a connecting
//! channel gets its pending replies first, then follows the log. The bus only carries the
//! frames.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use clawos_channels::protocol::{Delivery, KernelFrame};
use clawos_events::{
    stream, DeliveryAcked, EventPayload, ExpectedVersion, MessageSent, NewEvent, RecordedEvent,
};
use clawos_projections::views;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::Gateway;
use crate::KernelError;

/// The dedupe key of a delivery ack: a reply is acked at most once in the log.
pub fn ack_key(delivery_id: Uuid) -> String {
    format!("ack\u{1f}{delivery_id}")
}

/// Where the thread key of a reply comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadKey {
    /// The reply says it (`None`: not a reply to a channel's message).
    Known(Option<String>),
    /// A reply recorded before schema version 2: the external id of the trigger at this
    /// seq.
    FromTrigger(u64),
}

/// The thread key of reply `m`, recorded with schema version `schema_version`.
pub fn thread_key(m: &MessageSent, schema_version: u16) -> ThreadKey {
    match (&m.reply_key, m.in_reply_to) {
        (Some(key), _) => ThreadKey::Known(Some(key.clone())),
        (None, Some(trigger)) if schema_version < 2 => ThreadKey::FromTrigger(trigger),
        (None, _) => ThreadKey::Known(None),
    }
}

/// Whether a reply seen in the log goes out on a connection of `channel`: it is for this
/// channel, the log holds no ack for it, and this connection has not sent it yet.
pub fn goes_out(m: &MessageSent, channel: &str, acked: bool, sent: &HashSet<Uuid>) -> bool {
    m.channel == channel && !acked && !sent.contains(&m.delivery_id)
}

impl Gateway {
    /// Record that `channel` delivered a reply (idempotent).
    pub async fn delivered(&self, channel: &str, delivery_id: Uuid) -> Result<(), KernelError> {
        self.log
            .append(
                &stream::channel(channel),
                ExpectedVersion::Any,
                vec![NewEvent::new(DeliveryAcked {
                    channel: channel.to_string(),
                    delivery_id,
                })
                .dedupe(ack_key(delivery_id))],
            )
            .await?;
        Ok(())
    }

    /// The delivery frame for the `MessageSent` event `e`. The reply carries the key the
    /// channel threads it on; only a reply recorded before schema version 2 has its
    /// trigger read to find it.
    pub async fn delivery_for(
        &self,
        e: &RecordedEvent,
        m: &MessageSent,
    ) -> Result<Delivery, KernelError> {
        let in_reply_to = match thread_key(m, e.schema_version) {
            ThreadKey::Known(key) => key,
            ThreadKey::FromTrigger(t) => self.legacy_reply_key(t).await?,
        };
        Ok(Delivery {
            delivery_id: m.delivery_id,
            to: m.to.clone(),
            chat: m.chat.clone(),
            text: m.text.clone(),
            in_reply_to,
            seq: e.seq,
            attachments: m.attachments.clone(),
        })
    }

    /// The external id of the message a version-1 reply answers, read from its trigger.
    async fn legacy_reply_key(&self, trigger: u64) -> Result<Option<String>, KernelError> {
        let Some(e) = self.log.get(trigger).await? else {
            return Ok(None);
        };
        Ok(match e.decode() {
            Ok(EventPayload::MessageReceived(r)) => Some(r.external_id),
            Ok(EventPayload::CommandReceived(c)) => Some(c.external_id),
            _ => None,
        })
    }

    /// Seqs of replies for `channel` that it has not acked, oldest first (as of the
    /// read models' position).
    pub async fn pending_deliveries(&self, channel: &str) -> Result<Vec<u64>, KernelError> {
        Ok(views::pending_deliveries(&self.read_models, channel).await?)
    }

    /// Replies not yet acked, over all channels (0 when the read fails: it is a gauge).
    pub async fn delivery_backlog(&self) -> u64 {
        views::delivery_backlog(&self.read_models)
            .await
            .unwrap_or(0)
    }

    /// Send `channel` every reply it has not acked, then follow the log for new ones and
    /// for reply fragments, until `out` closes. Each reply goes out once per connection;
    /// a reply the log shows acked is never sent again.
    pub async fn deliveries(self: Arc<Self>, channel: String, out: mpsc::Sender<KernelFrame>) {
        if let Err(e) = self.deliver(&channel, &out).await {
            tracing::error!(%channel, error = %e, "delivery stopped");
        }
    }

    async fn deliver(
        &self,
        channel: &str,
        out: &mpsc::Sender<KernelFrame>,
    ) -> Result<(), KernelError> {
        let head = self.log.head();
        self.projected_through(head).await;
        let mut sent = HashSet::new();
        for seq in self.pending_deliveries(channel).await? {
            if let Some(e) = self.log.get(seq).await? {
                if let Ok(EventPayload::MessageSent(m)) = e.decode() {
                    if sent.insert(m.delivery_id) && !self.send(&e, &m, channel, out).await? {
                        return Ok(());
                    }
                }
            }
        }
        let mut sub = self.log.subscribe(head + 1);
        let mut deltas = self.deltas.subscribe();
        // The text so far of each reply being written, by the message it answers.
        let mut growing: HashMap<String, String> = HashMap::new();
        loop {
            let e = tokio::select! {
                e = sub.next() => e?,
                d = deltas.recv() => {
                    if let Ok(d) = d {
                        if d.channel == channel && !d.reply_key.is_empty() && d.text.is_empty() {
                            let _ = out.try_send(KernelFrame::Typing {
                                in_reply_to: d.reply_key,
                                to: d.to,
                                chat: d.chat,
                            });
                        } else if d.channel == channel && !d.reply_key.is_empty() {
                            let text = growing.entry(d.reply_key.clone()).or_default();
                            text.push_str(&d.text);
                            let _ = out.try_send(KernelFrame::Partial {
                                in_reply_to: d.reply_key,
                                to: d.to,
                                chat: d.chat,
                                text: text.clone(),
                            });
                        }
                    }
                    continue;
                }
            };
            if e.kind != "MessageSent" {
                continue;
            }
            let Ok(EventPayload::MessageSent(m)) = e.decode() else {
                continue;
            };
            if m.channel != channel {
                continue;
            }
            if let Some(key) = &m.reply_key {
                growing.remove(key);
            }
            // The log, not the read model, says whether it was acked.
            let acked = self
                .log
                .find_dedupe(&ack_key(m.delivery_id))
                .await?
                .is_some();
            if goes_out(&m, channel, acked, &sent) {
                sent.insert(m.delivery_id);
                if !self.send(&e, &m, channel, out).await? {
                    return Ok(());
                }
            }
        }
    }

    /// Queue one delivery frame; false when the connection is gone.
    async fn send(
        &self,
        e: &RecordedEvent,
        m: &MessageSent,
        channel: &str,
        out: &mpsc::Sender<KernelFrame>,
    ) -> Result<bool, KernelError> {
        let d = self.delivery_for(e, m).await?;
        self.metrics.message_out(channel);
        Ok(out.send(KernelFrame::Deliver(d)).await.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(channel: &str, reply_key: Option<&str>, in_reply_to: Option<u64>) -> MessageSent {
        MessageSent {
            delivery_id: Uuid::from_u128(7),
            agent: "pi".into(),
            branch: "main".into(),
            channel: channel.into(),
            to: "webhook:ann".into(),
            chat: None,
            text: "hi".into(),
            in_reply_to,
            reply_key: reply_key.map(str::to_string),
            attachments: vec![],
        }
    }

    #[test]
    fn a_reply_goes_out_once_per_connection_unless_acked() {
        let m = reply("hooks", Some("x1"), Some(3));
        let mut sent = HashSet::new();
        assert!(goes_out(&m, "hooks", false, &sent));
        assert!(
            !goes_out(&m, "irc", false, &sent),
            "another channel's reply"
        );
        assert!(!goes_out(&m, "hooks", true, &sent), "acked in the log");
        sent.insert(m.delivery_id);
        assert!(
            !goes_out(&m, "hooks", false, &sent),
            "sent on this connection"
        );
    }

    #[test]
    fn the_thread_key_is_the_replys_own_and_only_v1_replies_read_their_trigger() {
        assert_eq!(
            thread_key(&reply("hooks", Some("x1"), Some(3)), 2),
            ThreadKey::Known(Some("x1".into()))
        );
        // A hook or cron answer: no key, and a v2 reply never reads its trigger.
        assert_eq!(
            thread_key(&reply("hooks", None, Some(3)), 2),
            ThreadKey::Known(None)
        );
        assert_eq!(
            thread_key(&reply("hooks", None, Some(3)), 1),
            ThreadKey::FromTrigger(3)
        );
        assert_eq!(
            thread_key(&reply("hooks", None, None), 1),
            ThreadKey::Known(None)
        );
    }
}
