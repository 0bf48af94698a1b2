//! Long-term memory for the Gateway and the CLI: build the configured embedder, open the
//! memory index (checking it, repairing it), and recall. Pi's `memory` skill (through the
//! Gateway's turn recorder) and `clawos memory search` call the same [`recall`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clawos_agents::embed::{minilm, HashedEmbedder, MiniLmEmbedder, OpenAiEmbedder};
use clawos_agents::provider::{ProviderConfig, ProviderKind};
use clawos_agents::Recalled;
use clawos_projections::index::{self, Embedder, Hit, MemoryIndex, Opened, Scope};
use clawos_replay::Home;
use sqlx::SqlitePool;

use crate::config::MemoryConfig;
use crate::KernelError;

/// The folder all-MiniLM-L6-v2 is looked for in: `memory.model_dir`, else
/// `STATE/models/all-MiniLM-L6-v2`.
pub fn minilm_dir(home: &Home, config: &MemoryConfig) -> PathBuf {
    config
        .model_dir
        .clone()
        .unwrap_or_else(|| home.dir().join("models").join(minilm::FOLDER))
}

/// The embedder `[memory]` chooses (see [`MemoryConfig::embedder`]).
pub async fn embedder(
    home: &Home,
    config: &MemoryConfig,
) -> Result<Arc<dyn Embedder>, KernelError> {
    let dir = minilm_dir(home, config);
    let bad = |e: index::EmbedError| KernelError::Config(format!("memory: {e}"));
    match config.embedder.as_deref().unwrap_or("auto") {
        "builtin" => Ok(Arc::new(HashedEmbedder)),
        "minilm" => {
            if !minilm::installed(&dir) {
                return Err(KernelError::Config(format!(
                    "memory.embedder = \"minilm\": no model.safetensors, tokenizer.json and \
                     config.json in {}",
                    dir.display()
                )));
            }
            let m = MiniLmEmbedder::load(&dir).map_err(bad)?;
            Ok(Arc::new(m))
        }
        "openai" => {
            let (Some(base_url), Some(model)) = (&config.base_url, &config.model) else {
                return Err(KernelError::Config(
                    "memory.embedder = \"openai\" needs memory.base_url and memory.model".into(),
                ));
            };
            let mut p = ProviderConfig::new(ProviderKind::OpenAi, base_url, model);
            p.api_key = config
                .api_key_env
                .as_ref()
                .and_then(|v| std::env::var(v).ok());
            p.timeout = Duration::from_secs(config.timeout_secs.unwrap_or(60).max(1));
            p.retries = config.retries.unwrap_or(3);
            p.backoff = Duration::from_millis(250);
            let batch = config
                .batch
                .unwrap_or(clawos_agents::embed::openai::DEFAULT_BATCH);
            let e = OpenAiEmbedder::new(p, batch, config.dims)
                .await
                .map_err(bad)?;
            Ok(Arc::new(e))
        }
        _ if minilm::installed(&dir) => match MiniLmEmbedder::load(&dir) {
            Ok(m) => Ok(Arc::new(m)),
            Err(e) => {
                tracing::warn!(error = %e, "all-MiniLM-L6-v2 does not load; using the built-in embedder");
                Ok(Arc::new(HashedEmbedder))
            }
        },
        _ => Ok(Arc::new(HashedEmbedder)),
    }
}

/// Open the memory index in `pool` with the configured embedder (created when missing,
/// rebuilt from the log when damaged).
pub async fn open_index(
    home: &Home,
    config: &MemoryConfig,
    pool: SqlitePool,
) -> Result<(MemoryIndex, Opened), KernelError> {
    let embedder = embedder(home, config).await?;
    Ok(MemoryIndex::open(pool, embedder).await?)
}

/// The `limit` memories in `scope` that best match `query`, best first (hybrid: vectors
/// and keywords, fused by reciprocal rank).
pub async fn recall(
    index: &MemoryIndex,
    scope: &Scope,
    query: &str,
    limit: usize,
) -> Result<Vec<Hit>, KernelError> {
    Ok(index::recall(index, scope, query, limit).await?)
}

/// A hit as the agents' [`Recalled`]; `None` when its id is not a UUID.
pub fn recalled(hit: Hit) -> Option<Recalled> {
    Some(Recalled {
        id: uuid::Uuid::parse_str(&hit.memory_id).ok()?,
        text: hit.text,
        score: hit.score,
    })
}
