//! Memory recall until the vector index lands: rank a person's memories by how many of the
//! query's words they contain (case-insensitive, words of three letters or more), newest
//! first among equals.

use clawos_agents::Recalled;
use uuid::Uuid;

/// Rank `(id, text)` rows (newest first) against `query`; at most `limit`, only hits.
pub fn keyword_recall(query: &str, rows: Vec<(String, String)>, limit: usize) -> Vec<Recalled> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(|w| w.to_lowercase())
        .collect();
    let mut hits: Vec<(usize, Recalled)> = rows
        .into_iter()
        .enumerate()
        .filter_map(|(order, (id, text))| {
            let lower = text.to_lowercase();
            let n = words.iter().filter(|w| lower.contains(w.as_str())).count();
            let id = Uuid::parse_str(&id).ok()?;
            (n > 0).then(|| {
                (
                    order,
                    Recalled {
                        id,
                        text,
                        score: n as f32 / words.len().max(1) as f32,
                    },
                )
            })
        })
        .collect();
    hits.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
    hits.into_iter().take(limit).map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_matching_words_rank_first() {
        let a = Uuid::now_v7().to_string();
        let b = Uuid::now_v7().to_string();
        let rows = vec![
            (a.clone(), "Prefers Postgres over MySQL".to_string()),
            (b.clone(), "Lives in Lyon; prefers tea".to_string()),
        ];
        let hits = keyword_recall("which database does she prefer, postgres?", rows.clone(), 5);
        assert_eq!(hits[0].text, "Prefers Postgres over MySQL");
        assert!(keyword_recall("zzz", rows, 5).is_empty());
    }
}
