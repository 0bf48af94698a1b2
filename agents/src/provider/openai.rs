//! OpenAI-compatible Chat Completions: `POST {base_url}/chat/completions`.
//!
//! Speaks the dialect OpenAI, Ollama (`/v1`), vLLM and the llama.cpp server share:
//! `stream: true` with `stream_options.include_usage`, SSE `data: {...}` chunks ending with
//! `data: [DONE]`, text in `choices[0].delta.content`, tool calls streamed as
//! `choices[0].delta.tool_calls` fragments that are assembled by `index`, and the usage in
//! a last chunk with empty `choices`. A server that ignores `stream` and answers with one
//! JSON body is understood too.

use std::collections::BTreeMap;

use clawos_events::ToolCallRequest;
use serde_json::{json, Value};

use super::chat::{ChatMessage, ChatRequest, ChatResponse};
use super::error::{excerpt, ProviderError};
use super::exchange::{json_u32, push_text, AnswerFold};
use super::http::join_url;
use super::http_provider::{Dialect, HttpProvider};
use super::sse::SseEvent;

/// The provider name.
pub const NAME: &str = "openai";

/// An OpenAI-compatible Chat Completions provider.
pub type OpenAi = HttpProvider<OpenAiChat>;

/// The OpenAI-compatible Chat Completions dialect (the type parameter of [`OpenAi`]).
#[derive(Debug)]
pub enum OpenAiChat {}

impl Dialect for OpenAiChat {
    const NAME: &'static str = NAME;
    type Fold = StreamState;

    fn url(base_url: &str) -> String {
        url(base_url)
    }

    /// `Authorization: Bearer KEY`.
    fn headers(request: reqwest::RequestBuilder, api_key: Option<&str>) -> reqwest::RequestBuilder {
        match api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    fn request_body(model: &str, req: &ChatRequest) -> Value {
        request_body(model, req)
    }
}

/// Where requests go: `{base_url}/chat/completions`.
pub fn url(base_url: &str) -> String {
    join_url(base_url, "/chat/completions")
}

/// The Chat Completions body for `req` sent to `model`.
///
/// A user message with images has a list of parts as its content (its text, then one
/// `image_url` part per image, a `data:` URL with the base64); every other message's
/// content is a plain string.
pub fn request_body(model: &str, req: &ChatRequest) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({ "role": "system", "content": req.system }));
    }
    for message in &req.messages {
        messages.push(match message {
            ChatMessage::User { text, images } if images.is_empty() => {
                json!({ "role": "user", "content": text })
            }
            ChatMessage::User { text, images } => {
                let mut parts = Vec::with_capacity(images.len() + 1);
                if !text.is_empty() {
                    parts.push(json!({ "type": "text", "text": text }));
                }
                parts.extend(images.iter().map(|image| {
                    json!({ "type": "image_url", "image_url": { "url": image.data_url() } })
                }));
                json!({ "role": "user", "content": parts })
            }
            ChatMessage::Assistant { text, tool_calls } if tool_calls.is_empty() => {
                json!({ "role": "assistant", "content": text })
            }
            ChatMessage::Assistant { text, tool_calls } => json!({
                "role": "assistant",
                "content": text,
                "tool_calls": tool_calls.iter().map(|call| json!({
                    "id": call.call_id,
                    "type": "function",
                    "function": { "name": call.tool, "arguments": call.arguments },
                })).collect::<Vec<_>>(),
            }),
            ChatMessage::Tool {
                call_id, output, ..
            } => json!({ "role": "tool", "tool_call_id": call_id, "content": output }),
        });
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                })
            })
            .collect();
    }
    if let Some(max_tokens) = req.max_tokens {
        body["max_tokens"] = json!(max_tokens);
    }
    body
}

/// A tool call being assembled from fragments.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// What the chunks of one streamed answer have said so far.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    content: String,
    calls: BTreeMap<u64, PartialCall>,
    prompt_tokens: u32,
    completion_tokens: u32,
    /// A choice carried a `finish_reason`.
    finished: bool,
    /// `[DONE]` arrived.
    done: bool,
}

impl AnswerFold for StreamState {
    const STREAM_END: &'static str = "[DONE]";

