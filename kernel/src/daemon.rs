//! The daemon: listen, start the Gateway's tasks (server, hooks, cron, recovery, channel
//! supervisors), and stop them all on Ctrl-C, SIGTERM or the terminal closing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use clawos_replay::Home;

use crate::assembly::{build_agents, resolve_secrets};
use crate::config::Config;
use crate::gateway::Gateway;
use crate::{cron, hooks, server, supervisor, tokens, vault, KernelError};

/// The channel name `clawos chat` attaches as.
pub const CHAT_CHANNEL: &str = "chat";

/// How to run the Gateway.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Override `gateway.listen` (port 0 picks a free port).
    pub listen: Option<SocketAddr>,
    /// Run terminal channels attached to this process's terminal (`clawos up`); without
    /// it, terminal channels are not started.
    pub attach_terminal: bool,
    /// Allow listening on an address other than loopback (`--allow-remote`).
    pub allow_remote: bool,
}

/// Loopback is always allowed; any other address only with `--allow-remote`. Every
/// endpoint but `/health` needs a token either way.
pub fn check_listen(listen: SocketAddr, allow_remote: bool) -> Result<(), KernelError> {
    if listen.ip().is_loopback() || allow_remote {
        return Ok(());
    }
    Err(KernelError::Config(format!(
        "refusing to listen on {listen}: it is reachable from other machines. Pass \
         --allow-remote to mean it (every endpoint except /health then needs the admin \
         token from `clawos admin token` or a channel token; put TLS in front), or listen \
         on 127.0.0.1"
    )))
}

/// Where a running Gateway can be found: `gateway.json` in the state folder, with its
/// TLS listener and that certificate's fingerprint when `[gateway.tls]` is set.
pub fn write_address_file(
    home: &Home,
    addr: SocketAddr,
    tls: Option<(SocketAddr, &str)>,
) -> Result<(), KernelError> {
    let path = home.dir().join("gateway.json");
    let mut body = serde_json::json!({"listen": addr.to_string(), "pid": std::process::id()});
    if let Some((tls_addr, fingerprint)) = tls {
        body["tls_listen"] = serde_json::json!(tls_addr.to_string());
        body["tls_fingerprint"] = serde_json::json!(fingerprint);
    }
    std::fs::write(&path, body.to_string())
        .map_err(|e| KernelError::io(format!("cannot write {}", path.display()), e))
}

