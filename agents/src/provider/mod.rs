//! LLM providers: the [`Provider`] trait Pi talks to, and its implementations.
//!
//! # Layout
//! - this file: the provider-neutral request/response types ([`ChatRequest`],
//!   [`ChatMessage`], [`ToolSpec`], [`ChatResponse`]), [`ProviderError`],
//!   [`ProviderConfig`], the [`Provider`] trait and [`build`]; also the shared plumbing
//!   every HTTP provider uses: the per-attempt timeout and retry loop, and an SSE parser.
//! - [`openai`]: OpenAI-compatible Chat Completions (OpenAI, Ollama, vLLM, llama.cpp).
//! - [`anthropic`]: Anthropic Messages.
//! - [`failover`]: a chain of providers tried in order.
//!
//! Every call streams (`stream: true`); a server that answers with a plain JSON body
//! instead is accepted too. One attempt, including the whole streamed body, is bounded
//! by [`ProviderConfig::timeout`]; retryable failures ([`ProviderError::retryable`]) are
//! retried [`ProviderConfig::retries`] times with exponential backoff.
//!
//! **Architecture Invariant:** providers never touch the log. What they send is
//! observable through [`Provider::request_body`] and what they got back is the
//! [`ChatResponse`]; the agent records both (`LlmRequested` / `LlmResponded`).

pub mod anthropic;
pub mod failover;
pub mod local;
pub mod openai;

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use clawos_events::ToolCallRequest;
use serde::{Deserialize, Serialize};

pub use anthropic::Anthropic;
pub use failover::Failover;
pub use openai::OpenAi;

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
    /// [`anthropic::DEFAULT_MAX_TOKENS`]).
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

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The server could not be reached, or the connection broke.
    #[error("could not reach the model provider: {0}")]
    Connect(String),
    /// One attempt (request and whole streamed answer) took longer than this.
    #[error("the model provider did not answer within {0:?}")]
    Timeout(Duration),
    /// The server answered with an error status (or an error event mid-stream).
    #[error("the model provider answered HTTP {status}: {body}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// Response body (truncated).
        body: String,
    },
    /// The server answered 429.
    #[error("the model provider is rate limiting requests{}", match .retry_after {
        Some(d) => format!(" (retry after {d:?})"),
        None => String::new(),
    })]
    RateLimited {
        /// The server's `Retry-After`, when it sent one in seconds.
        retry_after: Option<Duration>,
    },
    /// The server's answer could not be understood.
    #[error("the model provider sent a malformed response: {0}")]
    Malformed(String),
    /// Every provider of a failover chain failed; one reason each, in order.
    #[error("every model provider failed: {}", .0.join("; "))]
    AllFailed(Vec<String>),
}

impl ProviderError {
    /// Whether trying again may help: connection failures, timeouts, 429 and 5xx.
    pub fn retryable(&self) -> bool {
        match self {
            ProviderError::Connect(_)
            | ProviderError::Timeout(_)
            | ProviderError::RateLimited { .. } => true,
            ProviderError::Http { status, .. } => *status >= 500,
            ProviderError::Malformed(_) | ProviderError::AllFailed(_) => false,
        }
    }
}

/// Which wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI-compatible Chat Completions (OpenAI, Ollama, vLLM, llama.cpp server, ...).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl ProviderKind {
    /// The provider's name: `openai` or `anthropic`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider kind name that is neither `openai` nor `anthropic`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {0:?} (expected \"openai\" or \"anthropic\")")]
pub struct UnknownProviderKind(pub String);

impl FromStr for ProviderKind {
    type Err = UnknownProviderKind;

    /// Parses `openai` (also `openai-compatible`, `ollama`, `vllm`, `llamacpp`) or
    /// `anthropic`, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "openai" | "openai-compatible" | "openai_compatible" | "ollama" | "vllm"
            | "llamacpp" | "llama.cpp" => Ok(ProviderKind::OpenAi),
            "anthropic" => Ok(ProviderKind::Anthropic),
            _ => Err(UnknownProviderKind(s.to_string())),
        }
    }
}