    /// Apply a whole (non-streamed) `chat.completion` body.
    fn whole(
        &mut self,
        body: &Value,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), ProviderError> {
        if let Some(error) = body.get("error") {
            return Err(embedded_error(error));
        }
        let Some(choice) = first_choice(body) else {
            return Err(ProviderError::Malformed(format!(
                "response has no choices: {}",
                excerpt(&body.to_string())
            )));
        };
        let message = choice.get("message").ok_or_else(|| {
            ProviderError::Malformed("response choice has no message".to_string())
        })?;
        if let Some(text) = message.get("content").and_then(Value::as_str) {
            push_text(&mut self.content, text, on_delta);
        }
        if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
            for (position, call) in calls.iter().enumerate() {
                let mut call = call.clone();
                if let Some(obj) = call.as_object_mut() {
                    obj.insert("index".into(), json!(position));
                }
                self.call_fragment(position, &call)?;
            }
        }
        self.usage(body.get("usage"));
        self.finished = true;
        Ok(())
    }

    fn event(
        &mut self,
        event: &SseEvent,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<bool, ProviderError> {
        self.data(&event.data, on_delta)?;
        Ok(self.done)
    }

    fn finished(&self) -> bool {
        self.finished
    }

    fn into_response(self, model: &str) -> ChatResponse {
        ChatResponse {
            content: self.content,
            tool_calls: self
                .calls
                .into_iter()
                .map(|(index, call)| ToolCallRequest {
                    call_id: if call.id.is_empty() {
                        format!("call_{index}")
                    } else {
                        call.id
                    },
                    tool: call.name,
                    arguments: if call.arguments.trim().is_empty() {
                        "{}".to_string()
                    } else {
                        call.arguments
                    },
                })
                .collect(),
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            model: model.to_string(),
            provider: NAME.to_string(),
        }
    }
}

impl StreamState {
    /// Apply one `data:` payload.
    fn data(
        &mut self,
        data: &str,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), ProviderError> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            ProviderError::Malformed(format!("stream chunk {:?}: {e}", excerpt(data)))
        })?;
        self.chunk(&chunk, on_delta)
    }

    /// Apply one parsed `chat.completion.chunk`.
    fn chunk(
        &mut self,
        chunk: &Value,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), ProviderError> {
        if !chunk.is_object() {
            return Err(ProviderError::Malformed(format!(
                "stream chunk is not an object: {}",
                excerpt(&chunk.to_string())
            )));
        }
        if let Some(error) = chunk.get("error") {
            return Err(embedded_error(error));
        }
        self.usage(chunk.get("usage"));
        let Some(choice) = first_choice(chunk) else {
            return Ok(());
        };
        if let Some(delta) = choice.get("delta") {
            if let Some(text) = delta.get("content").and_then(Value::as_str) {
                push_text(&mut self.content, text, on_delta);
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for (position, call) in calls.iter().enumerate() {
                    self.call_fragment(position, call)?;
                }
            }
        }
        if choice.get("finish_reason").is_some_and(|r| !r.is_null()) {
            self.finished = true;
        }
        Ok(())
    }

    /// Merge one `tool_calls` fragment into the call with its `index`.
    fn call_fragment(&mut self, position: usize, call: &Value) -> Result<(), ProviderError> {
        if !call.is_object() {
            return Err(ProviderError::Malformed(format!(
                "tool call fragment is not an object: {}",
                excerpt(&call.to_string())
            )));
        }
        let index = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position as u64);
        let entry = self.calls.entry(index).or_default();
        if let Some(id) = call.get("id").and_then(Value::as_str) {
            if !id.is_empty() {
                entry.id = id.to_string();
            }
        }
        if let Some(function) = call.get("function") {
            if let Some(name) = function.get("name").and_then(Value::as_str) {
                if entry.name.is_empty() {
                    entry.name = name.to_string();
                }
            }
            match function.get("arguments") {
                Some(Value::String(fragment)) => entry.arguments.push_str(fragment),
                Some(Value::Null) | None => {}
                // Some servers send the arguments as an object, whole.
                Some(other) => entry.arguments = other.to_string(),
            }
        }
        Ok(())
    }

    /// Take token counts from a `usage` object (the latest report wins).
    fn usage(&mut self, usage: Option<&Value>) {
        let Some(usage) = usage.filter(|u| u.is_object()) else {
            return;
        };
        let prompt = json_u32(usage.get("prompt_tokens"));
        let completion = json_u32(usage.get("completion_tokens"));
        if prompt > 0 {
            self.prompt_tokens = prompt;
        }
        if completion > 0 {
            self.completion_tokens = completion;
        }
    }
}

/// The choice with index 0 (or the first one).
fn first_choice(body: &Value) -> Option<&Value> {
    let choices = body.get("choices")?.as_array()?;
    choices
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64) == Some(0))
        .or_else(|| choices.first())
}

