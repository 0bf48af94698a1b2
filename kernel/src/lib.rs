//! `clawos-kernel`: the Gateway daemon.
//!
//! It sits between channel processes and agents: channels publish inbound messages over the
//! `/bus` WebSocket, the router picks a session and an agent, the dispatcher runs the turn,
//! and replies flow back from each channel's delivery cursor. Every step is an event.
//!
//! # Layout
//! - [`config`]: `clawos.toml`, strictly validated.
//! - [`gateway`]: shared state; ingest, dispatch, recovery, delivery queries.
//! - [`commands`]: chat commands (`/branch`, `/switch`, `/fork`, `/compact`, ...).
//! - [`routing`]: identities, bindings and sessions folded in memory for decisions.
//! - [`bus`]: the `/bus` endpoint (hello, inbound acks, deliveries, heartbeats).
//! - [`supervisor`]: channel processes, tokens, restarts with backoff.
//! - [`server`]: `/health`, `/metrics`, `/api`.
//! - [`ws`]: `/ws`, JSON frames for UI clients (connect, chat.send, events.subscribe...).
//! - [`cron`]: the scheduler (`CronScheduled` → `CronFired` + a turn).
//! - [`hooks`]: outbound hooks (POST chosen events to URLs); inbound is `POST /hooks/agent`.
//! - [`memory`]: the configured embedder, the memory index, hybrid recall.
//! - [`vault`]: secrets sealed with XChaCha20-Poly1305; the key in the OS keychain or a
//!   0600 key file.
//! - [`admin`]: the admin UI at `/admin` and its JSON API under `/api`.
//! - [`metrics`], [`tokens`].
//!
//! **Architecture Invariant:** the kernel never talks to an LLM and never speaks a chat
//! network's protocol: agents and channel processes do. It decides, and records decisions.

pub mod admin;
pub mod bus;
pub mod commands;
pub mod config;
pub mod cron;
mod error;
pub mod gateway;
pub mod hooks;
pub mod memory;
pub mod metrics;
pub mod routing;
pub mod server;
pub mod supervisor;
pub mod tokens;
pub mod vault;
pub mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use clawos_agents::Agent;
use clawos_replay::Home;

pub use config::Config;
pub use error::KernelError;
pub use gateway::Gateway;

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

/// Secret values the configuration refers to by name (`api_key_secret`, `secret_name`),
/// read from the vault once at start.
pub type ConfigSecrets = HashMap<String, zeroize::Zeroizing<String>>;

/// Read every vault secret the configuration names; a missing one is an error that says
/// how to store it.
pub async fn resolve_secrets(
    config: &Config,
    vault: &vault::Vault,
) -> Result<ConfigSecrets, KernelError> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (name, a) in &config.agents {
        if let Some(s) = &a.api_key_secret {
            wanted.push((format!("agents.{name}.api_key_secret"), s.clone()));
        }
        for f in &a.failover {
            if let Some(s) = &f.api_key_secret {
                wanted.push((format!("agents.{name}.failover.api_key_secret"), s.clone()));
            }
        }
    }
    for (name, c) in &config.channels {
        if let Some(s) = &c.secret_name {
            wanted.push((format!("channels.{name}.secret_name"), s.clone()));
        }
    }
    let mut found = ConfigSecrets::new();
    for (key, secret) in wanted {
        match vault.get_text(&secret).await? {
            Some(v) => {
                found.insert(secret, v);
            }
            None => {
                return Err(KernelError::Config(format!(
                    "{key} = \"{secret}\": the vault has no such secret; store it with \
                     `clawos secrets set {secret}`"
                )))
            }
        }
    }
    Ok(found)
}

/// The API key of a provider: the vault secret when one is named, else the environment
/// variable.
fn api_key(
    secrets: &ConfigSecrets,
    secret: Option<&String>,
    env: Option<&String>,
) -> Option<String> {
    match secret {
        Some(name) => secrets.get(name).map(|v| v.as_str().to_string()),
        None => env.and_then(|v| std::env::var(v).ok()),
    }
}

