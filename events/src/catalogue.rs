//! The event catalogue: one payload struct per kind, and the [`EventPayload`] enum.
//!
//! Every payload is encoded on its own (bincode) and stored next to its kind tag and its
//! schema version, so a payload type can change shape later: bump its version in the
//! `catalogue!` table below and add an upcaster for the old shape in [`crate::codec`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::agent_process::{AgentExited, AgentStarted, AgentTurnRetried};

/// A file, image or sound that came with a message, in either direction. The bytes live in
/// the media store of the state folder under their blake3 hash, never in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// File name as the sender gave it.
    pub name: String,
    /// MIME type, when the channel knows it.
    pub mime: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// blake3 hash of the bytes (64 hex digits), the blob's name in the media store.
    /// `None` when the bytes were not kept: above the size cap, or recorded before the
    /// media store existed (schema version 1 of the attachment).
    pub blake3: Option<String>,
    /// Where the service keeps the bytes (a URL or a path), if anywhere.
    pub location: Option<String>,
}

/// A person's message arrived on a channel and was routed into a session.
///
/// It lives in the session's stream; the `(channel, external_id)` pair is the dedupe key of
/// the envelope, so a channel that re-sends gets the original seq back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReceived {
    /// Name of the channel instance it came in on (`terminal`, `irc-libera`, ...).
    pub channel: String,
    /// The channel's own id for this message.
    pub external_id: String,
    /// Sender address, `kind:local@domain` (e.g. `irc:alice@libera`).
    pub sender: String,
    /// Group or chat the message was posted in; `None` for a direct message.
    pub chat: Option<String>,
    /// Message text.
    pub text: String,
    /// Files that came with it.
    pub attachments: Vec<Attachment>,
    /// The branch of the session it was appended to.
    pub branch: String,
    /// When the channel saw it (unix milliseconds, channel clock).
    pub sent_at_ms: i64,
    /// It asks for an answer: a direct message, or a group message that addresses the
    /// agent under the group's policy. An unaddressed group message is kept as the
    /// group's context and gets no turn. Schema version 3; `true` when upcast.
    pub addressed: bool,
}

/// An agent's reply, to be delivered through a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSent {
    /// Unique id of this delivery; the channel acks it with [`DeliveryAcked`].
    pub delivery_id: Uuid,
    /// Agent that wrote it.
    pub agent: String,
    /// Branch of the session it belongs to.
    pub branch: String,
    /// Channel it goes out through.
    pub channel: String,
    /// Recipient address.
    pub to: String,
    /// Chat or group it goes to, `None` for a direct message.
    pub chat: Option<String>,
    /// Reply text.
    pub text: String,
    /// Seq of the message it answers, if any.
    pub in_reply_to: Option<u64>,
    /// The channel's own id of the message it answers (its `external_id`), which the
    /// channel threads the reply on (a webhook answers the request that carried it). Set
    /// for every reply to an inbound message, Gateway notices included, so delivery never
    /// reads the trigger again. Schema version 2; `None` when upcast from version 1.
    pub reply_key: Option<String>,
    /// Files the reply carries (their bytes in the media store). Schema version 3; empty
    /// when upcast.
    pub attachments: Vec<Attachment>,
}

/// A channel confirmed that it delivered a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAcked {
    /// Channel that delivered it.
    pub channel: String,
    /// The delivery id from [`MessageSent`].
    pub delivery_id: Uuid,
}

/// An address was linked to an identity (one person across channels).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityLinked {
    /// The identity the address now belongs to.
    pub identity: String,
    /// The address, `kind:local@domain`.
    pub address: String,
}

/// What a binding matches on. Empty fields match anything; more filled fields is more
/// specific.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingScope {
    /// Sender identity.
    pub identity: Option<String>,
    /// Group or chat.
    pub chat: Option<String>,
    /// Channel instance name.
    pub channel: Option<String>,
    /// Domain part of the sender address.
    pub sender_domain: Option<String>,
    /// Regular expression on the message body.
    pub body_regex: Option<String>,
}

/// A binding was created or replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingSet {
    /// Stable binding id.
    pub binding_id: String,
    /// Agent that gets matching messages.
    pub agent: String,
    /// What it matches.
    pub scope: BindingScope,
    /// Tie-breaker between equally specific bindings (higher wins).
    pub priority: i32,
}

