//! The Gateway: the daemon's one shared object. It owns the log, the read models, the
//! routing state, the turn queues and the channel connections, and exposes operations on
//! them; its fields are private to this module tree.
//!
//! # Layout
//! - `mod.rs` (here): the state, `open`, and small read-only accessors.
//! - [`ingest`]: an inbound message or hook, from dedupe to its committed events.
//! - [`decide`]: the pure routing decision for an inbound message (no I/O).
//! - [`turn`]: per-session queues and the turn that answers a message.
//! - [`recorder`]: the services a running turn records through.
//! - [`delivery`]: what a channel must receive, acks, and the stream of deliveries.
//! - [`recovery`]: what a previous run left undone.
//! - [`operator`]: what `/ws` clients do to sessions: a message into the session a key
//!   names, the session of a key, aborting a running turn.

pub mod decide;
pub mod delivery;
pub mod ingest;
pub mod operator;
pub mod recorder;
pub mod recovery;
pub mod turn;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use clawos_agents::Agent;
use clawos_channels::media::MediaStore;
use clawos_events::LogStore;
use clawos_projections::index::MemoryIndex;
use clawos_projections::{projection, views, Runner};
use clawos_replay::Home;
use sqlx::SqlitePool;
use tokio::sync::{broadcast, mpsc, watch};

use recorder::Delta;

use crate::config::Config;
use crate::connections::Connections;
use crate::follower::{self, Projected};
use crate::metrics::Metrics;
use crate::routing::{self, RoutingState};
use crate::tokens;
use crate::vault::Vault;
use crate::KernelError;

/// A turn waiting in a session's queue: the agent and the seq of the event it answers.
type QueuedTurn = (String, u64);

/// A turn that can be stopped: its id, and the sender that stops it with a reason.
pub struct RunningTurn {
    /// The turn.
    pub turn: uuid::Uuid,
    /// The trigger's run id (the `chat.send` idempotency key, or the trigger's event id).
    pub run: String,
    /// Sends the reason to stop.
    pub stop: watch::Sender<Option<String>>,
}

/// The daemon's shared state. Construct it with [`Gateway::open`].
pub struct Gateway {
    home: Home,
    config: Config,
    log: LogStore,
    read_models: SqlitePool,
    projected: Projected,
    memory: MemoryIndex,
    memory_projected: Projected,
    routing: tokio::sync::Mutex<RoutingState>,
    agents: HashMap<String, Arc<dyn Agent>>,
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<QueuedTurn>>>,
    connections: Connections,
    metrics: Metrics,
    admin_token: String,
    vault: Arc<Vault>,
    shutdown: watch::Sender<bool>,
    deltas: broadcast::Sender<Delta>,
    media: MediaStore,
    presence: crate::presence::Presence,
    nodes: Arc<crate::nodes::Nodes>,
    token_mint: crate::devices::TokenMint,
    started: std::time::Instant,
    running: Mutex<HashMap<String, RunningTurn>>,
}

