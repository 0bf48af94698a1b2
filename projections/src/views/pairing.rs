//! Pairing: senders holding a code that is not approved yet, and senders allowed to talk.

use serde::Serialize;
use sqlx::SqlitePool;

use super::rows::{int, load_matching, load_tables, signed, text};
use crate::changes::MemoryTables;
use crate::pairing::{PAIRED, PAIRING_REQUESTS};
use crate::ProjectionError;

/// The latest code issued to a sender that is not paired yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairingRequestView {
    /// Channel the sender wrote through.
    pub channel: String,
    /// Sender address.
    pub address: String,
    /// Hash of the code (`clawos_kernel::tokens::code_hash`).
    pub code_hash: String,
    /// When the code expires (unix ms).
    pub expires_at_ms: i64,
    /// Seq of its `PairingRequested`.
    pub requested_seq: u64,
}

impl PairingRequestView {
    /// Whether the code still holds at `now_ms` (the reader's clock, never the fold's).
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.expires_at_ms > now_ms
    }
}

/// A sender allowed to talk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairedView {
    /// Channel.
    pub channel: String,
    /// Sender address.
    pub address: String,
    /// Seq of the first `PairingApproved` for it.
    pub approved_seq: u64,
}

/// Every sender waiting with a code (expired codes included), by channel and address.
pub fn pairing_requests_in(t: &MemoryTables) -> Vec<PairingRequestView> {
    t.rows(PAIRING_REQUESTS.name)
        .iter()
        .map(|r| PairingRequestView {
            channel: text(r, 0),
            address: text(r, 1),
            code_hash: text(r, 2),
            expires_at_ms: signed(r, 3).unwrap_or(0),
            requested_seq: int(r, 4).unwrap_or(0),
        })
        .collect()
}

/// Every paired sender, by channel and address.
pub fn paired_in(t: &MemoryTables) -> Vec<PairedView> {
    t.rows(PAIRED.name)
        .iter()
        .map(|r| PairedView {
            channel: text(r, 0),
            address: text(r, 1),
            approved_seq: int(r, 2).unwrap_or(0),
        })
        .collect()
}

/// The pending request whose code has this hash (the newest, should two share it).
pub fn pairing_request_by_code_in(t: &MemoryTables, code_hash: &str) -> Option<PairingRequestView> {
    pairing_requests_in(t)
        .into_iter()
        .filter(|r| r.code_hash == code_hash)
        .max_by_key(|r| r.requested_seq)
}

/// [`pairing_requests_in`] over the live tables.
pub async fn pairing_requests(
    pool: &SqlitePool,
) -> Result<Vec<PairingRequestView>, ProjectionError> {
    Ok(pairing_requests_in(
        &load_tables(pool, &[&PAIRING_REQUESTS]).await?,
    ))
}

/// [`paired_in`] over the live tables.
pub async fn paired(pool: &SqlitePool) -> Result<Vec<PairedView>, ProjectionError> {
    Ok(paired_in(&load_tables(pool, &[&PAIRED]).await?))
}

/// [`pairing_request_by_code_in`] over the live tables.
pub async fn pairing_request_by_code(
    pool: &SqlitePool,
    code_hash: &str,
) -> Result<Option<PairingRequestView>, ProjectionError> {
    let t = load_matching(pool, &PAIRING_REQUESTS, "code_hash", code_hash.into()).await?;
    Ok(pairing_request_by_code_in(&t, code_hash))
}

/// Whether a sender is paired.
pub fn is_paired_in(t: &MemoryTables, channel: &str, address: &str) -> bool {
    t.tables
        .get(PAIRED.name)
        .is_some_and(|rows| rows.contains_key(&crate::row![channel, address]))
}

/// [`is_paired_in`] over the live tables.
pub async fn is_paired(
    pool: &SqlitePool,
    channel: &str,
    address: &str,
) -> Result<bool, ProjectionError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT approved_seq FROM paired WHERE channel = ? AND address = ?")
            .bind(channel)
            .bind(address)
            .fetch_optional(pool)
            .await?;
    Ok(found.is_some())
}