/// How to reach one provider.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Wire protocol.
    pub kind: ProviderKind,
    /// Base URL: for OpenAI-compatible servers the part before `/chat/completions`
    /// (e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`); for Anthropic the
    /// part before `/v1/messages` (e.g. `https://api.anthropic.com`).
    pub base_url: String,
    /// Model id sent with every request.
    pub model: String,
    /// API key: sent as `Authorization: Bearer` (OpenAI) or `x-api-key` (Anthropic).
    pub api_key: Option<String>,
    /// Bound on one attempt, from sending the request to the end of the streamed answer.
    pub timeout: Duration,
    /// How many times a retryable failure is retried (0 = one attempt only). A 429 is
    /// retried after its `Retry-After` when that is at most 60 s, and not at all when
    /// it is longer.
    pub retries: u32,
    /// Delay before the first retry; doubled for each further one.
    pub backoff: Duration,
}

impl ProviderConfig {
    /// A config with the default timeout (120 s), 2 retries and 500 ms backoff.
    pub fn new(kind: ProviderKind, base_url: impl Into<String>, model: impl Into<String>) -> Self {
        ProviderConfig {
            kind,
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: Duration::from_secs(120),
            retries: 2,
            backoff: Duration::from_millis(500),
        }
    }
}

/// Never prints the API key.
impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .finish()
    }
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

// ---------------------------------------------------------------------------------------
// Shared plumbing.

/// Longest `Retry-After` we are willing to wait for; a longer one ends the retries.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Cap on the exponential backoff between two attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How much of an error body is kept in [`ProviderError::Http`].
const MAX_ERROR_BODY: usize = 2000;

/// An HTTP client for `config` (no proxy for loopback servers), or why there is none.
pub(crate) fn http_client(config: &ProviderConfig) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().connect_timeout(config.timeout);
    if is_loopback(&config.base_url) {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| error_chain(&e))
}

/// Whether `url` points at this machine.
fn is_loopback(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `base` without trailing slashes, followed by `path`.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// An error and its sources, `: `-separated.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Map a reqwest failure to a [`ProviderError`].
pub(crate) fn map_reqwest(e: reqwest::Error, timeout: Duration) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout(timeout)
    } else if e.is_decode() {
        ProviderError::Malformed(error_chain(&e))
    } else {
        ProviderError::Connect(error_chain(&e))
    }
}

/// Turn a non-success response into an error (reads the body).
pub(crate) async fn status_error(resp: reqwest::Response, timeout: Duration) -> ProviderError {
    let status = resp.status().as_u16();
    if status == 429 {
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        return ProviderError::RateLimited { retry_after };
    }
    let body = match resp.text().await {
        Ok(body) => truncate(&body, MAX_ERROR_BODY),
        Err(e) => return map_reqwest(e, timeout),
    };
    ProviderError::Http { status, body }
}

/// `Retry-After` in (possibly fractional) seconds; HTTP dates are not honoured.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    if secs.is_finite() && secs >= 0.0 {
        Duration::try_from_secs_f64(secs).ok()
    } else {
        None
    }
}

/// At most `max` bytes of `s`, cut at a char boundary.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Whether a response is a plain JSON body rather than an event stream.
pub(crate) fn is_json_body(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"))
}

