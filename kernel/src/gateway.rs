//! The Gateway: the shared state of the daemon and its core decisions: ingest (route an
//! inbound message into a session), dispatch (run agent turns, one at a time per session),
//! and what a channel has yet to receive.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clawos_agents::{Agent, AgentError, ContextMessage, TurnInput, TurnRecorder};
use clawos_channels::protocol::{Delivery, Inbound};
use clawos_events::{
    inbound_dedupe_key, stream, AgentTurnFailed, AgentTurnFinished, AgentTurnStarted,
    CommandReceived, DeliveryAcked, EventPayload, ExpectedVersion, LogStore, MessageReceived,
    MessageSent, NewEvent, PairingRequested,
};
use clawos_projections::{projection, views, Runner};
use clawos_replay::Home;
use sqlx::SqlitePool;
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;

use crate::config::{Config, DmPolicy};
use crate::metrics::Metrics;
use crate::routing::{MessageFacts, RoutingState};
use crate::KernelError;

/// Most live pairing codes one channel holds at a time: a flood of unknown senders gets
/// no more codes (and no replies) until some expire or are approved.
pub const MAX_PENDING_PAIRINGS: usize = 16;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long a turn waits for a person to approve an action.
pub const APPROVAL_TIMEOUT: Duration = Duration::from_secs(240);

/// The dedupe key of an approval's answer: the first answer is the only one.
pub fn approval_key(id: Uuid) -> String {
    format!("approval\u{1f}{id}")
}

/// Most messages of history given to an agent turn.
pub const CONTEXT_MESSAGES: u32 = 200;

/// Longest an agent turn may run before it is failed.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(300);

/// Outcome of ingesting an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// Seq of the `MessageReceived` event (the original one for a re-send).
    pub seq: u64,
    /// It was a re-send.
    pub duplicate: bool,
}

/// The daemon's shared state.
pub struct Gateway {
    /// The state folder.
    pub home: Home,
    /// The validated configuration.
    pub config: Config,
    /// The log.
    pub store: LogStore,
    /// The projection database.
    pub projections: SqlitePool,
    projected: watch::Receiver<u64>,
    /// The memory index (vectors + keywords) and the seq it has applied.
    pub memory: clawos_projections::index::MemoryIndex,
    memory_projected: watch::Receiver<u64>,
    routing: tokio::sync::Mutex<RoutingState>,
    agents: HashMap<String, Arc<dyn Agent>>,
    sessions: Mutex<HashMap<String, mpsc::UnboundedSender<(String, u64)>>>,
    /// Channel name -> token of the process currently allowed to speak for it.
    pub tokens: Mutex<HashMap<String, String>>,
    /// Channel name -> when it was last heard from.
    pub last_seen: Mutex<HashMap<String, Instant>>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Token for `/api` and `/ws`.
    pub admin_token: String,
    /// The vault (secrets sealed under the master key).
    pub vault: Arc<crate::vault::Vault>,
    /// Turns true when the Gateway shuts down.
    pub shutdown: watch::Sender<bool>,
    /// Reply fragments of running turns.
    pub deltas: broadcast::Sender<Delta>,
}

struct SessionRecorder {
    store: LogStore,
    projections: SqlitePool,
    session: String,
    identity: String,
    agent: String,
    stream: String,
    turn: Uuid,
    cause: Uuid,
    trigger_seq: u64,
    reply_channel: String,
    reply_key: String,
    deltas: broadcast::Sender<Delta>,
    projected: watch::Receiver<u64>,
    memory: clawos_projections::index::MemoryIndex,
    memory_projected: watch::Receiver<u64>,
}

impl SessionRecorder {
    async fn append(
        &self,
        stream: &str,
        payload: impl Into<EventPayload>,
    ) -> Result<u64, AgentError> {
        let e = NewEvent::new(payload.into())
            .caused_by(self.cause)
            .correlated(self.turn);
        self.store
            .append(stream, ExpectedVersion::Any, vec![e])
            .await
            .map(|a| a.last_seq)
            .map_err(|e| AgentError::Record(e.to_string()))
    }

    async fn wait_projected(&self) {
        // A service reads the projections once they have applied everything this turn
        // wrote: the same watch the Gateway's own reads wait on.
        let head = self.store.head();
        let mut projected = self.projected.clone();
        let _ = projected.wait_for(|p| *p >= head).await;
    }

    async fn wait_memory_indexed(&self) {
        // The index embeds (maybe over the network): wait for it a little, then serve
        // what it has; the read model still decides what exists.
        let head = self.store.head();
        let mut indexed = self.memory_projected.clone();
        let _ = tokio::time::timeout(MEMORY_INDEX_WAIT, indexed.wait_for(|p| *p >= head)).await;
    }
}

