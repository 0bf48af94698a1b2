//! An agent that answers with the message it got: a test double for the Gateway's tests
//! and benchmarks, never a product feature.

use async_trait::async_trait;

use crate::{Agent, AgentError, TurnInput, TurnOutput, TurnRecorder};

/// Replies `echo: TEXT` (and `echo: TEXT (n before)` with the history length).
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
