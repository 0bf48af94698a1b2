//! Turns: one queue per session (turns of a session run one at a time, in order; sessions
//! run in parallel), and the turn that answers one event: a message, a chat command, a
//! hook or a cron fire.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clawos_agents::{ContextMessage, TurnInput};
use clawos_events::{
    stream, AgentTurnFailed, AgentTurnFinished, AgentTurnStarted, Attachment, CommandReceived,
    EventPayload, ExpectedVersion, MessageReceived, MessageSent, NewEvent, RecordedEvent,
};
use clawos_projections::views;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::recorder::SessionRecorder;
use super::{Gateway, QueuedTurn};
use crate::KernelError;

/// Why a turn ended without the agent's answer.
enum Stopped {
    /// A budget was used up; the message tells the person.
    OverBudget(String),
    /// The agent failed, timed out, was aborted or is not configured.
    Failed(String),
}

/// How a person is named to the agent in a group: the local part of their address
/// (`irc:alice@libera` is `alice`).
pub fn speaker(address: &str) -> &str {
    let local = address.split_once(':').map(|(_, l)| l).unwrap_or(address);
    local.split('@').next().unwrap_or(local)
}

/// Most messages of history given to an agent turn.
pub const CONTEXT_MESSAGES: u32 = 200;

/// Longest an agent turn may run before it is failed.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(300);

/// The reply key of an answer to a message with this external id (none for hooks and
/// cron, whose triggers have no external id).
pub fn reply_key(external_id: &str) -> Option<String> {
    (!external_id.is_empty()).then(|| external_id.to_string())
}

/// The message a model reads, with a line per file that came with it: name, type and
/// size, or why its bytes were not kept.
pub fn with_attachments(message: String, attachments: &[Attachment], cap: u64) -> String {
    let mut out = message;
    for a in attachments {
        let mime = a.mime.as_deref().unwrap_or("unknown type");
        let line = match &a.blake3 {
            Some(_) => format!("\n[attached: {} ({mime}, {} bytes)]", a.name, a.size),
            None if a.size > cap => format!(
                "\n[attached: {} ({mime}, {} bytes) was not kept: above the {cap}-byte cap on attachments]",
                a.name, a.size
            ),
            None => format!("\n[attached: {} ({mime}, {} bytes), bytes not kept]", a.name, a.size),
        };
        out.push_str(&line);
    }
    out
}

