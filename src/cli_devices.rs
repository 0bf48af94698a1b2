//! `clawos devices list|approve|reject|revoke|pair`: devices (Control UIs, companion apps,
//! nodes) that pair with the Gateway on `/ws`, read from the `devices` read model. Every
//! answer appends to the `devices` stream with the version its check saw, so a concurrent
//! answer (from the Control UI, or the loopback rule) is seen, not overwritten.

use anyhow::{anyhow, Result};
use clap::Subcommand;
use clawos_events::{
    stream, DevicePairingResolved, DeviceRevoked, DeviceSetupCodeIssued, Durability,
    ExpectedVersion, LogStore, NewEvent,
};
use clawos_projections::views;
use clawos_replay::{rebuild, Home};
use sqlx::SqlitePool;
use uuid::Uuid;

/// `clawos devices ...`
#[derive(Subcommand)]
pub enum DevicesCommand {
    /// Paired devices and the requests waiting for an answer.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pair the device of request ID (a request id or device id, or its first 6+ characters).
    Approve {
        /// Request id or device id (prefix).
        id: String,
    },
    /// Refuse the request ID.
    Reject {
        /// Request id or device id (prefix).
        id: String,
    },
    /// A one-time setup code for a new device (the companion app at /app): printed with a
    /// QR code of the app's address; the first device that uses it in time is paired.
    Pair {
        /// How long the code works.
        #[arg(long, default_value = "10m")]
        ttl: humantime::Duration,
        /// The app's address as the phone reaches it (default: http://LISTEN/app from
        /// clawos.toml; give the LAN address when the Gateway listens on all of them).
        #[arg(long)]
        url: Option<String>,
    },
    /// Unpair a device: its tokens stop working at once and it must pair again.
    Revoke {
        /// Device id (or its first 6+ characters).
        device: String,
    },
}

/// `clawos devices ...`
pub async fn devices(home: &Home, durability: Durability, cmd: DevicesCommand) -> Result<()> {
    let store = home.open_log(durability).await?;
    let pool = home.open_projections().await?;
    let result = match cmd {
        DevicesCommand::List { json } => list(&store, &pool, json).await,
        DevicesCommand::Approve { id } => answer(&store, &pool, &id, true).await,
        DevicesCommand::Reject { id } => answer(&store, &pool, &id, false).await,
        DevicesCommand::Revoke { device } => revoke(&store, &pool, &device).await,
        DevicesCommand::Pair { ttl, url } => pair(home, &store, *ttl, url).await,
    };
    store.close().await;
    result
}

async fn list(store: &LogStore, pool: &SqlitePool, json: bool) -> Result<()> {
    rebuild::catch_up(store, pool).await?;
    let v = views::devices(pool).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if v.requests.is_empty() {
        println!("no device waits for pairing");
    }
    for r in &v.requests {
        println!(
            "pending  {}  device {}  {} {:<8} scopes {}  {} ({}) from {}",
            r.request_id,
            short(&r.device_id),
            r.display_name,
            r.role,
            r.scopes.join(","),
            r.client,
            r.platform,
            r.remote
        );
    }
    for d in &v.devices {
        println!(
            "paired   device {}  {}  roles {}  scopes {}  {} ({})  since seq {}",
            short(&d.device_id),
            d.display_name,
            d.roles.join(","),
            d.scopes.join(","),
            d.client,
            d.platform,
            d.paired_seq
        );
    }
    Ok(())
}

/// The first 12 characters of a device id, enough to name it.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

async fn answer(store: &LogStore, pool: &SqlitePool, id: &str, approved: bool) -> Result<()> {
    crate::cli_validated::validated(store, pool, stream::DEVICES, async |version| {
        let v = views::devices(pool).await?;
        let Some(r) = v.request(id) else {
            return Err(anyhow!(
                "no pending device request matches {id} (give at least 6 characters; \
                 `clawos devices list` shows the requests)"
            ));
        };
        let request_id: Uuid = r.request_id.parse()?;
        store
            .append(
                stream::DEVICES,
                ExpectedVersion::Exact(version),
                vec![NewEvent::new(DevicePairingResolved {
                    request_id,
                    device_id: r.device_id.clone(),
                    approved,
                    by: "cli".into(),
                })],
            )
            .await?;
        if approved {
            println!(
                "approved: device {} ({}) is paired as {}; it receives its token when it connects again",
                short(&r.device_id),
                r.display_name,
                r.role
            );
        } else {
            println!("rejected: device {} ({})", short(&r.device_id), r.display_name);
        }
        Ok(())
    })
    .await
}

async fn revoke(store: &LogStore, pool: &SqlitePool, device: &str) -> Result<()> {
    crate::cli_validated::validated(store, pool, stream::DEVICES, async |version| {
        let v = views::devices(pool).await?;
        let found: Vec<_> = v
            .devices
            .iter()
            .filter(|d| device.len() >= 6 && d.device_id.starts_with(device))
            .collect();
        let d = match found.as_slice() {
            [d] => *d,
            [] => {
                return Err(anyhow!(
                    "no paired device matches {device} (give at least 6 characters; \
                     `clawos devices list` shows them)"
                ))
            }
            _ => {
                return Err(anyhow!(
                    "{device} matches several devices; give more of the id"
                ))
            }
        };
        store
            .append(
                stream::DEVICES,
                ExpectedVersion::Exact(version),
                vec![NewEvent::new(DeviceRevoked {
                    device_id: d.device_id.clone(),
                    by: "cli".into(),
                })],
            )
            .await?;
        println!(
            "revoked: device {} ({}) must pair again; its connections are closed",
            short(&d.device_id),
            d.display_name
        );
        Ok(())
    })
    .await
}

async fn pair(
    home: &Home,
    store: &LogStore,
    ttl: std::time::Duration,
    url: Option<String>,
) -> Result<()> {
    let code = clawos_kernel::tokens::pairing_code();
    let expires_at_ms = clawos_kernel::clock::now_ms() + ttl.as_millis() as i64;
    store
        .append(
            stream::DEVICES,
            ExpectedVersion::Any,
            vec![NewEvent::new(DeviceSetupCodeIssued {
                code_hash: clawos_kernel::tokens::code_hash(&code),
                expires_at_ms,
            })],
        )
        .await?;
    let base = match url {
        Some(u) => u,
        None => {
            let listen = crate::cli_gateway::load_config(home)?.gateway.listen;
            format!("http://{listen}/app")
        }
    };
    let link = format!("{}#code={code}", base.trim_end_matches('#'));
    println!("{}", crate::cli_phone_link::qr_text(&link)?);
    println!("open {link}");
    println!(
        "or type the code {code} in the app; it works once, for {}",
        humantime::format_duration(ttl)
    );
    Ok(())
}