/// Longest a recall waits for the memory index to catch up with the log.
pub const MEMORY_INDEX_WAIT: Duration = Duration::from_secs(5);

fn storage(e: impl std::fmt::Display) -> AgentError {
    AgentError::Record(e.to_string())
}

/// A fragment of a reply while it streams (not recorded; the final text is).
#[derive(Debug, Clone)]
pub struct Delta {
    /// Seq of the message the turn answers.
    pub trigger_seq: u64,
    /// Channel the answer goes to.
    pub channel: String,
    /// External id of the message it answers (empty for hooks and cron).
    pub reply_key: String,
    /// The turn.
    pub turn: Uuid,
    /// The fragment.
    pub text: String,
}

#[async_trait]
impl TurnRecorder for SessionRecorder {
    async fn record(&self, payload: EventPayload) -> Result<u64, AgentError> {
        let e = NewEvent::new(payload)
            .caused_by(self.cause)
            .correlated(self.turn);
        self.store
            .append(&self.stream, ExpectedVersion::Any, vec![e])
            .await
            .map(|a| a.last_seq)
            .map_err(|e| AgentError::Record(e.to_string()))
    }

    async fn remember(&self, text: &str, tags: &[String]) -> Result<Uuid, AgentError> {
        let id = Uuid::now_v7();
        self.append(
            stream::MEMORY,
            clawos_events::MemoryWritten {
                memory_id: id,
                identity: Some(self.identity.clone()),
                agent: Some(self.agent.clone()),
                text: text.to_string(),
                tags: tags.to_vec(),
                source_seq: Some(self.trigger_seq),
            },
        )
        .await?;
        Ok(id)
    }

    async fn forget(&self, id: Uuid) -> Result<bool, AgentError> {
        self.wait_projected().await;
        let mine: Option<String> = sqlx::query_scalar(
            "SELECT memory_id FROM memories WHERE memory_id = ? AND identity = ?",
        )
        .bind(id.to_string())
        .bind(&self.identity)
        .fetch_optional(&self.projections)
        .await
        .map_err(storage)?;
        if mine.is_none() {
            return Ok(false);
        }
        self.append(
            stream::MEMORY,
            clawos_events::MemoryForgotten { memory_id: id },
        )
        .await?;
        Ok(true)
    }

    async fn recall(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<clawos_agents::Recalled>, AgentError> {
        self.wait_projected().await;
        self.wait_memory_indexed().await;
        let scope = clawos_projections::index::Scope {
            identity: Some(self.identity.clone()),
            agent: Some(self.agent.clone()),
        };
        let hits = crate::memory::recall(&self.memory, &scope, query, limit)
            .await
            .map_err(storage)?;
        Ok(hits
            .into_iter()
            .filter_map(crate::memory::recalled)
            .collect())
    }

    async fn schedule(&self, schedule: &str, prompt: &str) -> Result<Uuid, AgentError> {
        crate::cron::parse(schedule).map_err(AgentError::Refused)?;
        if prompt.trim().is_empty() {
            return Err(AgentError::Refused("a job needs a prompt".into()));
        }
        let id = Uuid::now_v7();
        self.append(
            &self.stream,
            clawos_events::CronScheduled {
                job_id: id,
                session_id: self.session.clone(),
                schedule: schedule.to_string(),
                prompt: prompt.to_string(),
            },
        )
        .await?;
        Ok(id)
    }

    async fn cron_jobs(&self) -> Result<Vec<String>, AgentError> {
        self.wait_projected().await;
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT job_id, schedule, prompt FROM cron_jobs WHERE session_id = ? AND cancelled = 0",
        )
        .bind(&self.session)
        .fetch_all(&self.projections)
        .await
        .map_err(storage)?;
        Ok(rows
            .into_iter()
            .map(|(id, schedule, prompt)| format!("{id} {schedule}: {prompt}"))
            .collect())
    }

    async fn cancel_cron(&self, id: Uuid) -> Result<bool, AgentError> {
        self.wait_projected().await;
        let found: Option<String> = sqlx::query_scalar(
            "SELECT job_id FROM cron_jobs WHERE job_id = ? AND session_id = ? AND cancelled = 0",
        )
        .bind(id.to_string())
        .bind(&self.session)
        .fetch_optional(&self.projections)
        .await
        .map_err(storage)?;
        if found.is_none() {
            return Ok(false);
        }
        self.append(&self.stream, clawos_events::CronCancelled { job_id: id })
            .await?;
        Ok(true)
    }