/// An `{"error": {...}}` object inside a 200 answer.
fn embedded_error(error: &Value) -> ProviderError {
    let status = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(500);
    if status == 429 {
        return ProviderError::RateLimited { retry_after: None };
    }
    ProviderError::http(status, &error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn run(events: &[&str]) -> (Result<ChatResponse, ProviderError>, Vec<String>) {
        let deltas = Mutex::new(Vec::new());
        let on_delta = |d: &str| deltas.lock().expect("lock").push(d.to_string());
        let mut state = StreamState::default();
        for event in events {
            if let Err(e) = state.data(event, &on_delta) {
                return (Err(e), deltas.into_inner().expect("lock"));
            }
        }
        (
            Ok(state.into_response("m")),
            deltas.into_inner().expect("lock"),
        )
    }

    #[test]
    fn interleaved_tool_calls_assemble_by_index() {
        let (resp, deltas) = run(&[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Let me "}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"look."}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"read","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","type":"function","function":{"name":"ls","arguments":"{\"p"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"path\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\":1}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"x\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7}}"#,
            "[DONE]",
        ]);
        let resp = resp.expect("ok");
        assert_eq!(deltas, vec!["Let me ", "look."]);
        assert_eq!(resp.content, "Let me look.");
        assert_eq!(
            resp.tool_calls,
            vec![
                ToolCallRequest {
                    call_id: "a".into(),
                    tool: "read".into(),
                    arguments: r#"{"path":"x"}"#.into()
                },
                ToolCallRequest {
                    call_id: "b".into(),
                    tool: "ls".into(),
                    arguments: r#"{"p":1}"#.into()
                },
            ]
        );
        assert_eq!((resp.prompt_tokens, resp.completion_tokens), (12, 7));
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for bad in [
            "{oops",
            "[1,2]",
            r#"{"choices":[{"delta":{"tool_calls":[7]}}]}"#,
        ] {
            let (resp, _) = run(&[bad]);
            assert!(
                matches!(resp, Err(ProviderError::Malformed(_))),
                "{bad}: {resp:?}"
            );
        }
    }

    #[test]
    fn whole_json_answer() {
        let body = json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi",
                "tool_calls": [{"id": "x", "type": "function",
                    "function": {"name": "t", "arguments": "{\"a\":1}"}}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        });
        let seen = Mutex::new(String::new());
        let on_delta = |d: &str| seen.lock().expect("lock").push_str(d);
        let mut state = StreamState::default();
        state.whole(&body, &on_delta).expect("ok");
        let resp = state.into_response("m");
        assert_eq!(*seen.lock().expect("lock"), "hi");
        assert_eq!(resp.content, "hi");
        assert_eq!(resp.tool_calls.len(), 1);
        assert_eq!(resp.tool_calls[0].call_id, "x");
        assert_eq!(resp.tool_calls[0].arguments, r#"{"a":1}"#);
        assert_eq!((resp.prompt_tokens, resp.completion_tokens), (3, 2));
        let mut state = StreamState::default();
        assert!(matches!(
            state.whole(&json!({"object": "x"}), &on_delta),
            Err(ProviderError::Malformed(_))
        ));
    }

    #[test]
    fn error_chunk_is_http_error() {
        let (resp, _) = run(&[r#"{"error":{"message":"bad","code":400}}"#]);
        assert!(matches!(resp, Err(ProviderError::Http { status: 400, .. })));
    }

    #[test]
    fn body_shape() {
        let req = ChatRequest {
            system: "sys".into(),
            messages: vec![
                ChatMessage::user("hi"),
                ChatMessage::Assistant {
                    text: String::new(),
                    tool_calls: vec![ToolCallRequest {
                        call_id: "c1".into(),
                        tool: "t".into(),
                        arguments: "{}".into(),
                    }],
                },
                ChatMessage::Tool {
                    call_id: "c1".into(),
                    name: "t".into(),
                    output: "out".into(),
                },
            ],
            tools: vec![crate::provider::ToolSpec {
                name: "t".into(),
                description: "d".into(),
                parameters: json!({"type":"object"}),
            }],
            max_tokens: Some(5),
        };
        let body = request_body("m", &req);
        assert_eq!(
            body,
            json!({
                "model": "m",
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_tokens": 5,
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "", "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "c1", "content": "out"},
                ],
                "tools": [{"type": "function", "function": {"name": "t", "description": "d", "parameters": {"type": "object"}}}],
            })
        );
    }
}