/// Build the agents named in the configuration (an unconfigured Pi when none are).
pub fn build_agents(
    home: &Home,
    config: &Config,
    secrets: &ConfigSecrets,
) -> Result<HashMap<String, Arc<dyn Agent>>, KernelError> {
    let mut agents: HashMap<String, Arc<dyn Agent>> = HashMap::new();
    for (name, a) in &config.agents {
        let embedded = clawos_agents::provider::local::find_model(&home.dir().join("models"));
        let agent: Arc<dyn Agent> = match (a.kind.as_str(), &a.provider, embedded) {
            ("echo", _, _) => Arc::new(clawos_agents::echo::EchoAgent::new(name.clone())),
            // The embedded default: no provider configured, a model in STATE/models.
            (_, None, Some(model)) => {
                let mut local = a.clone();
                local.provider = Some("local".into());
                local.model = Some(model.display().to_string());
                Arc::new(build_pi(home, name, &local, secrets)?)
            }
            (_, None, None) => Arc::new(clawos_agents::pi::UnconfiguredPi),
            (_, Some(_), _) => Arc::new(build_pi(home, name, a, secrets)?),
        };
        agents.insert(name.clone(), agent);
    }
    if agents.is_empty() {
        agents.insert("pi".into(), Arc::new(clawos_agents::pi::UnconfiguredPi));
    }
    Ok(agents)
}

fn provider_config(
    kind: &str,
    base_url: &str,
    model: &str,
    api_key: Option<String>,
    a: &config::AgentConfig,
) -> clawos_agents::provider::ProviderConfig {
    use clawos_agents::provider::{ProviderConfig, ProviderKind};
    ProviderConfig {
        kind: if kind == "anthropic" {
            ProviderKind::Anthropic
        } else {
            ProviderKind::OpenAi
        },
        base_url: base_url.to_string(),
        model: model.to_string(),
        api_key,
        timeout: Duration::from_secs(a.timeout_secs.max(1)),
        retries: a.retries,
        backoff: Duration::from_millis(250),
    }
}

/// Load a GGUF model for the `local` provider: `model` is a path, or a file name in
/// `STATE/models`; without it, the first `*.gguf` there.
fn load_local(
    home: &Home,
    name: &str,
    model: Option<&str>,
) -> Result<clawos_agents::provider::local::LocalProvider, KernelError> {
    use clawos_agents::provider::local::{find_model, LocalModel, LocalProvider};
    let models = home.dir().join("models");
    let path = match model {
        Some(m) if std::path::Path::new(m).is_absolute() => std::path::PathBuf::from(m),
        Some(m) => models.join(m),
        None => find_model(&models).ok_or_else(|| {
            KernelError::Config(format!(
                "agents.{name}: provider \"local\" needs a .gguf model in {} (`clawos models add PATH`)",
                models.display()
            ))
        })?,
    };
    tracing::info!(model = %path.display(), "loading the local model");
    let loaded = tokio::task::block_in_place(|| LocalModel::load(&path))
        .map_err(|e| KernelError::Config(format!("agents.{name}: {e}")))?;
    Ok(LocalProvider::new(loaded))
}