    async fn approve(&self, action: &str) -> Result<bool, AgentError> {
        let id = Uuid::now_v7();
        let from = self.store.head() + 1;
        let mut sub = self.store.subscribe(from);
        self.append(
            stream::APPROVALS,
            clawos_events::ApprovalRequested {
                approval_id: id,
                session_id: self.session.clone(),
                turn_id: self.turn,
                action: action.to_string(),
            },
        )
        .await?;
        tracing::warn!(%id, %action, "waiting for approval: `clawos approvals approve {id}`");
        let wait = async {
            loop {
                let e = sub.next().await.map_err(storage)?;
                if let Ok(EventPayload::ApprovalAnswered(a)) = e.decode() {
                    if a.approval_id == id {
                        return Ok::<bool, AgentError>(a.approved);
                    }
                }
            }
        };
        match tokio::time::timeout(APPROVAL_TIMEOUT, wait).await {
            Ok(answer) => answer,
            Err(_) => {
                // Nobody answered: record the refusal (unless an answer won the race).
                let a = self
                    .store
                    .append(
                        stream::APPROVALS,
                        ExpectedVersion::Any,
                        vec![NewEvent::new(clawos_events::ApprovalAnswered {
                            approval_id: id,
                            approved: false,
                            by: "timeout".into(),
                        })
                        .dedupe(approval_key(id))],
                    )
                    .await
                    .map_err(storage)?;
                if !a.duplicate {
                    return Ok(false);
                }
                match self
                    .store
                    .get(a.first_seq)
                    .await
                    .map_err(storage)?
                    .map(|e| e.decode())
                {
                    Some(Ok(EventPayload::ApprovalAnswered(x))) => Ok(x.approved),
                    _ => Ok(false),
                }
            }
        }
    }

    async fn session_command(&self, command: &str) -> Result<String, AgentError> {
        if !crate::commands::is_command(command) {
            return Err(AgentError::Refused(format!(
                "`{command}` is not a session command"
            )));
        }
        self.wait_projected().await;
        let outcome = crate::commands::run(&self.projections, &self.session, command, None)
            .await
            .map_err(storage)?;
        if !outcome.events.is_empty() {
            let events = outcome
                .events
                .into_iter()
                .map(|e| e.caused_by(self.cause).correlated(self.turn))
                .collect();
            self.store
                .append(&self.stream, ExpectedVersion::Any, events)
                .await
                .map_err(storage)?;
        }
        Ok(outcome.answer)
    }

    fn delta(&self, text: &str) {
        let _ = self.deltas.send(Delta {
            trigger_seq: self.trigger_seq,
            channel: self.reply_channel.clone(),
            reply_key: self.reply_key.clone(),
            turn: self.turn,
            text: text.to_string(),
        });
    }
}

impl Gateway {
    /// Open the log and projections, catch the projections up, load routing state, and
    /// start the projection follower. Agents are built from the configuration.
    pub async fn open(
        home: Home,
        config: Config,
        agents: HashMap<String, Arc<dyn Agent>>,
        vault: Arc<crate::vault::Vault>,
    ) -> Result<Arc<Gateway>, KernelError> {
        let durability = config
            .gateway
            .durability
            .parse()
            .map_err(KernelError::Config)?;
        let store = home.open_log(durability).await?;
        let pool = home.open_projections().await?;
        let mut runner = Runner::open(pool.clone(), projection::all()).await?;
        runner.catch_up(&store, |_| {}).await?;
        let (pos_tx, pos_rx) = watch::channel(runner.position());
        let routing = load_routing(&store, &pool, runner.position()).await?;
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
        if let Err(e) = memory.catch_up(&store, |_| {}).await {
            tracing::warn!(error = %e, "memory index could not catch up at start; retrying in the background");
        }
        let (memory_tx, memory_rx) = watch::channel(memory.position().await?);
        let (shutdown, _) = watch::channel(false);
        let admin_token = vault.admin_token(&store).await?.as_str().to_string();
        let gw = Arc::new(Gateway {
            home,
            config,
            store: store.clone(),
            projections: pool,
            projected: pos_rx,
            memory: memory.clone(),
            memory_projected: memory_rx,
            routing: tokio::sync::Mutex::new(routing),
            agents,
            sessions: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            last_seen: Mutex::new(HashMap::new()),
            metrics: Metrics::default(),
            admin_token,
            vault,
            shutdown,
            deltas: broadcast::channel(1024).0,
        });
        tokio::spawn(memory.follow(store.clone(), memory_tx, gw.shutdown.subscribe()));
        tokio::spawn(follow_projections(
            runner,
            store,
            pos_tx,
            gw.shutdown.subscribe(),
        ));
        Ok(gw)
    }

