//! A local provider: a quantized GGUF model (llama, Qwen2 or Qwen3 architecture) run
//! in-process with candle.
//!
//! No server and no network: [`LocalModel::load`] reads the weights for the file's
//! `general.architecture` and rebuilds the tokenizer (GPT-2 byte-level BPE, with the
//! pre-tokenizer the file names) from the GGUF metadata (`tokenizer.ggml.tokens`,
//! `.merges`, `.token_type`, `.pre`, `.eos_token_id`). Prompts are ChatML, or the file's
//! own chat template when tools are offered and it knows them; calls the model writes in
//! `<tool_call>` tags become tool calls (`local_format.rs`).
//!
//! Generation runs on the CPU in a `spawn_blocking` task, one at a time (the model sits
//! behind a mutex), is deterministic (greedy by default, fixed seed otherwise), stops at
//! `<|im_end|>` / end-of-sequence or after `max_tokens` ([`DEFAULT_MAX_TOKENS`]), and
//! streams each decoded fragment to `on_delta` (up to a tool call, which is not shown).

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::MAX_SEQ_LEN;
use candle_transformers::models::{quantized_llama, quantized_qwen2, quantized_qwen3};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::SplitDelimiterBehavior;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use super::chat::{ChatMessage, ChatRequest, ChatResponse, Provider};
use super::error::ProviderError;

/// Provider name reported in [`ChatResponse::provider`].
pub const NAME: &str = "local";
/// Cap on generated tokens when the request sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 256;
pub use super::local_format::{chatml_prompt, PromptFormat, DEFAULT_SYSTEM};
use super::local_format::{parse_tool_calls, IM_END, TOOL_CALL_OPEN};

/// Why a local model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The model file could not be opened.
    #[error("cannot open model file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The GGUF file is not one this provider can run.
    #[error("cannot load model {path}: {message}")]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Tokenizing or generating failed.
    #[error("local model failed: {0}")]
    Run(String),
}

impl From<LocalError> for ProviderError {
    fn from(e: LocalError) -> Self {
        ProviderError::Malformed(e.to_string())
    }
}

fn run_err(e: impl std::fmt::Display) -> LocalError {
    LocalError::Run(e.to_string())
}

/// How to sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampler {
    /// `None` or `<= 0`: greedy (arg-max); otherwise softmax sampling at this temperature.
    pub temperature: Option<f64>,
    /// Seed of the sampler's RNG (irrelevant when greedy).
    pub seed: u64,
    /// Penalty on logits of recently generated tokens (1.0 = none).
    pub repeat_penalty: f32,
    /// How many of the last tokens the penalty looks at.
    pub repeat_last_n: usize,
}

impl Default for Sampler {
    /// Greedy, seed 299792458, repeat penalty 1.1 over the last 64 tokens.
    fn default() -> Self {
        Sampler {
            temperature: None,
            seed: 299_792_458,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
        }
    }
}

/// What one generation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The decoded text (every streamed fragment, concatenated).
    pub text: String,
    /// Tokens of the prompt as run (after any truncation).
    pub prompt_tokens: u32,
    /// Tokens generated (the stop token not counted).
    pub completion_tokens: u32,
}

/// The weights of one of the architectures candle runs quantized.
enum Weights {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
}

impl Weights {
    /// The weights of `content`, by its `general.architecture`.
    fn from_gguf<R: Read + Seek>(
        content: gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Weights, String> {
        let architecture = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| "llama".to_string());
        let loaded = match architecture.as_str() {
            "llama" => quantized_llama::ModelWeights::from_gguf(content, reader, device)
                .map(Weights::Llama),
            "qwen2" => quantized_qwen2::ModelWeights::from_gguf(content, reader, device)
                .map(Weights::Qwen2),
            "qwen3" => quantized_qwen3::ModelWeights::from_gguf(content, reader, device)
                .map(Weights::Qwen3),
            other => {
                return Err(format!(
                    "architecture {other:?} is not supported (llama, qwen2 and qwen3 are)"
                ))
            }
        };
        loaded.map_err(|e| e.to_string())
    }

