//! How to reach a provider: [`ProviderKind`] (the wire protocol) and [`ProviderConfig`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
