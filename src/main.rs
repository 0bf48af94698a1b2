//! The `clawos` binary: one executable, many subcommands. The Gateway, its channel child
//! processes, and the operator tools all start here.

mod bench;
mod cli_approvals;
mod cli_backup;
mod cli_channels;
mod cli_chat;
mod cli_completions;
mod cli_cron;
mod cli_devices;
mod cli_doctor;
mod cli_gateway;
mod cli_log;
mod cli_media;
mod cli_memory;
mod cli_models;
mod cli_onboard;
mod cli_pairing;
mod cli_phone_link;
mod cli_replay;
mod cli_routing;
mod cli_secrets;
mod cli_service;
mod cli_usage;
mod cli_validated;
mod debug;
mod first_run;
mod models_pull;

use anyhow::Result;
use clap::{Parser, Subcommand};
use clawos_events::Durability;
use clawos_replay::Home;

/// clawos: a self-hosted personal AI assistant gateway on an append-only event log.
#[derive(Parser)]
#[command(name = "clawos", version, about)]
struct Cli {
    /// State folder (log, projections, config).
    #[arg(long, global = true, env = "CLAWOS_HOME")]
    home: Option<std::path::PathBuf>,
    /// Log durability: `full` (fsync every commit; survives power loss) or `normal`
    /// (survives a process crash).
    #[arg(long, global = true, default_value = "full", env = "CLAWOS_DURABILITY")]
    durability: Durability,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start here: create the state folder and config if missing, run the Gateway with
    /// the terminal channel attached (Ctrl-D or Ctrl-C to leave).
    Up {
        /// Listen address (default from clawos.toml, 127.0.0.1:18789).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Allow a listen address other than loopback (tokens are required either way).
        #[arg(long)]
        allow_remote: bool,
        /// On a first run without a model, download the default one (and the memory
        /// embedder) without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Chat with your agent through the running Gateway (history first, Ctrl-D to leave).
    Chat,
    /// Set up Pi's model provider (the key is tried before it is stored) and a first
    /// channel, asking; run it again to change the answers.
    Onboard,
    /// Run the Gateway daemon in the foreground.
    Gateway {
        /// Listen address (default from clawos.toml, 127.0.0.1:18789).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Allow a listen address other than loopback (tokens are required either way).
        #[arg(long)]
        allow_remote: bool,
    },
    /// Run a channel process (started by the Gateway, not by hand).
    Channel {
        /// Its kind: terminal, webhook, irc, matrix, xmpp, email, telegram, slack,
        /// discord, signal, imessage, whatsapp, whatsapp-web.
        kind: String,
    },
    /// Run an agent's process (started by the Gateway for `isolation = "process"`).
    Agent {
        /// The agent's name in clawos.toml.
        name: String,
    },
    /// Check the configuration.
    #[command(subcommand)]
    Config(cli_gateway::ConfigCommand),
    /// What runs: the Gateway, channels, restarts, delivery backlog.
    Status,
    /// What is wrong and how to fix it.
    Doctor,
    /// Bindings: which agent gets which messages.
    #[command(subcommand)]
    Bind(cli_routing::BindCommand),
    /// Channels: add one, asking for its settings.
    #[command(subcommand)]
    Channels(cli_channels::ChannelsCommand),
    /// Identities: one person across channels.
    #[command(subcommand)]
    Identity(cli_routing::IdentityCommand),
    /// Approve senders who received a pairing code.
    #[command(subcommand)]
    Pairing(cli_pairing::PairingCommand),
    /// Devices on /ws (Control UIs, companion apps, nodes): list, approve, reject, revoke.
    #[command(subcommand)]
    Devices(cli_devices::DevicesCommand),
    /// Scheduled prompts.
    #[command(subcommand)]
    Cron(cli_cron::CronCommand),
    /// Answer actions an agent asked approval for (shell policy `ask`).
    #[command(subcommand)]
    Approvals(cli_approvals::ApprovalsCommand),
    /// Local GGUF models (Pi's embedded default).
    #[command(subcommand)]
    Models(cli_models::ModelsCommand),
    /// Administration.
    #[command(subcommand)]
    Admin(cli_gateway::AdminCommand),
    /// The vault: provider API keys, channel secrets, the admin token (encrypted).
    #[command(subcommand)]
    Secrets(cli_secrets::SecretsCommand),
    /// Long-term memories: add, search, list, forget; rebuild and inspect the index.
    #[command(subcommand)]
    Memory(cli_memory::MemoryCommand),
    /// Attachment bytes: list what the log references, check none is missing, gc.
    #[command(subcommand)]
    Media(cli_media::MediaCommand),
    /// Rebuild, verify, time-travel, fork and export from the log.
    #[command(subcommand)]
    Replay(cli_replay::ReplayCommand),
    /// Read the raw log.
    #[command(subcommand)]
    Log(cli_log::LogCommand),
    /// What an agent did in a session, in order.
    Audit {
        /// Session id.
        #[arg(long)]
        session: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks (results go to BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Tokens and cost of LLM calls per agent, session, identity or model.
    Usage {
        /// How far back (e.g. `24h`, `7d`); default: since the first of this month, UTC.
        #[arg(long)]
        since: Option<humantime::Duration>,
        /// Group by `agent`, `session`, `identity` or `model`.
        #[arg(long, default_value = "agent")]
        by: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A consistent copy of the log, the vault, the configuration and the media into a new
    /// folder, taken while the Gateway runs.
    Backup {
        /// The folder to create (it must not exist or be empty).
        path: std::path::PathBuf,
        /// Put the vault's key in the backup too (`vault.key`, mode 0600): needed to
        /// restore on another machine or into another folder; keep such a backup safe.
        #[arg(long)]
        include_key: bool,
    },
    /// Restore a backup into this (new) state folder: check every file, verify the log's
    /// hash chain, rebuild the projections.
    Restore {
        /// The backup folder.
        path: std::path::PathBuf,
    },
    /// Run the Gateway as a user service (systemd --user, launchd on macOS).
    #[command(subcommand)]
    Service(cli_service::ServiceCommand),
    /// Shell completions, generated from this CLI: `clawos completions bash >
    /// ~/.local/share/bash-completion/completions/clawos`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Man pages, generated from this CLI: the main page on stdout, or every page into
    /// `--out DIR` (`clawos.1`, `clawos-devices-pair.1`, ...).
    Man {
        /// Write every page into this folder (e.g. ~/.local/share/man/man1).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Tools for tests (hidden).
    #[command(subcommand, hide = true)]
    Debug(debug::DebugCommand),
}

/// Let a command that prints end quietly when its reader goes away (`clawos log tail |
/// head`), as Unix tools do, instead of panicking on a broken pipe. Rust ignores SIGPIPE
/// at start; the long-running commands (Gateway, channels, chat) keep it ignored and see
/// `EPIPE` as an error they handle.
fn default_sigpipe() {
    // SAFETY: called once at start, before any thread is spawned; restoring the default
    // disposition of one signal has no other effect on this process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLAWOS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        Command::Up { .. }
            | Command::Gateway { .. }
            | Command::Chat
            | Command::Channel { .. }
            | Command::Agent { .. }
    ) {
        default_sigpipe();
    }
    let home = cli.home.map(Home::new).unwrap_or_else(Home::from_env);
    // A channel process waits on two sockets: one thread is all it needs, and it keeps
    // the process small (BENCHMARKS.md, idle RSS of a channel).
    let runtime = if matches!(cli.command, Command::Channel { .. }) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else if matches!(cli.command, Command::Agent { .. }) {
        // An agent process serves one agent: one worker (a local model generates on a
        // blocking thread of its own).
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Up {
                listen,
                allow_remote,
                yes,
            } => cli_gateway::up(&home, listen, allow_remote, yes).await,
            Command::Gateway {
                listen,
                allow_remote,
            } => cli_gateway::gateway(&home, listen, allow_remote).await,
            Command::Chat => cli_chat::chat(&home).await,
            Command::Onboard => cli_onboard::onboard(&home, cli.durability).await,
            Command::Channel { kind } => cli_gateway::channel(&kind).await,
            Command::Agent { name } => cli_gateway::agent(&home, &name).await,
            Command::Config(c) => cli_gateway::config(&home, c),
            Command::Status => cli_gateway::status(&home).await,
            Command::Doctor => cli_gateway::doctor(&home, cli.durability).await,
            Command::Bind(c) => cli_routing::bind(&home, cli.durability, c).await,
            Command::Channels(c) => cli_channels::run(&home, cli.durability, c).await,
            Command::Identity(c) => cli_routing::identity(&home, cli.durability, c).await,
            Command::Admin(c) => cli_gateway::admin(&home, cli.durability, c).await,
            Command::Secrets(c) => cli_secrets::run(&home, cli.durability, c).await,
            Command::Models(c) => cli_models::models(&home, c).await,
            Command::Approvals(c) => cli_approvals::approvals(&home, cli.durability, c).await,
            Command::Cron(c) => cli_cron::cron(&home, cli.durability, c).await,
            Command::Pairing(c) => cli_pairing::pairing(&home, cli.durability, c).await,
            Command::Devices(c) => cli_devices::devices(&home, cli.durability, c).await,
            Command::Memory(c) => cli_memory::run(&home, cli.durability, c).await,
            Command::Media(c) => cli_media::run(&home, cli.durability, c).await,
            Command::Replay(c) => cli_replay::run(&home, cli.durability, c).await,
            Command::Log(c) => cli_log::run(&home, cli.durability, c).await,
            Command::Audit { session, json } => {
                cli_replay::audit(&home, cli.durability, &session, json).await
            }
            Command::Bench(c) => bench::run(c).await,
            Command::Service(c) => cli_service::service(&home, c),
            Command::Usage { since, by, json } => {
                cli_usage::usage(&home, cli.durability, since, &by, json).await
            }
            Command::Backup { path, include_key } => {
                cli_backup::backup(&home, &path, include_key).await
            }
            Command::Restore { path } => cli_backup::restore(&home, &path).await,
            Command::Completions { shell } => {
                use clap::CommandFactory;
                cli_completions::completions(&mut Cli::command(), shell, &mut std::io::stdout());
                Ok(())
            }
            Command::Man { out } => {
                use clap::CommandFactory;
                match out {
                    Some(dir) => {
                        let n = cli_completions::man_pages(&Cli::command(), &dir)?;
                        println!("{n} man pages in {}", dir.display());
                        Ok(())
                    }
                    None => cli_completions::man_page(&Cli::command(), &mut std::io::stdout()),
                }
            }
            Command::Debug(c) => debug::run(&home, cli.durability, c).await,
        }
    })
}