/// A binding was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRemoved {
    /// The binding id.
    pub binding_id: String,
}

/// A session began: one conversation of one identity with one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStarted {
    /// Session id (also its stream name's suffix).
    pub session_id: String,
    /// The identity it belongs to.
    pub identity: String,
    /// The agent it talks to.
    pub agent: String,
}

/// A named branch was created in a session, headed at an existing message (or empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchCreated {
    /// Branch name, unique within the session.
    pub branch: String,
    /// Seq of the message the branch starts from; `None` starts an empty branch.
    pub at_message: Option<u64>,
    /// Whether the session switches to the new branch.
    pub switch_to: bool,
}

/// The session's active branch changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchSwitched {
    /// The branch now active.
    pub branch: String,
}

/// A summary now stands in for a prefix of a branch; the prefix stays in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCompacted {
    /// Branch that was compacted.
    pub branch: String,
    /// Seq of the last message the summary covers.
    pub covers_through: u64,
    /// The summary text.
    pub summary: String,
    /// Model that wrote it.
    pub model: String,
}

/// An agent turn began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTurnStarted {
    /// Turn id.
    pub turn_id: Uuid,
    /// Agent name.
    pub agent: String,
    /// Branch it runs on.
    pub branch: String,
    /// Seq of the event that triggered it (message, cron, hook).
    pub trigger_seq: u64,
}

/// The agent sent a request to an LLM provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmRequested {
    /// Turn id.
    pub turn_id: Uuid,
    /// Provider name.
    pub provider: String,
    /// Model id.
    pub model: String,
    /// The request body as sent (JSON).
    pub request: String,
    /// Size of the request body in bytes.
    pub request_bytes: u64,
    /// Names of the tools offered.
    pub tools: Vec<String>,
}

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallRequest {
    /// Provider's call id.
    pub call_id: String,
    /// Tool name.
    pub tool: String,
    /// Arguments (JSON).
    pub arguments: String,
}

/// The provider answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmResponded {
    /// Turn id.
    pub turn_id: Uuid,
    /// Text content of the answer.
    pub content: String,
    /// Tool calls the model asked for.
    pub tool_calls: Vec<ToolCallRequest>,
    /// Prompt tokens as reported.
    pub prompt_tokens: u32,
    /// Completion tokens as reported.
    pub completion_tokens: u32,
    /// Wall time of the call in milliseconds.
    pub latency_ms: u64,
}

/// A skill (tool) was invoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCalled {
    /// Turn id.
    pub turn_id: Uuid,
    /// Provider's call id.
    pub call_id: String,
    /// Tool name.
    pub tool: String,
    /// Arguments (JSON).
    pub arguments: String,
}

/// A skill returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolReturned {
    /// Turn id.
    pub turn_id: Uuid,
    /// Provider's call id.
    pub call_id: String,
    /// Output as given to the model.
    pub output: String,
    /// Exit status (0 is success).
    pub exit_status: i32,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// An agent turn ended with an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTurnFinished {
    /// Turn id.
    pub turn_id: Uuid,
    /// Number of LLM calls made.
    pub steps: u32,
}

/// An agent turn failed; the reason is what the user is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTurnFailed {
    /// Turn id.
    pub turn_id: Uuid,
    /// Reason, in words for the user.
    pub reason: String,
}

/// A long-term memory was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryWritten {
    /// Memory id.
    pub memory_id: Uuid,
    /// Identity scope, if any.
    pub identity: Option<String>,
    /// Agent scope, if any.
    pub agent: Option<String>,
    /// The remembered text.
    pub text: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Seq of the event it came from.
    pub source_seq: Option<u64>,
}

/// A memory was forgotten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryForgotten {
    /// Memory id.
    pub memory_id: Uuid,
}

/// A channel process started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStarted {
    /// Channel instance name.
    pub channel: String,
    /// Channel kind (`terminal`, `webhook`, `irc`, ...).
    pub kind: String,
    /// OS process id.
    pub pid: u32,
}

