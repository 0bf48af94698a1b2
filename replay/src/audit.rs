//! Audit: what an agent did in a session, turn by turn, step by step.

use serde::Serialize;
use sqlx::SqlitePool;

use crate::ReplayError;

/// One step of a turn (an LLM call or a tool call/return).
#[derive(Debug, Clone, Serialize)]
pub struct AuditStep {
    /// Seq of the event.
    pub seq: u64,
    /// Event kind.
    pub kind: String,
    /// JSON summary.
    pub detail: serde_json::Value,
}

/// One agent turn.
#[derive(Debug, Clone, Serialize)]
pub struct AuditTurn {
    /// Turn id.
    pub turn_id: String,
    /// Agent.
    pub agent: String,
    /// Branch.
    pub branch: String,
    /// What triggered it.
    pub trigger_seq: u64,
    /// Seq of `AgentTurnStarted`.
    pub started_seq: u64,
    /// Seq of the finishing event.
    pub ended_seq: Option<u64>,
    /// `running`, `finished` or `failed`.
    pub status: String,
    /// Failure reason.
    pub detail: Option<String>,
    /// Steps in order.
    pub steps: Vec<AuditStep>,
}

type TurnRow = (
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    String,
    Option<String>,
);

/// Every turn of a session, oldest first, with its steps.
pub async fn audit_session(
    pool: &SqlitePool,
    session: &str,
) -> Result<Vec<AuditTurn>, ReplayError> {
    let turns: Vec<TurnRow> = sqlx::query_as(
        "SELECT turn_id, agent, branch, trigger_seq, started_seq, ended_seq, status, detail \
         FROM audit_turns WHERE session_id = ? ORDER BY started_seq",
    )
    .bind(session)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(turns.len());
    for (turn_id, agent, branch, trigger, started, ended, status, detail) in turns {
        let steps: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT seq, kind, detail FROM audit_steps WHERE turn_id = ? ORDER BY seq",
        )
        .bind(&turn_id)
        .fetch_all(pool)
        .await?;
        out.push(AuditTurn {
            turn_id,
            agent,
            branch,
            trigger_seq: trigger as u64,
            started_seq: started as u64,
            ended_seq: ended.map(|e| e as u64),
            status,
            detail,
            steps: steps
                .into_iter()
                .map(|(seq, kind, detail)| AuditStep {
                    seq: seq as u64,
                    kind,
                    detail: serde_json::from_str(&detail)
                        .unwrap_or(serde_json::Value::String(detail)),
                })
                .collect(),
        });
    }
    Ok(out)
}