    /// Wait until the projections have applied `seq`.
    pub async fn projected_through(&self, seq: u64) {
        let mut rx = self.projected.clone();
        let _ = rx.wait_for(|p| *p >= seq).await;
    }

    /// Seq the projections have applied.
    pub fn projected(&self) -> u64 {
        *self.projected.borrow()
    }

    /// Route an inbound message from `channel` into a session and start a turn for it.
    /// Resolves after the message is committed; a re-send returns the original seq.
    pub async fn ingest(
        self: &Arc<Self>,
        channel: &str,
        m: Inbound,
    ) -> Result<Ingested, KernelError> {
        let key = inbound_dedupe_key(channel, &m.external_id);
        if let Some(seq) = self.store.find_dedupe(&key).await? {
            return Ok(Ingested {
                seq,
                duplicate: true,
            });
        }
        let mut routing = self.routing.lock().await;
        refresh_routing(&self.store, &mut routing).await?;
        let identity = routing.identity_of(&m.sender);
        if let Some(c) = self.config.channels.get(channel) {
            let allowed = c.allow.iter().any(|a| *a == m.sender || *a == identity);
            match c.policy() {
                DmPolicy::Open => {}
                DmPolicy::Allowlist if allowed => {}
                DmPolicy::Allowlist => {
                    tracing::warn!(%channel, sender = %m.sender, "message refused: sender not on the allowlist");
                    return Ok(Ingested {
                        seq: 0,
                        duplicate: false,
                    });
                }
                DmPolicy::Pairing => {
                    let paired = allowed
                        || routing
                            .paired
                            .contains(&(channel.to_string(), m.sender.clone()));
                    if !paired {
                        return self.request_pairing(&routing, channel, &m).await;
                    }
                }
            }
        }
        let agent = routing.agent_for(
            &MessageFacts {
                identity: &identity,
                sender: &m.sender,
                chat: m.chat.as_deref(),
                channel,
                text: &m.text,
            },
            &self.config.gateway.default_agent,
        );
        let (session, mut events) = routing.session_for(&identity, &agent);
        let branch = routing
            .active_branch
            .get(&session)
            .cloned()
            .unwrap_or_else(|| "main".to_string());
        let new_session = !events.is_empty();
        if !new_session {
            drop(routing);
        }
        let inbound = if crate::commands::is_command(&m.text) {
            NewEvent::new(CommandReceived {
                channel: channel.to_string(),
                external_id: m.external_id,
                sender: m.sender,
                chat: m.chat,
                text: m.text.trim().to_string(),
            })
        } else {
            NewEvent::new(MessageReceived {
                channel: channel.to_string(),
                external_id: m.external_id,
                sender: m.sender,
                chat: m.chat,
                text: m.text,
                attachments: m.attachments,
                branch,
                sent_at_ms: m.sent_at_ms,
            })
        };
        events.push(inbound.dedupe(key));
        let started = Instant::now();
        let appended = self
            .store
            .append(&stream::session(&session), ExpectedVersion::Any, events)
            .await?;
        self.metrics.append(started.elapsed().as_micros() as u64);
        if appended.duplicate {
            return Ok(Ingested {
                seq: appended.first_seq,
                duplicate: true,
            });
        }
        self.metrics.message_in(channel);
        self.dispatch(&session, &agent, appended.last_seq);
        Ok(Ingested {
            seq: appended.last_seq,
            duplicate: false,
        })
    }

