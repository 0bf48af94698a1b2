//! The frames of the agent protocol (`docs/agent-protocol.md`): what the Gateway and an
//! agent process say to each other once the hello is done.
//!
//! Every enum is externally tagged with snake_case names, so one frame in JSON reads
//! `{"turn": {...}}`, `{"step": {...}}` or `"shutdown"`; bincode carries the same values.
//! Nothing here is `serde_json::Value`: bincode could not read it back.

use std::collections::BTreeMap;

use clawos_events::{
    Attachment, CanvasCleared, CanvasPresented, EventPayload, LlmRequested, LlmResponded,
    ToolCalled, ToolReturned, WorkspaceFileChanged,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ContextMessage, Recalled, TurnInput};

/// The protocol version this build speaks; the hello carries it.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame either side accepts (a screenshot going to the media store fits).
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Environment variable naming the agent a process is started as.
pub const ENV_AGENT_NAME: &str = "CLAWOS_AGENT_NAME";
/// Environment variable holding the token the process repeats in its hello.
pub const ENV_AGENT_TOKEN: &str = "CLAWOS_AGENT_TOKEN";
/// Environment variable holding the protocol version the Gateway speaks.
pub const ENV_AGENT_PROTOCOL: &str = "CLAWOS_AGENT_PROTOCOL";

/// How frames after the hello are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// One JSON value per line (any language).
    Json,
    /// A 4-byte big-endian length, then the frame in bincode (standard configuration).
    Bincode,
}

/// The first line an agent process writes to its stdout, always JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version it speaks ([`PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// The agent it is (must be the name it was started as).
    pub agent: String,
    /// The token from [`ENV_AGENT_TOKEN`].
    pub token: String,
    /// How it wants the frames that follow.
    pub encoding: Encoding,
}

/// The Gateway's answer to a hello, one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelloAnswer {
    /// Accepted: frames in `encoding` follow.
    Welcome {
        /// The protocol version of the session.
        protocol: u32,
        /// The encoding of the frames that follow.
        encoding: Encoding,
        /// The vault secrets the agent's configuration names, by name (provider keys,
        /// calendar passwords), so the process never needs the vault's key.
        secrets: BTreeMap<String, String>,
        /// How often the Gateway pings; an agent silent for five of these is killed.
        heartbeat_ms: u64,
    },
    /// Refused; the Gateway closes the pipes.
    Refused {
        /// Why.
        reason: String,
    },
}

/// A turn for the agent to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TurnRequest {
    /// What the turn starts from.
    pub input: TurnInput,
    /// 1 for the first try; more when the turn is run again after the process died.
    pub attempt: u32,
}

/// What the Gateway sends an agent process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToAgent {
    /// Run a turn.
    Turn(TurnRequest),
    /// The answer to a [`FromAgent::Step`] or [`FromAgent::Call`].
    Answer {
        /// The turn.
        turn: Uuid,
        /// The call it answers.
        call: u64,
        /// The value, or why the Gateway refused.
        result: Result<HostValue, String>,
    },
    /// Stop the turn: it was aborted or ran out of time. Nothing it sends after counts.
    Cancel {
        /// The turn.
        turn: Uuid,
        /// Why.
        reason: String,
    },
    /// Summarise a history for compaction.
    Summarize {
        /// Request id, repeated in the answer.
        request: u64,
        /// The messages, oldest first.
        history: Vec<ContextMessage>,
    },
    /// Are you there? Answer with [`FromAgent::Pong`].
    Ping {
        /// Repeated in the pong.
        n: u64,
    },
    /// Finish what runs and exit.
    Shutdown,
}

/// A step of a turn the agent asks the Gateway to record. Only these kinds: an agent
/// cannot write a message, a binding or anything else into the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// A request to the model.
    LlmRequested(LlmRequested),
    /// The model's answer.
    LlmResponded(LlmResponded),
    /// A tool called.
    ToolCalled(ToolCalled),
    /// Its result.
    ToolReturned(ToolReturned),
    /// A workspace file the editor changed.
    WorkspaceFileChanged(WorkspaceFileChanged),
    /// Something shown on the canvas.
    CanvasPresented(CanvasPresented),
    /// The canvas cleared.
    CanvasCleared(CanvasCleared),
}

impl Step {
    /// The step an event payload is, when it is one.
    pub fn from_payload(payload: EventPayload) -> Option<Step> {
        Some(match payload {
            EventPayload::LlmRequested(x) => Step::LlmRequested(x),
            EventPayload::LlmResponded(x) => Step::LlmResponded(x),
            EventPayload::ToolCalled(x) => Step::ToolCalled(x),
            EventPayload::ToolReturned(x) => Step::ToolReturned(x),
            EventPayload::WorkspaceFileChanged(x) => Step::WorkspaceFileChanged(x),
            EventPayload::CanvasPresented(x) => Step::CanvasPresented(x),
            EventPayload::CanvasCleared(x) => Step::CanvasCleared(x),
            _ => return None,
        })
    }

    /// The event payload that records it.
    pub fn into_payload(self) -> EventPayload {
        match self {
            Step::LlmRequested(x) => x.into(),
            Step::LlmResponded(x) => x.into(),
            Step::ToolCalled(x) => x.into(),
            Step::ToolReturned(x) => x.into(),
            Step::WorkspaceFileChanged(x) => x.into(),
            Step::CanvasPresented(x) => x.into(),
            Step::CanvasCleared(x) => x.into(),
        }
    }

