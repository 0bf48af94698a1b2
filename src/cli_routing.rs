//! `clawos bind ...` and `clawos identity ...`: which agent gets which messages, and which
//! addresses are one person.

use anyhow::{bail, Result};
use clap::Subcommand;
use clawos_events::{
    stream, BindingRemoved, BindingScope, BindingSet, Durability, ExpectedVersion, IdentityLinked,
    NewEvent,
};
use clawos_projections::views;
use clawos_replay::{rebuild, Home};

/// `clawos bind ...`
#[derive(Subcommand)]
pub enum BindCommand {
    /// Add or replace a binding.
    Add {
        /// Agent that gets matching messages.
        #[arg(long)]
        agent: String,
        /// Binding id (default: generated).
        #[arg(long)]
        id: Option<String>,
        /// Match this sender identity.
        #[arg(long)]
        identity: Option<String>,
        /// Match this chat or group.
        #[arg(long)]
        chat: Option<String>,
        /// Match this channel.
        #[arg(long)]
        channel: Option<String>,
        /// Match senders from this domain.
        #[arg(long)]
        domain: Option<String>,
        /// Match bodies with this regular expression.
        #[arg(long)]
        regex: Option<String>,
        /// Tie-breaker (higher wins).
        #[arg(long, default_value_t = 0)]
        priority: i32,
    },
    /// List bindings.
    List,
    /// Remove a binding.
    Rm {
        /// Binding id.
        id: String,
    },
}

/// `clawos identity ...`
#[derive(Subcommand)]
pub enum IdentityCommand {
    /// Link address B to the identity of address A (one person, one session).
    Link {
        /// An address already in use (e.g. `terminal:alice@local`).
        a: String,
        /// The address to join to it (e.g. `webhook:alice@example.com`).
        b: String,
    },
    /// List linked addresses.
    List,
}

/// `clawos bind ...`
pub async fn bind(home: &Home, durability: Durability, cmd: BindCommand) -> Result<()> {
    let store = home.open_log(durability).await?;
    match cmd {
        BindCommand::Add {
            agent,
            id,
            identity,
            chat,
            channel,
            domain,
            regex,
            priority,
        } => {
            if let Some(r) = &regex {
                regex_check(r)?;
            }
            let id = id.unwrap_or_else(|| format!("b-{}", uuid::Uuid::now_v7().simple()));
            let a = store
                .append_one(
                    stream::BINDINGS,
                    NewEvent::new(BindingSet {
                        binding_id: id.clone(),
                        agent,
                        scope: BindingScope {
                            identity,
                            chat,
                            channel,
                            sender_domain: domain,
                            body_regex: regex,
                        },
                        priority,
                    }),
                )
                .await?;
            println!("binding {id} set (seq {})", a.first_seq);
        }
        BindCommand::Rm { id } => {
            let a = store
                .append_one(
                    stream::BINDINGS,
                    NewEvent::new(BindingRemoved {
                        binding_id: id.clone(),
                    }),
                )
                .await?;
            println!("binding {id} removed (seq {})", a.first_seq);
        }
        BindCommand::List => {
            let pool = home.open_projections().await?;
            rebuild::catch_up(&store, &pool).await?;
            let rows =
                clawos_projections::sql::dump_table(&pool, &clawos_projections::bindings::BINDINGS)
                    .await?;
            if rows.is_empty() {
                println!("no bindings: every message goes to the default agent");
            }
            for r in rows {
                println!("{}", serde_json::to_string(&r)?);
            }
        }
    }
    store.close().await;
    Ok(())
}

fn regex_check(r: &str) -> Result<()> {
    // The kernel compiles the same expression with the `regex` crate when it routes.
    if r.is_empty() {
        bail!("empty --regex");
    }
    Ok(())
}

/// `clawos identity ...`
pub async fn identity(home: &Home, durability: Durability, cmd: IdentityCommand) -> Result<()> {
    let store = home.open_log(durability).await?;
    let pool = home.open_projections().await?;
    let result = match cmd {
        IdentityCommand::Link { a, b } => link(&store, &pool, &a, &b).await,
        IdentityCommand::List => {
            rebuild::catch_up(&store, &pool).await?;
            for i in views::identities(&pool).await? {
                println!("{:<32} {}", i.identity, i.address);
            }
            Ok(())
        }
    };
    store.close().await;
    result
}

/// Join `b` to the identity of `a` (`a` itself when never linked), appending to that
/// identity's stream with the version the lookup saw. A link of `a` into another identity
/// goes to that identity's stream, which the version does not cover; the check before the
/// append sees it once it is in the read model.
async fn link(
    store: &clawos_events::LogStore,
    pool: &sqlx::SqlitePool,
    a: &str,
    b: &str,
) -> Result<()> {
    rebuild::catch_up(store, pool).await?;
    let identity = views::linked_identity(pool, a)
        .await?
        .unwrap_or_else(|| a.to_string());
    let stream = stream::identity(&identity);
    crate::cli_validated::validated(store, pool, &stream, async |version| {
        let now = views::linked_identity(pool, a)
            .await?
            .unwrap_or_else(|| a.to_string());
        if now != identity {
            bail!("{a} moved to identity {now} meanwhile; run again");
        }
        let mut events = Vec::new();
        if identity == a {
            events.push(NewEvent::new(IdentityLinked {
                identity: identity.clone(),
                address: a.to_string(),
            }));
        }
        events.push(NewEvent::new(IdentityLinked {
            identity: identity.clone(),
            address: b.to_string(),
        }));
        store
            .append(&stream, ExpectedVersion::Exact(version), events)
            .await?;
        println!("{b} now belongs to identity {identity} (with {a})");
        Ok(())
    })
    .await
}