/// How one dialect folds an answer into a [`ChatResponse`], whether it comes whole (a JSON
/// body) or as a stream of server-sent events.
pub(crate) trait AnswerFold: Default {
    /// What a complete stream ends with, named in the error when a stream stops short.
    const STREAM_END: &'static str;
    /// Fold a whole JSON body.
    fn whole(
        &mut self,
        body: &serde_json::Value,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), ProviderError>;
    /// Fold one event; `true` once the stream's end marker arrived.
    fn event(
        &mut self,
        event: &SseEvent,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<bool, ProviderError>;
    /// Whether what arrived is a whole answer even though the end marker did not.
    fn finished(&self) -> bool {
        false
    }
    /// The answer, for `model`.
    fn into_response(self, model: &str) -> ChatResponse;
}

/// Send one prepared request and fold its answer with `F`: an HTTP error status, a whole
/// JSON body, or an event stream that must reach its end.
pub(crate) async fn exchange<F: AnswerFold>(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    model: &str,
    on_delta: &(dyn Fn(&str) + Send + Sync),
) -> Result<ChatResponse, ProviderError> {
    let resp = request.send().await.map_err(|e| map_reqwest(e, timeout))?;
    if !resp.status().is_success() {
        return Err(status_error(resp, timeout).await);
    }
    let mut fold = F::default();
    if is_json_body(&resp) {
        let bytes = resp.bytes().await.map_err(|e| map_reqwest(e, timeout))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ProviderError::Malformed(format!("response body: {e}")))?;
        fold.whole(&value, on_delta)?;
        return Ok(fold.into_response(model));
    }
    let done = read_sse(resp, timeout, |event| fold.event(&event, on_delta)).await?;
    if !done && !fold.finished() {
        return Err(ProviderError::Connect(format!(
            "the event stream ended before {}",
            F::STREAM_END
        )));
    }
    Ok(fold.into_response(model))
}

/// A `u32` from a JSON number (0 when absent or not a number; saturating).
pub(crate) fn json_u32(v: Option<&serde_json::Value>) -> u32 {
    v.and_then(serde_json::Value::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// The delay before retry number `attempt + 1`, or `None` when `err` says not to retry.
pub(crate) fn retry_delay(
    err: &ProviderError,
    backoff: Duration,
    attempt: u32,
) -> Option<Duration> {
    if let ProviderError::RateLimited {
        retry_after: Some(d),
    } = err
    {
        return (*d <= MAX_RETRY_AFTER).then_some(*d);
    }
    let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
    Some(backoff.saturating_mul(factor).min(MAX_BACKOFF))
}

/// Run `attempt` under `config`'s per-attempt timeout, retrying retryable failures.
pub(crate) async fn with_retries<F, Fut>(
    provider: &str,
    config: &ProviderConfig,
    mut attempt: F,
) -> Result<ChatResponse, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ChatResponse, ProviderError>>,
{
    let mut done = 0u32;
    loop {
        let result = match tokio::time::timeout(config.timeout, attempt()).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::Timeout(config.timeout)),
        };
        let err = match result {
            Ok(response) => return Ok(response),
            Err(err) => err,
        };
        if !err.retryable() || done >= config.retries {
            return Err(err);
        }
        let Some(delay) = retry_delay(&err, config.backoff, done) else {
            return Err(err);
        };
        done += 1;
        tracing::warn!(
            provider,
            model = %config.model,
            error = %err,
            retry = done,
            of = config.retries,
            delay_ms = delay.as_millis() as u64,
            "provider call failed, retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SseEvent {
    /// The `event:` field; empty when the server sent none.
    pub event: String,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
}

/// An incremental `text/event-stream` parser: feed it bytes as they arrive, it returns
/// the events completed so far. Lines may be split anywhere, even inside a UTF-8 char.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl SseParser {
    /// Feed `bytes`; returns the events they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, ProviderError> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            let mut line = &self.buf[start..end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let line = std::str::from_utf8(line)
                .map_err(|e| ProviderError::Malformed(format!("event stream is not UTF-8: {e}")))?
                .to_string();
            start = end + 1;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        self.buf.drain(..start);
        Ok(events)
    }

    /// The stream ended: the event still being assembled, if any.
    pub fn finish(&mut self) -> Result<Option<SseEvent>, ProviderError> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8(rest)
                .map_err(|e| ProviderError::Malformed(format!("event stream is not UTF-8: {e}")))?;
            if let Some(event) = self.line(&line) {
                return Ok(Some(event));
            }
        }
        Ok(self.dispatch())
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.data).join("\n");
        Some(SseEvent { event, data })
    }
}

