//! `clawos bench memory`: the memory index figures of BENCHMARKS.md. Recall (k = 5) over
//! N memories of one person, with the brute-force scan of the same vectors in memory as the
//! same-run baseline; rebuild throughput with the built-in embedder, cold and from the
//! embedding cache, with embedding alone as the baseline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clawos_agents::embed::HashedEmbedder;
use clawos_events::{stream, Durability, ExpectedVersion, LogStore, MemoryWritten, NewEvent};
use clawos_projections::index::{self, Embedder, MemoryIndex, Scope};
use clawos_projections::{projection, Runner};
use uuid::Uuid;

use super::common::percentile;

/// Words the synthetic memories are made of.
const WORDS: &[&str] = &[
    "postgres",
    "coffee",
    "daughter",
    "birthday",
    "marathon",
    "cello",
    "lisbon",
    "nurse",
    "volvo",
    "peanuts",
    "allergy",
    "cat",
    "mochi",
    "sourdough",
    "train",
    "flight",
    "dentist",
    "swimming",
    "anniversary",
    "vim",
    "markdown",
    "passport",
    "drawer",
    "thunderstorm",
    "rent",
    "migraine",
    "radiohead",
    "insurance",
    "tomatoes",
    "basil",
    "balcony",
    "manager",
    "chess",
    "christmas",
    "cork",
    "heights",
    "blood",
    "bicycle",
    "journal",
    "lactose",
    "foodbank",
    "lentil",
    "soup",
    "engineering",
    "porto",
    "desk",
    "pilot",
    "deposit",
    "vinyl",
    "glasses",
    "hiking",
    "boiler",
    "release",
    "podcast",
    "neighbour",
    "keys",
    "meditation",
    "autumn",
    "monitor",
    "backup",
    "japan",
    "mortgage",
    "password",
    "knee",
    "intern",
    "standup",
    "board",
    "games",
    "carpenter",
    "school",
    "formula",
    "mattress",
    "choir",
    "receipts",
    "taxes",
    "painter",
    "cycling",
    "guardian",
    "toronto",
    "garage",
    "furniture",
    "fish",
    "strength",
    "tyres",
    "calls",
    "rust",
    "walker",
    "books",
    "pizza",
    "sailing",
    "gym",
    "weather",
    "navy",
    "cafe",
    "prefers",
    "likes",
    "hates",
    "every",
    "morning",
    "evening",
    "weekend",
    "since",
];

/// Syllables of the synthetic vocabulary beyond [`WORDS`].
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "ta", "vo", "shi", "dan", "el", "ur", "po", "zi", "qua", "ber", "nin",
    "sol",
];

/// Word number `k` of a vocabulary of about 4,000: the real words first, then made-up ones
/// of three syllables.
fn word(k: usize) -> String {
    match WORDS.get(k) {
        Some(w) => (*w).to_string(),
        None => {
            let k = k - WORDS.len();
            let n = SYLLABLES.len();
            [k % n, (k / n) % n, (k / n / n) % n]
                .iter()
                .map(|&i| SYLLABLES[i])
                .collect()
        }
    }
}

