//! Anthropic Messages: `POST {base_url}/v1/messages`.
//!
//! Sends `x-api-key` and `anthropic-version: 2023-06-01`, the system prompt as the
//! top-level `system`, tool calls as `tool_use` blocks and tool results as `tool_result`
//! blocks of a user message (consecutive messages of one role are merged into one, as the
//! API wants roles to alternate). Reads the SSE events `message_start` (input tokens),
//! `content_block_start` (text or `tool_use` with id and name), `content_block_delta`
//! (`text_delta`, `input_json_delta`), `message_delta` (output tokens), `message_stop`,
//! and `error`. A plain JSON answer (no stream) is understood too.

use std::collections::BTreeMap;

use clawos_events::ToolCallRequest;
use serde_json::{json, Value};

use super::chat::{ChatMessage, ChatRequest, ChatResponse};
use super::error::{excerpt, ProviderError};
use super::exchange::{json_u32, push_text, AnswerFold};
use super::http::join_url;
use super::http_provider::{Dialect, HttpProvider};
use super::image::ImagePart;
use super::sse::SseEvent;

/// The provider name.
pub const NAME: &str = "anthropic";
/// The `anthropic-version` header sent.
pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` when the request sets none (the API requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// An Anthropic Messages provider.
pub type Anthropic = HttpProvider<AnthropicMessages>;

/// The Anthropic Messages dialect (the type parameter of [`Anthropic`]).
#[derive(Debug)]
pub enum AnthropicMessages {}

impl Dialect for AnthropicMessages {
    const NAME: &'static str = NAME;
    type Fold = StreamState;

    fn url(base_url: &str) -> String {
        url(base_url)
    }

    /// `anthropic-version: API_VERSION` and `x-api-key: KEY`.
    fn headers(request: reqwest::RequestBuilder, api_key: Option<&str>) -> reqwest::RequestBuilder {
        let request = request.header("anthropic-version", API_VERSION);
        match api_key {
            Some(key) => request.header("x-api-key", key),
            None => request,
        }
    }

    fn request_body(model: &str, req: &ChatRequest) -> Value {
        request_body(model, req)
    }
}

/// Where requests go: `{base_url}/v1/messages` (or `{base_url}/messages` when the base
/// URL already ends in `/v1`).
pub fn url(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    if base.ends_with("/v1") {
        join_url(base, "/messages")
    } else {
        join_url(base, "/v1/messages")
    }
}

/// The Messages body for `req` sent to `model`.
///
/// A user message's images come first, as `image` blocks with their base64, then its
/// text. Empty text is left out (the API rejects empty text blocks), and a message left
/// with no blocks is dropped. Tool-call arguments that are not a JSON object are sent as
/// `{"value": <arguments>}`, since `tool_use.input` must be an object.
pub fn request_body(model: &str, req: &ChatRequest) -> Value {
    let mut messages: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in &req.messages {
        let (role, blocks) = match message {
            ChatMessage::User { text, images } => {
                let mut blocks: Vec<Value> = images.iter().map(image_block).collect();
                blocks.extend(text_block(text));
                ("user", blocks)
            }
            ChatMessage::Assistant { text, tool_calls } => {
                let mut blocks: Vec<Value> = text_block(text).into_iter().collect();
                blocks.extend(tool_calls.iter().map(|call| {
                    json!({
                        "type": "tool_use",
                        "id": call.call_id,
                        "name": call.tool,
                        "input": tool_input(&call.arguments),
                    })
                }));
                ("assistant", blocks)
            }
            ChatMessage::Tool {
                call_id, output, ..
            } => (
                "user",
                vec![json!({ "type": "tool_result", "tool_use_id": call_id, "content": output })],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => messages.push((role, blocks)),
        }
    }
    let mut body = json!({
        "model": model,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "stream": true,
        "messages": messages
            .into_iter()
            .map(|(role, content)| json!({ "role": role, "content": content }))
            .collect::<Vec<_>>(),
    });
    if !req.system.is_empty() {
        body["system"] = json!(req.system);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                })
            })
            .collect();
    }
    body
}

/// An `image` block with the image's base64.
fn image_block(image: &ImagePart) -> Value {
    json!({
        "type": "image",
        "source": { "type": "base64", "media_type": image.mime(), "data": image.base64() },
    })
}

fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "type": "text", "text": text }))
}

/// `arguments` as a `tool_use.input` object.
fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        Ok(other) => json!({ "value": other }),
        Err(_) => json!({ "value": arguments }),
    }
}

/// One content block of the answer.
#[derive(Debug)]
enum Block {
    Text,
    ToolUse {
        id: String,
        name: String,
        /// `input_json_delta` fragments so far.
        json: String,
        /// The `input` of `content_block_start` (used when no fragment came).
        input: Value,
    },
    /// Thinking and other blocks we do not surface.
    Other,
}

/// What the events of one streamed answer have said so far.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    content: String,
    blocks: BTreeMap<u64, Block>,
    prompt_tokens: u32,
    completion_tokens: u32,
    /// `message_stop` arrived.
    done: bool,
}

impl AnswerFold for StreamState {
    const STREAM_END: &'static str = "message_stop";

    /// Apply a whole (non-streamed) message body.
    fn whole(
        &mut self,
        body: &Value,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), ProviderError> {
        if body.get("type").and_then(Value::as_str) == Some("error") {
            return Err(api_error(body.get("error").unwrap_or(body)));
        }
        let content = body
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ProviderError::Malformed(format!(
                    "response has no content: {}",
                    excerpt(&body.to_string())
                ))
            })?;
        for (index, block) in content.iter().enumerate() {
            self.start_block(index as u64, block, on_delta);
        }
        if let Some(usage) = body.get("usage") {
            self.usage(usage);
        }
        self.done = true;
        Ok(())
    }

    fn event(
        &mut self,
        event: &SseEvent,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<bool, ProviderError> {
        self.named_event(&event.event, &event.data, on_delta)?;
        Ok(self.done)
    }

    fn into_response(self, model: &str) -> ChatResponse {
        let tool_calls = self
            .blocks
            .into_iter()
            .filter_map(|(index, block)| match block {
                Block::ToolUse {
                    id,
                    name,
                    json,
                    input,
                } => Some(ToolCallRequest {
                    call_id: if id.is_empty() {
                        format!("toolu_{index}")
                    } else {
                        id
                    },
                    tool: name,
                    arguments: if !json.trim().is_empty() {
                        json
                    } else if input.is_object() {
                        input.to_string()
                    } else {
                        "{}".to_string()
                    },
                }),
                Block::Text | Block::Other => None,
            })
            .collect();
        ChatResponse {
            content: self.content,
            tool_calls,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            model: model.to_string(),
            provider: NAME.to_string(),
        }
    }
}

impl StreamState {
    /// Apply one event (`name` is the SSE `event:` field, the JSON `type` wins).
    fn named_event(
        &mut self,
        name: &str,
        data: &str,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), ProviderError> {
        let value: Value = serde_json::from_str(data).map_err(|e| {
            ProviderError::Malformed(format!("stream event {:?}: {e}", excerpt(data)))
        })?;
        if !value.is_object() {
            return Err(ProviderError::Malformed(format!(
                "stream event is not an object: {}",
                excerpt(data)
            )));
        }
        let kind = value.get("type").and_then(Value::as_str).unwrap_or(name);
        match kind {
            "message_start" => {
                if let Some(usage) = value.get("message").and_then(|m| m.get("usage")) {
                    self.usage(usage);
                }
            }
            "content_block_start" => {
                let index = block_index(&value)?;
                let block = value.get("content_block").ok_or_else(|| {
                    ProviderError::Malformed("content_block_start without a block".to_string())
                })?;
                self.start_block(index, block, on_delta);
            }
            "content_block_delta" => {
                let index = block_index(&value)?;
                let delta = value.get("delta").ok_or_else(|| {
                    ProviderError::Malformed("content_block_delta without a delta".to_string())
                })?;
                self.delta(index, delta, on_delta)?;
            }
            "message_delta" => {
                if let Some(usage) = value.get("usage") {
                    self.usage(usage);
                }
            }
            "message_stop" => self.done = true,
            "error" => return Err(api_error(value.get("error").unwrap_or(&value))),
            // ping, content_block_stop, and events added later.
            _ => {}
        }
        Ok(())
    }

    fn start_block(&mut self, index: u64, block: &Value, on_delta: &(dyn Fn(&str) + Send + Sync)) {
        let block = match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(text) = block.get("text").and_then(Value::as_str) {
                    push_text(&mut self.content, text, on_delta);
                }
                Block::Text
            }
            Some("tool_use") => Block::ToolUse {
                id: str_field(block, "id"),
                name: str_field(block, "name"),
                json: String::new(),
                input: block.get("input").cloned().unwrap_or(Value::Null),
            },
            _ => Block::Other,
        };
        self.blocks.insert(index, block);
    }

    fn delta(
        &mut self,
        index: u64,
        delta: &Value,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), ProviderError> {
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => {
                let text = delta.get("text").and_then(Value::as_str).ok_or_else(|| {
                    ProviderError::Malformed("text_delta without text".to_string())
                })?;
                push_text(&mut self.content, text, on_delta);
            }
            Some("input_json_delta") => {
                let partial = delta
                    .get("partial_json")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ProviderError::Malformed("input_json_delta without partial_json".into())
                    })?;
                match self.blocks.get_mut(&index) {
                    Some(Block::ToolUse { json, .. }) => json.push_str(partial),
                    _ => {
                        return Err(ProviderError::Malformed(format!(
                            "input_json_delta for block {index}, which is not a tool_use"
                        )))
                    }
                }
            }
            // thinking_delta, signature_delta, citations_delta, ...
            _ => {}
        }
        Ok(())
    }

    /// Take token counts from a `usage` object; input counts include cached tokens.
    fn usage(&mut self, usage: &Value) {
        if usage.get("input_tokens").is_some() {
            let input = json_u32(usage.get("input_tokens"))
                .saturating_add(json_u32(usage.get("cache_creation_input_tokens")))
                .saturating_add(json_u32(usage.get("cache_read_input_tokens")));
            if input > 0 {
                self.prompt_tokens = input;
            }
        }
        let output = json_u32(usage.get("output_tokens"));
        if output > 0 {
            self.completion_tokens = output;
        }
    }
}

fn block_index(value: &Value) -> Result<u64, ProviderError> {
    value
        .get("index")
        .and_then(Value::as_u64)
        .ok_or_else(|| ProviderError::Malformed("content block event without an index".into()))
}

fn str_field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// An Anthropic `error` object (`{"type": "overloaded_error", "message": ...}`).
fn api_error(error: &Value) -> ProviderError {
    let status = match error.get("type").and_then(Value::as_str) {
        Some("rate_limit_error") => return ProviderError::RateLimited { retry_after: None },
        Some("invalid_request_error") => 400,
        Some("authentication_error") => 401,
        Some("permission_error") => 403,
        Some("not_found_error") => 404,
        Some("request_too_large") => 413,
        Some("timeout_error") => 504,
        Some("overloaded_error") => 529,
        _ => 500,
    };
    ProviderError::http(status, &error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ToolSpec;
    use std::sync::Mutex;

    fn run(events: &[(&str, &str)]) -> (Result<ChatResponse, ProviderError>, Vec<String>) {
        let deltas = Mutex::new(Vec::new());
        let on_delta = |d: &str| deltas.lock().expect("lock").push(d.to_string());
        let mut state = StreamState::default();
        for (name, data) in events {
            if let Err(e) = state.named_event(name, data, &on_delta) {
                return (Err(e), deltas.into_inner().expect("lock"));
            }
        }
        (
            Ok(state.into_response("m")),
            deltas.into_inner().expect("lock"),
        )
    }

    #[test]
    fn text_and_two_tool_uses() {
        let (resp, deltas) = run(&[
            (
                "message_start",
                r#"{"type":"message_start","message":{"usage":{"input_tokens":20,"cache_read_input_tokens":5,"output_tokens":1}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            ("ping", r#"{"type":"ping"}"#),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi "}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"there"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_a","name":"read","input":{}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"pa"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"th\":\"x\"}"}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_b","name":"now","input":{}}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ]);
        let resp = resp.expect("ok");
        assert_eq!(deltas, vec!["Hi ", "there"]);
        assert_eq!(resp.content, "Hi there");
        assert_eq!(
            resp.tool_calls,
            vec![
                ToolCallRequest {
                    call_id: "toolu_a".into(),
                    tool: "read".into(),
                    arguments: r#"{"path":"x"}"#.into()
                },
                ToolCallRequest {
                    call_id: "toolu_b".into(),
                    tool: "now".into(),
                    arguments: "{}".into()
                },
            ]
        );
        assert_eq!((resp.prompt_tokens, resp.completion_tokens), (25, 9));
    }

    #[test]
    fn whole_json_answer() {
        let body = json!({
            "type": "message",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "tool_use", "id": "toolu_x", "name": "t", "input": {"a": 1}},
            ],
            "usage": {"input_tokens": 3, "output_tokens": 2},
        });
        let seen = Mutex::new(String::new());
        let on_delta = |d: &str| seen.lock().expect("lock").push_str(d);
        let mut state = StreamState::default();
        state.whole(&body, &on_delta).expect("ok");
        let resp = state.into_response("m");
        assert_eq!(*seen.lock().expect("lock"), "hi");
        assert_eq!(resp.content, "hi");
        assert_eq!(resp.tool_calls.len(), 1);
        assert_eq!(resp.tool_calls[0].call_id, "toolu_x");
        assert_eq!(resp.tool_calls[0].arguments, r#"{"a":1}"#);
        assert_eq!((resp.prompt_tokens, resp.completion_tokens), (3, 2));
        let mut state = StreamState::default();
        let err =
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}});
        assert_eq!(
            state.whole(&err, &on_delta),
            Err(ProviderError::RateLimited { retry_after: None })
        );
    }

    #[test]
    fn errors() {
        let (resp, _) = run(&[(
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
        )]);
        assert!(matches!(resp, Err(ProviderError::Http { status: 529, .. })));
        for bad in [
            "{oops",
            "3",
            r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":4,"delta":{"type":"input_json_delta","partial_json":"x"}}"#,
        ] {
            let (resp, _) = run(&[("", bad)]);
            assert!(
                matches!(resp, Err(ProviderError::Malformed(_))),
                "{bad}: {resp:?}"
            );
        }
    }

    #[test]
    fn body_shape_merges_roles() {
        let req = ChatRequest {
            system: "sys".into(),
            messages: vec![
                ChatMessage::user("hi"),
                ChatMessage::Assistant {
                    text: String::new(),
                    tool_calls: vec![
                        ToolCallRequest {
                            call_id: "c1".into(),
                            tool: "t".into(),
                            arguments: r#"{"a":1}"#.into(),
                        },
                        ToolCallRequest {
                            call_id: "c2".into(),
                            tool: "t".into(),
                            arguments: "not json".into(),
                        },
                    ],
                },
                ChatMessage::Tool {
                    call_id: "c1".into(),
                    name: "t".into(),
                    output: "one".into(),
                },
                ChatMessage::Tool {
                    call_id: "c2".into(),
                    name: "t".into(),
                    output: "two".into(),
                },
                ChatMessage::user("and?"),
            ],
            tools: vec![ToolSpec {
                name: "t".into(),
                description: "d".into(),
                parameters: json!({"type":"object"}),
            }],
            max_tokens: None,
        };
        assert_eq!(
            request_body("m", &req),
            json!({
                "model": "m",
                "max_tokens": 1024,
                "stream": true,
                "system": "sys",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "c1", "name": "t", "input": {"a": 1}},
                        {"type": "tool_use", "id": "c2", "name": "t", "input": {"value": "not json"}},
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "c1", "content": "one"},
                        {"type": "tool_result", "tool_use_id": "c2", "content": "two"},
                        {"type": "text", "text": "and?"},
                    ]},
                ],
                "tools": [{"name": "t", "description": "d", "input_schema": {"type": "object"}}],
            })
        );
    }
}
