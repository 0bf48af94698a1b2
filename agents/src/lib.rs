//! `clawos-agents`: the [`Agent`] trait the kernel dispatches turns to, and the agents.
//!
//! # Layout
//! - this file: [`Agent`], [`TurnInput`], [`TurnOutput`], [`TurnRecorder`].
//! - [`pi`]: Pi, the default agent.
//! - [`skills`]: the tools Pi offers (`fs`, `shell`).
//! - [`provider`]: LLM providers (OpenAI-compatible, Anthropic), failover.
//! - [`embed`]: embedders for the memory index (built-in hashed n-grams, OpenAI-compatible,
//!   all-MiniLM-L6-v2).
//! - [`remote`]: the agent protocol, for agents in processes of their own.
//! - [`echo`]: a diagnostic agent that answers with the message it got; the tests and
//!   benchmarks bind it to measure the Gateway without a model. Not a user's choice.
//!
//! The scripted LLM server the tests use lives in the dev-only `clawos-testkit` crate
//! (`tests/testkit/`), outside the product.
//!
//! **Architecture Invariant:** an agent never writes to the log directly. Everything it
//! does that replay must not redo (LLM output, tool output) goes through its
//! [`TurnRecorder`], which the kernel backs with appends to the session's stream.

pub mod echo;
pub mod embed;
pub mod pi;
pub mod provider;
pub mod remote;
pub mod skills;

use async_trait::async_trait;
use clawos_events::{Attachment, EventPayload};
use serde::{Deserialize, Serialize};

/// One message of the context given to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// Text.
    pub text: String,
}

/// What an agent turn starts from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TurnInput {
    /// The turn's id (recorded in every step event).
    pub turn_id: uuid::Uuid,
    /// Session id.
    pub session_id: String,
    /// Branch the turn runs on.
    pub branch: String,
    /// Seq of the triggering event.
    pub trigger_seq: u64,
    /// The message to answer.
    pub message: String,
    /// The branch's messages before it, oldest first (after the latest compaction).
    pub history: Vec<ContextMessage>,
    /// The summary of the messages before `history`, when the branch was compacted.
    pub summary: Option<String>,
    /// Files that came with the message (their bytes in the media store; `message`
    /// already names them for a model).
    pub attachments: Vec<Attachment>,
}

/// A memory returned by recall.
#[derive(Debug, Clone, PartialEq)]
pub struct Recalled {
    /// Memory id.
    pub id: uuid::Uuid,
    /// Text.
    pub text: String,
    /// Relevance (higher is better).
    pub score: f32,
}

/// A compaction summary and the model that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The summary text.
    pub text: String,
    /// Model id (`extractive` for the built-in fallback).
    pub model: String,
}

/// The built-in summary when no model is at hand: the first sentence of each message,
/// capped. Deterministic and free, and much worse than a model's.
pub fn extractive_summary(history: &[ContextMessage]) -> Summary {
    let mut text = String::new();
    for m in history {
        let first = m
            .text
            .split(['.', '\n', '?', '!'])
            .next()
            .unwrap_or("")
            .trim();
        if first.is_empty() {
            continue;
        }
        let line = format!("{}: {}\n", m.role, first);
        if text.len() + line.len() > 2000 {
            break;
        }
        text.push_str(&line);
    }
    Summary {
        text,
        model: "extractive".into(),
    }
}

/// What a finished turn produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnOutput {
    /// The reply text.
    pub reply: String,
    /// LLM calls made.
    pub steps: u32,
    /// Files the reply carries (already in the media store).
    pub attachments: Vec<Attachment>,
}

/// Errors of an agent turn; the text is what the user is shown.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The provider failed.
    #[error("the model provider failed: {0}")]
    Provider(String),
    /// Recording a step failed (the log is unavailable).
    #[error("could not record the turn: {0}")]
    Record(String),
    /// The turn took too many steps.
    #[error("the turn stopped after {0} steps without an answer")]
    StepLimit(u32),
    /// The host does not offer this service.
    #[error("{0} is not available here")]
    Unsupported(&'static str),
    /// A service refused the request.
    #[error("{0}")]
    Refused(String),
    /// The agent's process died, could not be reached, or was cut off.
    #[error("the agent's process failed: {0}")]
    Process(String),
}