/// A deterministic sentence of 6 to 11 words for memory number `i`, words drawn with a
/// skew towards the start of the vocabulary (a few words are common, most are rare).
fn sentence(i: u64) -> String {
    let h = blake3::hash(&i.to_le_bytes());
    let b = h.as_bytes();
    let n = 6 + (b[0] % 6) as usize;
    let vocabulary = WORDS.len() + SYLLABLES.len().pow(3);
    let words: Vec<String> = (0..n)
        .map(|k| {
            let u = f64::from(u16::from_le_bytes([b[1 + 2 * k], b[2 + 2 * k]])) / 65536.0;
            word((u * u * u * vocabulary as f64) as usize)
        })
        .collect();
    format!("memory {i}: {}", words.join(" "))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Run the memory benchmark over `memories` memories and `queries` recalls.
pub(super) async fn bench_memory(memories: u64, queries: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = LogStore::open(dir.path().join("clawos.db"), Durability::Normal).await?;
    let pool = clawos_projections::sql::open(&dir.path().join("projections.db")).await?;
    let mut next = 0u64;
    while next < memories {
        let batch: Vec<NewEvent> = (next..(next + 1000).min(memories))
            .map(|i| {
                NewEvent::new(MemoryWritten {
                    memory_id: Uuid::now_v7(),
                    identity: Some("alice".into()),
                    agent: None,
                    text: sentence(i),
                    tags: vec![],
                    source_seq: None,
                })
            })
            .collect();
        next += batch.len() as u64;
        store
            .append(stream::MEMORY, ExpectedVersion::Any, batch)
            .await?;
    }
    let mut runner = Runner::open(pool.clone(), projection::all()).await?;
    runner.catch_up(&store, |_| {}).await?;
    let texts: Vec<String> = (0..memories).map(sentence).collect();

    // Rebuild throughput.
    let embedder: Arc<dyn Embedder> = Arc::new(HashedEmbedder);
    let t = Instant::now();
    let vectors = embedder.embed(&texts).await?;
    let embed_only = memories as f64 / t.elapsed().as_secs_f64();
    let (idx, _) = MemoryIndex::open(pool.clone(), embedder.clone()).await?;
    let t = Instant::now();
    let cold = idx.catch_up(&store, |_| {}).await?;
    let cold_rate = cold.written as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let warm = idx.rebuild(&store, |_, _| {}).await?;
    let warm_rate = warm.written as f64 / t.elapsed().as_secs_f64();
    if cold.written != memories || warm.cache.misses != 0 {
        bail!("unexpected fold: {cold:?} / {warm:?}");
    }
    println!("| memory index build, {memories} memories, built-in embedder | memories/s | ratio to embedding alone |");
    println!("|---|---:|---:|");
    println!("| baseline: embed every text (no storage) | {embed_only:.0} | 1.00 |");
    println!(
        "| catch-up from an empty index (embed + cache + vec0 + FTS5) | {cold_rate:.0} | {:.2} |",
        cold_rate / embed_only
    );
    println!(
        "| `memory rebuild` with every vector in the cache | {warm_rate:.0} | {:.2} |",
        warm_rate / embed_only
    );

    // Recall latency against a brute-force scan of the same vectors.
    // The same vectors the index holds (same embedder, same texts), in one flat array.
    let dims = embedder.dims();
    let flat: Vec<f32> = vectors.iter().flatten().copied().collect();
    let scope = Scope {
        identity: Some("alice".into()),
        agent: None,
    };
    let qs: Vec<String> = (0..queries)
        .map(|i| {
            let s = sentence(memories + i);
            s.split_whitespace()
                .skip(2)
                .take(4)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let t = index::schema::Tables::of(idx.state().await?.generation);
    let (mut hybrid, mut brute, mut knn, mut fts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut agree = 0;
    for q in &qs {
        let started = Instant::now();
        index::recall(&idx, &scope, q, 5).await?;
        hybrid.push(started.elapsed());
        // Its two candidate queries alone.
        let qv = embedder.embed(std::slice::from_ref(q)).await?.remove(0);
        let started = Instant::now();
        let near = index::recall::nearest(&idx, &t, &scope, &qv, 32).await?;
        knn.push(started.elapsed());
        let started = Instant::now();
        if let Some(m) = index::recall::fts_query(q) {
            index::recall::keyword(&idx, &t, &scope, &m, 32).await?;
        }
        fts.push(started.elapsed());
        let started = Instant::now();
        let qv = embedder.embed(std::slice::from_ref(q)).await?.remove(0);
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(6);
        for (i, row) in flat.chunks_exact(dims).enumerate() {
            let s: f32 = row.iter().zip(&qv).map(|(a, b)| a * b).sum();
            if best.len() < 5 || s > best[best.len() - 1].0 {
                best.push((s, i));
                best.sort_by(|a, b| b.0.total_cmp(&a.0));
                best.truncate(5);
            }
        }
        brute.push(started.elapsed());
        // Row ids are the seqs of the MemoryWritten events: memory i is row i + 1.
        let exact: Vec<i64> = best.iter().map(|b| b.1 as i64 + 1).collect();
        agree += exact
            .iter()
            .filter(|rid| near.iter().take(5).any(|(r, _)| r == *rid))
            .count();
    }
    for v in [&mut hybrid, &mut brute, &mut knn, &mut fts] {
        v.sort();
    }
    let (h50, h99) = (percentile(&hybrid, 0.5), percentile(&hybrid, 0.99));
    let (b50, b99) = (percentile(&brute, 0.5), percentile(&brute, 0.99));
    println!("\n| recall k=5 over {memories} memories, {dims} dims, {queries} queries | p50 | p99 | ratio p50 |");
    println!("|---|---:|---:|---:|");
    println!(
        "| baseline: embed + brute-force dot products in memory | {} | {} | 1.00 |",
        ms(b50),
        ms(b99)
    );
    println!(
        "| `recall`: embed + vec0 KNN + FTS5 + fusion + read-model join | {} | {} | {:.2} |",
        ms(h50),
        ms(h99),
        h50.as_secs_f64() / b50.as_secs_f64().max(1e-9)
    );
    for (name, v) in [
        ("of which: vector candidates alone (vec0 KNN, k = 32)", &knn),
        ("of which: FTS5 bm25 (32) alone", &fts),
    ] {
        println!(
            "| {name} | {} | {} | {:.2} |",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99)),
            percentile(v, 0.5).as_secs_f64() / b50.as_secs_f64().max(1e-9)
        );
    }
    println!(
        "\nvector recall@5 of the vec0 KNN against the brute-force top 5: {:.3}",
        agree as f64 / (5 * queries) as f64
    );
    store.close().await;
    Ok(())
}
