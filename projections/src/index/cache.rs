//! The embedding cache: vectors by (model id, blake3 of the text), shared by every
//! generation, so a rebuild with the same model calls the embedder for nothing.

use std::collections::HashMap;

use sqlx::SqlitePool;

use super::embedder::{from_bytes, to_bytes, EmbedError, Embedder};
use crate::ProjectionError;

/// Texts sent to the embedder per call.
pub const EMBED_BATCH: usize = 64;
/// Hashes looked up per cache query.
const LOOKUP_BATCH: usize = 500;

/// What one [`embed`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUse {
    /// Texts found in the cache.
    pub hits: u64,
    /// Texts the embedder computed.
    pub misses: u64,
}

/// The cache key of a text.
pub fn text_hash(text: &str) -> [u8; 32] {
    *blake3::hash(text.as_bytes()).as_bytes()
}

/// One vector per text: from the cache, or from `embedder` (and then stored in the cache).
pub async fn embed(
    pool: &SqlitePool,
    embedder: &dyn Embedder,
    texts: &[String],
) -> Result<(Vec<Vec<f32>>, CacheUse), ProjectionError> {
    let model = embedder.model_id().to_string();
    let hashes: Vec<[u8; 32]> = texts.iter().map(|t| text_hash(t)).collect();
    let mut found: HashMap<[u8; 32], Vec<f32>> = HashMap::new();
    for chunk in hashes.chunks(LOOKUP_BATCH) {
        let sql = format!(
            "SELECT text_hash, vector FROM memory_embeddings WHERE model = ? AND text_hash IN ({})",
            vec!["?"; chunk.len()].join(",")
        );
        let mut q = sqlx::query_as::<_, (Vec<u8>, Vec<u8>)>(&sql).bind(&model);
        for h in chunk {
            q = q.bind(h.as_slice());
        }
        for (h, v) in q.fetch_all(pool).await? {
            if let Ok(h) = <[u8; 32]>::try_from(h.as_slice()) {
                found.insert(h, from_bytes(&v));
            }
        }
    }
    let mut missing: Vec<usize> = Vec::new();
    let mut queued = std::collections::HashSet::new();
    for (i, h) in hashes.iter().enumerate() {
        let cached = found.get(h).is_some_and(|v| v.len() == embedder.dims());
        if !cached && queued.insert(*h) {
            missing.push(i);
        }
    }
    let usage = CacheUse {
        hits: (texts.len() - missing.len()) as u64,
        misses: missing.len() as u64,
    };
    for chunk in missing.chunks(EMBED_BATCH) {
        let batch: Vec<String> = chunk.iter().map(|&i| texts[i].clone()).collect();
        let vectors = embedder.embed(&batch).await?;
        if vectors.len() != batch.len() {
            return Err(EmbedError::Inference(format!(
                "{} vectors for {} texts",
                vectors.len(),
                batch.len()
            ))
            .into());
        }
        for v in &vectors {
            if v.len() != embedder.dims() {
                return Err(EmbedError::Dimensions {
                    model: model.clone(),
                    expected: embedder.dims(),
                    got: v.len(),
                }
                .into());
            }
        }
        let sql = format!(
            "INSERT OR REPLACE INTO memory_embeddings (model, text_hash, vector) VALUES {}",
            vec!["(?, ?, ?)"; chunk.len()].join(",")
        );
        let mut q = sqlx::query(&sql);
        for (&i, v) in chunk.iter().zip(&vectors) {
            q = q.bind(&model).bind(hashes[i].as_slice()).bind(to_bytes(v));
        }
        q.execute(pool).await?;
        for (&i, v) in chunk.iter().zip(vectors) {
            found.insert(hashes[i], v);
        }
    }
    let mut out = Vec::with_capacity(texts.len());
    for h in &hashes {
        match found.get(h) {
            Some(v) => out.push(v.clone()),
            None => {
                return Err(EmbedError::Inference("a text was left without a vector".into()).into())
            }
        }
    }
    Ok((out, usage))
}
