//! Audit: what an agent did in a session, turn by turn, step by step. The rows are the
//! `audit` read model's; this is the replay library's name for its view, used by
//! `clawos audit` and the admin API.

use sqlx::SqlitePool;

use crate::ReplayError;

pub use clawos_projections::views::{AuditStepView as AuditStep, AuditTurnView as AuditTurn};

/// Every turn of a session, oldest first, with its steps.
pub async fn audit_session(
    pool: &SqlitePool,
    session: &str,
) -> Result<Vec<AuditTurn>, ReplayError> {
    Ok(clawos_projections::views::audit_session(pool, session).await?)
}