    /// An unknown sender under the `pairing` policy: issue a one-time code (at most one
    /// live code per address and [`MAX_PENDING_PAIRINGS`] per channel; it expires after
    /// `gateway.pairing_ttl_secs`) and tell the sender how to get approved. The message
    /// itself is not routed to any agent.
    async fn request_pairing(
        &self,
        routing: &RoutingState,
        channel: &str,
        m: &Inbound,
    ) -> Result<Ingested, KernelError> {
        let now = now_ms();
        let key = (channel.to_string(), m.sender.clone());
        if routing
            .pairing_requests
            .get(&key)
            .is_some_and(|exp| *exp > now)
        {
            tracing::info!(%channel, sender = %m.sender, "pairing code already issued; message held");
            return Ok(Ingested {
                seq: 0,
                duplicate: false,
            });
        }
        let live = routing
            .pairing_requests
            .iter()
            .filter(|((c, _), exp)| c == channel && **exp > now)
            .count();
        if live >= MAX_PENDING_PAIRINGS {
            tracing::warn!(%channel, sender = %m.sender, live, "pairing refused: too many codes pending on this channel");
            self.metrics.auth_refused("pairing");
            return Ok(Ingested {
                seq: 0,
                duplicate: false,
            });
        }
        let code = crate::tokens::pairing_code();
        let ttl_secs = self.config.gateway.pairing_ttl_secs.max(1);
        let expires = now + (ttl_secs * 1000) as i64;
        let text = format!(
            "clawos: this Gateway does not know you yet. Your pairing code is {code}. Ask its \
             owner to run `clawos pairing approve {code}` (valid for {}), then write again.",
            humantime::format_duration(Duration::from_secs(ttl_secs))
        );
        let appended = self
            .store
            .append(
                stream::PAIRING,
                ExpectedVersion::Any,
                vec![
                    NewEvent::new(PairingRequested {
                        channel: channel.to_string(),
                        address: m.sender.clone(),
                        code_hash: crate::tokens::code_hash(&code),
                        expires_at_ms: expires,
                    })
                    .dedupe(inbound_dedupe_key(channel, &m.external_id)),
                    NewEvent::new(MessageSent {
                        delivery_id: Uuid::now_v7(),
                        agent: "clawos".into(),
                        branch: String::new(),
                        channel: channel.to_string(),
                        to: m.sender.clone(),
                        chat: m.chat.clone(),
                        text,
                        in_reply_to: None,
                        reply_key: Some(m.external_id.clone()),
                    }),
                ],
            )
            .await?;
        Ok(Ingested {
            seq: appended.first_seq,
            duplicate: appended.duplicate,
        })
    }

