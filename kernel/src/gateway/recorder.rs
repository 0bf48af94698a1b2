//! The turn recorder: what a running agent turn records its steps through, and the
//! services it may use (memory, cron, approvals, session commands). Every step and every
//! effect is appended to the log with the turn's causation and correlation ids.

use std::time::Duration;

use async_trait::async_trait;
use clawos_agents::{AgentError, TurnRecorder};
use clawos_events::{stream, EventPayload, ExpectedVersion, LogStore, NewEvent};
use clawos_projections::index::MemoryIndex;
use clawos_projections::views;
use sqlx::SqlitePool;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::approvals::{approval_key, APPROVAL_TIMEOUT};
use crate::follower::Projected;

/// Longest a recall waits for the memory index to catch up with the log.
pub const MEMORY_INDEX_WAIT: Duration = Duration::from_secs(5);

/// A fragment of a reply while it streams (not recorded; the final text is).
#[derive(Debug, Clone)]
pub struct Delta {
    /// Seq of the message the turn answers.
    pub trigger_seq: u64,
    /// Channel the answer goes to.
    pub channel: String,
    /// External id of the message it answers (empty for hooks and cron).
    pub reply_key: String,
    /// Recipient of the answer.
    pub to: String,
    /// Chat of the answer, `None` for a direct message.
    pub chat: Option<String>,
    /// The turn.
    pub turn: Uuid,
    /// The fragment; empty when the turn has just begun (channels then show that the
    /// agent is typing).
    pub text: String,
}

/// Where a turn's records and services go.
pub struct SessionRecorder {
    /// The log.
    pub log: LogStore,
    /// The read models.
    pub read_models: SqlitePool,
    /// Their applied position.
    pub projected: Projected,
    /// The memory index.
    pub memory: MemoryIndex,
    /// Its applied position.
    pub memory_projected: Projected,
    /// Reply fragments go here.
    pub deltas: broadcast::Sender<Delta>,
    /// The session.
    pub session: String,
    /// Its identity (the owner of memories written in the turn).
    pub identity: String,
    /// The agent running the turn.
    pub agent: String,
    /// The turn.
    pub turn: Uuid,
    /// Id of the event the turn answers.
    pub cause: Uuid,
    /// Seq of that event.
    pub trigger_seq: u64,
    /// Channel the reply goes to.
    pub reply_channel: String,
    /// External id the reply is threaded on (empty for hooks and cron).
    pub reply_key: String,
    /// Recipient of the reply.
    pub reply_to: String,
    /// Chat of the reply, `None` for a direct message.
    pub reply_chat: Option<String>,
    /// Connected nodes.
    pub nodes: std::sync::Arc<crate::nodes::Nodes>,
    /// The media store (screenshots and charts the agent makes, images it is sent).
    pub media: clawos_channels::media::MediaStore,
}

fn storage(e: impl std::fmt::Display) -> AgentError {
    AgentError::Record(e.to_string())
}

impl SessionRecorder {
    fn stream(&self) -> String {
        stream::session(&self.session)
    }

    fn event(&self, payload: impl Into<EventPayload>) -> NewEvent {
        NewEvent::new(payload.into())
            .caused_by(self.cause)
            .correlated(self.turn)
    }

    async fn append(&self, stream: &str, event: NewEvent) -> Result<u64, AgentError> {
        self.log
            .append(stream, ExpectedVersion::Any, vec![event])
            .await
            .map(|a| a.last_seq)
            .map_err(storage)
    }

    /// Services read the read models once they applied everything this turn wrote.
    async fn wait_projected(&self) {
        self.projected.through(self.log.head()).await
    }

    /// The index embeds (maybe over the network): wait for it a little, then serve what
    /// it has; the read model still decides what exists.
    async fn wait_memory_indexed(&self) {
        let head = self.log.head();
        let _ = tokio::time::timeout(MEMORY_INDEX_WAIT, self.memory_projected.through(head)).await;
    }

