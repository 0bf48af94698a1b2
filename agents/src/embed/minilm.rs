//! all-MiniLM-L6-v2, a sentence-transformer, run in-process with candle's `BertModel`:
//! loaded from a folder holding `model.safetensors`, `tokenizer.json` and `config.json`,
//! mean pooling over the attention mask, L2-normalised, 384 dimensions. Inference runs on
//! a blocking thread, one batch at a time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use clawos_projections::index::embedder::{normalize, EmbedError, Embedder};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The folder name of the model under `STATE/models/`.
pub const FOLDER: &str = "all-MiniLM-L6-v2";
/// Model id stored with its vectors.
pub const MODEL_ID: &str = "all-MiniLM-L6-v2";
/// Longest input in tokens (the length the model was trained on).
const MAX_TOKENS: usize = 256;

struct Loaded {
    model: BertModel,
    tokenizer: Tokenizer,
}

/// The all-MiniLM-L6-v2 embedder.
pub struct MiniLmEmbedder {
    inner: Arc<Mutex<Loaded>>,
    dims: usize,
}

/// Whether `dir` holds the three files the model needs.
pub fn installed(dir: &Path) -> bool {
    ["model.safetensors", "tokenizer.json", "config.json"]
        .iter()
        .all(|f| dir.join(f).is_file())
}

fn load_err(what: &Path, e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Load(format!("{}: {e}", what.display()))
}

impl MiniLmEmbedder {
    /// Load the model from `dir`.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let file = |name: &str| -> PathBuf { dir.join(name) };
        let config_path = file("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| load_err(&config_path, e))?;
        let config: Config = serde_json::from_str(&text).map_err(|e| load_err(&config_path, e))?;
        let dims = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("hidden_size")?.as_u64())
            .ok_or_else(|| load_err(&config_path, "no hidden_size"))? as usize;
        let tok_path = file("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| load_err(&tok_path, e))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| load_err(&tok_path, e))?;
        let weights = file("model.safetensors");
        // SAFETY: the file is memory-mapped read-only; it must not change while loaded,
        // which holds for a model folder under the state directory.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DTYPE, &Device::Cpu) }
            .map_err(|e| load_err(&weights, e))?;
        let model = BertModel::load(vb, &config).map_err(|e| load_err(&weights, e))?;
        Ok(MiniLmEmbedder {
            inner: Arc::new(Mutex::new(Loaded { model, tokenizer })),
            dims,
        })
    }
}

fn infer(loaded: &Loaded, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
    let fail = |e: &dyn std::fmt::Display| EmbedError::Inference(e.to_string());
    let encodings = loaded
        .tokenizer
        .encode_batch(texts.to_vec(), true)
        .map_err(|e| fail(&e))?;
    let ids: Vec<Tensor> = encodings
        .iter()
        .map(|e| Tensor::new(e.get_ids(), &Device::Cpu))
        .collect::<Result<_, _>>()
        .map_err(|e| fail(&e))?;
    let masks: Vec<Tensor> = encodings
        .iter()
        .map(|e| Tensor::new(e.get_attention_mask(), &Device::Cpu))
        .collect::<Result<_, _>>()
        .map_err(|e| fail(&e))?;
    let run = || -> candle_core::Result<Vec<Vec<f32>>> {
        let ids = Tensor::stack(&ids, 0)?;
        let mask = Tensor::stack(&masks, 0)?;
        let types = ids.zeros_like()?;
        let hidden = loaded.model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens: sum(hidden * mask) / sum(mask).
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        summed.broadcast_div(&counts)?.to_vec2::<f32>()
    };
    let mut out = run().map_err(|e| fail(&e))?;
    out.iter_mut().for_each(|v| normalize(v));
    Ok(out)
}

#[async_trait]
impl Embedder for MiniLmEmbedder {
    fn model_id(&self) -> &str {
        MODEL_ID
    }
    fn dims(&self) -> usize {
        self.dims
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inner = self.inner.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || {
            let loaded = inner.lock().unwrap_or_else(|p| p.into_inner());
            infer(&loaded, &texts)
        })
        .await
        .map_err(|e| EmbedError::Inference(e.to_string()))?
    }
}
