//! Agents in processes of their own (`isolation = "process"`, `kind = "process"`): the
//! Gateway's side of the agent protocol (`docs/agent-protocol.md`).
//!
//! - [`ProcessAgent`]: the [`Agent`] the Gateway dispatches to; it hands each turn to the
//!   process and records what comes back, running the turn again when the process died
//!   mid-turn (up to `turn_retries`, never after a tool ran).
//! - [`link`]: one live connection, routing frames to turns and cutting off a process
//!   that breaks the protocol.
//! - [`attempt`]: one try at a turn, checking every step before it is appended.
//! - [`host_calls`]: the services (memory, cron, approvals, nodes, media) a turn asks for.
//! - [`supervise`]: start the process, check its hello, restart it with backoff, and
//!   record `AgentStarted`/`AgentExited`.
//! - [`child`]: `clawos agent NAME`, the runtime process that runs Pi behind the pipes.
//!
//! The process never writes the log: the Gateway appends every step, so the audit trail,
//! replay and the invariants are the same for an agent in a process and one in the
//! Gateway.

pub mod attempt;
pub mod child;
pub mod host_calls;
pub mod link;
pub mod plan;
pub mod supervise;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use clawos_agents::{
    Agent, AgentError, ContextMessage, Summary, TurnInput, TurnOutput, TurnRecorder,
};
use clawos_events::AgentTurnRetried;
use tokio::sync::watch;

use link::Link;

/// Longest a turn waits for its agent process to be up.
pub const START_WAIT: Duration = Duration::from_secs(30);

/// Where an agent's current process link is kept: the supervisor puts each new one in,
/// turns take it out.
pub struct AgentSlot {
    link: watch::Sender<Option<Arc<Link>>>,
    last_exit: Mutex<Option<String>>,
    stopping: std::sync::atomic::AtomicBool,
}

impl AgentSlot {
    /// An empty slot (no process yet).
    pub fn new() -> Arc<AgentSlot> {
        Arc::new(AgentSlot {
            link: watch::channel(None).0,
            last_exit: Mutex::new(None),
            stopping: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The Gateway is stopping: no turn waits for the process any more.
    pub fn stop(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.vacate("Gateway shutdown");
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The process behind `link` is up.
    pub fn install(&self, link: Arc<Link>) {
        self.link.send_replace(Some(link));
    }

    /// The process is gone, for `why`.
    pub fn vacate(&self, why: &str) {
        *self.last_exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_string());
        self.link.send_replace(None);
    }

    /// The live link, waiting up to `wait` for one.
    pub async fn live(&self, wait: Duration) -> Result<Arc<Link>, String> {
        if self.is_stopping() {
            return Err("the Gateway is stopping".into());
        }
        let mut rx = self.link.subscribe();
        let up = |l: &Option<Arc<Link>>| l.as_ref().is_some_and(|l| !l.is_closed());
        let found = tokio::time::timeout(wait, async {
            rx.wait_for(|l| self.is_stopping() || up(l))
                .await
                .ok()
                .and_then(|l| l.clone())
        })
        .await;
        if self.is_stopping() {
            return Err("the Gateway is stopping".into());
        }
        match found {
            Ok(Some(link)) => Ok(link),
            _ => {
                let last = self
                    .last_exit
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                Err(match last {
                    Some(why) => format!("it is not running (last exit: {why})"),
                    None => format!("it did not start within {wait:?}"),
                })
            }
        }
    }
}

/// An agent whose turns run in its own process.
pub struct ProcessAgent {
    name: String,
    slot: Arc<AgentSlot>,
    retries: u32,
}

impl ProcessAgent {
    /// The agent `name`, running turns again up to `retries` times when its process dies.
    pub fn new(name: &str, retries: u32) -> ProcessAgent {
        ProcessAgent {
            name: name.to_string(),
            slot: AgentSlot::new(),
            retries,
        }
    }

    /// Where its supervisor puts the process's link.
    pub fn slot(&self) -> Arc<AgentSlot> {
        self.slot.clone()
    }
}

#[async_trait]
impl Agent for ProcessAgent {
    fn name(&self) -> &str {
        &self.name
    }

    async fn summarize(&self, history: &[ContextMessage]) -> Result<Summary, AgentError> {
        let link = self
            .slot
            .live(START_WAIT)
            .await
            .map_err(AgentError::Process)?;
        let s = link
            .summarize(history.to_vec())
            .await
            .map_err(AgentError::Process)?;
        Ok(Summary {
            text: s.text,
            model: s.model,
        })
    }

    async fn run_turn(
        &self,
        input: TurnInput,
        recorder: &dyn TurnRecorder,
    ) -> Result<TurnOutput, AgentError> {
        let mut attempt = 1;
        loop {
            let link = self
                .slot
                .live(START_WAIT)
                .await
                .map_err(AgentError::Process)?;
            match attempt::run(&link, &self.name, &input, attempt, recorder).await {
                Ok(out) => return Ok(out),
                Err(attempt::Lost::Agent(e)) => return Err(e),
                Err(attempt::Lost::Process { reason, effect }) => {
                    if let Some(what) = effect {
                        return Err(AgentError::Process(format!(
                            "{reason}, after {what} (the turn is not run again, so nothing \
                             is done twice)"
                        )));
                    }
                    if attempt > self.retries || self.slot.is_stopping() {
                        return Err(AgentError::Process(format!(
                            "{reason} (attempt {attempt} of {})",
                            self.retries + 1
                        )));
                    }
                    tracing::warn!(agent = %self.name, turn = %input.turn_id, %reason, "agent process lost mid-turn; running the turn again");
                    recorder
                        .record(
                            AgentTurnRetried {
                                turn_id: input.turn_id,
                                attempt,
                                reason,
                            }
                            .into(),
                        )
                        .await?;
                    attempt += 1;
                }
            }
        }
    }
}