    fn forward(&mut self, x: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Llama(w) => w.forward(x, pos),
            Weights::Qwen2(w) => w.forward(x, pos),
            Weights::Qwen3(w) => w.forward(x, pos),
        }
    }

    fn clear_kv_cache(&mut self) {
        match self {
            Weights::Llama(w) => w.clear_kv_cache(),
            Weights::Qwen2(w) => w.clear_kv_cache(),
            Weights::Qwen3(w) => w.clear_kv_cache(),
        }
    }
}

struct Inner {
    weights: Weights,
    tokenizer: Tokenizer,
    stop: Vec<u32>,
    device: Device,
    sampler: Sampler,
}

/// A GGUF model loaded in memory; cheap to clone (shared, one generation at a time).
#[derive(Clone)]
pub struct LocalModel {
    inner: Arc<Mutex<Inner>>,
    name: String,
    path: PathBuf,
    format: PromptFormat,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

impl LocalModel {
    /// Load the weights and the tokenizer of the GGUF file at `path` (blocking; use
    /// [`LocalModel::load_async`] from async code).
    pub fn load(path: &Path) -> Result<Self, LocalError> {
        let load_err = |message: String| LocalError::Load {
            path: path.to_path_buf(),
            message,
        };
        let file = File::open(path).map_err(|source| LocalError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| load_err(e.to_string()))?;
        let (tokenizer, stop) = tokenizer_from_gguf(&content).map_err(load_err)?;
        let format = PromptFormat::new(
            content
                .metadata
                .get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok())
                .cloned(),
        );
        let device = Device::Cpu;
        let weights = if content
            .tensor_infos
            .values()
            .any(|t| without_simd_kernel(t.ggml_dtype))
        {
            let (content, mut requantized) =
                requantize(&content, &mut reader, &device).map_err(|e| load_err(e.to_string()))?;
            Weights::from_gguf(content, &mut requantized, &device)
        } else {
            Weights::from_gguf(content, &mut reader, &device)
        }
        .map_err(load_err)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "local".to_string());
        Ok(LocalModel {
            inner: Arc::new(Mutex::new(Inner {
                weights,
                tokenizer,
                stop,
                device,
                sampler: Sampler::default(),
            })),
            name,
            path: path.to_path_buf(),
            format,
        })
    }

    /// [`LocalModel::load`] on a blocking thread.
    pub async fn load_async(path: &Path) -> Result<Self, LocalError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || LocalModel::load(&path))
            .await
            .map_err(run_err)?
    }

    /// The model's name: the file stem of its path.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The GGUF file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How it is prompted (its chat template, if it has one).
    pub fn format(&self) -> &PromptFormat {
        &self.format
    }

    /// Replace the sampling settings of later generations.
    pub fn set_sampler(&self, sampler: Sampler) {
        lock(&self.inner).sampler = sampler;
    }

    /// Token ids of `text` as the model's tokenizer splits it (special tokens such as
    /// `<|im_start|>` recognised).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LocalError> {
        let inner = lock(&self.inner);
        let enc = inner.tokenizer.encode(text, false).map_err(run_err)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Run `prompt` (already formatted) for at most `max_tokens` tokens, blocking;
    /// `on_delta` gets each decoded fragment and may return `false` to stop early.
    pub fn generate_blocking(
        &self,
        prompt: &str,
        max_tokens: u32,
        mut on_delta: impl FnMut(&str) -> bool,
    ) -> Result<Generation, LocalError> {
        let mut guard = lock(&self.inner);
        let Inner {
            weights,
            tokenizer,
            stop,
            device,
            sampler,
        } = &mut *guard;
        let mut tokens = tokenizer
            .encode(prompt, false)
            .map_err(run_err)?
            .get_ids()
            .to_vec();
        if tokens.is_empty() {
            return Err(LocalError::Run("empty prompt".into()));
        }
        // Keep within the model's context: the newest prompt tokens win.
        let max_new = (max_tokens as usize).min(MAX_SEQ_LEN / 2);
        let room = MAX_SEQ_LEN - max_new;
        if tokens.len() > room {
            tokens.drain(..tokens.len() - room);
        }
        let prompt_tokens = tokens.len();
        let sampling = match sampler.temperature {
            Some(t) if t > 0.0 => Sampling::All { temperature: t },
            _ => Sampling::ArgMax,
        };
        let mut logits_processor = LogitsProcessor::from_sampling(sampler.seed, sampling);
        weights.clear_kv_cache();

        let mut decoder = tokenizer.decode_stream(true);
        let mut text = String::new();
        let mut generated: Vec<u32> = Vec::new();
        let mut input = tokens.clone();
        let mut pos = 0usize;
        while generated.len() < max_new {
            let x = Tensor::new(input.as_slice(), device)
                .and_then(|t| t.unsqueeze(0))
                .map_err(run_err)?;
            let logits = weights
                .forward(&x, pos)
                .and_then(|l| l.squeeze(0))
                .and_then(|l| l.to_dtype(candle_core::DType::F32))
                .map_err(run_err)?;
            pos += input.len();
            let logits = if sampler.repeat_penalty != 1.0 {
                let start = tokens.len().saturating_sub(sampler.repeat_last_n);
                candle_transformers::utils::apply_repeat_penalty(
                    &logits,
                    sampler.repeat_penalty,
                    &tokens[start..],
                )
                .map_err(run_err)?
            } else {
                logits
            };
            let next = logits_processor.sample(&logits).map_err(run_err)?;
            if stop.contains(&next) {
                break;
            }
            tokens.push(next);
            generated.push(next);
            if let Some(fragment) = decoder.step(next).map_err(run_err)? {
                if !fragment.is_empty() {
                    text.push_str(&fragment);
                    if !on_delta(&fragment) {
                        break;
                    }
                }
            }
            input = vec![next];
        }
        Ok(Generation {
            text,
            prompt_tokens: u32::try_from(prompt_tokens).unwrap_or(u32::MAX),
            completion_tokens: u32::try_from(generated.len()).unwrap_or(u32::MAX),
        })
    }

    /// [`LocalModel::generate_blocking`] on a blocking thread; fragments go to
    /// `on_delta` as they are decoded. Dropping the future stops the generation at the
    /// next token.
    pub async fn generate(
        &self,
        prompt: &str,
        max_tokens: u32,
        on_delta: &(dyn for<'d> Fn(&'d str) + Send + Sync),
    ) -> Result<Generation, LocalError> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let model = self.clone();
        let prompt = prompt.to_string();
        let task = tokio::task::spawn_blocking(move || {
            model.generate_blocking(&prompt, max_tokens, |s| tx.send(s.to_string()).is_ok())
        });
        while let Some(fragment) = rx.recv().await {
            on_delta(&fragment);
        }
        task.await.map_err(run_err)?
    }
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    // A panic mid-generation leaves nothing that the next one relies on (the KV cache
    // is cleared at its start).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether candle multiplies tensors of this type with a plain scalar loop on every CPU