/// A channel process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelExited {
    /// Channel instance name.
    pub channel: String,
    /// Exit code, when it exited normally.
    pub code: Option<i32>,
    /// Signal number, when it was killed.
    pub signal: Option<i32>,
    /// Why, in words (exit, missed heartbeats, shutdown).
    pub reason: String,
}

/// A channel's link to its outside service came up or went down (an IRC server, a
/// homeserver, an IMAP account), as the channel process reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelLinkChanged {
    /// Channel instance name.
    pub channel: String,
    /// The link is up.
    pub up: bool,
    /// What happened, for a person (`connected`, `authentication refused: ...`).
    pub detail: String,
}

/// A cron job was scheduled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronScheduled {
    /// Job id.
    pub job_id: Uuid,
    /// Session the job's turns run in.
    pub session_id: String,
    /// Schedule expression.
    pub schedule: String,
    /// Prompt given to the agent when it fires.
    pub prompt: String,
}

/// A cron job fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronFired {
    /// Job id.
    pub job_id: Uuid,
    /// When it was due (unix milliseconds).
    pub due_at_ms: i64,
    /// The job's prompt, given to the agent as the message of the turn.
    pub prompt: String,
}

/// A cron job was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronCancelled {
    /// Job id.
    pub job_id: Uuid,
}

/// An outside system started a turn through `/hooks/agent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookReceived {
    /// Hook name.
    pub hook: String,
    /// Target session, if given.
    pub session_id: Option<String>,
    /// Text for the agent.
    pub text: String,
}

/// A chat command (`/branch`, `/compact`, ...) arrived in a session. It steers the session
/// and is not part of the conversation: it never enters the message tree or an agent's
/// context. It carries the inbound dedupe key like a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReceived {
    /// Channel it came in on.
    pub channel: String,
    /// The channel's id for it.
    pub external_id: String,
    /// Sender address.
    pub sender: String,
    /// Chat or group.
    pub chat: Option<String>,
    /// The command line, e.g. `/branch idea`.
    pub text: String,
}

/// A skill asked a person to approve an action (shell policy `ask`); the turn waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    /// Approval id (`clawos approvals approve ID`).
    pub approval_id: Uuid,
    /// Session of the turn.
    pub session_id: String,
    /// The turn.
    pub turn_id: Uuid,
    /// What would run, in words (e.g. `shell: git status`).
    pub action: String,
}

/// A person answered an approval request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalAnswered {
    /// Approval id.
    pub approval_id: Uuid,
    /// Whether the action may run.
    pub approved: bool,
    /// Who answered (`cli`, or `timeout` when nobody did in time).
    pub by: String,
}

/// A secret was stored in the vault. Name and version only: never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretStored {
    /// Secret name.
    pub name: String,
    /// Version number after the write.
    pub version: u32,
}

/// A secret was deleted from the vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretDeleted {
    /// Secret name.
    pub name: String,
}

/// An unknown sender asked to talk; a one-time code was issued (only its hash is logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingRequested {
    /// Channel it came through.
    pub channel: String,
    /// Sender address.
    pub address: String,
    /// Hash of the code.
    pub code_hash: String,
    /// When the code expires (unix milliseconds).
    pub expires_at_ms: i64,
}

/// A pairing code was approved; the address may now talk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingApproved {
    /// Channel.
    pub channel: String,
    /// Sender address.
    pub address: String,
}

/// A session was closed (`sessions.delete`): its owner's next message opens a new
/// session. Its events stay in the log; only the read models stop listing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClosed {
    /// The session.
    pub session_id: String,
    /// Who closed it (`device:<id>`, `token:<client>`, `cli`).
    pub by: String,
}

/// A device (a Control UI, a companion app, a node) proved it holds an Ed25519 key the
/// Gateway did not know and asked to be paired. It waits until a person answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePairingRequested {
    /// Request id (`clawos devices approve ID`).
    pub request_id: Uuid,
    /// Device id: the SHA-256 of its public key, hex.
    pub device_id: String,
    /// Its Ed25519 public key (32 bytes, base64url without padding).
    pub public_key: String,
    /// Role asked for (`operator` or `node`).
    pub role: String,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// Client id and mode it announced (e.g. `cli` / `cli`, `openclaw-ios` / `node`).
    pub client: String,
    /// Platform it announced (e.g. `linux`, `ios`).
    pub platform: String,
    /// Name to show.
    pub display_name: String,
    /// Address it connected from.
    pub remote: String,
}

