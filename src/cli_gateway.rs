//! `clawos up|gateway|channel|config|status|doctor|admin`: running the Gateway and
//! checking on it.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use clawos_events::Durability;
use clawos_kernel::config::{Config, DEFAULT_CONFIG};
use clawos_kernel::RunOptions;
use clawos_replay::Home;

/// `clawos agent NAME`: serve one agent's turns on the pipes the Gateway gave it.
pub async fn agent(home: &Home, name: &str) -> Result<()> {
    let config = load_config(home)?;
    clawos_kernel::agent_host::child::run(home, &config, name).await?;
    Ok(())
}

/// `clawos config ...`
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate clawos.toml.
    Check,
    /// Print the path of clawos.toml.
    Path,
}

/// `clawos admin ...`
#[derive(Subcommand)]
pub enum AdminCommand {
    /// Print the admin token for the API and the admin UI.
    Token,
}

fn config_path(home: &Home) -> std::path::PathBuf {
    home.dir().join("clawos.toml")
}

/// Load the configuration; a missing file means the defaults.
pub fn load_config(home: &Home) -> Result<Config> {
    let path = config_path(home);
    if path.exists() {
        Ok(Config::load(&path)?)
    } else {
        Ok(Config::parse(DEFAULT_CONFIG)?)
    }
}

/// `clawos up`: create the state folder and config if missing, then run the Gateway with the
/// terminal channel attached.
pub async fn up(
    home: &Home,
    listen: Option<SocketAddr>,
    allow_remote: bool,
    yes: bool,
) -> Result<()> {
    std::fs::create_dir_all(home.dir())
        .with_context(|| format!("cannot create {}", home.dir().display()))?;
    let path = config_path(home);
    if !path.exists() {
        std::fs::write(&path, DEFAULT_CONFIG)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote a default configuration to {}", path.display());
    }
    let config = Config::load(&path)?;
    crate::first_run::run(home, &config, yes).await?;
    clawos_kernel::run(
        home.clone(),
        config,
        RunOptions {
            listen,
            attach_terminal: true,
            allow_remote,
        },
    )
    .await?;
    Ok(())
}

/// `clawos gateway`: the daemon in the foreground (no terminal channel).
pub async fn gateway(home: &Home, listen: Option<SocketAddr>, allow_remote: bool) -> Result<()> {
    let config = load_config(home)?;
    clawos_kernel::run(
        home.clone(),
        config,
        RunOptions {
            listen,
            attach_terminal: false,
            allow_remote,
        },
    )
    .await?;
    Ok(())
}

/// `clawos channel KIND`.
pub async fn channel(kind: &str) -> Result<()> {
    clawos_channels::process::run(kind).await?;
    Ok(())
}

/// `clawos config ...`
pub fn config(home: &Home, cmd: ConfigCommand) -> Result<()> {
    let path = config_path(home);
    match cmd {
        ConfigCommand::Path => println!("{}", path.display()),
        ConfigCommand::Check => {
            if !path.exists() {
                println!(
                    "{} does not exist; the defaults apply (`clawos up` writes them)",
                    path.display()
                );
                return Ok(());
            }
            Config::load(&path)?;
            println!("{}: OK", path.display());
        }
    }
    Ok(())
}

/// The address the running Gateway listens on, from its `gateway.json`.
pub fn gateway_address(home: &Home) -> Option<String> {
    let text = std::fs::read_to_string(home.dir().join("gateway.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("listen")?.as_str().map(String::from)
}

/// GET `url` (with a bearer token) as JSON; a non-success status is an error.
pub async fn get_json(url: &str, token: Option<&str>) -> Result<serde_json::Value> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?;
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        bail!("{url}: {status}: {body}");
    }
    Ok(body)
}

