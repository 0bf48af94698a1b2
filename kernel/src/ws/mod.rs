//! `/ws`: OpenClaw's Gateway protocol (v3 and v4), so its CLI, Control UI, apps and nodes
//! can use clawos, and our own admin UI and companion app too.
//!
//! - kernel → `connect.challenge` `{nonce, ts}` first; the client's first request must be
//!   `connect` ([`handshake`]): protocol range, client, role, scopes, auth (the shared
//!   admin token or a device token), and a device's signature over the nonce. An unknown
//!   device is left waiting for pairing ([`pairing`]). The answer is `hello-ok` ([`hello`]).
//! - client → `{"type":"req","id","method","params"}`; kernel → `{"type":"res","id","ok",
//!   "payload"|"error"}` ([`frames`]); every method checks role and scope ([`scopes`]).
//! - kernel → `{"type":"event","event","payload","seq"}`: broadcast events carry a seq per
//!   connection, from 1; events sent straight to a node carry none. Operators receive
//!   `chat`, `agent`, approvals and pairing events folded from the log ([`feed`]),
//!   `presence` on every connect and disconnect ([`crate::presence`]), `tick` every
//!   [`conn::TICK_INTERVAL`], `shutdown` when the Gateway stops.
//! - Methods: [`operator`] (health, status, agents, config, logs, presence, approvals),
//!   [`chat`] (send, history, abort), [`sessions`], [`node_methods`]; our own
//!   `events.subscribe` streams the log from a seq (admin only).

pub mod chat;
pub mod conn;
pub mod connection;
pub mod feed;
pub mod frames;
pub mod handshake;
pub mod hello;
pub mod node_methods;
pub mod operator;
pub mod pairing;
pub mod scopes;
pub mod sessions;
