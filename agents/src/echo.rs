//! [`EchoAgent`]: a diagnostic agent that answers with the message it got.
//!
//! It exists so the Gateway's tests and benchmarks (`clawos bench`) can drive whole turns
//! (ingest, dispatch, reply, delivery) without a model, and so the cost they measure is
//! the Gateway's own. It is not an agent a user chooses for a conversation: it calls no
//! model and records no steps.

use async_trait::async_trait;

use crate::{Agent, AgentError, TurnInput, TurnOutput, TurnRecorder};

/// A diagnostic agent for tests and benchmarks: replies `echo: TEXT (n before)`, `n` being
/// the number of history messages it was given. Records nothing and calls no model.
pub struct EchoAgent {
    name: String,
}

impl EchoAgent {
    /// An echo agent with this name.
    pub fn new(name: impl Into<String>) -> Self {
        EchoAgent { name: name.into() }
    }
}

#[async_trait]
impl Agent for EchoAgent {
    fn name(&self) -> &str {
        &self.name
    }
    async fn run_turn(
        &self,
        input: TurnInput,
        _: &dyn TurnRecorder,
    ) -> Result<TurnOutput, AgentError> {
        Ok(TurnOutput {
            reply: format!("echo: {} ({} before)", input.message, input.history.len()),
            steps: 0,
        })
    }
}
