//! Payloads of the agent processes' lifecycle (part of the catalogue; see
//! [`crate::catalogue`]): an agent runtime process started or ended, and a turn run again
//! after its process died.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An agent process started and finished its hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStarted {
    /// Agent name (what bindings name).
    pub agent: String,
    /// OS process id.
    pub pid: u32,
    /// Protocol version agreed in the hello.
    pub protocol: u32,
    /// Frame encoding agreed in the hello (`json`, `bincode`).
    pub encoding: String,
}

/// An agent process ended, or could not be started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentExited {
    /// Agent name.
    pub agent: String,
    /// Exit code, when it exited normally.
    pub code: Option<i32>,
    /// Signal number, when it was killed.
    pub signal: Option<i32>,
    /// Why, in words (exit, missed heartbeats, cut off for a bad frame, shutdown).
    pub reason: String,
}

/// A turn's agent process died mid-turn and the turn is run again on the restarted one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTurnRetried {
    /// The turn.
    pub turn_id: Uuid,
    /// The attempt that was lost (1 for the first).
    pub attempt: u32,
    /// Why it was lost.
    pub reason: String,
}