/// Run the Gateway until Ctrl-C, SIGTERM, or (with `attach_terminal`) the terminal channel
/// closing. Children are stopped and their exits recorded before this returns.
pub async fn run(home: Home, config: Config, options: RunOptions) -> Result<(), KernelError> {
    let listen = options.listen.unwrap_or(config.gateway.listen);
    check_listen(listen, options.allow_remote)?;
    let vault = Arc::new(vault::Vault::open(home.dir()).await?);
    match vault.fallback() {
        Some(why) => tracing::warn!(
            "vault: {why}; the master key is kept in {} instead (see `clawos doctor`)",
            vault.key_source()
        ),
        None => tracing::info!("vault: master key in {}", vault.key_source()),
    }
    let secrets = resolve_secrets(&config, &vault).await?;
    // Agents with `isolation = "process"` connect their own MCP servers.
    let in_gateway: Vec<String> = config
        .agents
        .iter()
        .filter(|(_, a)| !a.isolated())
        .map(|(n, _)| n.clone())
        .collect();
    let mcp =
        crate::mcp_connect::connect_mcp_servers(&config, home.dir(), &secrets, &in_gateway).await;
    let mut agents = build_agents(&home, &config, &secrets, &mcp)?;
    let exe = std::env::current_exe()
        .map_err(|e| KernelError::io("cannot find the clawos executable", e))?;
    let hosted = crate::agent_host::plan::plan(&home, &config, &secrets, &exe)?;
    for h in &hosted {
        agents.insert(h.spec.name.clone(), h.agent.clone());
    }
    let gw = Gateway::open(home.clone(), config, agents, vault).await?;
    let agent_supervisors: Vec<_> = hosted
        .into_iter()
        .map(|h| {
            tokio::spawn(crate::agent_host::supervise::supervise(
                gw.clone(),
                h.spec,
                h.agent.slot(),
            ))
        })
        .collect();
    // What recovery may touch: the log as this process found it, before it serves anyone.
    let found_at_start = gw.log().head();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| KernelError::io(format!("cannot listen on {listen}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| KernelError::io("cannot read the listening address", e))?;
    let tls = match &gw.config().gateway.tls {
        Some(cfg) => {
            let certificate = crate::tls::load_or_create(home.dir(), cfg)?;
            let listener = crate::tls::TlsListener::bind(cfg.listen, &certificate).await?;
            Some((listener, certificate.fingerprint))
        }
        None => None,
    };
    let tls_addr = tls.as_ref().map(|(l, fp)| (l.addr(), fp.clone()));
    write_address_file(
        &home,
        addr,
        tls_addr.as_ref().map(|(a, fp)| (*a, fp.as_str())),
    )?;
    // `clawos chat` attaches as the channel `chat` with a token only the owner can read.
    let chat_token = tokens::random_token();
    tokens::write_private(&home.dir().join("chat.token"), &chat_token)?;
    gw.connections().admit(CHAT_CHANNEL, chat_token);
    eprintln!(
        "clawos gateway listening on http://{addr} (state in {})",
        home.dir().display()
    );
    eprintln!("admin UI at http://{addr}/admin; its token: `clawos admin token`");
    if let Some((tls_addr, fp)) = &tls_addr {
        eprintln!(
            "devices on the LAN: https://{tls_addr}/app (certificate SHA-256 {}; \
             `clawos devices pair` hands it to a new device)",
            crate::tls::fingerprint_for_people(fp)
        );
    }
    let listener = listener.tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    tokio::spawn(crate::ws::pairing::close_revoked(gw.clone()));
    let app = server::router(gw.clone());
    if let Some((listener, _)) = tls {
        // Through `tap_io`, whose connections axum knows to give their peer address
        // (`ConnectInfo<SocketAddr>`, which the pairing rule reads).
        let listener = listener.tap_io(|_| {});
        let tls_app = app.clone();
        let mut tls_shutdown = gw.shutdown_signal();
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                tls_app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = tls_shutdown.wait_for(|s| *s).await;
            })
            .await;
        });
    }
    let mut server_shutdown = gw.shutdown_signal();
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = server_shutdown.wait_for(|s| *s).await;
        })
        .await;
    });

    // Awaited at shutdown: a hook that has just delivered an event stores its cursor
    // before the process ends, so a clean restart does not send that event again.
    let outbound_hooks: Vec<_> = gw
        .config()
        .outbound_hooks
        .clone()
        .into_iter()
        .map(|h| tokio::spawn(hooks::outbound(gw.clone(), h)))
        .collect();

    tokio::spawn(cron::run(gw.clone()));

    let recovering = gw.clone();
    tokio::spawn(async move {
        match recovering.recover(found_at_start).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("re-running {n} unanswered message(s) from before the restart"),
            Err(e) => tracing::error!(error = %e, "recovery failed"),
        }
    });

    let bus_url = format!("ws://{addr}/bus");
    let (user_left_tx, mut user_left) = tokio::sync::mpsc::channel::<()>(1);
    let mut supervisors = Vec::new();
    for (name, c) in &gw.config().channels {
        let attach = c.kind == "terminal";
        if attach && !options.attach_terminal {
            tracing::info!(channel = %name, "terminal channel not started (use `clawos up` or `clawos chat`)");
            continue;
        }
        let mut env = vec![
            (
                clawos_channels::media::ENV_MEDIA_DIR.to_string(),
                gw.media().dir().display().to_string(),
            ),
            (
                clawos_channels::media::ENV_MEDIA_MAX_BYTES.to_string(),
                gw.media().max_bytes().to_string(),
            ),
            (
                clawos_channels::protocol::ENV_CHANNEL_STATE_DIR.to_string(),
                gw.home()
                    .dir()
                    .join("channels")
                    .join(name)
                    .display()
                    .to_string(),
            ),
        ];
        if let Some(l) = c.listen {
            env.push((
                clawos_channels::webhook::ENV_LISTEN.to_string(),
                l.to_string(),
            ));
        }
        let secret = match &c.secret_name {
            Some(n) => secrets.get(n).map(|v| v.as_str().to_string()),
            None => c.secret.clone(),
        };
        if let Some(s) = secret {
            let var = if c.kind == "webhook" {
                clawos_channels::webhook::ENV_SECRET
            } else {
                clawos_channels::protocol::ENV_CHANNEL_SECRET
            };
            env.push((var.to_string(), s));
        }
        if !c.settings.is_empty() {
            let json = serde_json::to_string(&c.settings)
                .map_err(|e| KernelError::Config(format!("channels.{name}: {e}")))?;
            env.push((
                clawos_channels::protocol::ENV_CHANNEL_SETTINGS.to_string(),
                json,
            ));
        }
        let spec = supervisor::ChannelSpec {
            name: name.clone(),
            kind: c.kind.clone(),
            env,
            attach_stdio: attach,
        };
        let gw = gw.clone();
        let exe = exe.clone();
        let bus_url = bus_url.clone();
        let tx = user_left_tx.clone();
        supervisors.push(tokio::spawn(async move {
            if supervisor::supervise(gw, spec, bus_url, exe).await {
                let _ = tx.send(()).await;
            }
        }));
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| KernelError::io("cannot install the SIGTERM handler", e))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => eprintln!("\nshutting down"),
        _ = term.recv() => {}
        _ = user_left.recv() => {}
    }
    gw.shut_down();
    for s in supervisors
        .into_iter()
        .chain(agent_supervisors)
        .chain(outbound_hooks)
    {
        let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    gw.log().close().await;
    Ok(())
}