/// Read `resp`'s body as an event stream, handing each event to `on_event` until it
/// returns `Ok(true)` (done) or the body ends. Returns whether `on_event` said done.
pub(crate) async fn read_sse(
    mut resp: reqwest::Response,
    timeout: Duration,
    mut on_event: impl FnMut(SseEvent) -> Result<bool, ProviderError>,
) -> Result<bool, ProviderError> {
    let mut parser = SseParser::default();
    loop {
        let chunk = resp.chunk().await.map_err(|e| map_reqwest(e, timeout))?;
        let Some(chunk) = chunk else { break };
        for event in parser.feed(&chunk)? {
            if on_event(event)? {
                return Ok(true);
            }
        }
    }
    if let Some(event) = parser.finish()? {
        return on_event(event);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_handles_any_split() {
        let stream = "event: a\r\ndata: {\"x\":\"é\"}\r\n\r\n: comment\n\ndata: one\ndata: two\n\nevent: b\ndata:tail";
        let bytes = stream.as_bytes();
        for step in 1..bytes.len() {
            let mut parser = SseParser::default();
            let mut events = Vec::new();
            for chunk in bytes.chunks(step) {
                events.extend(parser.feed(chunk).expect("valid utf-8"));
            }
            events.extend(parser.finish().expect("valid utf-8"));
            assert_eq!(
                events,
                vec![
                    SseEvent {
                        event: "a".into(),
                        data: "{\"x\":\"é\"}".into()
                    },
                    SseEvent {
                        event: String::new(),
                        data: "one\ntwo".into()
                    },
                    SseEvent {
                        event: "b".into(),
                        data: "tail".into()
                    },
                ],
                "split every {step} bytes"
            );
        }
    }

    #[test]
    fn sse_parser_rejects_invalid_utf8() {
        let mut parser = SseParser::default();
        let err = parser
            .feed(b"data: \xff\xfe\n\n")
            .expect_err("invalid utf-8");
        assert!(matches!(err, ProviderError::Malformed(_)));
    }

    #[test]
    fn retryable_classes() {
        assert!(ProviderError::Connect("x".into()).retryable());
        assert!(ProviderError::Timeout(Duration::from_secs(1)).retryable());
        assert!(ProviderError::RateLimited { retry_after: None }.retryable());
        assert!(ProviderError::Http {
            status: 503,
            body: String::new()
        }
        .retryable());
        assert!(!ProviderError::Http {
            status: 400,
            body: String::new()
        }
        .retryable());
        assert!(!ProviderError::Malformed("x".into()).retryable());
        assert!(!ProviderError::AllFailed(vec![]).retryable());
    }

    #[test]
    fn backoff_doubles_and_retry_after_is_bounded() {
        let b = Duration::from_millis(100);
        let e = ProviderError::Connect("x".into());
        assert_eq!(retry_delay(&e, b, 0), Some(Duration::from_millis(100)));
        assert_eq!(retry_delay(&e, b, 3), Some(Duration::from_millis(800)));
        assert_eq!(retry_delay(&e, b, 40), Some(MAX_BACKOFF));
        let ok = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(retry_delay(&ok, b, 0), Some(Duration::from_secs(2)));
        let too_long = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(retry_delay(&too_long, b, 0), None);
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn config_debug_redacts_the_key() {
        let mut c = ProviderConfig::new(ProviderKind::OpenAi, "http://x", "m");
        c.api_key = Some("sk-secret".into());
        let text = format!("{c:?}");
        assert!(!text.contains("sk-secret"), "{text}");
        assert!(text.contains("redacted"));
    }

    #[test]
    fn kind_parses() {
        assert_eq!("OpenAI".parse(), Ok(ProviderKind::OpenAi));
        assert_eq!("ollama".parse(), Ok(ProviderKind::OpenAi));
        assert_eq!("anthropic".parse(), Ok(ProviderKind::Anthropic));
        assert!("gemini".parse::<ProviderKind>().is_err());
        assert!(is_loopback("http://127.0.0.1:11434/v1"));
        assert!(is_loopback("http://localhost/v1"));
        assert!(!is_loopback("https://api.openai.com/v1"));
    }
}