/// Where an agent records what it did (backed by the log).
#[async_trait]
pub trait TurnRecorder: Send + Sync {
    /// Append one event to the turn's session stream; returns its seq.
    async fn record(&self, payload: EventPayload) -> Result<u64, AgentError>;

    /// Append one step of the turn once: a second call with the same `key` (an agent
    /// process sending a step again) returns the first one's seq and appends nothing.
    async fn record_once(&self, payload: EventPayload, key: &str) -> Result<u64, AgentError> {
        let _ = key;
        self.record(payload).await
    }

    /// A fragment of the reply as it streams in, for clients that show partial text. Not
    /// recorded: the final text is one `MessageSent`.
    fn delta(&self, _text: &str) {}

    /// Remember `text` for the session's person and agent (`MemoryWritten`); its id.
    async fn remember(&self, _text: &str, _tags: &[String]) -> Result<uuid::Uuid, AgentError> {
        Err(AgentError::Unsupported("memory"))
    }
    /// Forget a memory of this person (`MemoryForgotten`); false when there is none.
    async fn forget(&self, _id: uuid::Uuid) -> Result<bool, AgentError> {
        Err(AgentError::Unsupported("memory"))
    }
    /// This person's memories that best match `query`, best first.
    async fn recall(&self, _query: &str, _limit: usize) -> Result<Vec<Recalled>, AgentError> {
        Err(AgentError::Unsupported("memory"))
    }
    /// Schedule `prompt` in this session (`CronScheduled`); the job id.
    async fn schedule(&self, _schedule: &str, _prompt: &str) -> Result<uuid::Uuid, AgentError> {
        Err(AgentError::Unsupported("cron"))
    }
    /// This session's active cron jobs, one line each.
    async fn cron_jobs(&self) -> Result<Vec<String>, AgentError> {
        Err(AgentError::Unsupported("cron"))
    }
    /// Cancel one of this session's cron jobs; false when there is none.
    async fn cancel_cron(&self, _id: uuid::Uuid) -> Result<bool, AgentError> {
        Err(AgentError::Unsupported("cron"))
    }
    /// Ask a person to approve `action` and wait for the answer (true: approved).
    async fn approve(&self, _action: &str) -> Result<bool, AgentError> {
        Err(AgentError::Unsupported("approvals"))
    }
    /// The nodes connected to the Gateway (paired phones, computers, ...), one line each:
    /// id, name, platform and the commands it offers.
    async fn nodes(&self) -> Result<Vec<String>, AgentError> {
        Err(AgentError::Unsupported("nodes"))
    }
    /// Ids of the connected nodes that offer `command` (e.g. `canvas.present`).
    async fn nodes_offering(&self, _command: &str) -> Vec<String> {
        Vec::new()
    }
    /// Run `command` on node `node` with `params`; its result as JSON text. The Gateway
    /// records the invocation and its outcome.
    async fn invoke_node(
        &self,
        _node: &str,
        _command: &str,
        _params: serde_json::Value,
    ) -> Result<String, AgentError> {
        Err(AgentError::Unsupported("nodes"))
    }
    /// Run a chat command (`/branch NAME`, `/switch NAME`, `/branches`, `/compact`) in this
    /// session; its answer.
    async fn session_command(&self, _command: &str) -> Result<String, AgentError> {
        Err(AgentError::Unsupported("session"))
    }
    /// Keep `bytes` in the media store (a screenshot, a chart, a download the reply
    /// carries); the attachment that names them.
    async fn store_media(
        &self,
        _name: &str,
        _mime: &str,
        _bytes: Vec<u8>,
    ) -> Result<Attachment, AgentError> {
        Err(AgentError::Unsupported("the media store"))
    }
    /// The bytes of an attachment kept in the media store.
    async fn load_media(&self, _attachment: &Attachment) -> Result<Vec<u8>, AgentError> {
        Err(AgentError::Unsupported("the media store"))
    }
}

/// An agent: given a turn's input, produce a reply, recording every step.
#[async_trait]
pub trait Agent: Send + Sync {
    /// The agent's name (what bindings name).
    fn name(&self) -> &str;
    /// Summarise a history for compaction. The default is [`extractive_summary`].
    async fn summarize(&self, history: &[ContextMessage]) -> Result<Summary, AgentError> {
        Ok(extractive_summary(history))
    }

    /// Run one turn.
    async fn run_turn(
        &self,
        input: TurnInput,
        recorder: &dyn TurnRecorder,
    ) -> Result<TurnOutput, AgentError>;
}
