//! [`HttpProvider`]: a [`Provider`] over HTTP for any [`Dialect`]. Everything the HTTP
//! chat APIs share lives here once: the client, the request (`POST`, JSON body, `Accept:
//! text/event-stream`), the per-attempt timeout and retries, and the exchange; a dialect
//! only says where requests go, how they authenticate, the body's shape and how its
//! answer is folded.

use std::marker::PhantomData;

use async_trait::async_trait;
use serde_json::Value;

use super::chat::{ChatRequest, ChatResponse, Provider};
use super::config::ProviderConfig;
use super::error::ProviderError;
use super::exchange::{exchange, AnswerFold};
use super::http::http_client;
use super::retry::with_retries;

/// One HTTP chat API: what differs between OpenAI's Chat Completions and Anthropic's
/// Messages.
pub(crate) trait Dialect {
    /// The provider name (`openai`, `anthropic`).
    const NAME: &'static str;
    /// How this dialect's answers are folded.
    type Fold: AnswerFold;
    /// Where requests go, for this base URL.
    fn url(base_url: &str) -> String;
    /// `request` with this dialect's headers: its API version, if any, and `api_key`.
    fn headers(request: reqwest::RequestBuilder, api_key: Option<&str>) -> reqwest::RequestBuilder;
    /// The exact JSON body for `req` sent to `model`.
    fn request_body(model: &str, req: &ChatRequest) -> Value;
}

/// A chat provider speaking the HTTP dialect `D` ([`OpenAi`](super::OpenAi),
/// [`Anthropic`](super::Anthropic)).
///
/// Every call streams; each attempt, from sending the request to the end of the answer,
/// is bounded by [`ProviderConfig::timeout`], and retryable failures are retried
/// [`ProviderConfig::retries`] times with backoff.
pub struct HttpProvider<D> {
    config: ProviderConfig,
    client: Result<reqwest::Client, String>,
    dialect: PhantomData<fn() -> D>,
}

impl<D> HttpProvider<D> {
    /// A provider for `config` (its `kind` is not looked at: the dialect is the type's).
    pub fn new(config: ProviderConfig) -> Self {
        let client = http_client(&config);
        HttpProvider {
            config,
            client,
            dialect: PhantomData,
        }
    }

    /// The provider's configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }
}

#[async_trait]
impl<D: Dialect> Provider for HttpProvider<D> {
    fn name(&self) -> &str {
        D::NAME
    }

    fn model(&self) -> &str {
        &self.config.model
    }

    fn request_body(&self, req: &ChatRequest) -> Value {
        D::request_body(&self.config.model, req)
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        on_delta: &(dyn for<'d> Fn(&'d str) + Send + Sync),
    ) -> Result<ChatResponse, ProviderError> {
        let body = self.request_body(req);
        with_retries(D::NAME, &self.config, || attempt(self, &body, on_delta)).await
    }
}

/// One attempt: the request for `body`, sent and its answer folded.
async fn attempt<'a, D: Dialect>(
    provider: &'a HttpProvider<D>,
    body: &'a Value,
    on_delta: &'a (dyn Fn(&str) + Send + Sync + 'a),
) -> Result<ChatResponse, ProviderError> {
    let config = &provider.config;
    let client = provider
        .client
        .as_ref()
        .map_err(|e| ProviderError::Connect(e.clone()))?;
    let request = client
        .post(D::url(&config.base_url))
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .json(body);
    let request = D::headers(request, config.api_key.as_deref());
    exchange::<D::Fold>(request, config.timeout, &config.model, on_delta).await
}
