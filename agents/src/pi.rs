//! Pi, the default agent: the LLM loop. A turn builds the context (system prompt, pinned
//! workspace files, the branch's history, the message), calls the provider, runs the tool
//! calls it asks for, feeds the results back, and repeats until a final answer or the step
//! limit. Every request, response, tool call and tool result is recorded through the
//! [`TurnRecorder`], so a replay never calls the provider again.
//!
//! The images that came with the turn's message (PNG, JPEG, GIF, WebP; at most
//! [`MAX_IMAGES`], each at most [`MAX_IMAGE_BYTES`]) are read from the media store and sent
//! with it when the model can see them ([`Pi::with_vision`]); an image that is not sent
//! gets a note after the message's text saying why. Earlier messages are sent as text.
//!
//! Until a provider is configured, [`UnconfiguredPi`] answers with what to configure.

use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use clawos_events::{Attachment, LlmRequested, LlmResponded, ToolCalled, ToolReturned};

use crate::provider::image::{redact_images, sniff_mime};
use crate::provider::{image_note, ChatMessage, ChatRequest, ImagePart, Provider, NO_VISION};
use crate::skills::SkillSet;
use crate::{Agent, AgentError, ContextMessage, Summary, TurnInput, TurnOutput, TurnRecorder};

/// What Pi says when no LLM provider is configured.
pub const UNCONFIGURED_REPLY: &str = "Hi, I'm Pi. No language model is configured yet, so I \
can't answer properly. Add a provider to clawos.toml in your state folder, e.g.\n\
  [agents.pi]\n  provider = \"openai\"   # or \"anthropic\", or any OpenAI-compatible server\n  \
base_url = \"http://127.0.0.1:11434/v1\"   # Ollama, vLLM, llama.cpp...\n  model = \"llama3.2\"\n\
then restart the Gateway. `clawos doctor` shows what is missing.";

/// Pi's system prompt: short on purpose, the user pays for every token of it.
pub const SYSTEM_PROMPT: &str = "You are Pi, a personal assistant running on the user's own \
machine. Be brief and concrete. Use tools when they help; never invent tool results.";

/// Workspace files pinned into every context when present.
pub const PINNED_FILES: &[&str] = &["AGENTS.md"];
/// Most bytes of pinned files.
pub const MAX_PINNED: usize = 8 * 1024;

/// Most images sent with one message; the others get a note.
pub const MAX_IMAGES: usize = 4;
/// Largest image sent, in bytes (5 MiB, Anthropic's limit); a larger one gets a note.
pub const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;

/// Whether an attachment is meant as an image: its MIME type is `image/*`, or it has
/// none (or a generic one) and its name ends in `.png`, `.jpg`, `.jpeg`, `.gif` or `.webp`.
fn looks_like_image(attachment: &Attachment) -> bool {
    let mime = attachment
        .mime
        .as_deref()
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty() && m != "application/octet-stream");
    match mime {
        Some(mime) => mime.starts_with("image/"),
        None => Path::new(&attachment.name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .is_some_and(|e| matches!(e.as_str(), "png" | "jpg" | "jpeg" | "gif" | "webp")),
    }
}

/// A history as provider messages.
fn to_chat(history: &[ContextMessage]) -> Vec<ChatMessage> {
    history
        .iter()
        .map(|m| {
            if m.role == "assistant" {
                ChatMessage::Assistant {
                    text: m.text.clone(),
                    tool_calls: vec![],
                }
            } else {
                ChatMessage::user(m.text.clone())
            }
        })
        .collect()
}

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
            attachments: vec![],
        })
    }
}

/// Pi whose model, found in the models folder, could not be loaded: it says why instead
/// of keeping the Gateway from starting.
pub struct UnloadablePi {
    /// The model file.
    pub model: PathBuf,
    /// Why it did not load.
    pub reason: String,
}

#[async_trait]
impl Agent for UnloadablePi {
    fn name(&self) -> &str {
        "pi"
    }
    async fn run_turn(&self, _: TurnInput, _: &dyn TurnRecorder) -> Result<TurnOutput, AgentError> {
        Ok(TurnOutput {
            reply: format!(
                "Hi, I'm Pi. I found the model {} but could not load it: {}. Replace it \
                 (`clawos models pull smollm2` gets one known to work here) or configure a \
                 provider in clawos.toml.",
                self.model.display(),
                self.reason
            ),
            steps: 0,
            attachments: vec![],
        })
    }
}

/// Pi with a provider and skills.
pub struct Pi {
    name: String,
    provider: Box<dyn Provider>,
    skills: SkillSet,
    workspace: PathBuf,
    max_steps: u32,
    max_tokens: Option<u32>,
    system: String,
    vision: bool,
}

