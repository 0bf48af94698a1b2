//! `clawos bench ...`: the benchmarks of BENCHMARKS.md. Every figure is paired with a
//! baseline measured in the same run on the same machine. This module only dispatches:
//! each benchmark has its own file, and what they share (synthetic logs, percentiles, a
//! Gateway process to measure) is in `common`, which is all they import.

mod admin;
mod channels;
mod common;
mod gateway;
mod local;
mod log;
mod matrix;
mod memory;
mod prompt;
mod turn;
mod ws;
mod xmpp;

use anyhow::Result;
use clap::Subcommand;
use clawos_events::Durability;

/// `clawos bench ...`
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Append throughput and latency, rebuild and state-at.
    Log {
        /// Events in the rebuild log.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Appends per throughput run.
        #[arg(long, default_value_t = 20_000)]
        appends: u64,
        /// Durability mode to measure.
        #[arg(long, default_value = "full")]
        durability: Durability,
    },
    /// The size of Pi's request for a one-word message.
    Prompt,
    /// Tokens per second of the local GGUF provider.
    Local {
        /// The .gguf file.
        model: std::path::PathBuf,
        /// Tokens to generate.
        #[arg(long, default_value_t = 64)]
        tokens: usize,
    },
    /// The overhead of one agent turn outside the LLM in a long session.
    Turn {
        /// Messages already in the session.
        #[arg(long, default_value_t = 10_000)]
        messages: u64,
        /// Timed turns.
        #[arg(long, default_value_t = 300)]
        turns: u64,
        /// Durability mode of the Gateway.
        #[arg(long, default_value = "full")]
        durability: Durability,
    },
    /// Latency of the admin API's first event page and state-at on a big log.
    Admin {
        /// Events in the log.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Requests per measured endpoint (the whole-log state-at runs 3 times).
        #[arg(long, default_value_t = 30)]
        requests: usize,
    },
    /// The IRC, Matrix and/or XMPP channel processes beside the webhook one: ready time,
    /// idle memory, round trips (needs the servers: `tests/peers/irc/start.sh`, ...).
    Channels {
        /// The IRC server, plaintext (`127.0.0.1:PORT`).
        #[arg(long)]
        irc: Option<std::net::SocketAddr>,
        /// A Matrix homeserver (`http://127.0.0.1:PORT`) with the accounts `benchbot` and
        /// `benchuser`, password `bench-password-123`.
        #[arg(long)]
        matrix: Option<String>,
        /// An XMPP server's client port (`127.0.0.1:PORT`, STARTTLS) with the accounts
        /// `benchbot` and `benchuser`, password `bench-password-123`.
        #[arg(long, value_name = "HOST:PORT")]
        xmpp: Option<String>,
        /// The XMPP server's certificate (PEM), to trust for STARTTLS when it is
        /// self-signed (`tests/peers/xmpp/start.sh` writes `DIR/tls.crt`).
        #[arg(long, value_name = "FILE")]
        xmpp_ca: Option<std::path::PathBuf>,
        /// The XMPP accounts' domain.
        #[arg(long, default_value = "clawos.test")]
        xmpp_domain: String,
        /// Round trips per channel.
        #[arg(long, default_value_t = 300)]
        messages: usize,
    },
    /// Start time, round trips through a webhook channel process, memory.
    Gateway {
        /// Messages per round-trip run.
        #[arg(long, default_value_t = 2000)]
        messages: u64,
        /// Offered rate of the round-trip run (messages/s).
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Events in the big log for the start-time measurement.
        #[arg(long, default_value_t = 1_000_000)]
        big_log: u64,
    },
    /// `chat.send` → final `chat` event over `/ws` (echo agent; Pi with a fake LLM), beside
    /// the webhook round trip of the same Gateway.
    Ws {
        /// Sequential turns per path.
        #[arg(long, default_value_t = 200)]
        turns: usize,
        /// Durability mode of the Gateway.
        #[arg(long, default_value = "full")]
        durability: Durability,
    },
    /// Memory recall latency over a large index, rebuild throughput.
    Memory {
        /// Memories in the index.
        #[arg(long, default_value_t = 100_000)]
        memories: u64,
        /// Recalls measured.
        #[arg(long, default_value_t = 200)]
        queries: u64,
    },
}

/// Run a benchmark.
pub async fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Log {
            events,
            appends,
            durability,
        } => log::bench_log(events, appends, durability).await,
        BenchCommand::Prompt => prompt::bench_prompt(),
        BenchCommand::Local { model, tokens } => local::bench_local(&model, tokens).await,
        BenchCommand::Gateway {
            messages,
            rate,
            big_log,
        } => gateway::bench_gateway(messages, rate, big_log).await,
        BenchCommand::Turn {
            messages,
            turns,
            durability,
        } => turn::bench_turn(messages, turns, durability).await,
        BenchCommand::Ws { turns, durability } => ws::bench_ws(turns, durability).await,
        BenchCommand::Memory { memories, queries } => memory::bench_memory(memories, queries).await,
        BenchCommand::Admin { events, requests } => admin::bench_admin(events, requests).await,
        BenchCommand::Channels {
            irc,
            matrix,
            xmpp,
            xmpp_ca,
            xmpp_domain,
            messages,
        } => {
            let xmpp = xmpp.map(|addr| xmpp::XmppServer {
                addr,
                ca: xmpp_ca,
                domain: xmpp_domain,
            });
            channels::bench_channels(irc, matrix, xmpp, messages).await
        }
    }
}
