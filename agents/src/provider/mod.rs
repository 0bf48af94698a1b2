//! LLM providers: the [`Provider`] trait Pi talks to, and its implementations.
//!
//! # Layout
//! - this file: the modules, the re-exports, and [`build`] / [`build_chain`].
//! - `chat`: the provider-neutral request/response types ([`ChatRequest`], [`ChatMessage`],
//!   [`ToolSpec`], [`ChatResponse`]) and the [`Provider`] trait.
//! - [`image`]: [`ImagePart`], an image sent with a user message (OpenAI: an `image_url`
//!   part with a data URL; Anthropic: an `image` block with base64), and the placeholder
//!   the log records instead of its bytes.
//! - `error`: [`ProviderError`]; `config`: [`ProviderKind`], [`ProviderConfig`].
//! - the HTTP providers, one [`HttpProvider`] per dialect: `http_provider` (the request,
//!   retries and exchange every dialect shares), `exchange` (one request and its answer
//!   folded by the dialect's `AnswerFold`), `retry` (per-attempt timeout, backoff,
//!   `Retry-After`), `sse` (the event-stream parser), `http` (client, URLs, error
//!   statuses).
//! - [`openai`]: OpenAI-compatible Chat Completions (OpenAI, Ollama, vLLM, llama.cpp).
//! - [`anthropic`]: Anthropic Messages.
//! - [`local`]: a GGUF model run in-process.
//! - [`failover`]: a chain of providers tried in order.
//!
//! Every call streams (`stream: true`); a server that answers with a plain JSON body
//! instead is accepted too. One attempt, including the whole streamed body, is bounded
//! by [`ProviderConfig::timeout`]; retryable failures ([`ProviderError::retryable`]) are
//! retried [`ProviderConfig::retries`] times with exponential backoff.
//!
//! The submodules use each other, never this file, so the module graph stays acyclic.
//!
//! **Architecture Invariant:** providers never touch the log. What they send is
//! observable through [`Provider::request_body`] and what they got back is the
//! [`ChatResponse`]; the agent records both (`LlmRequested` / `LlmResponded`).

pub mod anthropic;
mod chat;
mod config;
mod error;
mod exchange;
pub mod failover;
pub(crate) mod http;
mod http_provider;
pub mod image;
pub mod local;
pub mod local_format;
#[cfg(test)]
mod local_tests;
pub mod openai;
pub(crate) mod retry;
mod sse;

pub use anthropic::Anthropic;
pub use chat::{image_note, ChatMessage, ChatRequest, ChatResponse, Provider, ToolSpec, NO_VISION};
pub use config::{ProviderConfig, ProviderKind, UnknownProviderKind};
pub use error::ProviderError;
pub use failover::Failover;
pub use http_provider::HttpProvider;
pub use image::ImagePart;
pub use openai::OpenAi;

/// Build the provider `config` describes.
pub fn build(config: &ProviderConfig) -> Box<dyn Provider> {
    match config.kind {
        ProviderKind::OpenAi => Box::new(OpenAi::new(config.clone())),
        ProviderKind::Anthropic => Box::new(Anthropic::new(config.clone())),
    }
}

/// Build one provider per config; more than one become a [`Failover`] chain in order.
/// An empty slice gives an empty chain, whose every call fails with `AllFailed([])`.
pub fn build_chain(configs: &[ProviderConfig]) -> Box<dyn Provider> {
    match configs {
        [one] => build(one),
        many => Box::new(Failover::new(many.iter().map(build).collect())),
    }
}
