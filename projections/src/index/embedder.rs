//! The embedding function the index calls: a pure function of (model id, text) to a
//! unit-length vector. Implementations live in `clawos-agents` (built-in hashed n-grams,
//! OpenAI-compatible `/v1/embeddings`, all-MiniLM-L6-v2 through candle).

use async_trait::async_trait;
use thiserror::Error;

/// Errors of an embedder.
#[derive(Debug, Error)]
pub enum EmbedError {
    /// The model files could not be loaded.
    #[error("cannot load embedding model: {0}")]
    Load(String),
    /// Inference failed.
    #[error("embedding failed: {0}")]
    Inference(String),
    /// The embeddings server failed or answered something unusable.
    #[error("embeddings server: {0}")]
    Remote(String),
    /// A vector came back with the wrong number of dimensions.
    #[error("model `{model}` returned {got} dimensions, expected {expected}")]
    Dimensions {
        /// Model id.
        model: String,
        /// Expected dimensions.
        expected: usize,
        /// Returned dimensions.
        got: usize,
    },
}

/// Turns texts into vectors. Must be deterministic for a given [`Embedder::model_id`]: the
/// index caches vectors by (model id, hash of text), and a rebuild relies on it.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// Names the model and everything that changes its output (stored with every vector).
    fn model_id(&self) -> &str;
    /// Dimensions of every vector.
    fn dims(&self) -> usize;
    /// One L2-normalised vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// Whether its vectors carry meaning (a trained sentence model): then recall ranks by
    /// similarity and keywords only add a small bonus; otherwise (word hashing) vectors
    /// and keywords are fused by reciprocal rank as equals.
    fn semantic(&self) -> bool {
        true
    }
}

/// Scale `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// A vector as sqlite-vec binds it: little-endian f32 bytes.
pub fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`to_bytes`]; trailing bytes that do not make a whole f32 are ignored.
pub fn from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_normalize() {
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        assert_eq!(from_bytes(&to_bytes(&v)), v);
    }
}