    /// The answer of an approval that a concurrent answer won over our timeout.
    async fn recorded_answer(&self, seq: u64) -> Result<bool, AgentError> {
        match self
            .log
            .get(seq)
            .await
            .map_err(storage)?
            .map(|e| e.decode())
        {
            Some(Ok(EventPayload::ApprovalAnswered(x))) => Ok(x.approved),
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl TurnRecorder for SessionRecorder {
    async fn record(&self, payload: EventPayload) -> Result<u64, AgentError> {
        self.append(&self.stream(), self.event(payload)).await
    }

    async fn record_once(&self, payload: EventPayload, key: &str) -> Result<u64, AgentError> {
        let event = self.event(payload).dedupe(key.to_string());
        self.log
            .append(&self.stream(), ExpectedVersion::Any, vec![event])
            .await
            .map(|a| a.first_seq)
            .map_err(storage)
    }

    async fn remember(&self, text: &str, tags: &[String]) -> Result<Uuid, AgentError> {
        let id = Uuid::now_v7();
        let written = clawos_events::MemoryWritten {
            memory_id: id,
            identity: Some(self.identity.clone()),
            agent: Some(self.agent.clone()),
            text: text.to_string(),
            tags: tags.to_vec(),
            source_seq: Some(self.trigger_seq),
        };
        self.append(stream::MEMORY, self.event(written)).await?;
        Ok(id)
    }

    async fn forget(&self, id: Uuid) -> Result<bool, AgentError> {
        self.wait_projected().await;
        if !views::memory_owned_by(&self.read_models, id, &self.identity)
            .await
            .map_err(storage)?
        {
            return Ok(false);
        }
        // Forgetting twice (two turns racing) records it once.
        let forgotten = self
            .event(clawos_events::MemoryForgotten { memory_id: id })
            .dedupe(format!("forget\u{1f}{id}"));
        self.append(stream::MEMORY, forgotten).await?;
        Ok(true)
    }

    async fn recall(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<clawos_agents::Recalled>, AgentError> {
        self.wait_projected().await;
        self.wait_memory_indexed().await;
        let scope = clawos_projections::index::Scope {
            identity: Some(self.identity.clone()),
            agent: Some(self.agent.clone()),
        };
        let hits = crate::memory::recall(&self.memory, &scope, query, limit)
            .await
            .map_err(storage)?;
        Ok(hits
            .into_iter()
            .filter_map(crate::memory::recalled)
            .collect())
    }

    async fn schedule(&self, schedule: &str, prompt: &str) -> Result<Uuid, AgentError> {
        crate::schedule::parse(schedule).map_err(AgentError::Refused)?;
        if prompt.trim().is_empty() {
            return Err(AgentError::Refused("a job needs a prompt".into()));
        }
        let id = Uuid::now_v7();
        let scheduled = clawos_events::CronScheduled {
            job_id: id,
            session_id: self.session.clone(),
            schedule: schedule.to_string(),
            prompt: prompt.to_string(),
        };
        self.append(&self.stream(), self.event(scheduled)).await?;
        Ok(id)
    }

    async fn cron_jobs(&self) -> Result<Vec<String>, AgentError> {
        self.wait_projected().await;
        let jobs = views::session_cron_jobs(&self.read_models, &self.session)
            .await
            .map_err(storage)?;
        Ok(jobs
            .into_iter()
            .map(|j| format!("{} {}: {}", j.job_id, j.schedule, j.prompt))
            .collect())
    }

    async fn cancel_cron(&self, id: Uuid) -> Result<bool, AgentError> {
        self.wait_projected().await;
        let live = views::cron_job(&self.read_models, id)
            .await
            .map_err(storage)?
            .is_some_and(|j| j.session_id == self.session && !j.cancelled);
        if !live {
            return Ok(false);
        }
        // Cancelling twice (a CLI and a turn racing) records it once.
        let cancelled = self
            .event(clawos_events::CronCancelled { job_id: id })
            .dedupe(format!("cron-cancel\u{1f}{id}"));
        self.append(&self.stream(), cancelled).await?;
        Ok(true)
    }

    async fn approve(&self, action: &str) -> Result<bool, AgentError> {
        let id = Uuid::now_v7();
        let mut sub = self.log.subscribe(self.log.head() + 1);
        let requested = clawos_events::ApprovalRequested {
            approval_id: id,
            session_id: self.session.clone(),
            turn_id: self.turn,
            action: action.to_string(),
        };
        self.append(stream::APPROVALS, self.event(requested))
            .await?;
        tracing::warn!(%id, %action, "waiting for approval: `clawos approvals approve {id}`");
        let wait = async {
            loop {
                let e = sub.next().await.map_err(storage)?;
                if let Ok(EventPayload::ApprovalAnswered(a)) = e.decode() {
                    if a.approval_id == id {
                        return Ok::<bool, AgentError>(a.approved);
                    }
                }
            }
        };
        match tokio::time::timeout(APPROVAL_TIMEOUT, wait).await {
            Ok(answer) => answer,
            Err(_) => {
                // Nobody answered: record the refusal, unless an answer won the race.
                let refusal = NewEvent::new(clawos_events::ApprovalAnswered {
                    approval_id: id,
                    approved: false,
                    by: "timeout".into(),
                })
                .dedupe(approval_key(id));
                let a = self
                    .log
                    .append(stream::APPROVALS, ExpectedVersion::Any, vec![refusal])
                    .await
                    .map_err(storage)?;
                if a.duplicate {
                    self.recorded_answer(a.first_seq).await
                } else {
                    Ok(false)
                }
            }
        }
    }

    async fn nodes(&self) -> Result<Vec<String>, AgentError> {
        Ok(self
            .nodes
            .list()
            .into_iter()
            .map(|n| {
                format!(
                    "{} ({}, {}): {}",
                    n.node_id,
                    n.display_name,
                    n.platform,
                    n.commands.join(", ")
                )
            })
            .collect())
    }

    async fn nodes_offering(&self, command: &str) -> Vec<String> {
        self.nodes
            .list()
            .into_iter()
            .filter(|n| n.commands.iter().any(|c| c == command))
            .map(|n| n.node_id)
            .collect()
    }

    async fn invoke_node(
        &self,
        node: &str,
        command: &str,
        params: serde_json::Value,
    ) -> Result<String, AgentError> {
        self.nodes
            .invoke(
                &self.log,
                node,
                command,
                params,
                crate::nodes::DEFAULT_INVOKE_TIMEOUT,
                &format!("session:{}", self.session),
            )
            .await
            .map(|v| v.to_string())
            .map_err(|e| match e {
                crate::nodes::NodeError::Log(e) => AgentError::Record(e.to_string()),
                other => AgentError::Refused(other.to_string()),
            })
    }

    async fn store_media(
        &self,
        name: &str,
        mime: &str,
        bytes: Vec<u8>,
    ) -> Result<clawos_events::Attachment, AgentError> {
        let media = self.media.clone();
        let (name, mime) = (name.to_string(), mime.to_string());
        tokio::task::spawn_blocking(move || media.put(&name, Some(&mime), &bytes))
            .await
            .map_err(storage)?
            .map_err(|e| AgentError::Refused(e.to_string()))
    }

    async fn load_media(
        &self,
        attachment: &clawos_events::Attachment,
    ) -> Result<Vec<u8>, AgentError> {
        let Some(hash) = attachment.blake3.clone() else {
            return Err(AgentError::Refused(format!(
                "{} was not kept in the media store",
                attachment.name
            )));
        };
        let media = self.media.clone();
        tokio::task::spawn_blocking(move || media.get(&hash))
            .await
            .map_err(storage)?
            .map_err(|e| AgentError::Refused(e.to_string()))
    }

    async fn session_command(&self, command: &str) -> Result<String, AgentError> {
        if !crate::commands::is_command(command) {
            return Err(AgentError::Refused(format!(
                "`{command}` is not a session command"
            )));
        }
        // The command is validated against the read models at (at least) the session's
        // version, and appended only if the session is still there.
        let this = self;
        let decided = crate::validated::decide_and_append(
            &self.log,
            &self.projected,
            &self.stream(),
            move || async move {
                let outcome =
                    crate::commands::run(&this.read_models, &this.session, command, None).await?;
                let events = outcome
                    .events
                    .into_iter()
                    .map(|e| e.caused_by(this.cause).correlated(this.turn))
                    .collect();
                Ok::<_, crate::KernelError>((events, outcome.answer))
            },
        )
        .await
        .map_err(storage)?;
        match decided {
            Some((answer, _)) => Ok(answer),
            None => Err(AgentError::Record(format!(
                "`{command}`: the session kept changing; try again"
            ))),
        }
    }

    fn delta(&self, text: &str) {
        let _ = self.deltas.send(Delta {
            trigger_seq: self.trigger_seq,
            channel: self.reply_channel.clone(),
            reply_key: self.reply_key.clone(),
            to: self.reply_to.clone(),
            chat: self.reply_chat.clone(),
            turn: self.turn,
            text: text.to_string(),
        });
    }
}

impl SessionRecorder {
    /// Tell the channels the turn began, before any fragment: an empty [`Delta`]
    /// (channels that can show one show a typing indicator).
    pub(crate) fn turn_began(&self) {
        TurnRecorder::delta(self, "");
    }
}