fn build_pi(
    home: &Home,
    name: &str,
    a: &config::AgentConfig,
    secrets: &ConfigSecrets,
) -> Result<clawos_agents::pi::Pi, KernelError> {
    use clawos_agents::provider::{build, failover::Failover, Provider};
    use clawos_agents::skills::{
        fs::FsSkill,
        shell::{ShellPolicy, ShellSkill},
        SkillSet,
    };
    let mut chain: Vec<Box<dyn Provider>> = Vec::new();
    if a.provider.as_deref() == Some("local") {
        chain.push(Box::new(load_local(home, name, a.model.as_deref())?));
    } else {
        let (Some(kind), Some(base_url), Some(model)) = (&a.provider, &a.base_url, &a.model) else {
            return Err(KernelError::Config(format!(
                "agents.{name}: a provider needs `base_url` and `model`"
            )));
        };
        chain.push(build(&provider_config(
            kind,
            base_url,
            model,
            api_key(secrets, a.api_key_secret.as_ref(), a.api_key_env.as_ref()),
            a,
        )));
    }
    for f in &a.failover {
        chain.push(build(&provider_config(
            &f.provider,
            &f.base_url,
            &f.model,
            api_key(secrets, f.api_key_secret.as_ref(), f.api_key_env.as_ref()),
            a,
        )));
    }
    let provider: Box<dyn Provider> = if chain.len() == 1 {
        chain.remove(0)
    } else {
        Box::new(Failover::new(chain))
    };
    let workspace = a
        .workspace
        .clone()
        .map(|w| {
            if w.is_absolute() {
                w
            } else {
                home.dir().join(w)
            }
        })
        .unwrap_or_else(|| home.dir().join("workspace").join(name));
    let fs = FsSkill::new(&workspace).map_err(|e| {
        KernelError::io(
            format!("cannot create the workspace {}", workspace.display()),
            e,
        )
    })?;
    let policy = match a.shell.as_str() {
        "allowlist" => ShellPolicy::Allowlist(a.shell_allow.clone()),
        "ask" => ShellPolicy::Ask(a.shell_allow.clone()),
        _ => ShellPolicy::Deny,
    };
    let skills = SkillSet::default()
        .with(Arc::new(clawos_agents::skills::memory::MemorySkill))
        .with(Arc::new(clawos_agents::skills::cron::CronSkill))
        .with(Arc::new(clawos_agents::skills::session::SessionSkill))
        .with(Arc::new(fs))
        .with(Arc::new(ShellSkill::new(
            workspace.clone(),
            policy,
            Duration::from_secs(30),
            16 * 1024,
        )));
    Ok(
        clawos_agents::pi::Pi::new(name, provider, skills, workspace, a.max_steps)
            .with_max_tokens(a.max_tokens),
    )
}

/// Where a running Gateway can be found: `gateway.json` in the state folder.
pub fn write_address_file(home: &Home, addr: SocketAddr) -> Result<(), KernelError> {
    let path = home.dir().join("gateway.json");
    let body = serde_json::json!({"listen": addr.to_string(), "pid": std::process::id()});
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
    let agents = build_agents(&home, &config, &secrets)?;
    let gw = Gateway::open(home.clone(), config, agents, vault).await?;
    // What recovery may touch: the log as this process found it, before it serves anyone.
    let found_at_start = gw.store.head();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| KernelError::io(format!("cannot listen on {listen}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| KernelError::io("cannot read the listening address", e))?;
    write_address_file(&home, addr)?;
    // `clawos chat` attaches as the channel `chat` with a token only the owner can read.
    let chat_token = tokens::random_token();
    tokens::write_private(&home.dir().join("chat.token"), &chat_token)?;
    gw.tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(CHAT_CHANNEL.to_string(), chat_token);
    eprintln!(
        "clawos gateway listening on http://{addr} (state in {})",
        home.dir().display()
    );
    eprintln!("admin UI at http://{addr}/admin; its token: `clawos admin token`");
    let listener = listener.tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    let app = server::router(gw.clone());
    let mut server_shutdown = gw.shutdown.subscribe();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|s| *s).await;
            })
            .await;
    });

    for h in gw.config.outbound_hooks.clone() {
        tokio::spawn(hooks::outbound(gw.clone(), h));
    }

    tokio::spawn(cron::run(gw.clone()));

    let recovering = gw.clone();
    tokio::spawn(async move {
        match recovering.recover(found_at_start).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("re-running {n} unanswered message(s) from before the restart"),
            Err(e) => tracing::error!(error = %e, "recovery failed"),
        }
    });

    let exe =
        std::env::current_exe().map_err(|e| KernelError::io("cannot find the clawos binary", e))?;
    let bus_url = format!("ws://{addr}/bus");
    let (user_left_tx, mut user_left) = tokio::sync::mpsc::channel::<()>(1);
    let mut supervisors = Vec::new();
    for (name, c) in &gw.config.channels {
        let attach = c.kind == "terminal";
        if attach && !options.attach_terminal {
            tracing::info!(channel = %name, "terminal channel not started (use `clawos up` or `clawos chat`)");
            continue;
        }
        let mut env = Vec::new();
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
            env.push((clawos_channels::webhook::ENV_SECRET.to_string(), s));
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
    gw.shutdown.send_replace(true);
    for s in supervisors {
        let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    gw.store.close().await;
    Ok(())
}
