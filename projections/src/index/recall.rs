//! Hybrid recall: the nearest vectors (sqlite-vec KNN) and the best keyword matches (FTS5,
//! bm25) of the memories in scope, fused: by similarity with a keyword bonus for a
//! sentence model, by reciprocal rank for the built-in hashed embedder. Text, scope and forgotten
//! state come from the `memories` read model, so a memory forgotten there is never
//! returned, whatever the index holds.

use std::collections::HashMap;

use super::follower::MemoryIndex;
use super::schema::Tables;
use crate::ProjectionError;

/// The reciprocal rank fusion constant (the usual 60).
pub const RRF_K: f32 = 60.0;
/// With a sentence model, what the best keyword match adds to a memory's cosine
/// similarity (the n-th match adds this over n): enough to break near ties, too little to
/// lift a memory the model finds unrelated. Reciprocal rank fusion as equals put the right
/// memory first for 0.52 of the paraphrased questions against 0.94 for the nearest vector
/// alone (tests/memory.rs, BENCHMARKS.md).
pub const KEYWORD_BONUS: f32 = 0.02;

/// Whose memories a recall may return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only this identity's memories (`None`: every identity's).
    pub identity: Option<String>,
    /// Only memories of this agent or of no agent (`None`: every agent's).
    pub agent: Option<String>,
}

/// One recalled memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Memory id.
    pub memory_id: String,
    /// Text.
    pub text: String,
    /// Identity scope.
    pub identity: Option<String>,
    /// Agent scope.
    pub agent: Option<String>,
    /// Fused score (higher is better): with a sentence model, the cosine similarity plus
    /// [`KEYWORD_BONUS`] over the keyword rank; otherwise the sum of `1 / (60 + rank)`
    /// over the two rankings.
    pub score: f32,
    /// Rank (from 1) among the nearest vectors, if it was among them.
    pub vector_rank: Option<usize>,
    /// Cosine similarity to the query, if it was among the nearest vectors.
    pub similarity: Option<f32>,
    /// Rank (from 1) among the keyword matches, if it was among them.
    pub keyword_rank: Option<usize>,
}

/// Question and function words left out of keyword queries: they match nearly every
/// memory and would drown the words that matter in the fused ranking.
const STOPWORDS: &[&str] = &[
    "about", "am", "an", "and", "any", "are", "as", "at", "be", "by", "can", "did", "do", "does",
    "for", "from", "has", "have", "he", "her", "his", "how", "if", "in", "is", "it", "its", "me",
    "my", "of", "on", "or", "our", "she", "should", "so", "that", "the", "their", "them", "they",
    "this", "to", "was", "we", "were", "what", "when", "where", "which", "who", "why", "will",
    "with", "you", "your",
];