    /// Queue a turn for `session` triggered by event `trigger_seq`. Turns of one session run
    /// one at a time, in order; different sessions run in parallel.
    pub fn dispatch(self: &Arc<Self>, session: &str, agent: &str, trigger_seq: u64) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let tx = sessions.entry(session.to_string()).or_insert_with(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<(String, u64)>();
            let gw = self.clone();
            let session = session.to_string();
            tokio::spawn(async move {
                while let Some((agent, seq)) = rx.recv().await {
                    if let Err(e) = gw.run_turn(&session, &agent, seq).await {
                        tracing::error!(%session, trigger = seq, error = %e, "agent turn could not be recorded");
                    }
                }
            });
            tx
        });
        let _ = tx.send((agent.to_string(), trigger_seq));
    }

    /// Run the turn that answers event `trigger_seq` in `session`, now (the dispatcher calls
    /// it from the session's queue; `clawos bench turn` calls it directly).
    pub async fn run_turn(
        &self,
        session: &str,
        agent_name: &str,
        trigger_seq: u64,
    ) -> Result<(), KernelError> {
        let started = Instant::now();
        self.projected_through(trigger_seq).await;
        let projected = started.elapsed();
        let Some(trigger) = self.store.get(trigger_seq).await? else {
            return Ok(());
        };
        let m = match trigger.decode()? {
            EventPayload::MessageReceived(m) => m,
            EventPayload::CommandReceived(c) => {
                return self.run_command(session, agent_name, &trigger, c).await;
            }
            EventPayload::HookReceived(h) => {
                self.outside_message(session, trigger_seq, h.text).await?
            }
            EventPayload::CronFired(f) => {
                self.outside_message(session, trigger_seq, f.prompt).await?
            }
            _ => return Ok(()),
        };
        let ancestors = views::ancestors(&self.projections, trigger_seq, CONTEXT_MESSAGES).await?;
        let seqs: Vec<u64> = ancestors.iter().map(|a| a.seq).collect();
        let compaction =
            crate::commands::latest_compaction(&self.projections, session, &seqs).await?;
        let covered = compaction.as_ref().map(|(c, _)| *c).unwrap_or(0);
        let history = ancestors
            .into_iter()
            .filter(|msg| msg.seq < trigger_seq && msg.seq > covered)
            .map(|msg| ContextMessage {
                role: msg.role,
                text: msg.text,
            })
            .collect();
        let context_built = started.elapsed();
        let turn = Uuid::now_v7();
        let stream = stream::session(session);
        let start = self
            .store
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![NewEvent::new(AgentTurnStarted {
                    turn_id: turn,
                    agent: agent_name.to_string(),
                    branch: m.branch.clone(),
                    trigger_seq,
                })
                .caused_by(trigger.id)
                .correlated(turn)],
            )
            .await?;
        let _ = start;
        let (identity, _) = self.session_owner(session).await?;
        let recorder = SessionRecorder {
            store: self.store.clone(),
            projections: self.projections.clone(),
            session: session.to_string(),
            identity,
            agent: agent_name.to_string(),
            stream: stream.clone(),
            turn,
            cause: trigger.id,
            trigger_seq,
            reply_channel: m.channel.clone(),
            reply_key: m.external_id.clone(),
            deltas: self.deltas.clone(),
            projected: self.projected.clone(),
            memory: self.memory.clone(),
            memory_projected: self.memory_projected.clone(),
        };
        let input = TurnInput {
            turn_id: turn,
            session_id: session.to_string(),
            branch: m.branch.clone(),
            trigger_seq,
            message: m.text.clone(),
            history,
            summary: compaction.map(|(_, text)| text),
        };
        let result = match self.agents.get(agent_name) {
            None => Err(format!(
                "no agent named `{agent_name}` is configured (see [agents] in clawos.toml)"
            )),
            Some(agent) => {
                match tokio::time::timeout(TURN_TIMEOUT, agent.run_turn(input, &recorder)).await {
                    Ok(Ok(out)) => Ok(out),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("the turn timed out after {TURN_TIMEOUT:?}")),
                }
            }
        };
        let (text, end) = match result {
            Ok(out) => (
                out.reply,
                NewEvent::new(AgentTurnFinished {
                    turn_id: turn,
                    steps: out.steps,
                }),
            ),
            Err(reason) => (
                format!("Sorry, I could not answer: {reason}"),
                NewEvent::new(AgentTurnFailed {
                    turn_id: turn,
                    reason,
                }),
            ),
        };
        let reply = NewEvent::new(MessageSent {
            delivery_id: Uuid::now_v7(),
            agent: agent_name.to_string(),
            branch: m.branch,
            channel: m.channel,
            to: m.sender,
            chat: m.chat,
            text,
            in_reply_to: Some(trigger_seq),
            reply_key: reply_key(&m.external_id),
        })
        .caused_by(trigger.id)
        .correlated(turn);
        // The reply and the end of the turn commit together: a turn is never half-recorded.
        self.store
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![reply, end.caused_by(trigger.id).correlated(turn)],
            )
            .await?;
        self.metrics.turn(started.elapsed().as_micros() as u64);
        tracing::debug!(
            %session,
            projection_wait_us = projected.as_micros() as u64,
            context_us = (context_built - projected).as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "turn recorded"
        );
        Ok(())
    }

    /// The identity and agent of a session.
    async fn session_owner(&self, session: &str) -> Result<(String, String), KernelError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT identity, agent FROM sessions WHERE session_id = ?")
                .bind(session)
                .fetch_optional(&self.projections)
                .await?;
        Ok(row.unwrap_or_default())
    }

    /// A hook's or cron job's text seen as the message a turn answers: on the branch the
    /// projection put it on, answered through the channel the person last wrote from.
    async fn outside_message(
        &self,
        session: &str,
        seq: u64,
        text: String,
    ) -> Result<MessageReceived, KernelError> {
        let branch: Option<String> =
            sqlx::query_scalar("SELECT branch FROM messages WHERE seq = ?")
                .bind(seq as i64)
                .fetch_optional(&self.projections)
                .await?;
        let last: Option<(String, String)> = sqlx::query_as(
            "SELECT channel, address FROM messages WHERE session_id = ? AND role = 'user' \
             AND channel NOT LIKE '@%' ORDER BY seq DESC LIMIT 1",
        )
        .bind(session)
        .fetch_optional(&self.projections)
        .await?;
        let (channel, sender) = last.unwrap_or_default();
        Ok(MessageReceived {
            channel,
            external_id: String::new(),
            sender,
            chat: None,
            text,
            attachments: vec![],
            branch: branch.unwrap_or_else(|| "main".into()),
            sent_at_ms: 0,
        })
    }

    /// Start a turn from an outside system (`POST /hooks/agent`): in the given session, or
    /// in the current session of `identity` (default `hook:NAME`) with the default agent.
    pub async fn hook(
        self: &Arc<Self>,
        hook: &str,
        session_id: Option<String>,
        identity: Option<String>,
        text: String,
    ) -> Result<(u64, String), KernelError> {
        let mut routing = self.routing.lock().await;
        refresh_routing(&self.store, &mut routing).await?;
        let (session, agent, mut events) = match session_id {
            Some(id) => {
                let agent = routing
                    .sessions
                    .iter()
                    .find(|(_, s)| **s == id)
                    .map(|((_, a), _)| a.clone())
                    .ok_or_else(|| KernelError::Config(format!("no session {id}")))?;
                (id, agent, Vec::new())
            }
            None => {
                let identity = identity.unwrap_or_else(|| format!("hook:{hook}"));
                let agent = self.config.gateway.default_agent.clone();
                let (session, start) = routing.session_for(&identity, &agent);
                (session, agent, start)
            }
        };
        events.push(NewEvent::new(clawos_events::HookReceived {
            hook: hook.to_string(),
            session_id: Some(session.clone()),
            text,
        }));
        let appended = self
            .store
            .append(&stream::session(&session), ExpectedVersion::Any, events)
            .await?;
        drop(routing);
        self.dispatch(&session, &agent, appended.last_seq);
        Ok((appended.last_seq, session))
    }

    /// Run a chat command in its session's queue; its effects and its answer commit
    /// together.
    async fn run_command(
        &self,
        session: &str,
        agent_name: &str,
        trigger: &clawos_events::RecordedEvent,
        c: CommandReceived,
    ) -> Result<(), KernelError> {
        let agent = self.agents.get(agent_name).map(|a| a.as_ref());
        let outcome = crate::commands::run(&self.projections, session, &c.text, agent).await?;
        let mut events: Vec<NewEvent> = outcome
            .events
            .into_iter()
            .map(|e| e.caused_by(trigger.id))
            .collect();
        events.push(
            NewEvent::new(MessageSent {
                delivery_id: Uuid::now_v7(),
                agent: "clawos".into(),
                branch: String::new(),
                channel: c.channel,
                to: c.sender,
                chat: c.chat,
                text: outcome.answer,
                in_reply_to: Some(trigger.seq),
                reply_key: reply_key(&c.external_id),
            })
            .caused_by(trigger.id),
        );
        self.store
            .append(&stream::session(session), ExpectedVersion::Any, events)
            .await?;
        Ok(())
    }

    /// Record that `channel` delivered a reply (idempotent).
    pub async fn delivered(&self, channel: &str, delivery_id: Uuid) -> Result<(), KernelError> {
        self.store
            .append(
                &stream::channel(channel),
                ExpectedVersion::Any,
                vec![NewEvent::new(DeliveryAcked {
                    channel: channel.to_string(),
                    delivery_id,
                })
                .dedupe(ack_key(delivery_id))],
            )
            .await?;
        Ok(())
    }

    /// The delivery frame for the `MessageSent` event `e`. The reply carries the key the
    /// channel threads it on; only a reply recorded before schema version 2 has its
    /// trigger read to find it.
    pub async fn delivery_for(
        &self,
        e: &clawos_events::RecordedEvent,
        m: &MessageSent,
    ) -> Result<Delivery, KernelError> {
        let in_reply_to = match (&m.reply_key, m.in_reply_to) {
            (Some(key), _) => Some(key.clone()),
            (None, Some(t)) if e.schema_version < 2 => self.legacy_reply_key(t).await?,
            (None, _) => None,
        };
        Ok(Delivery {
            delivery_id: m.delivery_id,
            to: m.to.clone(),
            chat: m.chat.clone(),
            text: m.text.clone(),
            in_reply_to,
            seq: e.seq,
        })
    }

    /// The external id of the message a version-1 reply answers, read from its trigger.
    async fn legacy_reply_key(&self, trigger: u64) -> Result<Option<String>, KernelError> {
        let Some(e) = self.store.get(trigger).await? else {
            return Ok(None);
        };
        Ok(match e.decode() {
            Ok(EventPayload::MessageReceived(r)) => Some(r.external_id),
            Ok(EventPayload::CommandReceived(c)) => Some(c.external_id),
            _ => None,
        })
    }

    /// Seqs of replies for `channel` that it has not acked, oldest first (as of the
    /// projections' position).
    pub async fn pending_deliveries(&self, channel: &str) -> Result<Vec<u64>, KernelError> {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT d.seq FROM deliveries d LEFT JOIN delivery_acks a \
             ON a.delivery_id = d.delivery_id WHERE d.channel = ? AND a.delivery_id IS NULL \
             ORDER BY d.seq",
        )
        .bind(channel)
        .fetch_all(&self.projections)
        .await?;
        Ok(rows.into_iter().map(|s| s as u64).collect())
    }

    /// Replies not yet acked, over all channels.
    pub async fn delivery_backlog(&self) -> u64 {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM deliveries d LEFT JOIN delivery_acks a \
             ON a.delivery_id = d.delivery_id WHERE a.delivery_id IS NULL",
        )
        .fetch_one(&self.projections)
        .await
        .map(|n| n as u64)
        .unwrap_or(0)
    }

    /// Re-run what a previous run left undone: turns that were running when it stopped are
    /// failed, and every user message without a completed turn gets one. `up_to` is the
    /// log's head when this process opened it: later events belong to this process.
    pub async fn recover(self: &Arc<Self>, up_to: u64) -> Result<usize, KernelError> {
        self.projected_through(up_to).await;
        // Only what a previous process left: messages and turns of this process (appended
        // after `up_to`) are its own queues' business.
        let unanswered: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT m.seq, m.session_id, s.agent FROM messages m \
             JOIN sessions s ON s.session_id = m.session_id \
             WHERE m.role = 'user' AND m.seq <= ?1 AND NOT EXISTS (SELECT 1 FROM audit_turns t \
             WHERE t.trigger_seq = m.seq AND (t.status != 'running' OR t.started_seq > ?1)) \
             ORDER BY m.seq",
        )
        .bind(up_to as i64)
        .fetch_all(&self.projections)
        .await?;
        let running: Vec<(String, String)> = sqlx::query_as(
            "SELECT turn_id, session_id FROM audit_turns \
             WHERE status = 'running' AND started_seq <= ?1",
        )
        .bind(up_to as i64)
        .fetch_all(&self.projections)
        .await?;
        for (turn, session) in running {
            let Ok(turn_id) = Uuid::parse_str(&turn) else {
                continue;
            };
            self.store
                .append(
                    &stream::session(&session),
                    ExpectedVersion::Any,
                    vec![NewEvent::new(AgentTurnFailed {
                        turn_id,
                        reason: "interrupted: the Gateway stopped during the turn; it runs again"
                            .into(),
                    })],
                )
                .await?;
        }
        for (seq, session, agent) in &unanswered {
            self.dispatch(session, agent, *seq as u64);
        }
        Ok(unanswered.len())
    }

    /// Delivery ids already handed out on a connection, to send each once per connection.
    pub fn new_sent_set() -> HashSet<Uuid> {
        HashSet::new()
    }
}

