//! What a provider is: the provider-neutral request and answer types and the
//! [`Provider`] trait Pi talks to.

use std::borrow::Cow;

use async_trait::async_trait;
use clawos_events::ToolCallRequest;
use serde::{Deserialize, Serialize};

use super::error::ProviderError;
use super::image::ImagePart;

/// The note that takes an image's place when it is not sent: `[NAME was not shown:
/// REASON]`, on a line of its own (appended to the text of its message).
pub fn image_note(name: &str, reason: &str) -> String {
    format!("\n[{name} was not shown: {reason}]")
}

/// Why an image is left out of a request sent to a model that cannot see images.
pub const NO_VISION: &str = "the model cannot see images";

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
    /// What the user said, and the images they sent with it (build a text-only one with
    /// [`ChatMessage::user`]).
    User {
        /// Text.
        text: String,
        /// Images sent with the text, in order; empty for most messages. Providers whose
        /// model cannot see images send the text with a note per image instead
        /// ([`ChatRequest::without_images`]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<ImagePart>,
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

impl ChatMessage {
    /// A user message of text alone.
    pub fn user(text: impl Into<String>) -> Self {
        ChatMessage::User {
            text: text.into(),
            images: Vec::new(),
        }
    }
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

impl ChatRequest {
    /// Every image of the request's messages, in order.
    pub fn images(&self) -> impl Iterator<Item = &ImagePart> {
        self.messages.iter().flat_map(|m| match m {
            ChatMessage::User { images, .. } => images.as_slice(),
            ChatMessage::Assistant { .. } | ChatMessage::Tool { .. } => &[],
        })
    }

    /// Whether any message carries an image.
    pub fn has_images(&self) -> bool {
        self.images().next().is_some()
    }

    /// The request for a model that cannot see images: each image left out, its message's
    /// text followed by a note naming it ([`NO_VISION`]). Borrowed when there were none.
    pub fn without_images(&self) -> Cow<'_, ChatRequest> {
        if !self.has_images() {
            return Cow::Borrowed(self);
        }
        let messages = self
            .messages
            .iter()
            .map(|m| match m {
                ChatMessage::User { text, images } if !images.is_empty() => {
                    let mut text = text.clone();
                    for image in images {
                        text.push_str(&image_note(image.name(), NO_VISION));
                    }
                    ChatMessage::user(text)
                }
                other => other.clone(),
            })
            .collect();
        Cow::Owned(ChatRequest {
            system: self.system.clone(),
            messages,
            tools: self.tools.clone(),
            max_tokens: self.max_tokens,
        })
    }
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
    /// Provider name: `openai`, `anthropic` or `local`.
    fn name(&self) -> &str;
    /// Model id.
    fn model(&self) -> &str;
    /// The exact JSON body this provider would send for `req` (recorded in LlmRequested,
    /// with each image's base64 replaced by a placeholder: see
    /// [`redact_images`](super::image::redact_images)).
    fn request_body(&self, req: &ChatRequest) -> serde_json::Value;
    /// Whether this provider can send images to its model at all. A provider that cannot
    /// (the local GGUF one) sends each image's note instead
    /// ([`ChatRequest::without_images`]); Pi then does not load them. Default: true.
    fn accepts_images(&self) -> bool {
        true
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_images_notes_each_image_and_keeps_the_rest() {
        let image = |name: &str| ImagePart::new(name, "image/png", b"\x89PNG\r\n\x1a\n".to_vec());
        let mut req = ChatRequest {
            system: "s".into(),
            messages: vec![
                ChatMessage::user("earlier"),
                ChatMessage::Assistant {
                    text: "ok".into(),
                    tool_calls: vec![],
                },
            ],
            tools: vec![],
            max_tokens: Some(3),
        };
        assert!(!req.has_images());
        assert!(matches!(req.without_images(), Cow::Borrowed(_)));
        req.messages.push(ChatMessage::User {
            text: "look".into(),
            images: vec![image("a.png"), image("b.png")],
        });
        assert!(req.has_images());
        assert_eq!(req.images().count(), 2);
        let text_only = req.without_images().into_owned();
        assert!(!text_only.has_images());
        assert_eq!(text_only.messages[..2], req.messages[..2]);
        assert_eq!(
            text_only.messages[2],
            ChatMessage::user(
                "look\n[a.png was not shown: the model cannot see images]\
                 \n[b.png was not shown: the model cannot see images]"
            )
        );
        assert_eq!(text_only.max_tokens, Some(3));
    }
}
