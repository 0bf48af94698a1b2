//! [`ProviderError`]: why a provider call failed, and which failures are worth retrying.

use std::time::Duration;

/// How much of an error body is kept in [`ProviderError::Http`].
pub(crate) const MAX_ERROR_BODY: usize = 2000;
/// How much of a malformed answer is quoted in [`ProviderError::Malformed`].
pub(crate) const MAX_EXCERPT: usize = 200;

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

    /// Whether this is a server refusing a request for its images: an HTTP 400 whose
    /// error text mentions images or vision (`this model does not support image input`,
    /// `image_url is only supported by certain models`, ...), from this provider or from
    /// one of a failover chain. The request may then be sent again without them.
    pub fn rejects_images(&self) -> bool {
        match self {
            ProviderError::Http { status: 400, body } => mentions_images(body),
            ProviderError::AllFailed(reasons) => reasons.iter().any(|reason| {
                // `provider/model: the model provider answered HTTP 400: BODY` (the
                // model's own name may say `vision`, so only the body counts).
                reason
                    .split_once(" answered HTTP 400: ")
                    .is_some_and(|(_, body)| mentions_images(body))
            }),
            _ => false,
        }
    }

    /// [`ProviderError::Http`] with `body` cut to [`MAX_ERROR_BODY`] bytes.
    pub(crate) fn http(status: u16, body: &str) -> ProviderError {
        ProviderError::Http {
            status,
            body: truncate(body, MAX_ERROR_BODY),
        }
    }
}

/// Whether an error text is about images (`image`, `image_url`, `vision`, `multimodal`).
fn mentions_images(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    ["image", "vision", "multimodal", "multi-modal"]
        .iter()
        .any(|word| text.contains(word))
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

/// The start of a malformed answer, for an error message: at most [`MAX_EXCERPT`] bytes.
pub(crate) fn excerpt(s: &str) -> String {
    truncate(s, MAX_EXCERPT)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn image_refusals() {
        let http = |status, body: &str| ProviderError::Http {
            status,
            body: body.into(),
        };
        assert!(http(
            400,
            r#"{"error":"this model does not support image input"}"#
        )
        .rejects_images());
        assert!(http(
            400,
            "Invalid content type. image_url is only supported by certain models."
        )
        .rejects_images());
        assert!(http(400, "llama3 is not a Vision model").rejects_images());
        assert!(!http(400, "max_tokens is too large").rejects_images());
        assert!(!http(500, "image decoding failed").rejects_images());
        assert!(!ProviderError::Malformed("image".into()).rejects_images());
        let reason = |model: &str, err: ProviderError| format!("openai/{model}: {err}");
        assert!(ProviderError::AllFailed(vec![
            reason("a", http(503, "image busy")),
            reason("b", http(400, "this model does not support image input")),
        ])
        .rejects_images());
        assert!(!ProviderError::AllFailed(vec![
            reason("llama3.2-vision", http(400, "max_tokens is too large")),
            reason("c", http(500, "image decoding failed")),
        ])
        .rejects_images());
    }

    #[test]
    fn bodies_are_cut_at_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h...");
        assert_eq!(truncate("hello", 5), "hello");
        let long = "x".repeat(MAX_ERROR_BODY + 10);
        let ProviderError::Http { body, .. } = ProviderError::http(500, &long) else {
            panic!("an Http error");
        };
        assert_eq!(body.len(), MAX_ERROR_BODY + 3);
    }
}