/// `clawos status`.
pub async fn status(home: &Home) -> Result<()> {
    let Some(addr) = gateway_address(home) else {
        println!(
            "Gateway: not running (no gateway.json in {}); start it with `clawos up`",
            home.dir().display()
        );
        return Ok(());
    };
    let token = crate::cli_secrets::admin_token(home, Durability::Full).await?;
    match get_json(&format!("http://{addr}/api/status"), Some(&token)).await {
        Err(e) => println!("Gateway: not reachable at {addr} ({e}); start it with `clawos up`"),
        Ok(s) => {
            println!(
                "Gateway: running at http://{addr}, log at seq {}, projections at {}",
                s["seq"], s["projected"]
            );
            println!("replies waiting for delivery: {}", s["delivery_backlog"]);
            for c in s["channels"].as_array().cloned().unwrap_or_default() {
                let restarts = c["restarts"].as_i64().unwrap_or(0);
                let warn = if restarts >= 3 {
                    "  <- restarting repeatedly: see `clawos log tail`"
                } else {
                    ""
                };
                let link = c["link"]
                    .as_str()
                    .map(|l| format!(", link {l}"))
                    .unwrap_or_default();
                println!(
                    "channel {:<12} {:<8} {:<4} pid {:<8} restarts {}{}{}{}",
                    c["channel"].as_str().unwrap_or("?"),
                    c["kind"].as_str().unwrap_or("?"),
                    c["state"].as_str().unwrap_or("?"),
                    c["pid"],
                    restarts,
                    c["last_exit"]
                        .as_str()
                        .map(|e| format!(", last exit: {e}"))
                        .unwrap_or_default(),
                    link,
                    warn
                );
            }
            for a in s["agents"].as_array().cloned().unwrap_or_default() {
                println!(
                    "agent   {:<12} {:<8} {:<4} pid {:<8} restarts {}{}",
                    a["agent"].as_str().unwrap_or("?"),
                    a["encoding"].as_str().unwrap_or("-"),
                    a["state"].as_str().unwrap_or("?"),
                    a["pid"],
                    a["restarts"].as_i64().unwrap_or(0),
                    a["last_exit"]
                        .as_str()
                        .map(|e| format!(", last exit: {e}"))
                        .unwrap_or_default(),
                );
            }
        }
    }
    Ok(())
}

/// `clawos doctor`: what is wrong, in words a user can act on.
pub async fn doctor(home: &Home, durability: Durability) -> Result<()> {
    let mut problems = 0;
    println!("state folder: {}", home.dir().display());
    match load_config(home) {
        Ok(c) => {
            println!(
                "config: OK ({} agent(s), {} channel(s))",
                c.agents.len(),
                c.channels.len()
            );
            problems += crate::cli_doctor::channels(home, &c).await;
            let pi_only = c.agents.values().all(|a| a.kind == "pi");
            if pi_only {
                println!("agent pi: no LLM provider configured; Pi answers every message with setup instructions. Add a provider under [agents.pi] in clawos.toml.");
            }
        }
        Err(e) => {
            problems += 1;
            println!("config: {e}");
        }
    }
    if home.log_path().exists() {
        let store = home.open_log(durability).await?;
        let report = clawos_events::verify(&store, |_| {}).await?;
        if report.ok() {
            println!("log: {} events, hash chain intact", report.events_checked);
        } else {
            problems += 1;
            println!("log: DAMAGED: {report:?}; run `clawos replay verify` for details");
        }
        store.close().await;
    } else {
        println!("log: empty (created at first start)");
    }
    problems += doctor_vault(home).await;
    match gateway_address(home) {
        Some(addr) => match get_json(&format!("http://{addr}/health"), None).await {
            Ok(h) => println!("gateway: running at {addr}, seq {}", h["seq"]),
            Err(_) => println!("gateway: not running (last address {addr})"),
        },
        None => println!("gateway: not running; start it with `clawos up`"),
    }
    if problems > 0 {
        bail!("{problems} problem(s) found");
    }
    Ok(())
}

/// The vault part of `clawos doctor`: where the key lives (and why, when it is the file
/// fallback), and whether it opens the vault. Returns the number of problems.
async fn doctor_vault(home: &Home) -> usize {
    use clawos_kernel::vault::{keystore, Vault};
    if !Vault::path_in(home.dir()).exists() {
        let chosen = keystore::choose(home.dir());
        match chosen.fallback {
            Some(why) => println!(
                "vault: not created yet; {why}, so its key will be kept in {} (mode 0600)",
                chosen.store.describe()
            ),
            None => println!(
                "vault: not created yet; its key will be kept in {}",
                chosen.store.describe()
            ),
        }
        return 0;
    }
    match Vault::open(home.dir()).await {
        Ok(v) => {
            let n = v.list().await.map(|l| l.len()).unwrap_or(0);
            match v.fallback() {
                Some(why) => println!(
                    "vault: OK, {n} secret(s); {why}, so the key is kept in {} (mode 0600)",
                    v.key_source()
                ),
                None => println!("vault: OK, {n} secret(s); key in {}", v.key_source()),
            }
            v.close().await;
            0
        }
        Err(e) => {
            println!("vault: {e}");
            1
        }
    }
}

/// `clawos admin ...`
pub async fn admin(home: &Home, durability: Durability, cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::Token => println!(
            "{}",
            crate::cli_secrets::admin_token(home, durability)
                .await?
                .as_str()
        ),
    }
    Ok(())
}
