//! `clawos approvals list|approve|deny`: actions an agent asked a person to approve, read
//! from the `approvals` read model; an answer is appended with the version of the
//! `approvals` stream the check saw (and the dedupe key that keeps one answer per
//! approval, whoever answers).

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use clawos_events::{stream, ApprovalAnswered, Durability, ExpectedVersion, LogStore, NewEvent};
use clawos_projections::views;
use clawos_replay::{rebuild, Home};
use sqlx::SqlitePool;
use uuid::Uuid;

/// `clawos approvals ...`
#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// Actions waiting for an answer.
    List,
    /// Let the action run.
    Approve {
        /// Approval id.
        id: String,
    },
    /// Refuse the action.
    Deny {
        /// Approval id.
        id: String,
    },
}

/// `clawos approvals ...`
pub async fn approvals(home: &Home, durability: Durability, cmd: ApprovalsCommand) -> Result<()> {
    let store = home.open_log(durability).await?;
    let pool = home.open_projections().await?;
    let result = match cmd {
        ApprovalsCommand::List => list(&store, &pool).await,
        ApprovalsCommand::Approve { id } => answer(&store, &pool, &id, true).await,
        ApprovalsCommand::Deny { id } => answer(&store, &pool, &id, false).await,
    };
    store.close().await;
    result
}

async fn list(store: &LogStore, pool: &SqlitePool) -> Result<()> {
    rebuild::catch_up(store, pool).await?;
    let pending = views::approvals(pool, true).await?;
    if pending.is_empty() {
        println!("nothing waits for approval");
    }
    for a in pending {
        println!("{}  session {}  {}", a.approval_id, a.session_id, a.action);
    }
    Ok(())
}

async fn answer(store: &LogStore, pool: &SqlitePool, id: &str, approved: bool) -> Result<()> {
    let Ok(approval_id) = Uuid::parse_str(id) else {
        bail!("`{id}` is not an approval id (see `clawos approvals list`)");
    };
    crate::cli_validated::validated(store, pool, stream::APPROVALS, async |version| {
        let Some(a) = views::approval(pool, approval_id).await? else {
            return Err(anyhow!("no approval request {id}"));
        };
        if let Some(was) = a.approved {
            println!(
                "{id} was already answered: {} by {}",
                if was { "approved" } else { "denied" },
                a.answered_by.as_deref().unwrap_or("?")
            );
            return Ok(());
        }
        let appended = store
            .append(
                stream::APPROVALS,
                ExpectedVersion::Exact(version),
                vec![NewEvent::new(ApprovalAnswered {
                    approval_id,
                    approved,
                    by: "cli".into(),
                })
                .dedupe(clawos_kernel::approvals::approval_key(approval_id))],
            )
            .await?;
        if appended.duplicate {
            // Answered in the log, not yet in the read model the check saw.
            println!("{id} was already answered");
        } else {
            println!("{id} {}", if approved { "approved" } else { "denied" });
        }
        Ok(())
    })
    .await
}