/// (no AVX2 or NEON kernel): Q4_1, Q5_0, Q5_1 and Q8_1.
fn without_simd_kernel(dtype: GgmlDType) -> bool {
    matches!(
        dtype,
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_1
    )
}

/// The model of `content` with every tensor of a type [`without_simd_kernel`] turned into
/// Q8_0, which has vector kernels and is finer than any of them (8 bits a weight against
/// 4 or 5), as an in-memory GGUF to load from. The scalar Q4_1 dot product was three
/// quarters of the decoding time of SmolLM2-135M Q4_1 (BENCHMARKS.md, the local provider).
fn requantize<R: Read + Seek>(
    content: &gguf_file::Content,
    reader: &mut R,
    device: &Device,
) -> candle_core::Result<(gguf_file::Content, Cursor<Vec<u8>>)> {
    let mut tensors = Vec::with_capacity(content.tensor_infos.len());
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let tensor = content.tensor(reader, name, device)?;
        let tensor = if without_simd_kernel(tensor.dtype()) {
            QTensor::quantize(&tensor.dequantize(device)?, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &tensor_refs)?;
    drop(tensors);
    out.set_position(0);
    let content = gguf_file::Content::read(&mut out)?;
    Ok((content, out))
}

/// The GPT-2 byte-level BPE tokenizer described by `content`'s metadata, and the ids
/// that end a generation (end-of-sequence and `<|im_end|>`).
fn tokenizer_from_gguf(content: &gguf_file::Content) -> Result<(Tokenizer, Vec<u32>), String> {
    let md = |key: &str| {
        content
            .metadata
            .get(key)
            .ok_or_else(|| format!("no {key} in the GGUF metadata"))
    };
    let model = md("tokenizer.ggml.model")?
        .to_string()
        .map_err(|e| e.to_string())?;
    if model != "gpt2" {
        return Err(format!(
            "tokenizer {model:?} is not supported (only gpt2 byte-level BPE)"
        ));
    }
    let tokens: Vec<String> = md("tokenizer.ggml.tokens")?
        .to_vec()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|v| v.to_string().cloned().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let merges: Vec<(String, String)> = md("tokenizer.ggml.merges")?
        .to_vec()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|v| {
            let s = v.to_string().map_err(|e| e.to_string())?;
            s.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| format!("malformed merge {s:?}"))
        })
        .collect::<Result<_, _>>()?;
    // Token types (llama.cpp): 3 = control, 4 = user-defined; both are matched whole.
    let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|t| t.to_i32().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let special: Vec<AddedToken> = tokens
        .iter()
        .enumerate()
        .filter(|(i, tok)| match types.get(*i) {
            Some(t) => *t == 3 || *t == 4,
            None => tok.starts_with("<|") && tok.ends_with("|>"),
        })
        .map(|(_, tok)| AddedToken::from(tok.clone(), true))
        .collect();

    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| e.to_string())?;
    let mut tokenizer = Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    let pre = match content
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
    {
        // SmolLM's tokenizer splits digits one by one before the GPT-2 regex.
        Some("smollm") => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(byte_level),
        ])),
        // Qwen2 (and Qwen3) split with their own pattern (digits one by one), then map
        // bytes without a second split.
        Some("qwen2") => {
            let split = Split::new(
                SplitPattern::Regex(QWEN2_PATTERN.into()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| e.to_string())?;
            PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Split(split),
                PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, false)),
            ]))
        }
        _ => PreTokenizerWrapper::ByteLevel(byte_level),
    };
    tokenizer.with_pre_tokenizer(Some(pre));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    tokenizer
        .add_special_tokens(special)
        .map_err(|e| e.to_string())?;

    let mut stop = Vec::new();
    if let Some(eos) = content
        .metadata
        .get("tokenizer.ggml.eos_token_id")
        .and_then(|v| v.to_u32().ok())
    {
        stop.push(eos);
    }
    if let Some(id) = tokenizer.token_to_id(IM_END) {
        if !stop.contains(&id) {
            stop.push(id);
        }
    }
    if stop.is_empty() {
        return Err("the model has neither an eos token nor <|im_end|>".into());
    }
    Ok((tokenizer, stop))
}

