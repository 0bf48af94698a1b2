//! Embedders for the memory index (the [`Embedder`] trait lives in
//! `clawos_projections::index`):
//! - [`hashed`]: the built-in hashed word and character n-gram embedder (no files, no
//!   network; the fallback).
//! - [`openai`]: OpenAI-compatible `/v1/embeddings`, batched, with retries.
//! - [`minilm`]: all-MiniLM-L6-v2 in-process through candle (the default whenever it is
//!   installed in `STATE/models/all-MiniLM-L6-v2`).

pub mod hashed;
pub mod minilm;
pub mod openai;

pub use clawos_projections::index::{EmbedError, Embedder};
pub use hashed::HashedEmbedder;
pub use minilm::MiniLmEmbedder;
pub use openai::OpenAiEmbedder;