impl Pi {
    /// Whether the model can see images (default true). With `false`, no image is sent:
    /// each image of a message keeps its `[attached: ...]` line and gets a note that the
    /// model cannot see images. Images are never sent through a provider that cannot
    /// take them (the local GGUF provider), whatever this says.
    pub fn with_vision(mut self, vision: bool) -> Self {
        self.vision = vision;
        self
    }

    /// Use `prompt` instead of [`SYSTEM_PROMPT`] (an agent's `system_prompt`).
    pub fn with_system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system = prompt.into();
        self
    }

    /// Cap every answer at `max_tokens`.
    pub fn with_max_tokens(mut self, max_tokens: Option<u32>) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// A Pi named `name`.
    pub fn new(
        name: impl Into<String>,
        provider: Box<dyn Provider>,
        skills: SkillSet,
        workspace: PathBuf,
        max_steps: u32,
    ) -> Self {
        Pi {
            name: name.into(),
            provider,
            skills,
            workspace,
            max_steps: max_steps.max(1),
            max_tokens: None,
            system: SYSTEM_PROMPT.to_string(),
            vision: true,
        }
    }

    /// The system prompt with the pinned workspace files appended.
    pub fn system_prompt(&self) -> String {
        let mut s = self.system.clone();
        for f in PINNED_FILES {
            if let Ok(text) = std::fs::read_to_string(self.workspace.join(f)) {
                s.push_str(&format!("\n\n# {f}\n"));
                s.push_str(&crate::skills::cap(text, MAX_PINNED));
            }
        }
        s
    }

    /// The first request of a turn, text only (used by the prompt-size benchmark);
    /// [`Agent::run_turn`] adds the message's images to it ([`Pi::images`]).
    pub fn first_request(&self, input: &TurnInput) -> ChatRequest {
        let mut system = self.system_prompt();
        if let Some(summary) = &input.summary {
            system.push_str("\n\n# Earlier in this conversation (summary)\n");
            system.push_str(summary);
        }
        let mut messages = to_chat(&input.history);
        messages.push(ChatMessage::user(input.message.clone()));
        ChatRequest {
            system,
            messages,
            tools: self.skills.specs(),
            max_tokens: self.max_tokens,
        }
    }

    /// The images of `attachments` to send with their message, and the notes (one line
    /// each, to append to the message's text) for those that are not sent: the model
    /// cannot see images, more than [`MAX_IMAGES`], above [`MAX_IMAGE_BYTES`], bytes
    /// missing or damaged in the media store, or not a PNG, JPEG, GIF or WebP image.
    /// Attachments that are not images, and images whose bytes were not kept (their line
    /// says so already), are left alone. Never fails.
    pub async fn images(
        &self,
        attachments: &[Attachment],
        recorder: &dyn TurnRecorder,
    ) -> (Vec<ImagePart>, String) {
        let vision = self.vision && self.provider.accepts_images();
        let mut images = Vec::new();
        let mut notes = String::new();
        let too_large =
            |bytes: u64| format!("{bytes} bytes is above the {MAX_IMAGE_BYTES}-byte cap on images");
        for attachment in attachments.iter().filter(|a| looks_like_image(a)) {
            if attachment.blake3.is_none() {
                continue;
            }
            let reason = if !vision {
                NO_VISION.to_string()
            } else if images.len() >= MAX_IMAGES {
                format!("at most {MAX_IMAGES} images are sent with a message")
            } else if attachment.size > MAX_IMAGE_BYTES {
                too_large(attachment.size)
            } else {
                match recorder.load_media(attachment).await {
                    Err(e) => {
                        tracing::warn!(agent = %self.name, image = %attachment.name,
                            error = %e, "an image could not be read from the media store");
                        "its bytes could not be read from the media store".to_string()
                    }
                    Ok(data) if data.len() as u64 > MAX_IMAGE_BYTES => too_large(data.len() as u64),
                    Ok(data) => match sniff_mime(&data) {
                        Some(mime) => {
                            images.push(ImagePart::new(attachment.name.clone(), mime, data));
                            continue;
                        }
                        None => "it is not a PNG, JPEG, GIF or WebP image".to_string(),
                    },
                }
            };
            notes.push_str(&image_note(&attachment.name, &reason));
        }
        (images, notes)
    }

    /// Record `req` as sent (`LlmRequested`): its body with each image's base64 replaced
    /// by a placeholder naming its blake3 hash and size (the bytes are in the media store
    /// already); `request_bytes` is the size of the body really sent.
    async fn record_request(
        &self,
        turn_id: uuid::Uuid,
        req: &ChatRequest,
        tools: &[String],
        recorder: &dyn TurnRecorder,
    ) -> Result<u64, AgentError> {
        let mut body = self.provider.request_body(req);
        let sent = body.to_string();
        let request_bytes = sent.len() as u64;
        let request = if req.has_images() {
            redact_images(&mut body, req.images());
            body.to_string()
        } else {
            sent
        };
        recorder
            .record(
                LlmRequested {
                    turn_id,
                    provider: self.provider.name().to_string(),
                    model: self.provider.model().to_string(),
                    request_bytes,
                    request,
                    tools: tools.to_vec(),
                }
                .into(),
            )
            .await
    }

    /// The provider's JSON body for a request.
    pub fn request_body(&self, req: &ChatRequest) -> serde_json::Value {
        self.provider.request_body(req)
    }
}

