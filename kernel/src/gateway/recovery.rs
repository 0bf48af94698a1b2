//! Recovery: what a previous run of the Gateway left undone. Turns that were running when
//! it stopped are failed; every user message without a completed turn gets one.

use std::sync::Arc;

use clawos_events::{stream, AgentTurnFailed, ExpectedVersion, NewEvent};
use clawos_projections::views;
use uuid::Uuid;

use super::Gateway;
use crate::KernelError;

impl Gateway {
    /// Re-run what a previous run left undone. `up_to` is the log's head when this
    /// process opened it: later events belong to this process's own queues.
    pub async fn recover(self: &Arc<Self>, up_to: u64) -> Result<usize, KernelError> {
        self.projected_through(up_to).await;
        let unanswered = views::unanswered_messages(&self.read_models, up_to).await?;
        for (turn, session) in views::running_turns(&self.read_models, up_to).await? {
            let Ok(turn_id) = Uuid::parse_str(&turn) else {
                continue;
            };
            // Dedupe by turn: two Gateways recovering the same log fail it once.
            let failed = NewEvent::new(AgentTurnFailed {
                turn_id,
                reason: "interrupted: the Gateway stopped during the turn; it runs again".into(),
            })
            .dedupe(format!("interrupted\u{1f}{turn_id}"));
            self.log
                .append(
                    &stream::session(&session),
                    ExpectedVersion::Any,
                    vec![failed],
                )
                .await?;
        }
        for (seq, session, agent) in &unanswered {
            self.dispatch(session, agent, *seq);
        }
        Ok(unanswered.len())
    }
}