/// The FTS5 query for free text: every word of two characters or more that is not a
/// stopword, quoted, OR-ed.
pub fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 2 && !STOPWORDS.contains(&w.as_str()))
        .map(|w| format!("\"{w}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" OR "))
}

fn scope_sql(scope: &Scope, binds: &mut Vec<String>) -> String {
    let mut sql = String::new();
    if let Some(i) = &scope.identity {
        sql.push_str(" AND identity = ?");
        binds.push(i.clone());
    }
    if let Some(a) = &scope.agent {
        sql.push_str(" AND agent IN (?, '')");
        binds.push(a.clone());
    }
    sql
}

/// The `n` memories in `scope` nearest to the unit vector `q`, with their cosine
/// similarity, nearest first: a KNN over the `vec0` table by Euclidean distance `d`, which
/// for unit vectors orders as cosine does (similarity = 1 - d²/2). Memories with no
/// similarity at all (≤ 0) are left out.
pub async fn nearest(
    index: &MemoryIndex,
    t: &Tables,
    scope: &Scope,
    q: &[f32],
    n: usize,
) -> Result<Vec<(i64, f32)>, ProjectionError> {
    let mut binds = Vec::new();
    let filter = scope_sql(scope, &mut binds);
    let sql = format!(
        "SELECT rowid, distance FROM {} WHERE embedding MATCH ? AND k = ?{filter} ORDER BY distance",
        t.vec
    );
    let mut qy = sqlx::query_as::<_, (i64, f64)>(&sql)
        .bind(super::embedder::to_bytes(q))
        .bind(n as i64);
    for b in &binds {
        qy = qy.bind(b);
    }
    Ok(qy
        .fetch_all(index.pool())
        .await?
        .into_iter()
        .map(|(rid, d)| (rid, 1.0 - (d * d / 2.0) as f32))
        // Nothing in common at all (orthogonal or opposite) is no match.
        .filter(|(_, sim)| *sim > 0.0)
        .collect())
}

/// Row ids of the `n` memories in `scope` whose text best matches the FTS5 expression
/// `fts_match` (see [`fts_query`]), best (bm25) first.
pub async fn keyword(
    index: &MemoryIndex,
    t: &Tables,
    scope: &Scope,
    fts_match: &str,
    n: usize,
) -> Result<Vec<i64>, ProjectionError> {
    let mut binds = Vec::new();
    let filter = scope_sql(scope, &mut binds);
    let sql = format!(
        "SELECT rowid FROM {0} WHERE {0} MATCH ?{filter} ORDER BY rank LIMIT ?",
        t.fts
    );
    let mut qy = sqlx::query_scalar::<_, i64>(&sql).bind(fts_match);
    for b in &binds {
        qy = qy.bind(b);
    }
    Ok(qy.bind(n as i64).fetch_all(index.pool()).await?)
}

/// The `k` memories in `scope` that best match `query`, best first. The vector ranking is
/// left out while the index was built by another model than the configured one (until a
/// rebuild swaps), so recall degrades to keywords instead of comparing foreign vectors.
pub async fn recall(
    index: &MemoryIndex,
    scope: &Scope,
    query: &str,
    k: usize,
) -> Result<Vec<Hit>, ProjectionError> {
    if k == 0 || query.trim().is_empty() {
        return Ok(Vec::new());
    }
    let state = index.state().await?;
    let t = Tables::of(state.generation);
    let candidates = (k * 4).max(32);
    let pool = index.pool();

    let mut vector_hits: Vec<(i64, f32)> = Vec::new();
    if state.model == index.embedder().model_id() {
        let q = index
            .embedder()
            .embed(&[query.to_string()])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ProjectionError::Index("the embedder returned no vector".into()))?;
        vector_hits = nearest(index, &t, scope, &q, candidates).await?;
    }

    let mut keyword_hits: Vec<i64> = Vec::new();
    if let Some(m) = fts_query(query) {
        keyword_hits = keyword(index, &t, scope, &m, candidates).await?;
    }

    let mut fused: HashMap<i64, Hit> = HashMap::new();
    let blank = || Hit {
        memory_id: String::new(),
        text: String::new(),
        identity: None,
        agent: None,
        score: 0.0,
        vector_rank: None,
        similarity: None,
        keyword_rank: None,
    };
    let semantic = index.embedder().semantic();
    for (i, (rid, sim)) in vector_hits.iter().enumerate() {
        let h = fused.entry(*rid).or_insert_with(blank);
        h.score += if semantic {
            *sim
        } else {
            1.0 / (RRF_K + (i + 1) as f32)
        };
        h.vector_rank = Some(i + 1);
        h.similarity = Some(*sim);
    }
    for (i, rid) in keyword_hits.iter().enumerate() {
        let h = fused.entry(*rid).or_insert_with(blank);
        h.score += if semantic {
            KEYWORD_BONUS / (i + 1) as f32
        } else {
            1.0 / (RRF_K + (i + 1) as f32)
        };
        h.keyword_rank = Some(i + 1);
    }
    if fused.is_empty() {
        return Ok(Vec::new());
    }

    // The read model decides what exists, its text and its scope.
    let rids: Vec<i64> = fused.keys().copied().collect();
    let sql = format!(
        "SELECT r.rid, m.memory_id, m.text, m.identity, m.agent FROM {} r \
         JOIN memories m ON m.memory_id = r.memory_id WHERE r.rid IN ({})",
        t.rows,
        vec!["?"; rids.len()].join(",")
    );
    let mut qy = sqlx::query_as::<_, (i64, String, String, Option<String>, Option<String>)>(&sql);
    for rid in &rids {
        qy = qy.bind(rid);
    }
    let mut hits = Vec::with_capacity(rids.len());
    for (rid, memory_id, text, identity, agent) in qy.fetch_all(pool).await? {
        let in_scope = scope
            .identity
            .as_ref()
            .is_none_or(|i| identity.as_ref() == Some(i))
            && scope
                .agent
                .as_ref()
                .is_none_or(|a| agent.is_none() || agent.as_ref() == Some(a));
        if let (true, Some(mut h)) = (in_scope, fused.remove(&rid)) {
            h.memory_id = memory_id;
            h.text = text;
            h.identity = identity;
            h.agent = agent;
            hits.push((rid, h));
        }
    }
    hits.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(b.0.cmp(&a.0)));
    Ok(hits.into_iter().take(k).map(|(_, h)| h).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_query_quotes_words() {
        assert_eq!(
            fts_query("Postgres, or \"MySQL\"?").as_deref(),
            Some("\"postgres\" OR \"mysql\"")
        );
        assert_eq!(fts_query("? !"), None);
    }
}
