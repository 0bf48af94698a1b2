//! OpenAI-compatible `/v1/embeddings` (OpenAI, Ollama's `nomic-embed-text`, vLLM, llama.cpp
//! server...): texts go in batches, retryable failures (connection, timeout, 429, 5xx) are
//! retried with exponential backoff, and vectors come back L2-normalised.

use async_trait::async_trait;
use clawos_projections::index::embedder::{normalize, EmbedError, Embedder};
use serde_json::{json, Value};

use crate::provider::http::{http_client, join_url, map_reqwest, send};
use crate::provider::retry::with_retries;
use crate::provider::{ProviderConfig, ProviderError};

/// Texts per request unless configured otherwise.
pub const DEFAULT_BATCH: usize = 64;

/// An embeddings client for one OpenAI-compatible server and model.
pub struct OpenAiEmbedder {
    config: ProviderConfig,
    client: Result<reqwest::Client, String>,
    batch: usize,
    dims: usize,
    model_id: String,
}

impl OpenAiEmbedder {
    /// A client for `config` (base URL up to `/embeddings`, model, key, timeout, retries)
    /// sending at most `batch` texts per request. `dims` is the model's dimension count;
    /// `None` asks the server once (one embedding of a probe text).
    pub async fn new(
        config: ProviderConfig,
        batch: usize,
        dims: Option<usize>,
    ) -> Result<Self, EmbedError> {
        let client = http_client(&config);
        let model_id = format!("openai:{}@{}", config.model, config.base_url);
        let mut e = OpenAiEmbedder {
            config,
            client,
            batch: batch.max(1),
            dims: dims.unwrap_or(0),
            model_id,
        };
        if dims.is_none() {
            let probe = e.request(&["dimension probe".to_string()]).await?;
            e.dims = probe.first().map(Vec::len).unwrap_or(0);
        }
        if e.dims == 0 {
            return Err(EmbedError::Remote(
                "the server returned an empty embedding".into(),
            ));
        }
        Ok(e)
    }

    /// Where requests go: `{base_url}/embeddings`.
    pub fn url(&self) -> String {
        join_url(&self.config.base_url, "/embeddings")
    }

    async fn attempt(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| ProviderError::Connect(e.clone()))?;
        let mut req = client
            .post(self.url())
            .json(&json!({"model": self.config.model, "input": texts}));
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        let resp = send(req, self.config.timeout).await?;
        let body: Value = resp
            .json()
            .await
            .map_err(|e| map_reqwest(e, self.config.timeout))?;
        let data = body
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| ProviderError::Malformed("no `data` array".into()))?;
        let mut out: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for (pos, item) in data.iter().enumerate() {
            let index = item
                .get("index")
                .and_then(Value::as_u64)
                .map(|i| i as usize)
                .unwrap_or(pos);
            let vector: Vec<f32> = item
                .get("embedding")
                .and_then(Value::as_array)
                .ok_or_else(|| ProviderError::Malformed("an item without `embedding`".into()))?
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32))
                .collect::<Option<_>>()
                .ok_or_else(|| ProviderError::Malformed("a non-number in `embedding`".into()))?;
            match out.get_mut(index) {
                Some(slot) => *slot = Some(vector),
                None => {
                    return Err(ProviderError::Malformed(format!(
                        "index {index} for {} inputs",
                        texts.len()
                    )))
                }
            }
        }
        out.into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ProviderError::Malformed("fewer embeddings than inputs".into()))
    }

    /// One batch, with retries; the vectors L2-normalised.
    async fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = with_retries("openai embeddings", &self.config, || self.attempt(texts))
            .await
            .map_err(|err| EmbedError::Remote(err.to_string()))?;
        vectors.iter_mut().for_each(|v| normalize(v));
        Ok(vectors)
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }
    fn dims(&self) -> usize {
        self.dims
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch) {
            for v in self.request(batch).await? {
                if v.len() != self.dims {
                    return Err(EmbedError::Dimensions {
                        model: self.model_id.clone(),
                        expected: self.dims,
                        got: v.len(),
                    });
                }
                out.push(v);
            }
        }
        Ok(out)
    }
}
