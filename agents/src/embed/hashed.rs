//! The built-in embedder: hashed word and character n-gram features, L2-normalised, in 384
//! dimensions. Pure Rust, deterministic, no files, no network, so memory works out of the
//! box. It matches shared words and word pieces (`prefer` / `preferred`, `postgres` /
//! `postgresql`) and knows nothing of meaning: synonyms and paraphrases without shared
//! words (`car` / `automobile`) are strangers to it.

use async_trait::async_trait;
use clawos_projections::index::embedder::{normalize, EmbedError, Embedder};

/// Dimensions of the built-in embedder.
pub const DIMS: usize = 384;
/// Model id of the built-in embedder (changes whenever its features change).
pub const MODEL_ID: &str = "builtin-hashed-ngrams-v1";

/// Words that carry no meaning of their own; left out of the word features.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "do", "does", "for", "from", "has",
    "have", "he", "her", "his", "i", "in", "is", "it", "its", "me", "my", "of", "on", "or", "our",
    "she", "so", "that", "the", "their", "them", "they", "this", "to", "was", "we", "were", "what",
    "which", "who", "will", "with", "you", "your",
];

/// The built-in hashed n-gram embedder.
#[derive(Debug, Clone, Copy, Default)]
pub struct HashedEmbedder;

impl HashedEmbedder {
    /// The vector of one text (unit length; zero for a text without words).
    pub fn vector(text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; DIMS];
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty() && !STOPWORDS.contains(w))
            .collect();
        for w in &words {
            add(&mut v, b'w', w.as_bytes(), 1.0);
            // Character trigrams of the word with boundary marks: `<pr`, `pre`, ..., `er>`.
            let chars: Vec<char> = format!("<{w}>").chars().collect();
            let n = chars.len().saturating_sub(2).max(1) as f32;
            for g in chars.windows(3) {
                let s: String = g.iter().collect();
                add(&mut v, b'c', s.as_bytes(), 1.5 / n.sqrt());
            }
        }
        for pair in words.windows(2) {
            add(
                &mut v,
                b'b',
                format!("{} {}", pair[0], pair[1]).as_bytes(),
                0.5,
            );
        }
        normalize(&mut v);
        v
    }
}

/// Add `weight` to the bucket of feature `kind:bytes`, with a sign from the same hash.
fn add(v: &mut [f32], kind: u8, bytes: &[u8], weight: f32) {
    let mut h = blake3::Hasher::new();
    h.update(&[kind]);
    h.update(bytes);
    let d = h.finalize();
    let d = d.as_bytes();
    let x = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    let bucket = (x % DIMS as u64) as usize;
    let sign = if d[8] & 1 == 0 { 1.0 } else { -1.0 };
    v[bucket] += sign * weight;
}

#[async_trait]
impl Embedder for HashedEmbedder {
    fn semantic(&self) -> bool {
        false
    }
    fn model_id(&self) -> &str {
        MODEL_ID
    }
    fn dims(&self) -> usize {
        DIMS
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| Self::vector(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn deterministic_unit_length_and_word_pieces_match() {
        let a = HashedEmbedder::vector("I prefer PostgreSQL over MySQL");
        assert_eq!(a, HashedEmbedder::vector("I prefer PostgreSQL over MySQL"));
        assert!((cos(&a, &a) - 1.0).abs() < 1e-5);
        let near = HashedEmbedder::vector("which database is preferred? postgres");
        let far = HashedEmbedder::vector("my cat is called Mochi");
        assert!(cos(&a, &near) > cos(&a, &far) + 0.1);
        assert!(HashedEmbedder::vector("the a of").iter().all(|x| *x == 0.0));
    }
}
