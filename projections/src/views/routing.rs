//! Identities, bindings and the routing seed: what the Gateway routes from at start.

use clawos_events::{BindingScope, BindingSet};
use serde::Serialize;
use sqlx::SqlitePool;

use super::pairing::{paired_in, pairing_requests_in, PairingRequestView};
use super::rows::{int, opt_text, signed, text};
use crate::bindings::BINDINGS;
use crate::changes::MemoryTables;
use crate::identities::IDENTITY_ADDRESSES;
use crate::sessions::{BRANCHES, MAIN_BRANCH, SESSIONS};
use crate::ProjectionError;

/// An address linked to an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityView {
    /// Sender address.
    pub address: String,
    /// The identity it belongs to.
    pub identity: String,
    /// Seq of the `IdentityLinked` that put it there.
    pub linked_seq: u64,
}

/// Where a session routes: whose it is, with which agent, on which branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRoute {
    /// Session id.
    pub session_id: String,
    /// Identity it belongs to.
    pub identity: String,
    /// Agent.
    pub agent: String,
    /// Branch new messages go to.
    pub active_branch: String,
}

/// Everything routing needs from the read models, as rows: the Gateway builds its
/// in-memory routing state from it, then folds the log after the projections' position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingSeed {
    /// (address, identity) of every linked address, by address.
    pub identities: Vec<(String, String)>,
    /// Every binding, by id.
    pub bindings: Vec<BindingSet>,
    /// Every session, by `started_seq` (so of two sessions of one identity and agent, the
    /// later one comes last and wins).
    pub sessions: Vec<SessionRoute>,
    /// (session id, branch name) of every branch but `main`, which every session has: a
    /// switch is valid only to one of a session's branches.
    pub branches: Vec<(String, String)>,
    /// (channel, address) of every paired sender.
    pub paired: Vec<(String, String)>,
    /// The latest code of every sender not paired yet (expired ones included).
    pub pairing_requests: Vec<PairingRequestView>,
}

/// The projections owning [`SEED_TABLES`].
const SEED_PROJECTIONS: [&str; 4] = ["identities", "bindings", "sessions", "pairing"];

impl RoutingSeed {
    /// The seed in these tables.
    pub fn from_tables(t: &MemoryTables) -> RoutingSeed {
        let mut sessions: Vec<(u64, SessionRoute)> = t
            .rows(SESSIONS.name)
            .iter()
            .map(|r| {
                (
                    int(r, 4).unwrap_or(0),
                    SessionRoute {
                        session_id: text(r, 0),
                        identity: text(r, 1),
                        agent: text(r, 2),
                        active_branch: text(r, 3),
                    },
                )
            })
            .collect();
        // Stable: equal seqs (never in a real log) keep session id order.
        sessions.sort_by_key(|(started, _)| *started);
        RoutingSeed {
            identities: identities_in(t)
                .into_iter()
                .map(|i| (i.address, i.identity))
                .collect(),
            bindings: bindings_in(t),
            sessions: sessions.into_iter().map(|(_, s)| s).collect(),
            branches: t
                .rows(BRANCHES.name)
                .iter()
                .map(|r| (text(r, 0), text(r, 1)))
                .filter(|(_, name)| name != MAIN_BRANCH)
                .collect(),
            paired: paired_in(t)
                .into_iter()
                .map(|p| (p.channel, p.address))
                .collect(),
            pairing_requests: pairing_requests_in(t),
        }
    }
}

/// The routing seed from the live tables.
pub async fn load_routing_seed(pool: &SqlitePool) -> Result<RoutingSeed, ProjectionError> {
    Ok(load_routing_seed_at(pool).await?.0)
}

