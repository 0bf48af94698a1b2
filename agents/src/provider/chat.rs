//! What a provider is: the provider-neutral request and answer types and the
//! [`Provider`] trait Pi talks to.

use async_trait::async_trait;
use clawos_events::ToolCallRequest;
use serde::{Deserialize, Serialize};

use super::error::ProviderError;

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Tool name, as the model will call it.
    pub name: String,
    /// What the tool does (shown to the model).
    pub description: String,
    /// JSON schema of the tool's arguments (an `object` schema).
    pub parameters: serde_json::Value,
}

/// One message of a conversation sent to a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum ChatMessage {
    /// What the user said.
    User {
        /// Text.
        text: String,
    },
    /// What the model answered earlier, including the tool calls it asked for.
    Assistant {
        /// Text (may be empty when the model only called tools).
        text: String,
        /// The tool calls it asked for.
        tool_calls: Vec<ToolCallRequest>,
    },
    /// The result of one tool call.
    Tool {
        /// The provider's id of the call this answers.
        call_id: String,
        /// Tool name.
        name: String,
        /// What the tool returned.
        output: String,
    },
}

/// A provider-neutral chat request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// System prompt; empty means none.
    pub system: String,
    /// The conversation, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Tools offered; empty means none.
    pub tools: Vec<ToolSpec>,
    /// Cap on generated tokens (Anthropic requires one and defaults to
    /// [`DEFAULT_MAX_TOKENS`](super::anthropic::DEFAULT_MAX_TOKENS)).
    pub max_tokens: Option<u32>,
}

/// A complete answer from a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The full text of the answer (every streamed fragment, concatenated).
    pub content: String,
    /// Tool calls the model asked for, in the order it made them.
    pub tool_calls: Vec<ToolCallRequest>,
    /// Prompt (input) tokens as reported by the server; 0 when it reported none.
    pub prompt_tokens: u32,
    /// Completion (output) tokens as reported by the server; 0 when it reported none.
    pub completion_tokens: u32,
    /// The configured model of the provider that answered.
    pub model: String,
    /// Name of the provider that answered (`openai`, `anthropic`).
    pub provider: String,
}

/// A language model behind some API.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Provider name: `openai` or `anthropic`.
    fn name(&self) -> &str;
    /// Model id.
    fn model(&self) -> &str;
    /// The exact JSON body this provider would send for `req` (recorded in LlmRequested).
    fn request_body(&self, req: &ChatRequest) -> serde_json::Value;
    /// Send `req` streaming; `on_delta` gets each text fragment as it arrives.
    ///
    /// When an attempt fails after some fragments were passed to `on_delta` and is then
    /// retried (or a failover moves on), those fragments are not taken back; the
    /// returned [`ChatResponse::content`] is always exactly the successful attempt's text.
    ///
    /// Implementations spell the parameter `&(dyn for<'d> Fn(&'d str) + Send + Sync)`:
    /// `#[async_trait]` would turn the elided lifetime of `Fn(&str)` into a fixed one and
    /// the signature would no longer match. For callers both spellings are the same type;
    /// pass any `&impl Fn(&str) + Send + Sync`.
    async fn chat(
        &self,
        req: &ChatRequest,
        on_delta: &(dyn for<'d> Fn(&'d str) + Send + Sync),
    ) -> Result<ChatResponse, ProviderError>;
}
