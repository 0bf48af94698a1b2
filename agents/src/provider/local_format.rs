//! How a local model is spoken to: the prompt it reads and the tool calls it writes.
//!
//! A GGUF file carries its chat template (`tokenizer.chat_template`, Jinja, as the model's
//! authors wrote it). When a request offers tools and the template knows about tools, the
//! prompt is that template rendered (minijinja, with Python's string methods) over the
//! conversation in the Hugging Face message shape: tools as `{"type": "function",
//! "function": {...}}`, an assistant's calls as `tool_calls`, results as `tool` messages.
//! Otherwise the prompt is ChatML, the format of SmolLM2 and the Qwen family, exactly as
//! before. The model's answer is searched for calls in the form those templates teach:
//! `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`; the text around them is the
//! answer's content.

use clawos_events::ToolCallRequest;
use serde_json::{json, Value};

use super::chat::{ChatMessage, ChatRequest};

/// System prompt used when a request has none (SmolLM2's chat template default).
pub const DEFAULT_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
/// ChatML end-of-turn token.
pub const IM_END: &str = "<|im_end|>";
/// Where a tool call starts in a model's answer.
pub const TOOL_CALL_OPEN: &str = "<tool_call>";
/// Where it ends.
pub const TOOL_CALL_CLOSE: &str = "</tool_call>";

/// A model's prompt format: its own chat template when it has one.
#[derive(Debug, Clone, Default)]
pub struct PromptFormat {
    template: Option<String>,
}

impl PromptFormat {
    /// The format of a model whose GGUF metadata holds `template` (or none).
    pub fn new(template: Option<String>) -> PromptFormat {
        PromptFormat { template }
    }

    /// Whether the model's template offers tools (a model trained for tool calls).
    pub fn knows_tools(&self) -> bool {
        self.template
            .as_deref()
            .is_some_and(|t| t.contains("tools") && t.contains(TOOL_CALL_OPEN))
    }

    /// The prompt for `req`: the model's template when tools are offered and it knows
    /// them, else ChatML. A template that fails to render falls back to ChatML.
    pub fn prompt(&self, req: &ChatRequest) -> String {
        match (&self.template, !req.tools.is_empty() && self.knows_tools()) {
            (Some(template), true) => match render(template, req) {
                Ok(prompt) => prompt,
                Err(e) => {
                    tracing::warn!(error = %e, "the model's chat template did not render; using ChatML");
                    chatml_prompt(req)
                }
            },
            _ => chatml_prompt(req),
        }
    }
}

/// Render a Jinja chat template over `req` as Hugging Face's `apply_chat_template` would,
/// with `add_generation_prompt`.
pub fn render(template: &str, req: &ChatRequest) -> Result<String, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                message,
            ))
        },
    );
    env.add_template("chat", template)?;
    let mut messages = Vec::new();
    if !req.system.trim().is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for m in &req.messages {
        messages.push(match m {
            ChatMessage::User { text, .. } => json!({"role": "user", "content": text}),
            ChatMessage::Assistant { text, tool_calls } => {
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|c| {
                        let arguments: Value = serde_json::from_str(&c.arguments)
                            .unwrap_or_else(|_| Value::String(c.arguments.clone()));
                        json!({"id": c.call_id, "type": "function",
                               "function": {"name": c.tool, "arguments": arguments}})
                    })
                    .collect();
                if calls.is_empty() {
                    json!({"role": "assistant", "content": text})
                } else {
                    json!({"role": "assistant", "content": text, "tool_calls": calls})
                }
            }
            ChatMessage::Tool {
                call_id,
                name,
                output,
            } => json!({"role": "tool", "tool_call_id": call_id, "name": name, "content": output}),
        });
    }
    let tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            json!({"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}})
        })
        .collect();
    env.get_template("chat")?.render(minijinja::context! {
        messages => messages,
        tools => if tools.is_empty() { None } else { Some(tools) },
        add_generation_prompt => true,
        bos_token => "",
        eos_token => IM_END,
    })
}

/// The ChatML prompt for `req` (tools not described; tool results shown as user turns).
pub fn chatml_prompt(req: &ChatRequest) -> String {
    let mut out = String::new();
    let system = if req.system.trim().is_empty() {
        DEFAULT_SYSTEM
    } else {
        req.system.as_str()
    };
    turn(&mut out, "system", system);
    for m in &req.messages {
        match m {
            ChatMessage::User { text, .. } => turn(&mut out, "user", text),
            ChatMessage::Assistant { text, .. } => turn(&mut out, "assistant", text),
            ChatMessage::Tool { name, output, .. } => turn(
                &mut out,
                "user",
                &format!("Result of tool {name}:\n{output}"),
            ),
        }
    }
    out.push_str("<|im_start|>assistant\n");
    out
}

fn turn(out: &mut String, role: &str, text: &str) {
    out.push_str("<|im_start|>");
    out.push_str(role);
    out.push('\n');
    out.push_str(text);
    out.push_str(IM_END);
    out.push('\n');
}

/// Split a model's answer into its text and the tool calls it made
/// (`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, one or more). A block that
/// is not such JSON stays in the text, as the model wrote it. Call ids are `call_N`.
pub fn parse_tool_calls(answer: &str) -> (String, Vec<ToolCallRequest>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut rest = answer;
    while let Some(start) = rest.find(TOOL_CALL_OPEN) {
        let after = &rest[start + TOOL_CALL_OPEN.len()..];
        // An unclosed block at the end (the model stopped): the rest is the call.
        let (inside, next) = match after.find(TOOL_CALL_CLOSE) {
            Some(end) => (&after[..end], &after[end + TOOL_CALL_CLOSE.len()..]),
            None => (after, ""),
        };
        text.push_str(&rest[..start]);
        match call_of(inside, calls.len()) {
            Some(call) => calls.push(call),
            None => {
                text.push_str(TOOL_CALL_OPEN);
                text.push_str(inside);
                text.push_str(TOOL_CALL_CLOSE);
            }
        }
        rest = next;
    }
    text.push_str(rest);
    (text.trim().to_string(), calls)
}