/// The routing seed from the live tables, with the seq they reflect: every table and
/// checkpoint is read in one transaction, and the seq is the lowest checkpoint of the
/// projections involved (0 when one has none), so folding the log after it brings the
/// seed to the head.
pub async fn load_routing_seed_at(
    pool: &SqlitePool,
) -> Result<(RoutingSeed, u64), ProjectionError> {
    // This runs at every Gateway start: typed queries of the columns routing needs, in the
    // order `RoutingSeed::from_tables` gives (`tests/projections.rs` checks they agree).
    type BindingRow = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    /// A `pairing_requests` row: channel, address, code hash, expiry, seq.
    type RequestRow = (String, String, Option<String>, Option<i64>, Option<i64>);
    let mut tx = pool.begin().await?;
    let identities: Vec<(String, String)> = sqlx::query_as(
        "SELECT address, coalesce(identity, '') FROM identity_addresses ORDER BY address",
    )
    .fetch_all(&mut *tx)
    .await?;
    let bindings: Vec<BindingRow> = sqlx::query_as(
        "SELECT binding_id, coalesce(agent, ''), identity, chat, channel, sender_domain, \
         body_regex, priority FROM bindings ORDER BY binding_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let sessions: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT session_id, coalesce(identity, ''), coalesce(agent, ''), \
         coalesce(active_branch, '') FROM sessions ORDER BY started_seq, session_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let branches: Vec<(String, String)> = sqlx::query_as(
        "SELECT session_id, name FROM branches WHERE name != 'main' \
             ORDER BY session_id, name",
    )
    .fetch_all(&mut *tx)
    .await?;
    let paired: Vec<(String, String)> =
        sqlx::query_as("SELECT channel, address FROM paired ORDER BY channel, address")
            .fetch_all(&mut *tx)
            .await?;
    let requests: Vec<RequestRow> = sqlx::query_as(
        "SELECT channel, address, code_hash, expires_at_ms, requested_seq \
             FROM pairing_requests ORDER BY channel, address",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut position = u64::MAX;
    for name in SEED_PROJECTIONS {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM projection_checkpoints WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        position = position.min(seq.unwrap_or(0).max(0) as u64);
    }
    tx.commit().await?;
    let seed = RoutingSeed {
        identities,
        bindings: bindings
            .into_iter()
            .map(
                |(binding_id, agent, identity, chat, channel, sender_domain, body_regex, p)| {
                    BindingSet {
                        binding_id,
                        agent,
                        scope: BindingScope {
                            identity,
                            chat,
                            channel,
                            sender_domain,
                            body_regex,
                        },
                        priority: p.unwrap_or(0).clamp(i32::MIN.into(), i32::MAX.into()) as i32,
                    }
                },
            )
            .collect(),
        sessions: sessions
            .into_iter()
            .map(
                |(session_id, identity, agent, active_branch)| SessionRoute {
                    session_id,
                    identity,
                    agent,
                    active_branch,
                },
            )
            .collect(),
        branches,
        paired,
        pairing_requests: requests
            .into_iter()
            .map(
                |(channel, address, code_hash, expires, requested)| PairingRequestView {
                    channel,
                    address,
                    code_hash: code_hash.unwrap_or_default(),
                    expires_at_ms: expires.unwrap_or(0),
                    requested_seq: requested.unwrap_or(0) as u64,
                },
            )
            .collect(),
    };
    Ok((seed, position))
}

/// Every linked address, by address.
pub fn identities_in(t: &MemoryTables) -> Vec<IdentityView> {
    t.rows(IDENTITY_ADDRESSES.name)
        .iter()
        .map(|r| IdentityView {
            address: text(r, 0),
            identity: text(r, 1),
            linked_seq: int(r, 2).unwrap_or(0),
        })
        .collect()
}

/// Every linked address from the live tables, by identity then address (as
/// `clawos identity list` prints them).
pub async fn identities(pool: &SqlitePool) -> Result<Vec<IdentityView>, ProjectionError> {
    let mut all = identities_in(&super::rows::load_tables(pool, &[&IDENTITY_ADDRESSES]).await?);
    all.sort_by(|a, b| (&a.identity, &a.address).cmp(&(&b.identity, &b.address)));
    Ok(all)
}

/// The identity an address was linked to (`None`: never linked, so it is its own).
pub async fn linked_identity(
    pool: &SqlitePool,
    address: &str,
) -> Result<Option<String>, ProjectionError> {
    let t =
        super::rows::load_matching(pool, &IDENTITY_ADDRESSES, "address", address.into()).await?;
    Ok(identities_in(&t).into_iter().next().map(|i| i.identity))
}

/// Every binding, by id.
pub fn bindings_in(t: &MemoryTables) -> Vec<BindingSet> {
    t.rows(BINDINGS.name)
        .iter()
        .map(|r| BindingSet {
            binding_id: text(r, 0),
            agent: text(r, 1),
            scope: BindingScope {
                identity: opt_text(r, 2),
                chat: opt_text(r, 3),
                channel: opt_text(r, 4),
                sender_domain: opt_text(r, 5),
                body_regex: opt_text(r, 6),
            },
            priority: signed(r, 7)
                .unwrap_or(0)
                .clamp(i32::MIN.into(), i32::MAX.into()) as i32,
        })
        .collect()
}

/// [`bindings_in`] over the live tables.
pub async fn bindings(pool: &SqlitePool) -> Result<Vec<BindingSet>, ProjectionError> {
    Ok(bindings_in(
        &super::rows::load_tables(pool, &[&BINDINGS]).await?,
    ))
}
