//! One attempt at a turn on an agent process: send the turn, then record its steps,
//! answer its calls and pass its fragments on until it answers, fails or is lost. Every
//! step is checked before it is appended: it must be of this turn and name this agent.

use std::collections::HashSet;
use std::sync::Arc;

use clawos_agents::remote::protocol::{FromAgent, HostValue, Step, ToAgent, TurnRequest};
use clawos_agents::{AgentError, TurnInput, TurnOutput, TurnRecorder};
use uuid::Uuid;

use super::host_calls;
use super::link::Link;

/// How an attempt ended without an answer.
pub enum Lost {
    /// The process went away (exited, killed, cut off for another turn's frames).
    Process {
        /// Why.
        reason: String,
        /// What the attempt did that running it again could do twice (a tool call, a
        /// memory written, a job scheduled, ...), if anything.
        effect: Option<String>,
    },
    /// The agent failed the turn, or this turn's own frames broke the protocol.
    Agent(AgentError),
}

/// The dedupe key of a step: the same call of the same attempt is recorded once.
pub fn step_key(turn: Uuid, attempt: u32, call: u64) -> String {
    format!("agent-step\u{1f}{turn}\u{1f}{attempt}\u{1f}{call}")
}

/// Why `step` may not be recorded in `turn` of `agent`, if it may not.
pub fn refuse_step(step: &Step, turn: Uuid, agent: &str) -> Option<String> {
    if step.turn_id() != turn {
        return Some(format!(
            "it sent a step of turn {} inside turn {turn}",
            step.turn_id()
        ));
    }
    match step.agent() {
        Some(named) if named != agent => Some(format!(
            "it sent a step naming agent `{named}`; it is `{agent}`"
        )),
        _ => None,
    }
}

/// Cancels the turn on the process when the attempt is dropped before it ended (the
/// turn timed out or was aborted).
struct OpenTurn {
    link: Arc<Link>,
    turn: Uuid,
    ended: bool,
}

impl OpenTurn {
    fn end(&mut self) {
        self.ended = true;
        self.link.end_turn(self.turn, None);
    }
}

impl Drop for OpenTurn {
    fn drop(&mut self) {
        if !self.ended {
            self.link
                .end_turn(self.turn, Some("the turn was stopped".into()));
        }
    }
}

/// Run attempt `attempt` of the turn `input` on `link`, recording through `recorder`.
pub async fn run(
    link: &Arc<Link>,
    agent: &str,
    input: &TurnInput,
    attempt: u32,
    recorder: &dyn TurnRecorder,
) -> Result<TurnOutput, Lost> {
    let turn = input.turn_id;
    let mut frames = link.open_turn(turn).map_err(|c| Lost::Process {
        reason: c.reason,
        effect: None,
    })?;
    let mut open = OpenTurn {
        link: link.clone(),
        turn,
        ended: false,
    };
    link.send(ToAgent::Turn(TurnRequest {
        input: input.clone(),
        attempt,
    }));
    let mut media: HashSet<String> = input
        .attachments
        .iter()
        .filter_map(|a| a.blake3.clone())
        .collect();
    let mut effect: Option<String> = None;
    let refused = |why: String| {
        link.cut_off(why.clone(), Some(turn));
        Lost::Agent(AgentError::Process(format!("it was cut off: {why}")))
    };
    while let Some(frame) = frames.recv().await {
        // Frames queued before a cut-off are not acted on.
        if link.is_cut_off() {
            break;
        }
        match frame {
            FromAgent::Step { call, step, .. } => {
                if let Some(why) = refuse_step(&step, turn, agent) {
                    return Err(refused(why));
                }
                if let Step::ToolCalled(c) = &step {
                    effect.get_or_insert_with(|| format!("the tool `{}` ran", c.tool));
                }
                let result = recorder
                    .record_once(step.into_payload(), &step_key(turn, attempt, call))
                    .await
                    .map(HostValue::Seq)
                    .map_err(|e| e.to_string());
                link.send(ToAgent::Answer { turn, call, result });
            }
            FromAgent::Call { call, request, .. } => {
                if let Some(what) = host_calls::effect_of(&request) {
                    effect.get_or_insert_with(|| what.to_string());
                }
                let result = host_calls::answer(recorder, request, &mut media).await;
                link.send(ToAgent::Answer { turn, call, result });
            }
            FromAgent::Delta { text, .. } => recorder.delta(&text),
            FromAgent::Done {
                reply,
                steps,
                attachments,
                ..
            } => {
                let foreign = attachments
                    .iter()
                    .find(|a| a.blake3.as_ref().is_some_and(|h| !media.contains(h)));
                if let Some(a) = foreign {
                    return Err(refused(format!(
                        "its reply carries {}, a file it was neither given nor stored",
                        a.name
                    )));
                }
                open.end();
                return Ok(TurnOutput {
                    reply,
                    steps,
                    attachments,
                });
            }
            FromAgent::Failed { error, .. } => {
                open.end();
                return Err(Lost::Agent(AgentError::Refused(error)));
            }
            // Not routed to turns.
            FromAgent::Summary { .. } | FromAgent::Pong { .. } => {}
        }
    }
    let closed = link.closed();
    if let Some(c) = closed.as_ref().filter(|c| c.culprit == Some(turn)) {
        // This turn's own frames broke the protocol: running it again would too.
        return Err(Lost::Agent(AgentError::Process(format!(
            "it was {}",
            c.reason
        ))));
    }
    let reason = closed
        .map(|c| c.reason)
        .unwrap_or_else(|| "the agent process went away".into());
    Err(Lost::Process { reason, effect })
}
