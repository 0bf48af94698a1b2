//! What `/ws` operators do to sessions: find the session a key names, send a message into
//! it (opening it on the first message), and abort the turn running in it.

use std::sync::Arc;

use clawos_channels::protocol::Inbound;
use clawos_events::{inbound_dedupe_key, stream, ExpectedVersion};
use tokio::sync::watch;
use uuid::Uuid;

use super::decide::{inbound_event, Fresh};
use super::ingest::Ingested;
use super::{Gateway, RunningTurn};
use crate::routing;
use crate::session_keys::SessionKey;
use crate::KernelError;

/// How the reason of a turn stopped by `chat.abort` begins.
pub const ABORTED: &str = "aborted";

/// The channel operator messages are recorded under.
pub const OPERATOR_CHANNEL: &str = "webchat";

impl Gateway {
    /// The current session of `key`'s owner with `key`'s agent, if it has started.
    pub async fn session_of(&self, key: &SessionKey) -> Option<String> {
        let mut routing = self.routing.lock().await;
        routing::catch_up(&self.log, &mut routing).await.ok()?;
        routing
            .sessions
            .get(&(key.owner.clone(), key.agent.clone()))
            .cloned()
    }

    /// Bring the routing state up to the log's head.
    pub async fn refresh_routing(&self) {
        let mut routing = self.routing.lock().await;
        if let Err(e) = routing::catch_up(&self.log, &mut routing).await {
            tracing::warn!(error = %e, "routing could not catch up");
        }
    }

    /// Record an operator's message in the session `key` names (opening it) and queue the
    /// turn. `run_id` is its dedupe key: the same run id again records nothing.
    pub async fn operator_message(
        self: &Arc<Self>,
        key: &SessionKey,
        text: &str,
        run_id: &str,
        by: &str,
        attachments: Vec<clawos_events::Attachment>,
    ) -> Result<Ingested, KernelError> {
        if !self.agents.contains_key(&key.agent) {
            let mut known: Vec<&str> = self.agents.keys().map(String::as_str).collect();
            known.sort();
            return Err(KernelError::NotFound(format!(
                "unknown agent {} in sessionKey (agents: {})",
                key.agent,
                known.join(", ")
            )));
        }
        let dedupe = inbound_dedupe_key(OPERATOR_CHANNEL, run_id);
        if let Some(seq) = self.log.find_dedupe(&dedupe).await? {
            return Ok(Ingested {
                seq,
                duplicate: true,
            });
        }
        let mut routing = self.routing.lock().await;
        routing::catch_up(&self.log, &mut routing).await?;
        let (session, mut events) =
            routing.session_for(&key.owner, &key.agent, &Fresh::draw().session_id);
        let expected = if events.is_empty() {
            ExpectedVersion::Any
        } else {
            ExpectedVersion::NoStream
        };
        let m = Inbound {
            external_id: run_id.to_string(),
            sender: format!("{OPERATOR_CHANNEL}:{by}"),
            chat: None,
            text: text.to_string(),
            attachments,
            sent_at_ms: crate::clock::now_ms(),
            mentioned: true,
        };
        let inbound = inbound_event(OPERATOR_CHANNEL, &m, routing.branch_of(&session), true);
        events.push(inbound.dedupe(dedupe));
        let appended = self
            .log
            .append(&stream::session(&session), expected, events)
            .await?;
        drop(routing);
        if !appended.duplicate {
            self.dispatch(&session, &key.agent, appended.last_seq);
        }
        Ok(Ingested {
            seq: appended.last_seq,
            duplicate: appended.duplicate,
        })
    }

    /// Stop the turn running in `session`; returns its turn and run ids (none when idle).
    pub fn abort_turn(&self, session: &str, by: &str) -> Vec<(Uuid, String)> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match running.get(session) {
            Some(r) => {
                let _ = r.stop.send(Some(format!("{ABORTED} by {by}")));
                vec![(r.turn, r.run.clone())]
            }
            None => Vec::new(),
        }
    }

    /// A turn starts in `session`: it can be aborted until [`Gateway::turn_ended`].
    pub(crate) fn turn_running(
        &self,
        session: &str,
        turn: Uuid,
        run: String,
    ) -> watch::Receiver<Option<String>> {
        let (stop, stopped) = watch::channel(None);
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session.to_string(), RunningTurn { turn, run, stop });
        stopped
    }

    /// The turn in `session` ended.
    pub(crate) fn turn_ended(&self, session: &str) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session);
    }
}