/// The pre-tokenizer pattern of Qwen2's tokenizer (`tokenizer.ggml.pre = "qwen2"`).
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A [`Provider`] that runs a [`LocalModel`] in-process.
#[derive(Debug, Clone)]
pub struct LocalProvider {
    model: LocalModel,
}

impl LocalProvider {
    /// A provider over an already loaded model.
    pub fn new(model: LocalModel) -> Self {
        LocalProvider { model }
    }

    /// Load the GGUF file at `path` (on a blocking thread).
    pub async fn load(path: &Path) -> Result<Self, LocalError> {
        Ok(LocalProvider::new(LocalModel::load_async(path).await?))
    }

    /// The model it runs.
    pub fn local_model(&self) -> &LocalModel {
        &self.model
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &str {
        NAME
    }

    fn model(&self) -> &str {
        self.model.name()
    }

    /// No: the GGUF models run here read text only.
    fn accepts_images(&self) -> bool {
        false
    }

    fn request_body(&self, req: &ChatRequest) -> serde_json::Value {
        serde_json::json!({
            "model": self.model.name(),
            "prompt": self.model.format().prompt(&req.without_images()),
            "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        })
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        on_delta: &(dyn for<'d> Fn(&'d str) + Send + Sync),
    ) -> Result<ChatResponse, ProviderError> {
        // The model reads text only: each image becomes a note naming it.
        let prompt = self.model.format().prompt(&req.without_images());
        let max_tokens = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        let tools = !req.tools.is_empty() && self.model.format().knows_tools();
        // Stream the answer up to a tool call: the call itself is not for the person.
        let shown = Mutex::new((String::new(), false));
        let until_a_call = |fragment: &str| {
            let mut shown = shown.lock().unwrap_or_else(|e| e.into_inner());
            if shown.1 {
                return;
            }
            let before = shown.0.len();
            shown.0.push_str(fragment);
            match shown.0.find(TOOL_CALL_OPEN).filter(|_| tools) {
                Some(at) => {
                    shown.1 = true;
                    if at > before {
                        on_delta(&shown.0[before..at]);
                    }
                }
                None => on_delta(fragment),
            }
        };
        let generation = self
            .model
            .generate(&prompt, max_tokens, &until_a_call)
            .await?;
        let (content, tool_calls) = if tools {
            parse_tool_calls(&generation.text)
        } else {
            (generation.text, Vec::new())
        };
        Ok(ChatResponse {
            content,
            tool_calls,
            prompt_tokens: generation.prompt_tokens,
            completion_tokens: generation.completion_tokens,
            model: self.model.name().to_string(),
            provider: NAME.to_string(),
        })
    }
}

/// The first `*.gguf` file in `dir` (by file name), if any.
pub fn find_model(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|ext| ext.eq_ignore_ascii_case("gguf"))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Throughput of a generation benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    /// Tokens of the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Seconds to load the model.
    pub load_secs: f64,
    /// Seconds of generation (prompt processing included).
    pub generate_secs: f64,
}

impl Throughput {
    /// Generated tokens per second of generation.
    pub fn tokens_per_second(&self) -> f64 {
        if self.generate_secs > 0.0 {
            f64::from(self.completion_tokens) / self.generate_secs
        } else {
            0.0
        }
    }
}

/// Load the model at `path` and generate up to `n` tokens for a fixed prompt; see
/// [`tokens_per_second`] for the plain number.
pub async fn bench(path: &Path, n: usize) -> Result<Throughput, LocalError> {
    let start = Instant::now();
    let model = LocalModel::load_async(path).await?;
    let load_secs = start.elapsed().as_secs_f64();
    let req = ChatRequest {
        system: String::new(),
        messages: vec![ChatMessage::user(
            "Write a long story about a dragon who learns to bake bread.",
        )],
        tools: Vec::new(),
        max_tokens: None,
    };
    let prompt = chatml_prompt(&req);
    let max_tokens = u32::try_from(n).unwrap_or(u32::MAX);
    let started = Instant::now();
    let generation =
        tokio::task::spawn_blocking(move || model.generate_blocking(&prompt, max_tokens, |_| true))
            .await
            .map_err(run_err)??;
    Ok(Throughput {
        prompt_tokens: generation.prompt_tokens,
        completion_tokens: generation.completion_tokens,
        load_secs,
        generate_secs: started.elapsed().as_secs_f64(),
    })
}

/// Generated tokens per second of the model at `path` over up to `n` tokens (model
/// loading not counted; prompt processing counted).
pub async fn tokens_per_second(path: &Path, n: usize) -> Result<f64, LocalError> {
    Ok(bench(path, n).await?.tokens_per_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_prompt_format() {
        let req = ChatRequest {
            system: "Be brief.".into(),
            messages: vec![
                ChatMessage::user("hi"),
                ChatMessage::Assistant {
                    text: "hello".into(),
                    tool_calls: vec![],
                },
                ChatMessage::user("bye"),
            ],
            tools: vec![],
            max_tokens: None,
        };
        assert_eq!(
            chatml_prompt(&req),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n\
             <|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nbye<|im_end|>\n\
             <|im_start|>assistant\n"
        );
    }

    #[test]
    fn find_model_picks_first_gguf_sorted() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(find_model(dir.path()), None);
        std::fs::write(dir.path().join("b.gguf"), b"x").expect("write");
        std::fs::write(dir.path().join("a.GGUF"), b"x").expect("write");
        std::fs::write(dir.path().join("0.bin"), b"x").expect("write");
        std::fs::create_dir(dir.path().join("0.gguf")).expect("mkdir");
        assert_eq!(find_model(dir.path()), Some(dir.path().join("a.GGUF")));
        assert_eq!(find_model(&dir.path().join("missing")), None);
    }
}
