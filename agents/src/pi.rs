//! Pi, the default agent. Until a provider is configured, Pi answers every message with
//! what to configure and how, so a fresh Gateway is never silent.

use async_trait::async_trait;

use crate::{Agent, AgentError, TurnInput, TurnOutput, TurnRecorder};

/// What Pi says when no LLM provider is configured.
pub const UNCONFIGURED_REPLY: &str = "Hi, I'm Pi. No language model is configured yet, so I \
can't answer properly. Add a provider to clawos.toml in your state folder, e.g.\n\
  [agents.pi]\n  provider = \"openai\"   # or \"anthropic\", or any OpenAI-compatible server\n  \
base_url = \"http://127.0.0.1:11434/v1\"   # Ollama, vLLM, llama.cpp...\n  model = \"llama3.2\"\n\
then restart the Gateway. `clawos doctor` shows what is missing.";

/// Pi without a provider.
pub struct UnconfiguredPi;

#[async_trait]
impl Agent for UnconfiguredPi {
    fn name(&self) -> &str {
        "pi"
    }
    async fn run_turn(&self, _: TurnInput, _: &dyn TurnRecorder) -> Result<TurnOutput, AgentError> {
        Ok(TurnOutput {
            reply: UNCONFIGURED_REPLY.to_string(),
            steps: 0,
        })
    }
}
