//! Delivery: the one owner of what a channel is sent, what it acked, and what it gets
//! again. A reply (`MessageSent`) is pending until its `DeliveryAcked`; a connecting
//! channel gets its pending replies first, then follows the log. The bus only carries the
//! frames.

use std::collections::HashSet;
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
        let in_reply_to = match (&m.reply_key, m.in_reply_to) {
            (Some(key), _) => Some(key.clone()),
            (None, Some(t)) if e.schema_version < 2 => self.legacy_reply_key(t).await?,
            (None, _) => None,
        };
        Ok(Delivery {
            delivery_id: m.delivery_id,
            to: m.to.clone(),
            chat: m.chat.clone(),
            text: m.text.clone(),
            in_reply_to,
            seq: e.seq,
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
        loop {
            let e = tokio::select! {
                e = sub.next() => e?,
                d = deltas.recv() => {
                    if let Ok(d) = d {
                        if d.channel == channel && !d.reply_key.is_empty() {
                            let _ = out.try_send(KernelFrame::Partial { in_reply_to: d.reply_key, text: d.text });
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
            // The log, not the read model, says whether it was acked.
            let acked = self
                .log
                .find_dedupe(&ack_key(m.delivery_id))
                .await?
                .is_some();
            if !acked && sent.insert(m.delivery_id) && !self.send(&e, &m, channel, out).await? {
                return Ok(());
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