/// A person (or the loopback rule) answered a device's pairing request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePairingResolved {
    /// The request answered.
    pub request_id: Uuid,
    /// The device.
    pub device_id: String,
    /// Whether the device is now paired.
    pub approved: bool,
    /// Who answered: `cli`, `loopback`, or `device:<id>` for an operator's client.
    pub by: String,
}

/// A device token was issued to a paired device for a role (again after a rotation). The
/// token is derived from the Gateway's key and this generation: never logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceTokenIssued {
    /// The device.
    pub device_id: String,
    /// Role the token opens.
    pub role: String,
    /// Scopes the token grants.
    pub scopes: Vec<String>,
    /// Generation: a rotation issues the next one and the earlier tokens stop working.
    pub generation: u32,
}

/// A paired device was revoked: its tokens stop working and it must pair again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRevoked {
    /// The device.
    pub device_id: String,
    /// Who revoked it.
    pub by: String,
}

/// A one-time setup code was issued (`clawos devices pair`): the first device that
/// connects with it before it expires is paired without asking. Only its hash is logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSetupCodeIssued {
    /// blake3 of the code.
    pub code_hash: String,
    /// When it stops working (unix ms).
    pub expires_at_ms: i64,
}

/// A setup code was used: it now belongs to this device (for any of its roles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSetupCodeUsed {
    /// blake3 of the code.
    pub code_hash: String,
    /// The device that used it.
    pub device_id: String,
}

/// A command was sent to a node (`node.invoke` from an operator or Pi's `nodes` skill).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInvoked {
    /// Invocation id.
    pub invoke_id: Uuid,
    /// The node (its device id).
    pub node_id: String,
    /// Command, e.g. `camera.snap`.
    pub command: String,
    /// Its parameters, JSON.
    pub params: String,
    /// Who asked: `device:<id>`, or `session:<id>` for an agent's turn.
    pub by: String,
}

/// A node reported an event (`node.event`: a command it ran finished, a permission
/// changed, ...). Operators receive it as a `node.event` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEventReported {
    /// The node.
    pub node_id: String,
    /// Event name, e.g. `exec.finished`.
    pub event: String,
    /// Its payload, JSON.
    pub payload: String,
}

/// The answer to a node command: a result, an error, or a timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInvokeFinished {
    /// Invocation id.
    pub invoke_id: Uuid,
    /// Whether the node answered with a result.
    pub ok: bool,
    /// The result (JSON) when `ok`, the error message otherwise.
    pub result: String,
}

/// A turn did not reach the model because a budget (`[[budgets]]`) was used up; the
/// person was told instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetExceeded {
    /// The turn that stopped.
    pub turn_id: Uuid,
    /// Its agent.
    pub agent: String,
    /// The session's owner.
    pub identity: String,
    /// Who the budget caps, for people (`agent pi`, `alice`).
    pub budget: String,
    /// `day` or `month` (UTC).
    pub per: String,
    /// Start of the period (ms).
    pub period_start_ms: i64,
    /// The token limit, if any.
    pub limit_tokens: Option<u64>,
    /// The dollar limit in millionths of a dollar, if any.
    pub limit_micro_usd: Option<u64>,
    /// Tokens spent in the period.
    pub spent_tokens: u64,
    /// Dollars spent in the period, in millionths (priced models only).
    pub spent_micro_usd: u64,
}

/// The `editor` skill changed a file in an agent's workspace. With the file's first
/// recorded content (`base`) and every diff after it, the log alone rebuilds the file as
/// it was after any event (`clawos replay file-at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceFileChanged {
    /// The turn that changed it.
    pub turn_id: Uuid,
    /// The agent whose workspace it is.
    pub agent: String,
    /// Path relative to the workspace.
    pub path: String,
    /// What was done: `create`, `replace`, `insert` or `patch`.
    pub op: String,
    /// The whole content before the change, when the log holds no earlier state of the
    /// file (a file the agent did not create, seen for the first time); `None` otherwise.
    pub base: Option<String>,
    /// blake3 of the content before (`None`: the file did not exist).
    pub before_blake3: Option<String>,
    /// blake3 of the content after.
    pub after_blake3: String,
    /// Unified diff from before to after.
    pub diff: String,
}