/// What Pi is asked when a branch is compacted.
pub const SUMMARY_PROMPT: &str = "Summarise the conversation so far in a few sentences for \
your own later reference: keep facts about the user, decisions and open tasks.";

#[async_trait]
impl Agent for Pi {
    fn name(&self) -> &str {
        &self.name
    }

    async fn summarize(&self, history: &[ContextMessage]) -> Result<Summary, AgentError> {
        let mut messages = to_chat(history);
        messages.push(ChatMessage::user(SUMMARY_PROMPT));
        let req = ChatRequest {
            system: self.system.clone(),
            messages,
            tools: vec![],
            max_tokens: Some(512),
        };
        let resp = self
            .provider
            .chat(&req, &|_: &str| {})
            .await
            .map_err(|e| AgentError::Provider(e.to_string()))?;
        Ok(Summary {
            text: resp.content,
            model: resp.model,
        })
    }

    async fn run_turn(
        &self,
        input: TurnInput,
        recorder: &dyn TurnRecorder,
    ) -> Result<TurnOutput, AgentError> {
        let turn_id = input.turn_id;
        let mut req = self.first_request(&input);
        let (images, notes) = self.images(&input.attachments, recorder).await;
        if let Some(ChatMessage::User { text, images: sent }) = req.messages.last_mut() {
            text.push_str(&notes);
            *sent = images;
        }
        let tools = self.skills.names();
        let mut produced = Vec::new();
        let on_delta = |delta: &str| recorder.delta(delta);
        for step in 1..=self.max_steps {
            self.record_request(turn_id, &req, &tools, recorder).await?;
            let mut started = Instant::now();
            let resp = match self.provider.chat(&req, &on_delta).await {
                // A model that cannot see images (a text-only model behind an
                // OpenAI-compatible server): ask once more, with notes instead of the
                // images, for this step and the rest of the turn.
                Err(e) if req.has_images() && e.rejects_images() => {
                    tracing::warn!(agent = %self.name, error = %e,
                        "the model refused the images; asking again without them");
                    let without = req.without_images().into_owned();
                    req = without;
                    self.record_request(turn_id, &req, &tools, recorder).await?;
                    started = Instant::now();
                    self.provider.chat(&req, &on_delta).await
                }
                other => other,
            }
            .map_err(|e| AgentError::Provider(e.to_string()))?;
            recorder
                .record(
                    LlmResponded {
                        turn_id,
                        content: resp.content.clone(),
                        tool_calls: resp.tool_calls.clone(),
                        prompt_tokens: resp.prompt_tokens,
                        completion_tokens: resp.completion_tokens,
                        latency_ms: started.elapsed().as_millis() as u64,
                    }
                    .into(),
                )
                .await?;
            if resp.tool_calls.is_empty() {
                return Ok(TurnOutput {
                    reply: resp.content,
                    steps: step,
                    attachments: produced,
                });
            }
            req.messages.push(ChatMessage::Assistant {
                text: resp.content.clone(),
                tool_calls: resp.tool_calls.clone(),
            });
            for call in &resp.tool_calls {
                recorder
                    .record(
                        ToolCalled {
                            turn_id,
                            call_id: call.call_id.clone(),
                            tool: call.tool.clone(),
                            arguments: call.arguments.clone(),
                        }
                        .into(),
                    )
                    .await?;
                let started = Instant::now();
                let ctx = crate::skills::SkillContext {
                    session_id: &input.session_id,
                    turn_id,
                    recorder,
                };
                let out = self.skills.call(&ctx, &call.tool, &call.arguments).await;
                recorder
                    .record(
                        ToolReturned {
                            turn_id,
                            call_id: call.call_id.clone(),
                            output: out.output.clone(),
                            exit_status: out.exit_status,
                            duration_ms: started.elapsed().as_millis() as u64,
                        }
                        .into(),
                    )
                    .await?;
                produced.extend(out.attachments);
                req.messages.push(ChatMessage::Tool {
                    call_id: call.call_id.clone(),
                    name: call.tool.clone(),
                    output: out.output,
                });
            }
        }
        Err(AgentError::StepLimit(self.max_steps))
    }
}
