//! `clawos-kernel`: the Gateway daemon.
//!
//! It sits between channel processes and agents: channels publish inbound messages over the
//! `/bus` WebSocket, the router picks a session and an agent, the dispatcher runs the turn,
//! and replies flow back from each channel's delivery cursor. Every step is an event.
//!
//! # Layout
//! - [`daemon`]: `run`: listen, start every task, stop them all.
//! - [`assembly`]: the vault secrets and the agents the configuration names.
//! - [`config`]: `clawos.toml`, strictly validated.
//! - [`gateway`]: the Gateway object (private state, operations): `ingest` and the pure
//!   `decide`, `turn` (queues, the turn), `recorder` (a turn's services), `delivery`
//!   (pending, acks, the delivery stream), `recovery`.
//! - [`routing`]: the routing state: a mirror of the read models it decides from.
//! - [`follower`]: the projection follower and its published position.
//! - [`commands`]: chat commands (`/branch`, `/switch`, `/fork`, `/compact`, ...).
//! - [`bus`]: the `/bus` endpoint (frames only: hello, inbound acks, deliveries, heartbeats).
//! - [`connections`]: channel tokens and heartbeats.
//! - [`supervisor`]: channel processes, tokens, restarts with backoff.
//! - [`server`]: the HTTP routes: `/health`, `/metrics`, `/api/status`, `/api/sessions`,
//!   `/hooks/agent`, plus `admin`; [`api`]: the one admin-token extractor and error type.
//! - [`ws`]: `/ws`, OpenClaw's Gateway protocol (v3/v4) for Control UIs, apps, CLIs and
//!   nodes: handshake, pairing, scopes, methods, the event feed folded from the log.
//! - [`devices`]: device identity (Ed25519 proof of the challenge) and derived device tokens.
//! - [`nodes`]: connected nodes and the commands invoked on them; [`presence`]: who is
//!   connected on `/ws`.
//! - [`session_keys`]: `agent:<agent>:<owner>`, one name per session in every method.
//! - [`cron`]: the scheduler (`CronScheduled` → `CronFired` + a turn); [`schedule`]:
//!   parsing schedules and computing due times.
//! - [`approvals`]: the approval timeout and answer key; [`clock`]: the wall clock.
//! - [`hooks`]: outbound hooks (POST chosen events to URLs); inbound is `POST /hooks/agent`.
//! - [`media`]: the media store seen from the log: references, missing blobs, `gc`.
//! - [`memory`]: the configured embedder, the memory index, hybrid recall.
//! - [`vault`]: secrets sealed with XChaCha20-Poly1305; the key in the OS keychain or a
//!   0600 key file.
//! - [`admin`]: the admin UI at `/admin` and its JSON API under `/api`; [`app`]: the
//!   companion app at `/app`.
//! - [`metrics`], [`tokens`].
//!
//! **Architecture Invariant:** the kernel never talks to an LLM and never speaks a chat
//! network's protocol: agents and channel processes do. It decides, and records decisions.

pub mod admin;
pub mod agent_host;
pub mod api;
pub mod app;
pub mod approvals;
pub mod assembly;
pub mod bus;
pub mod clock;
pub mod commands;
pub mod config;
pub mod connections;
pub mod cron;
pub mod daemon;
pub mod devices;
mod error;
pub mod follower;
pub mod gateway;
pub mod hooks;
pub mod mcp_connect;
pub mod media;
pub mod memory;
pub mod metrics;
pub mod nodes;
pub mod presence;
pub mod routing;
pub mod schedule;
pub mod server;
pub mod session_keys;
pub mod skill_config;
pub mod supervisor;
pub mod tls;
pub mod tokens;
pub mod usage;
pub mod validated;
pub mod vault;
pub mod ws;

pub use assembly::{build_agents, resolve_secrets, ConfigSecrets};
pub use config::Config;
pub use daemon::{check_listen, run, write_address_file, RunOptions, CHAT_CHANNEL};
pub use error::KernelError;
pub use gateway::Gateway;
