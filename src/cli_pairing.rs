//! `clawos pairing list|approve`: senders waiting with a one-time code, read from the
//! `pairing` read model; approving appends `PairingApproved` with the version of the
//! `pairing` stream the check saw.

use anyhow::{anyhow, Result};
use clap::Subcommand;
use clawos_events::{stream, Durability, ExpectedVersion, NewEvent, PairingApproved};
use clawos_projections::views;
use clawos_replay::{rebuild, Home};

/// `clawos pairing ...`
#[derive(Subcommand)]
pub enum PairingCommand {
    /// Let the sender who received CODE talk to the agents.
    Approve {
        /// The code the sender received.
        code: String,
    },
    /// Pending pairing requests, and the senders already paired.
    List,
}

/// `clawos pairing ...`
pub async fn pairing(home: &Home, durability: Durability, cmd: PairingCommand) -> Result<()> {
    let store = home.open_log(durability).await?;
    let pool = home.open_projections().await?;
    let result = match cmd {
        PairingCommand::List => list(&store, &pool).await,
        PairingCommand::Approve { code } => approve(&store, &pool, &code).await,
    };
    store.close().await;
    result
}

async fn list(store: &clawos_events::LogStore, pool: &sqlx::SqlitePool) -> Result<()> {
    rebuild::catch_up(store, pool).await?;
    let now = clawos_kernel::clock::now_ms();
    let pending: Vec<_> = views::pairing_requests(pool)
        .await?
        .into_iter()
        .filter(|r| r.is_live(now))
        .collect();
    if pending.is_empty() {
        println!("no pending pairing requests");
    }
    for r in pending {
        println!(
            "{:<12} {:<40} expires in {} min",
            r.channel,
            r.address,
            (r.expires_at_ms - now) / 60_000
        );
    }
    for p in views::paired(pool).await? {
        println!(
            "{:<12} {:<40} paired (seq {})",
            p.channel, p.address, p.approved_seq
        );
    }
    Ok(())
}

async fn approve(
    store: &clawos_events::LogStore,
    pool: &sqlx::SqlitePool,
    code: &str,
) -> Result<()> {
    let hash = clawos_kernel::tokens::code_hash(code);
    crate::cli_validated::validated(store, pool, stream::PAIRING, async |version| {
        let now = clawos_kernel::clock::now_ms();
        let Some(r) = views::pairing_request_by_code(pool, &hash).await? else {
            return Err(anyhow!(
                "no pending pairing request has code {code} (never issued, replaced by a \
                 newer code, or already approved: `clawos pairing list` shows who is paired)"
            ));
        };
        if !r.is_live(now) {
            return Err(anyhow!(
                "code {code} for {} expired; the sender gets a new one by writing again",
                r.address
            ));
        }
        store
            .append(
                stream::PAIRING,
                ExpectedVersion::Exact(version),
                vec![NewEvent::new(PairingApproved {
                    channel: r.channel.clone(),
                    address: r.address.clone(),
                })],
            )
            .await?;
        println!("approved: {} may now talk through {}", r.address, r.channel);
        Ok(())
    })
    .await
}
