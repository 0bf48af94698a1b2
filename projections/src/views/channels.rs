//! Process status: each channel process and each isolated agent's process up or down,
//! its starts, exits and last exit.

use serde::Serialize;
use sqlx::SqlitePool;

use super::rows::{int, opt_text, signed, text};
use crate::agent_processes::AGENT_PROCESSES;
use crate::changes::MemoryTables;
use crate::channels::CHANNELS;
use crate::ProjectionError;

/// One channel's status (the JSON of `/api/status` and `/api/channels`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelStatusView {
    /// Channel name.
    pub channel: String,
    /// Adapter kind (`terminal`, `webhook`, ...).
    pub kind: String,
    /// `up` or `down`.
    pub state: String,
    /// Process id while up.
    pub pid: Option<i64>,
    /// How often it started.
    pub starts: u64,
    /// How often it exited.
    pub exits: u64,
    /// Starts after the first.
    pub restarts: u64,
    /// How it last exited (`exit code 1: ...`, `signal 9: ...`).
    pub last_exit: Option<String>,
    /// The link to the outside service as the channel last reported it (`up: connected`,
    /// `down: authentication refused: ...`); `None` for channels without one.
    pub link: Option<String>,
}

/// Every channel, by name.
pub fn channel_status_in(t: &MemoryTables) -> Vec<ChannelStatusView> {
    t.rows(CHANNELS.name)
        .iter()
        .map(|r| {
            let starts = int(r, 4).unwrap_or(0);
            ChannelStatusView {
                channel: text(r, 0),
                kind: text(r, 1),
                state: text(r, 2),
                pid: signed(r, 3),
                starts,
                exits: int(r, 5).unwrap_or(0),
                restarts: starts.saturating_sub(1),
                last_exit: opt_text(r, 6),
                link: opt_text(r, 8),
            }
        })
        .collect()
}

/// [`channel_status_in`] over the live tables.
pub async fn channel_status(pool: &SqlitePool) -> Result<Vec<ChannelStatusView>, ProjectionError> {
    Ok(channel_status_in(
        &super::rows::load_tables(pool, &[&CHANNELS]).await?,
    ))
}

/// One agent process's status (the JSON of `/api/status`'s `agents`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentProcessView {
    /// Agent name.
    pub agent: String,
    /// `up` or `down`.
    pub state: String,
    /// Process id while up.
    pub pid: Option<i64>,
    /// Frame encoding of its hello (`json`, `bincode`).
    pub encoding: Option<String>,
    /// Starts after the first.
    pub restarts: u64,
    /// How it last exited.
    pub last_exit: Option<String>,
}

/// Every agent process, by name.
pub async fn agent_process_status(
    pool: &SqlitePool,
) -> Result<Vec<AgentProcessView>, ProjectionError> {
    let t = super::rows::load_tables(pool, &[&AGENT_PROCESSES]).await?;
    Ok(t.rows(AGENT_PROCESSES.name)
        .iter()
        .map(|r| AgentProcessView {
            agent: text(r, 0),
            state: text(r, 1),
            pid: signed(r, 2),
            encoding: opt_text(r, 3),
            restarts: int(r, 4).unwrap_or(0).saturating_sub(1),
            last_exit: opt_text(r, 6),
        })
        .collect())
}
