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

/// Where a new device reaches the Gateway.
struct PairTarget {
    /// The companion app's address (`…/app`).
    app_url: String,
    /// The WebSocket address OpenClaw's apps connect to (`…/ws`).
    ws_url: String,
    /// SHA-256 of the TLS certificate to pin (hex), when the address is https.
    fingerprint: Option<String>,
}

/// The address to hand a device: `--url` if given; else the TLS listener of
/// `[gateway.tls]` at this machine's LAN address; else the plain listener.
fn pair_target(home: &Home, url: Option<String>) -> Result<PairTarget> {
    let config = crate::cli_gateway::load_config(home)?;
    let tls = config.gateway.tls.as_ref();
    let fingerprint = match tls {
        Some(cfg) => Some(clawos_kernel::tls::load_or_create(home.dir(), cfg)?.fingerprint),
        None => None,
    };
    let app_url = match (url, tls) {
        (Some(u), _) => u,
        (None, Some(cfg)) => {
            let host = if cfg.listen.ip().is_unspecified() {
                clawos_kernel::tls::lan_address().ok_or_else(|| {
                    anyhow!(
                        "cannot find this machine's LAN address (no route out); pass \
                         --url https://ADDRESS:{}/app",
                        cfg.listen.port()
                    )
                })?
            } else {
                cfg.listen.ip()
            };
            format!(
                "https://{}/app",
                std::net::SocketAddr::new(host, cfg.listen.port())
            )
        }
        (None, None) => format!("http://{}/app", config.gateway.listen),
    };
    let parsed = reqwest::Url::parse(&app_url).map_err(|e| anyhow!("--url {app_url}: {e}"))?;
    let secure = parsed.scheme() == "https";
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow!("--url {app_url}: no host"))?;
    let authority = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let ws_url = format!("{}://{authority}/ws", if secure { "wss" } else { "ws" });
    Ok(PairTarget {
        app_url,
        ws_url,
        fingerprint: fingerprint.filter(|_| secure),
    })
}

/// The setup code OpenClaw's mobile apps scan: base64url of `{url, bootstrapToken,
/// expiresAtMs, tlsFingerprint}`; our one-time code is the bootstrap token.
fn openclaw_setup_code(target: &PairTarget, code: &str, expires_at_ms: i64) -> String {
    use base64::Engine;
    let mut payload = serde_json::json!({
        "url": target.ws_url, "bootstrapToken": code, "expiresAtMs": expires_at_ms,
    });
    if let Some(fp) = &target.fingerprint {
        payload["tlsFingerprint"] = serde_json::json!(fp);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string())
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
    let target = pair_target(home, url)?;
    let link = format!("{}#code={code}", target.app_url.trim_end_matches('#'));
    println!("{}", crate::cli_phone_link::qr_text(&link)?);
    println!("open {link}");
    println!(
        "or type the code {code} in the app; it works once, for {}",
        humantime::format_duration(ttl)
    );
    if let Some(fp) = &target.fingerprint {
        println!(
            "certificate SHA-256: {} (the browser shows it before you accept the \
             certificate: they must match)",
            clawos_kernel::tls::fingerprint_for_people(fp)
        );
    }
    println!(
        "setup code for OpenClaw's apps: {}",
        openclaw_setup_code(&target, &code, expires_at_ms)
    );
    Ok(())
}
