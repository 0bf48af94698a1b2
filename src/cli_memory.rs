//! `clawos memory add|search|list|forget|rebuild|stats`: long-term memories from the
//! command line. Writes are events; `search` is the same hybrid recall Pi's `memory` skill
//! uses; `rebuild` re-embeds every memory into a new index generation and swaps it in
//! only when complete (the old one serves until then).

use anyhow::{bail, Result};
use clap::Subcommand;
use clawos_events::{
    stream, Durability, ExpectedVersion, LogStore, MemoryForgotten, MemoryWritten, NewEvent,
};
use clawos_kernel::memory;
use clawos_projections::index::{MemoryIndex, Opened, Scope};
use clawos_projections::views;
use clawos_replay::{rebuild, Home};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use uuid::Uuid;

/// `clawos memory ...`
#[derive(Subcommand)]
pub enum MemoryCommand {
    /// Remember TEXT (appends `MemoryWritten`).
    Add {
        /// The text.
        text: String,
        /// Whose memory it is (an identity; see `clawos identity list`).
        #[arg(long)]
        identity: Option<String>,
        /// Only this agent recalls it (default: every agent).
        #[arg(long)]
        agent: Option<String>,
        /// Tags (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// The memories that best match QUERY, best first (vectors + keywords).
    Search {
        /// What to look for.
        query: String,
        /// Only this identity's memories.
        #[arg(long)]
        identity: Option<String>,
        /// Only memories of this agent or of no agent.
        #[arg(long)]
        agent: Option<String>,
        /// How many.
        #[arg(short = 'k', long, default_value_t = 5)]
        k: usize,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Every memory, newest first.
    List {
        /// Only this identity's memories.
        #[arg(long)]
        identity: Option<String>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Forget a memory (appends `MemoryForgotten`; it is never recalled again).
    Forget {
        /// Memory id.
        id: Uuid,
    },
    /// Re-embed every memory with the configured embedder into a new index and swap it in.
    Rebuild,
    /// The index: embedder, dimensions, memories, cache, position.
    Stats,
}

/// Open the log, catch the read models up, and open the memory index (repairing it).
async fn open(home: &Home, durability: Durability) -> Result<(LogStore, MemoryIndex)> {
    let store = home.open_log(durability).await?;
    let pool = home.open_projections().await?;
    rebuild::catch_up(&store, &pool).await?;
    let config = crate::cli_gateway::load_config(home)?;
    let (index, opened) = memory::open_index(home, &config.memory, pool).await?;
    match opened {
        Opened::Repaired(reason) => eprintln!("memory index was damaged ({reason}); rebuilding"),
        Opened::OtherModel(old) => eprintln!(
            "the index was built by `{old}`, the configured embedder is `{}`: \
             search uses keywords only until `clawos memory rebuild`",
            index.embedder().model_id()
        ),
        Opened::Ready | Opened::Created => {}
    }
    Ok((store, index))
}

/// Run a `memory` subcommand.
pub async fn run(home: &Home, durability: Durability, cmd: MemoryCommand) -> Result<()> {
    let (store, index) = open(home, durability).await?;
    match cmd {
        MemoryCommand::Add {
            text,
            identity,
            agent,
            tags,
        } => {
            if text.trim().is_empty() {
                bail!("nothing to remember: TEXT is empty");
            }
            let id = Uuid::now_v7();
            let a = store
                .append_one(
                    stream::MEMORY,
                    NewEvent::new(MemoryWritten {
                        memory_id: id,
                        identity,
                        agent,
                        text,
                        tags,
                        source_seq: None,
                    }),
                )
                .await?;
            println!("remembered {id} (seq {})", a.first_seq);
        }
        MemoryCommand::Search {
            query,
            identity,
            agent,
            k,
            json,
        } => {
            index.catch_up(&store, |_| {}).await?;
            let hits = memory::recall(&index, &Scope { identity, agent }, &query, k).await?;
            if hits.is_empty() && !json {
                println!("nothing matches");
            }
            for h in hits {
                if json {
                    println!(
                        "{}",
                        json!({"id": h.memory_id, "text": h.text, "identity": h.identity,
                               "agent": h.agent, "score": h.score, "similarity": h.similarity,
                               "vector_rank": h.vector_rank, "keyword_rank": h.keyword_rank})
                    );
                } else {
                    println!("{:.4}  {}  {}", h.score, h.memory_id, h.text);
                }
            }
        }
        MemoryCommand::List { identity, json } => {
            let memories = views::memories(index.pool(), identity.as_deref()).await?;
            if memories.is_empty() && !json {
                println!("no memories");
            }
            for m in memories {
                if json {
                    println!(
                        "{}",
                        json!({"id": m.memory_id, "identity": m.identity, "agent": m.agent,
                               "text": m.text, "tags": m.tags})
                    );
                } else {
                    let who = [m.identity, m.agent]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>();
                    println!("{}  [{}]  {}", m.memory_id, who.join("/"), m.text);
                }
            }
        }
        MemoryCommand::Forget { id } => forget(&store, index.pool(), id).await?,
        MemoryCommand::Rebuild => {
            let pb = ProgressBar::new(store.head());
            pb.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, eta {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let started = std::time::Instant::now();
            let folded = index
                .rebuild(&store, |seq, head| {
                    pb.set_length(head);
                    pb.set_position(seq);
                })
                .await?;
            pb.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            let indexed = index.stats().await?.indexed;
            println!(
                "rebuilt the memory index with `{}`: {indexed} memories in {secs:.2}s \
                 ({} written, {} forgotten in the log: {:.0} writes/s; {} embedded, {} from the cache)",
                index.embedder().model_id(),
                folded.written,
                folded.forgotten,
                folded.written as f64 / secs.max(1e-9),
                folded.cache.misses,
                folded.cache.hits
            );
        }
        MemoryCommand::Stats => {
            index.catch_up(&store, |_| {}).await?;
            let s = index.stats().await?;
            println!(
                "embedder    {} ({} dims)",
                index.embedder().model_id(),
                index.embedder().dims()
            );
            println!(
                "index       generation {}, model {}, {} dims",
                s.state.generation, s.state.model, s.state.dims
            );
            println!(
                "memories    {} indexed, {} in the read model",
                s.indexed, s.memories
            );
            println!("cache       {} vectors", s.cached);
            println!(
                "position    seq {} of {} (checkpoint stored at {})",
                s.position,
                store.head(),
                s.state.seq
            );
        }
    }
    store.close().await;
    Ok(())
}

/// Forget memory `id`: it must exist in the read model at the version of the `memory`
/// stream the append expects.
async fn forget(store: &LogStore, pool: &sqlx::SqlitePool, id: Uuid) -> Result<()> {
    crate::cli_validated::validated(store, pool, stream::MEMORY, async |version| {
        if views::memory(pool, id).await?.is_none() {
            bail!("no memory {id}");
        }
        let a = store
            .append(
                stream::MEMORY,
                ExpectedVersion::Exact(version),
                vec![NewEvent::new(MemoryForgotten { memory_id: id })],
            )
            .await?;
        println!("forgotten {id} (seq {})", a.first_seq);
        Ok(())
    })
    .await
}