/// The reply key of an answer to a message with this external id (none for hooks and
/// cron, whose triggers have no external id).
fn reply_key(external_id: &str) -> Option<String> {
    (!external_id.is_empty()).then(|| external_id.to_string())
}

/// The dedupe key of a delivery ack: a reply is acked at most once in the log.
pub fn ack_key(delivery_id: Uuid) -> String {
    format!("ack\u{1f}{delivery_id}")
}

async fn follow_projections(
    mut runner: Runner,
    store: LogStore,
    position: watch::Sender<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut head = store.watch_head();
    loop {
        // Each committed batch is published at once: a turn waiting for its message does
        // not also wait for the catch-up's closing read of an empty page.
        match runner
            .catch_up(&store, |seq| {
                position.send_replace(seq);
            })
            .await
        {
            Ok(r) => {
                position.send_replace(r.position);
            }
            Err(e) => {
                tracing::error!(error = %e, "projections stopped: {e}; fix the cause and restart (or `clawos replay rebuild`)");
                return;
            }
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => if *shutdown.borrow() { return },
            // Pick up events appended by other processes (CLI commands).
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// A `bindings` row: id, agent, identity, chat, channel, sender domain, body regex, priority.
type BindingRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// Build routing state from the projections at `position`, then fold the log after it.
async fn load_routing(
    store: &LogStore,
    pool: &SqlitePool,
    position: u64,
) -> Result<RoutingState, KernelError> {
    let mut state = RoutingState {
        position,
        ..RoutingState::default()
    };
    let ids: Vec<(String, String)> =
        sqlx::query_as("SELECT address, identity FROM identity_addresses")
            .fetch_all(pool)
            .await?;
    state.identities.extend(ids);
    let bindings: Vec<BindingRow> =
        sqlx::query_as(
            "SELECT binding_id, agent, identity, chat, channel, sender_domain, body_regex, priority FROM bindings",
        )
        .fetch_all(pool)
        .await?;
    for (id, agent, identity, chat, channel, sender_domain, body_regex, priority) in bindings {
        let set = clawos_events::BindingSet {
            binding_id: id.clone(),
            agent,
            scope: clawos_events::BindingScope {
                identity,
                chat,
                channel,
                sender_domain,
                body_regex,
            },
            priority: priority as i32,
        };
        let regex = set
            .scope
            .body_regex
            .as_deref()
            .and_then(|r| regex::Regex::new(r).ok());
        state
            .bindings
            .insert(id, crate::routing::Binding { set, regex });
    }
    let sessions: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT session_id, identity, agent, active_branch FROM sessions ORDER BY started_seq",
    )
    .fetch_all(pool)
    .await?;
    for (id, identity, agent, branch) in sessions {
        state.active_branch.insert(id.clone(), branch);
        state.sessions.insert((identity, agent), id);
    }
    refresh_routing(store, &mut state).await?;
    Ok(state)
}

/// Fold every event after the routing state's position, including ones other processes
/// appended.
async fn refresh_routing(store: &LogStore, state: &mut RoutingState) -> Result<(), KernelError> {
    loop {
        let page = store.read_from(state.position + 1, 1024).await?;
        if page.is_empty() {
            return Ok(());
        }
        for e in &page {
            state.apply(e);
        }
    }
}