impl Gateway {
    /// Open the log and the read models, catch them up, seed routing from them, open the
    /// memory index, and start the followers of both. Agents are built by the caller.
    pub async fn open(
        home: Home,
        config: Config,
        agents: HashMap<String, Arc<dyn Agent>>,
        vault: Arc<Vault>,
    ) -> Result<Arc<Gateway>, KernelError> {
        let durability = config
            .gateway
            .durability
            .parse()
            .map_err(KernelError::Config)?;
        let log = home.open_log(durability).await?;
        let pool = home.open_projections().await?;
        let mut runner = Runner::open(pool.clone(), projection::all()).await?;
        runner.catch_up(&log, |_| {}).await?;
        let (pos_tx, pos_rx) = watch::channel(runner.position());
        let (seed, seeded_at) = views::load_routing_seed_at(&pool).await?;
        let mut routing = RoutingState::seeded(seed, seeded_at);
        routing::catch_up(&log, &mut routing).await?;
        let (memory, opened) =
            crate::memory::open_index(&home, &config.memory, pool.clone()).await?;
        match &opened {
            clawos_projections::index::Opened::Repaired(reason) => {
                tracing::warn!(%reason, "memory index was damaged; rebuilding it from the log")
            }
            clawos_projections::index::Opened::OtherModel(old) => tracing::info!(
                old = %old,
                new = memory.embedder().model_id(),
                "memory index built by another embedder; re-embedding in the background"
            ),
            _ => {}
        }
        if let Err(e) = memory.catch_up(&log, |_| {}).await {
            tracing::warn!(error = %e, "memory index could not catch up at start; retrying in the background");
        }
        let (memory_tx, memory_rx) = watch::channel(memory.position().await?);
        let (shutdown, _) = watch::channel(false);
        let admin_token = vault.admin_token(&log).await?.as_str().to_string();
        let token_mint = crate::devices::TokenMint::new(&admin_token);
        let media = MediaStore::new(home.media_dir(), config.media.max_bytes);
        let gw = Arc::new(Gateway {
            home,
            config,
            log: log.clone(),
            read_models: pool,
            projected: Projected::new(pos_rx),
            memory: memory.clone(),
            memory_projected: Projected::new(memory_rx),
            routing: tokio::sync::Mutex::new(routing),
            agents,
            queues: Mutex::new(HashMap::new()),
            connections: Connections::default(),
            metrics: Metrics::default(),
            admin_token,
            vault,
            shutdown,
            deltas: broadcast::channel(1024).0,
            media,
            presence: crate::presence::Presence::default(),
            nodes: Arc::new(crate::nodes::Nodes::default()),
            token_mint,
            started: std::time::Instant::now(),
            running: Mutex::new(HashMap::new()),
        });
        tokio::spawn(memory.follow(log.clone(), memory_tx, gw.shutdown.subscribe()));
        tokio::spawn(follower::follow(
            runner,
            log,
            pos_tx,
            gw.shutdown.subscribe(),
        ));
        Ok(gw)
    }

    /// The media store (attachment bytes).
    pub fn media(&self) -> &MediaStore {
        &self.media
    }

    /// The state folder.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The log (append and read).
    pub fn log(&self) -> &LogStore {
        &self.log
    }

    /// The read models' database, for `clawos_projections::views`. Wait with
    /// [`Gateway::projected_through`] for what a read must see.
    pub fn read_models(&self) -> &SqlitePool {
        &self.read_models
    }

    /// The memory index (vectors + keywords).
    pub fn memory_index(&self) -> &MemoryIndex {
        &self.memory
    }

    /// Counters for `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The vault (secrets sealed under the master key).
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Channel tokens and heartbeats.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Whether `token` is the admin token (constant time). A refusal is the caller's to
    /// log and count.
    pub fn admits_admin(&self, token: &str) -> bool {
        tokens::same(token, &self.admin_token)
    }

    /// Who is connected on `/ws`.
    pub fn presence(&self) -> &crate::presence::Presence {
        &self.presence
    }

    /// Connected nodes.
    pub fn nodes(&self) -> &Arc<crate::nodes::Nodes> {
        &self.nodes
    }

    /// The mint of device tokens.
    pub fn token_mint(&self) -> &crate::devices::TokenMint {
        &self.token_mint
    }

    /// How long the Gateway has run.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Fragments of replies while their turns stream them.
    pub fn subscribe_deltas(&self) -> broadcast::Receiver<Delta> {
        self.deltas.subscribe()
    }

    /// Turns true when the Gateway shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Start shutting down: every task watching [`Gateway::shutdown_signal`] ends.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Wait until the read models have applied `seq`.
    pub async fn projected_through(&self, seq: u64) {
        self.projected.through(seq).await
    }

    /// Seq the read models have applied.
    pub fn projected(&self) -> u64 {
        self.projected.position()
    }

    /// Decide from the read models and append to `stream` only if it did not move since
    /// (see [`crate::validated::decide_and_append`]).
    pub async fn decide_and_append<T, E, F>(
        &self,
        stream: &str,
        decide: impl FnMut() -> F,
    ) -> Result<Option<(T, Option<clawos_events::Appended>)>, E>
    where
        E: From<clawos_events::LogError>,
        F: std::future::Future<Output = Result<(Vec<clawos_events::NewEvent>, T), E>>,
    {
        crate::validated::decide_and_append(&self.log, &self.projected, stream, decide).await
    }
}