fn call_of(inside: &str, n: usize) -> Option<ToolCallRequest> {
    let v: Value = serde_json::from_str(inside.trim()).ok()?;
    let name = v.get("name")?.as_str()?.to_string();
    let arguments = match v.get("arguments").or_else(|| v.get("parameters")) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "{}".to_string(),
    };
    Some(ToolCallRequest {
        call_id: format!("call_{n}"),
        tool: name,
        arguments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::chat::ToolSpec;

    /// A chat template in the style of the Qwen2.5 family's (Hermes tool calls): tools in
    /// the system turn, calls in `<tool_call>` tags, results in `<tool_response>` tags.
    const HERMES_TEMPLATE: &str = r#"{%- if tools %}<|im_start|>system
{{ messages[0]['content'] if messages[0]['role'] == 'system' else 'You are a helpful assistant.' }}

# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'user' or (message.role == 'system' and not tools) %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% elif message.role == 'assistant' %}<|im_start|>assistant
{{ message.content }}
{%- for tc in message.tool_calls or [] %}
<tool_call>
{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content.strip() }}
</tool_response><|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"#;

    fn request(messages: Vec<ChatMessage>) -> ChatRequest {
        ChatRequest {
            system: "Be brief.".into(),
            messages,
            tools: vec![ToolSpec {
                name: "fs".into(),
                description: "Read and write files in the workspace".into(),
                parameters: json!({"type": "object", "properties": {"op": {"type": "string"}}}),
            }],
            max_tokens: None,
        }
    }

    #[test]
    fn a_tool_call_goes_round_trip_through_the_template_and_the_parser() {
        let format = PromptFormat::new(Some(HERMES_TEMPLATE.into()));
        assert!(format.knows_tools());
        let first = request(vec![ChatMessage::user("what is in notes.txt?")]);
        let prompt = format.prompt(&first);
        assert!(
            prompt.starts_with("<|im_start|>system\nBe brief.\n\n# Tools"),
            "{prompt}"
        );
        assert!(
            prompt.contains(r#""name":"fs""#),
            "the tool is described: {prompt}"
        );
        assert!(
            prompt.ends_with(
                "<|im_start|>user\nwhat is in notes.txt?<|im_end|>\n<|im_start|>assistant\n"
            ),
            "{prompt}"
        );

        // What the model writes (scripted): a sentence and a call.
        let answer = "Let me look.\n<tool_call>\n{\"name\": \"fs\", \"arguments\": {\"op\": \"read\", \"path\": \"notes.txt\"}}\n</tool_call>";
        let (text, calls) = parse_tool_calls(answer);
        assert_eq!(text, "Let me look.");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].tool, "fs");
        let args: Value = serde_json::from_str(&calls[0].arguments).unwrap();
        assert_eq!(args, json!({"op": "read", "path": "notes.txt"}));

        // The next prompt carries the call and its result as the template says.
        let second = request(vec![
            ChatMessage::user("what is in notes.txt?"),
            ChatMessage::Assistant {
                text,
                tool_calls: calls.clone(),
            },
            ChatMessage::Tool {
                call_id: calls[0].call_id.clone(),
                name: "fs".into(),
                output: "buy milk\n".into(),
            },
        ]);
        let prompt = format.prompt(&second);
        assert!(prompt.contains("<tool_call>\n{\"name\": \"fs\", \"arguments\": {\"op\":\"read\",\"path\":\"notes.txt\"}}\n</tool_call><|im_end|>"), "{prompt}");
        assert!(
            prompt.contains(
                "<|im_start|>user\n<tool_response>\nbuy milk\n</tool_response><|im_end|>"
            ),
            "{prompt}"
        );
        assert!(prompt.ends_with("<|im_start|>assistant\n"));
    }

    #[test]
    fn without_tools_or_a_template_the_prompt_is_chatml_as_before() {
        let format = PromptFormat::new(Some(HERMES_TEMPLATE.into()));
        let mut req = request(vec![ChatMessage::user("hi")]);
        req.tools.clear();
        assert_eq!(format.prompt(&req), chatml_prompt(&req));
        let plain = PromptFormat::new(None);
        let req = request(vec![ChatMessage::user("hi")]);
        assert!(!plain.knows_tools());
        assert_eq!(plain.prompt(&req), chatml_prompt(&req));
        // A template that raises falls back to ChatML rather than failing the turn.
        let broken =
            PromptFormat::new(Some("{{ raise_exception('no') }} tools <tool_call>".into()));
        assert_eq!(broken.prompt(&req), chatml_prompt(&req));
    }

    #[test]
    fn calls_that_are_not_json_stay_text_and_an_unclosed_call_counts() {
        let (text, calls) = parse_tool_calls("a <tool_call>not json</tool_call> b");
        assert!(calls.is_empty());
        assert_eq!(text, "a <tool_call>not json</tool_call> b");
        let (text, calls) = parse_tool_calls(
            "<tool_call>{\"name\": \"memory\", \"arguments\": \"{\\\"op\\\":\\\"list\\\"}\"}</tool_call><tool_call>{\"name\": \"cron\", \"arguments\": {}}",
        );
        assert_eq!(text, "");
        assert_eq!(
            calls.iter().map(|c| c.tool.as_str()).collect::<Vec<_>>(),
            ["memory", "cron"]
        );
        assert_eq!(calls[0].arguments, "{\"op\":\"list\"}");
        assert_eq!(calls[1].call_id, "call_1");
    }
}
