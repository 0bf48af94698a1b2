//! [`EchoAgent`]: a diagnostic agent that answers with the message it got.
//!
//! It exists so the Gateway's tests and benchmarks (`clawos bench`) can drive whole turns
//! (ingest, dispatch, reply, delivery) without a model, and so the cost they measure is
//! the Gateway's own. It is not an agent a user chooses for a conversation: it calls no
//! model and records no steps.

use async_trait::async_trait;

use crate::{Agent, AgentError, TurnInput, TurnOutput, TurnRecorder};

/// The pause between two words of a `slowly:` reply.
pub const SLOW_WORD: std::time::Duration = std::time::Duration::from_millis(300);

/// How long a `later:` reply waits before it is written.
pub const LATER: std::time::Duration = std::time::Duration::from_secs(1);

/// A diagnostic agent for tests and benchmarks: replies `echo: TEXT (n before)`, `n` being
/// the number of history messages it was given. `repeat N: TEXT` (N up to 2000) echoes
/// TEXT N times, for replies longer than a service lets a person send. Records nothing
/// and calls no model. Files that came with the message go back with the reply, so a
/// channel's attachments can be tested both ways. `slowly: TEXT` streams the reply a word
/// at a time ([`TurnRecorder::delta`], each after a [`SLOW_WORD`] pause), as a model's reply
/// streams. `later: TEXT` answers whole after [`LATER`] (a model slow to answer).
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
        recorder: &dyn TurnRecorder,
    ) -> Result<TurnOutput, AgentError> {
        let reply = format!(
            "echo: {} ({} before)",
            repeated(&input.message),
            input.history.len()
        );
        if input.message.starts_with("later: ") {
            tokio::time::sleep(LATER).await;
        }
        if input.message.starts_with("slowly: ") {
            // A pause before the first word too, as a model thinks before it writes:
            // channels show the bot typing meanwhile.
            for word in reply.split_inclusive(' ') {
                tokio::time::sleep(SLOW_WORD).await;
                recorder.delta(word);
            }
        }
        Ok(TurnOutput {
            reply,
            steps: 0,
            attachments: input.attachments,
        })
    }
}

/// `repeat N: TEXT` as TEXT N times (joined by spaces); anything else as it is.
fn repeated(message: &str) -> String {
    let parsed = message.strip_prefix("repeat ").and_then(|rest| {
        let (n, text) = rest.split_once(": ")?;
        let n: usize = n.parse().ok().filter(|n| (1..=2000).contains(n))?;
        Some(vec![text; n].join(" "))
    });
    parsed.unwrap_or_else(|| message.to_string())
}

#[cfg(test)]
mod tests {
    use super::repeated;

    #[test]
    fn repeat_makes_long_replies_from_short_messages() {
        assert_eq!(repeated("repeat 3: ab."), "ab. ab. ab.");
        assert_eq!(repeated("repeat 0: ab"), "repeat 0: ab");
        assert_eq!(repeated("repeat 2001: ab"), "repeat 2001: ab");
        assert_eq!(repeated("hello"), "hello");
    }
}