    /// The turn the step says it belongs to.
    pub fn turn_id(&self) -> Uuid {
        match self {
            Step::LlmRequested(x) => x.turn_id,
            Step::LlmResponded(x) => x.turn_id,
            Step::ToolCalled(x) => x.turn_id,
            Step::ToolReturned(x) => x.turn_id,
            Step::WorkspaceFileChanged(x) => x.turn_id,
            Step::CanvasPresented(x) => x.turn_id,
            Step::CanvasCleared(x) => x.turn_id,
        }
    }

    /// The agent the step names, for the kinds that name one.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Step::WorkspaceFileChanged(x) => Some(&x.agent),
            Step::CanvasPresented(x) => Some(&x.agent),
            Step::CanvasCleared(x) => Some(&x.agent),
            _ => None,
        }
    }
}

/// A service of the Gateway an agent asks for during a turn (what an in-process agent
/// reaches through its `TurnRecorder`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostCall {
    /// Remember a text for the session's person; answers `id`.
    Remember {
        /// The text.
        text: String,
        /// Tags.
        tags: Vec<String>,
    },
    /// Forget a memory; answers `bool`.
    Forget {
        /// The memory.
        id: Uuid,
    },
    /// Memories matching a query; answers `recalled`.
    Recall {
        /// The query.
        query: String,
        /// At most this many.
        limit: u32,
    },
    /// Schedule a prompt in this session; answers `id`.
    Schedule {
        /// Cron expression or `every 10m`-style schedule.
        schedule: String,
        /// What to run.
        prompt: String,
    },
    /// This session's cron jobs; answers `lines`.
    CronJobs,
    /// Cancel a cron job; answers `bool`.
    CancelCron {
        /// The job.
        id: Uuid,
    },
    /// Ask a person to approve an action; answers `bool`.
    Approve {
        /// What would be done.
        action: String,
    },
    /// The connected nodes; answers `lines`.
    Nodes,
    /// Nodes offering a command; answers `lines` (their ids).
    NodesOffering {
        /// The command.
        command: String,
    },
    /// Run a command on a node; answers `text` (JSON).
    InvokeNode {
        /// The node.
        node: String,
        /// The command.
        command: String,
        /// Its parameters as JSON text.
        params: String,
    },
    /// A chat command in this session; answers `text`.
    SessionCommand {
        /// `/branch NAME`, `/switch NAME`, `/branches`, `/compact`.
        command: String,
    },
    /// Keep bytes in the media store; answers `attachment`.
    StoreMedia {
        /// File name.
        name: String,
        /// MIME type.
        mime: String,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The bytes of a stored attachment; answers `bytes`.
    LoadMedia {
        /// The attachment.
        attachment: Attachment,
    },
}

/// A memory found by [`HostCall::Recall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecalledMemory {
    /// Memory id.
    pub id: Uuid,
    /// Text.
    pub text: String,
    /// Relevance (higher is better).
    pub score: f32,
}

impl From<Recalled> for RecalledMemory {
    fn from(r: Recalled) -> Self {
        RecalledMemory {
            id: r.id,
            text: r.text,
            score: r.score,
        }
    }
}

impl From<RecalledMemory> for Recalled {
    fn from(r: RecalledMemory) -> Self {
        Recalled {
            id: r.id,
            text: r.text,
            score: r.score,
        }
    }
}

/// What a step or a host call answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostValue {
    /// The seq a step was recorded at.
    Seq(u64),
    /// An id (a memory, a cron job).
    Id(Uuid),
    /// Yes or no.
    Bool(bool),
    /// Lines of text.
    Lines(Vec<String>),
    /// Recalled memories, best first.
    Recalled(Vec<RecalledMemory>),
    /// Text.
    Text(String),
    /// A stored attachment.
    Attachment(Attachment),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// What an agent process sends the Gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FromAgent {
    /// Record a step of a turn. `call` numbers the request within the turn; sending the
    /// same `call` again records the step once.
    Step {
        /// The turn.
        turn: Uuid,
        /// Request number within the turn.
        call: u64,
        /// The step.
        step: Step,
    },
    /// Use a service of the Gateway.
    Call {
        /// The turn.
        turn: Uuid,
        /// Request number within the turn.
        call: u64,
        /// The request.
        request: HostCall,
    },
    /// A fragment of the reply as it streams (shown, not recorded).
    Delta {
        /// The turn.
        turn: Uuid,
        /// The text.
        text: String,
    },
    /// The turn's answer.
    Done {
        /// The turn.
        turn: Uuid,
        /// The reply text.
        reply: String,
        /// LLM calls made.
        steps: u32,
        /// Files the reply carries (already in the media store).
        attachments: Vec<Attachment>,
    },
    /// The turn failed; `error` is what the person is told.
    Failed {
        /// The turn.
        turn: Uuid,
        /// Why, in words.
        error: String,
    },
    /// The answer to [`ToAgent::Summarize`].
    Summary {
        /// The request.
        request: u64,
        /// The summary and the model that wrote it, or why there is none.
        result: Result<SummaryText, String>,
    },
    /// The answer to a [`ToAgent::Ping`].
    Pong {
        /// The ping's number.
        n: u64,
    },
}

/// A compaction summary sent back over the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryText {
    /// The summary.
    pub text: String,
    /// The model that wrote it.
    pub model: String,
}

impl FromAgent {
    /// The turn a frame belongs to, for the frames that belong to one.
    pub fn turn(&self) -> Option<Uuid> {
        match self {
            FromAgent::Step { turn, .. }
            | FromAgent::Call { turn, .. }
            | FromAgent::Delta { turn, .. }
            | FromAgent::Done { turn, .. }
            | FromAgent::Failed { turn, .. } => Some(*turn),
            FromAgent::Summary { .. } | FromAgent::Pong { .. } => None,
        }
    }
}
