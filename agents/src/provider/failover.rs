//! [`Failover`]: several providers tried in order until one answers.

use async_trait::async_trait;
use serde_json::Value;

use super::chat::{ChatRequest, ChatResponse, Provider};
use super::error::ProviderError;

/// A chain of providers. A call goes to the first; when it fails (after its own
/// retries, whatever the error) the next one is tried, and so on. The first success is
/// returned — its [`ChatResponse::provider`] and [`ChatResponse::model`] say which one
/// answered — and when every provider failed the error is
/// [`ProviderError::AllFailed`] with one `provider/model: reason` line each, in order.
///
/// [`Provider::name`], [`Provider::model`] and [`Provider::request_body`] describe the
/// first provider of the chain (an empty chain reports `""`, `""` and `null`); use
/// [`Failover::chain`] to see the others.
pub struct Failover {
    chain: Vec<Box<dyn Provider>>,
}

impl Failover {
    /// A failover over `chain`, tried in order.
    pub fn new(chain: Vec<Box<dyn Provider>>) -> Self {
        Failover { chain }
    }

    /// The providers, in the order they are tried.
    pub fn chain(&self) -> &[Box<dyn Provider>] {
        &self.chain
    }
}

#[async_trait]
impl Provider for Failover {
    fn name(&self) -> &str {
        self.chain.first().map_or("", |p| p.name())
    }

    fn model(&self) -> &str {
        self.chain.first().map_or("", |p| p.model())
    }

    /// Whether any provider of the chain takes images (each one that does not sends
    /// their notes instead).
    fn accepts_images(&self) -> bool {
        self.chain.iter().any(|p| p.accepts_images())
    }

    fn request_body(&self, req: &ChatRequest) -> Value {
        self.chain
            .first()
            .map_or(Value::Null, |p| p.request_body(req))
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        on_delta: &(dyn for<'d> Fn(&'d str) + Send + Sync),
    ) -> Result<ChatResponse, ProviderError> {
        let mut reasons = Vec::with_capacity(self.chain.len());
        for (position, provider) in self.chain.iter().enumerate() {
            match provider.chat(req, on_delta).await {
                Ok(response) => return Ok(response),
                Err(err) => {
                    let reason = format!("{}/{}: {err}", provider.name(), provider.model());
                    if position + 1 < self.chain.len() {
                        tracing::warn!(%reason, "provider failed, trying the next one");
                    }
                    reasons.push(reason);
                }
            }
        }
        Err(ProviderError::AllFailed(reasons))
    }
}