impl Gateway {
    /// Queue a turn for `session` triggered by event `trigger_seq`. Turns of one session run
    /// one at a time, in order; different sessions run in parallel.
    pub fn dispatch(self: &Arc<Self>, session: &str, agent: &str, trigger_seq: u64) {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let tx = queues.entry(session.to_string()).or_insert_with(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<QueuedTurn>();
            let gw = self.clone();
            let session = session.to_string();
            tokio::spawn(async move {
                while let Some((agent, seq)) = rx.recv().await {
                    if let Err(e) = gw.run_turn(&session, &agent, seq).await {
                        tracing::error!(%session, trigger = seq, error = %e, "agent turn could not be recorded");
                    }
                }
            });
            tx
        });
        let _ = tx.send((agent.to_string(), trigger_seq));
    }

    /// Run the turn that answers event `trigger_seq` in `session`, now (the dispatcher calls
    /// it from the session's queue; `clawos bench turn` calls it directly).
    pub async fn run_turn(
        &self,
        session: &str,
        agent_name: &str,
        trigger_seq: u64,
    ) -> Result<(), KernelError> {
        let started = Instant::now();
        self.projected_through(trigger_seq).await;
        let projected = started.elapsed();
        let Some(trigger) = self.log.get(trigger_seq).await? else {
            return Ok(());
        };
        let m = match trigger.decode()? {
            EventPayload::MessageReceived(m) => m,
            EventPayload::CommandReceived(c) => {
                return self.run_command(session, agent_name, &trigger, c).await;
            }
            EventPayload::HookReceived(h) => {
                self.outside_message(session, trigger_seq, h.text).await?
            }
            EventPayload::CronFired(f) => {
                self.outside_message(session, trigger_seq, f.prompt).await?
            }
            _ => return Ok(()),
        };
        let ancestors = views::ancestors(&self.read_models, trigger_seq, CONTEXT_MESSAGES).await?;
        let seqs: Vec<u64> = ancestors.iter().map(|a| a.seq).collect();
        let compaction = views::latest_compaction(&self.read_models, session, &seqs).await?;
        let covered = compaction.as_ref().map(|(c, _)| *c).unwrap_or(0);
        // In a group, every person's message is attributed, so the agent knows who said
        // what (its own replies are not).
        let group = m.chat.is_some();
        let attributed = |role: &str, address: &str, text: String| {
            if group && role != "assistant" {
                format!("[{}] {text}", speaker(address))
            } else {
                text
            }
        };
        let history = ancestors
            .into_iter()
            .filter(|msg| msg.seq < trigger_seq && msg.seq > covered)
            .map(|msg| ContextMessage {
                text: attributed(&msg.role, &msg.address, msg.text),
                role: msg.role,
            })
            .collect();
        let context_built = started.elapsed();
        let turn = Uuid::now_v7();
        let session_stream = stream::session(session);
        self.log
            .append(
                &session_stream,
                ExpectedVersion::Any,
                vec![NewEvent::new(AgentTurnStarted {
                    turn_id: turn,
                    agent: agent_name.to_string(),
                    branch: m.branch.clone(),
                    trigger_seq,
                })
                .caused_by(trigger.id)
                .correlated(turn)],
            )
            .await?;
        let (identity, _) = views::session_owner(&self.read_models, session)
            .await?
            .unwrap_or_default();
        let over_budget = self.over_budget(agent_name, &identity, turn).await?;
        let recorder = SessionRecorder {
            log: self.log.clone(),
            read_models: self.read_models.clone(),
            projected: self.projected.clone(),
            memory: self.memory.clone(),
            memory_projected: self.memory_projected.clone(),
            deltas: self.deltas.clone(),
            session: session.to_string(),
            identity,
            agent: agent_name.to_string(),
            turn,
            cause: trigger.id,
            trigger_seq,
            reply_channel: m.channel.clone(),
            reply_key: m.external_id.clone(),
            reply_to: m.sender.clone(),
            reply_chat: m.chat.clone(),
            nodes: self.nodes.clone(),
            media: self.media.clone(),
        };
        recorder.turn_began();
        let input = TurnInput {
            turn_id: turn,
            session_id: session.to_string(),
            branch: m.branch.clone(),
            trigger_seq,
            message: with_attachments(
                attributed("user", &m.sender, m.text.clone()),
                &m.attachments,
                self.media.max_bytes(),
            ),
            history,
            summary: compaction.map(|(_, text)| text),
            attachments: m.attachments.clone(),
        };
        let result = match (&over_budget, self.agents.get(agent_name)) {
            (Some((hit, _)), _) => Err(Stopped::OverBudget(hit.message())),
            (None, None) => Err(Stopped::Failed(format!(
                "no agent named `{agent_name}` is configured (see [agents] in clawos.toml)"
            ))),
            (None, Some(agent)) => {
                let run = if m.channel == super::operator::OPERATOR_CHANNEL {
                    m.external_id.clone()
                } else {
                    trigger.id.to_string()
                };
                let mut stop = self.turn_running(session, turn, run);
                let outcome = tokio::select! {
                    r = tokio::time::timeout(TURN_TIMEOUT, agent.run_turn(input, &recorder)) => match r {
                        Ok(Ok(out)) => Ok(out),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(format!("the turn timed out after {TURN_TIMEOUT:?}")),
                    },
                    // `chat.abort`: the turn stops where it is; what it recorded stays.
                    Some(reason) = async { stop.wait_for(Option::is_some).await.ok().and_then(|r| r.clone()) } => {
                        Err(reason)
                    }
                };
                self.turn_ended(session);
                outcome.map_err(Stopped::Failed)
            }
        };
        let (text, attachments, end) = match result {
            Ok(out) => (
                out.reply,
                out.attachments,
                NewEvent::new(AgentTurnFinished {
                    turn_id: turn,
                    steps: out.steps,
                }),
            ),
            Err(Stopped::OverBudget(message)) => (
                message.clone(),
                Vec::new(),
                NewEvent::new(AgentTurnFailed {
                    turn_id: turn,
                    reason: format!("over budget: {message}"),
                }),
            ),
            Err(Stopped::Failed(reason)) => (
                format!("Sorry, I could not answer: {reason}"),
                Vec::new(),
                NewEvent::new(AgentTurnFailed {
                    turn_id: turn,
                    reason,
                }),
            ),
        };
        let reply = NewEvent::new(MessageSent {
            delivery_id: Uuid::now_v7(),
            agent: agent_name.to_string(),
            branch: m.branch,
            channel: m.channel,
            to: m.sender,
            chat: m.chat,
            text,
            in_reply_to: Some(trigger_seq),
            reply_key: reply_key(&m.external_id),
            attachments,
        })
        .caused_by(trigger.id)
        .correlated(turn);
        // The reply and the end of the turn commit together: a turn is never half-recorded.
        self.log
            .append(
                &session_stream,
                ExpectedVersion::Any,
                over_budget
                    .map(|(_, event)| event.caused_by(trigger.id).correlated(turn))
                    .into_iter()
                    .chain([reply, end.caused_by(trigger.id).correlated(turn)])
                    .collect(),
            )
            .await?;
        self.metrics.turn(started.elapsed().as_micros() as u64);
        tracing::debug!(
            %session,
            projection_wait_us = projected.as_micros() as u64,
            context_us = (context_built - projected).as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "turn recorded"
        );
        Ok(())
    }

    /// The budget a turn of `agent` for `identity` would run past now, with the
    /// `BudgetExceeded` event that records it; `None` when every budget has room.
    async fn over_budget(
        &self,
        agent: &str,
        identity: &str,
        turn: Uuid,
    ) -> Result<Option<(crate::usage::BudgetHit, NewEvent)>, KernelError> {
        let config = self.config();
        if config.budgets.is_empty() {
            return Ok(None);
        }
        let prices = crate::usage::PriceTable::new(&config.prices);
        let now = crate::clock::now_ms();
        let hit = crate::usage::budget_hit(
            &self.read_models,
            &config.budgets,
            &prices,
            agent,
            identity,
            now,
        )
        .await?;
        Ok(hit.map(|hit| {
            let micro = |usd: f64| (usd * 1e6).round().max(0.0) as u64;
            let event = NewEvent::new(clawos_events::BudgetExceeded {
                turn_id: turn,
                agent: agent.to_string(),
                identity: identity.to_string(),
                budget: hit.budget.subject(),
                per: hit.budget.per.as_str().to_string(),
                period_start_ms: hit.period_start_ms,
                limit_tokens: hit.budget.tokens,
                limit_micro_usd: hit.budget.usd.map(micro),
                spent_tokens: hit.spent_tokens,
                spent_micro_usd: micro(hit.spent_usd),
            });
            (hit, event)
        }))
    }

    /// A hook's or cron job's text seen as the message a turn answers: on the branch the
    /// projection put it on, answered through the channel the person last wrote from.
    async fn outside_message(
        &self,
        session: &str,
        seq: u64,
        text: String,
    ) -> Result<MessageReceived, KernelError> {
        let branch = views::message_branch(&self.read_models, seq).await?;
        let (channel, sender) = views::last_user_route(&self.read_models, session)
            .await?
            .unwrap_or_default();
        Ok(MessageReceived {
            channel,
            external_id: String::new(),
            sender,
            chat: None,
            text,
            attachments: vec![],
            branch: branch.unwrap_or_else(|| "main".into()),
            sent_at_ms: 0,
            addressed: true,
        })
    }

    /// Run a chat command in its session's queue; its effects and its answer commit
    /// together, and only if the session did not move since the command was validated
    /// (otherwise it is validated again).
    async fn run_command(
        &self,
        session: &str,
        agent_name: &str,
        trigger: &RecordedEvent,
        c: CommandReceived,
    ) -> Result<(), KernelError> {
        let agent = self.agents.get(agent_name).map(|a| a.as_ref());
        let read_models = &self.read_models;
        let c = &c;
        let decided = self
            .decide_and_append(&stream::session(session), move || async move {
                let outcome = crate::commands::run(read_models, session, &c.text, agent).await?;
                let mut events: Vec<NewEvent> = outcome
                    .events
                    .into_iter()
                    .map(|e| e.caused_by(trigger.id))
                    .collect();
                events.push(
                    NewEvent::new(MessageSent {
                        delivery_id: Uuid::now_v7(),
                        agent: "clawos".into(),
                        branch: String::new(),
                        channel: c.channel.clone(),
                        to: c.sender.clone(),
                        chat: c.chat.clone(),
                        text: outcome.answer,
                        in_reply_to: Some(trigger.seq),
                        reply_key: reply_key(&c.external_id),
                        attachments: vec![],
                    })
                    .caused_by(trigger.id),
                );
                Ok::<_, KernelError>((events, ()))
            })
            .await?;
        if decided.is_some() {
            return Ok(());
        }
        Err(KernelError::Contended(format!(
            "command `{}` in session {session}: the session kept changing",
            c.text
        )))
    }
}