/// An agent presented content on its canvas (the `canvas` skill); paired nodes that
/// render a canvas were sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanvasPresented {
    /// The turn.
    pub turn_id: Uuid,
    /// The agent.
    pub agent: String,
    /// `markdown`, `html` (shown in a sandboxed frame) or `image` (an https or data URL).
    pub kind: String,
    /// A title, if any.
    pub title: Option<String>,
    /// The content.
    pub content: String,
}

/// An agent cleared its canvas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanvasCleared {
    /// The turn.
    pub turn_id: Uuid,
    /// The agent.
    pub agent: String,
}

macro_rules! catalogue {
    ($( $kind:ident = $version:literal ),* $(,)?) => {
        /// Every kind of event clawos records. The variant name is the kind tag in the log.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "kind", content = "payload")]
        pub enum EventPayload {
            $(
                #[doc = concat!("See [`", stringify!($kind), "`].")]
                $kind($kind),
            )*
        }

        /// Every kind tag with its current schema version.
        pub const KINDS: &[(&str, u16)] = &[$((stringify!($kind), $version)),*];

        impl EventPayload {
            /// The kind tag stored in the log.
            pub fn kind(&self) -> &'static str {
                match self { $(EventPayload::$kind(_) => stringify!($kind),)* }
            }

            /// The schema version this build writes for this kind.
            pub fn schema_version(&self) -> u16 {
                match self { $(EventPayload::$kind(_) => $version,)* }
            }

            /// Encode the payload alone (bincode, standard config).
            pub fn encode(&self) -> Result<Vec<u8>, crate::CodecError> {
                match self {
                    $(EventPayload::$kind(p) => crate::body::encode_body(p),)*
                }
            }

            /// Decode a payload of the current schema version for `kind`, or `None` when
            /// the kind is not in the catalogue.
            pub(crate) fn decode_current(
                kind: &str,
                version: u16,
                bytes: &[u8],
            ) -> Option<Result<EventPayload, crate::CodecError>> {
                match kind {
                    $(stringify!($kind) if version == $version => Some(
                        crate::body::decode_body::<$kind>(bytes).map(EventPayload::$kind)
                    ),)*
                    _ => None,
                }
            }
        }

        $(
            impl From<$kind> for EventPayload {
                fn from(p: $kind) -> Self { EventPayload::$kind(p) }
            }
        )*
    };
}

catalogue! {
    MessageReceived = 4,
    MessageSent = 3,
    DeliveryAcked = 1,
    IdentityLinked = 1,
    BindingSet = 1,
    BindingRemoved = 1,
    SessionStarted = 1,
    BranchCreated = 1,
    BranchSwitched = 1,
    SessionCompacted = 1,
    AgentTurnStarted = 1,
    LlmRequested = 1,
    LlmResponded = 1,
    ToolCalled = 1,
    ToolReturned = 1,
    AgentTurnFinished = 1,
    AgentTurnFailed = 1,
    MemoryWritten = 1,
    MemoryForgotten = 1,
    ChannelStarted = 1,
    ChannelExited = 1,
    ChannelLinkChanged = 1,
    CronScheduled = 1,
    CronFired = 1,
    CronCancelled = 1,
    ApprovalRequested = 1,
    ApprovalAnswered = 1,
    HookReceived = 1,
    CommandReceived = 1,
    SecretStored = 1,
    SecretDeleted = 1,
    PairingRequested = 1,
    PairingApproved = 1,
    SessionClosed = 1,
    DevicePairingRequested = 1,
    DevicePairingResolved = 1,
    DeviceTokenIssued = 1,
    DeviceRevoked = 1,
    DeviceSetupCodeIssued = 1,
    DeviceSetupCodeUsed = 1,
    NodeInvoked = 1,
    NodeInvokeFinished = 1,
    NodeEventReported = 1,
    BudgetExceeded = 1,
    WorkspaceFileChanged = 1,
    CanvasPresented = 1,
    CanvasCleared = 1,
    AgentStarted = 1,
    AgentExited = 1,
    AgentTurnRetried = 1,
}
