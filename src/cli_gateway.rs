//! `clawos up|gateway|channel|config|status|doctor|bind|identity|admin`.

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use clawos_events::{
    stream, BindingRemoved, BindingScope, BindingSet, Durability, IdentityLinked, NewEvent,
};
use clawos_kernel::config::{Config, DEFAULT_CONFIG};
use clawos_kernel::RunOptions;
use clawos_replay::{rebuild, Home};

/// `clawos channel KIND`: the entry point of channel processes (started by the Gateway).
#[derive(Subcommand)]
pub enum ChannelKind {
    /// Lines on stdin in, replies on stdout.
    Terminal,
    /// HTTP POST in, replies in the response.
    Webhook,
}

/// `clawos config ...`
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate clawos.toml.
    Check,
    /// Print the path of clawos.toml.
    Path,
}

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

/// `clawos pairing ...`
#[derive(Subcommand)]
pub enum PairingCommand {
    /// Let the sender who received CODE talk to the agents.
    Approve {
        /// The code the sender received.
        code: String,
    },
    /// Pending pairing requests.
    List,
}

/// `clawos cron ...`
#[derive(Subcommand)]
pub enum CronCommand {
    /// Schedule a prompt for a session's agent.
    Add {
        /// Session id (`clawos status` or `/status` in a chat shows it).
        #[arg(long)]
        session: String,
        /// `every DURATION` (e.g. `every 30m`) or `at TIME` (RFC 3339).
        #[arg(long)]
        schedule: String,
        /// What the agent is asked each time.
        #[arg(long)]
        prompt: String,
    },
    /// Scheduled jobs.
    List,
    /// Cancel a job.
    Rm {
        /// Job id.
        job: String,
    },
}

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

/// `clawos models ...`
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Copy a GGUF model file into the state folder's models/ (Pi's embedded default), or
    /// an all-MiniLM-L6-v2 folder (model.safetensors, tokenizer.json, config.json) into
    /// models/all-MiniLM-L6-v2 (the memory embedder's default).
    Add {
        /// The .gguf file, or the sentence-transformer folder.
        path: std::path::PathBuf,
    },
    /// Models in the state folder.
    List,
    /// Download a model: `smollm2` (Pi's embedded default), `minilm` (the memory embedder),
    /// `OWNER/REPO/FILE` from Hugging Face, or an https:// URL. `HF_ENDPOINT` picks a mirror.
    Pull {
        /// What to download.
        what: String,
    },
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
pub async fn up(home: &Home, listen: Option<SocketAddr>, allow_remote: bool) -> Result<()> {
    std::fs::create_dir_all(home.dir())
        .with_context(|| format!("cannot create {}", home.dir().display()))?;
    let path = config_path(home);
    if !path.exists() {
        std::fs::write(&path, DEFAULT_CONFIG)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote a default configuration to {}", path.display());
    }
    let config = Config::load(&path)?;
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
pub async fn channel(kind: ChannelKind) -> Result<()> {
    use clawos_channels::client::ChannelIdentity;
    match kind {
        ChannelKind::Terminal => {
            let id = ChannelIdentity::from_env("terminal")?;
            let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
            clawos_channels::terminal::run(id, interactive).await?;
        }
        ChannelKind::Webhook => {
            let id = ChannelIdentity::from_env("webhook")?;
            let listen: SocketAddr = std::env::var(clawos_channels::webhook::ENV_LISTEN)
                .map_err(|_| anyhow!("{} is not set", clawos_channels::webhook::ENV_LISTEN))?
                .parse()
                .context("bad webhook listen address")?;
            let secret = std::env::var(clawos_channels::webhook::ENV_SECRET)
                .map_err(|_| anyhow!("{} is not set", clawos_channels::webhook::ENV_SECRET))?;
            clawos_channels::webhook::run(id, listen, secret).await?;
        }
    }
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

fn gateway_address(home: &Home) -> Option<String> {
    let text = std::fs::read_to_string(home.dir().join("gateway.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("listen")?.as_str().map(String::from)
}

async fn get_json(url: &str, token: Option<&str>) -> Result<serde_json::Value> {
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
                println!(
                    "channel {:<12} {:<8} {:<4} pid {:<8} restarts {}{}{}",
                    c["channel"].as_str().unwrap_or("?"),
                    c["kind"].as_str().unwrap_or("?"),
                    c["state"].as_str().unwrap_or("?"),
                    c["pid"],
                    restarts,
                    c["last_exit"]
                        .as_str()
                        .map(|e| format!(", last exit: {e}"))
                        .unwrap_or_default(),
                    warn
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
    rebuild::catch_up(&store, &pool).await?;
    match cmd {
        IdentityCommand::Link { a, b } => {
            let existing: Option<String> =
                sqlx::query_scalar("SELECT identity FROM identity_addresses WHERE address = ?")
                    .bind(&a)
                    .fetch_optional(&pool)
                    .await?;
            let identity = existing.unwrap_or_else(|| a.clone());
            let mut events = Vec::new();
            if identity == a {
                events.push(NewEvent::new(IdentityLinked {
                    identity: identity.clone(),
                    address: a.clone(),
                }));
            }
            events.push(NewEvent::new(IdentityLinked {
                identity: identity.clone(),
                address: b.clone(),
            }));
            store
                .append(
                    &stream::identity(&identity),
                    clawos_events::ExpectedVersion::Any,
                    events,
                )
                .await?;
            println!("{b} now belongs to identity {identity} (with {a})");
        }
        IdentityCommand::List => {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT identity, address FROM identity_addresses ORDER BY identity, address",
            )
            .fetch_all(&pool)
            .await?;
            for (i, a) in rows {
                println!("{i:<32} {a}");
            }
        }
    }
    store.close().await;
    Ok(())
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

/// `clawos pairing ...`: reads the `pairing` stream of the log.
pub async fn pairing(home: &Home, durability: Durability, cmd: PairingCommand) -> Result<()> {
    use clawos_events::{EventPayload, PairingApproved};
    let store = home.open_log(durability).await?;
    let events = store.read_stream(stream::PAIRING, u64::MAX).await?;
    let now = clawos_kernel::clock::now_ms();
    let mut requests = Vec::new();
    let mut approved = std::collections::HashSet::new();
    for e in &events {
        match e.decode()? {
            EventPayload::PairingRequested(r) => requests.push(r),
            EventPayload::PairingApproved(a) => {
                approved.insert((a.channel, a.address));
            }
            _ => {}
        }
    }
    let result = match cmd {
        PairingCommand::List => {
            let pending: Vec<_> = requests
                .iter()
                .filter(|r| {
                    r.expires_at_ms > now
                        && !approved.contains(&(r.channel.clone(), r.address.clone()))
                })
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
            Ok(())
        }
        PairingCommand::Approve { code } => {
            let hash = clawos_kernel::tokens::code_hash(&code);
            match requests.iter().rev().find(|r| r.code_hash == hash) {
                None => Err(anyhow!("no pairing request has code {code}")),
                Some(r) if r.expires_at_ms <= now => Err(anyhow!(
                    "code {code} for {} expired; the sender gets a new one by writing again",
                    r.address
                )),
                Some(r) if approved.contains(&(r.channel.clone(), r.address.clone())) => {
                    println!("{} on {} is already approved", r.address, r.channel);
                    Ok(())
                }
                Some(r) => {
                    store
                        .append_one(
                            stream::PAIRING,
                            NewEvent::new(PairingApproved {
                                channel: r.channel.clone(),
                                address: r.address.clone(),
                            }),
                        )
                        .await?;
                    println!("approved: {} may now talk through {}", r.address, r.channel);
                    Ok(())
                }
            }
        }
    };
    store.close().await;
    result
}

/// `clawos chat`: attach to the running Gateway as a terminal channel, with the recent
/// history of your session first.
pub async fn chat(home: &Home) -> Result<()> {
    let Some(addr) = gateway_address(home) else {
        bail!(
            "no Gateway is running for {} (start one with `clawos gateway`)",
            home.dir().display()
        );
    };
    let token = std::fs::read_to_string(home.dir().join("chat.token"))
        .with_context(|| format!("cannot read {}/chat.token", home.dir().display()))?;
    let admin = crate::cli_secrets::admin_token(home, Durability::Full).await?;
    let me = clawos_channels::terminal::local_address();
    if let Ok(sessions) = get_json(&format!("http://{addr}/api/sessions"), Some(&admin)).await {
        let mine = sessions
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s["identity"] == me.as_str())
            .max_by_key(|s| s["last_seq"].as_u64().unwrap_or(0));
        if let Some(s) = mine {
            let id = s["session_id"].as_str().unwrap_or_default();
            let active = s["active_branch"].as_str().unwrap_or("main");
            if let Ok(detail) =
                get_json(&format!("http://{addr}/api/sessions/{id}"), Some(&admin)).await
            {
                let branches = detail[0]["branches"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if let Some(b) = branches.iter().find(|b| b["branch"]["name"] == active) {
                    let t = b["transcript"].as_array().cloned().unwrap_or_default();
                    for m in t.iter().rev().take(20).rev() {
                        let who = if m["role"] == "user" { "you" } else { "pi" };
                        println!("{who}> {}", m["text"].as_str().unwrap_or(""));
                    }
                }
            }
        }
    }
    let identity = clawos_channels::client::ChannelIdentity {
        bus_url: format!("ws://{addr}/bus"),
        name: clawos_kernel::CHAT_CHANNEL.to_string(),
        kind: "terminal".into(),
        token: token.trim().to_string(),
    };
    clawos_channels::terminal::run(identity, true).await?;
    Ok(())
}

/// `clawos cron ...`: jobs are events in the session's stream; the Gateway's scheduler
/// fires them.
pub async fn cron(home: &Home, durability: Durability, cmd: CronCommand) -> Result<()> {
    use clawos_events::{CronCancelled, CronScheduled, ExpectedVersion};
    let store = home.open_log(durability).await?;
    let pool = home.open_projections().await?;
    rebuild::catch_up(&store, &pool).await?;
    let result = match cmd {
        CronCommand::Add {
            session,
            schedule,
            prompt,
        } => {
            clawos_kernel::schedule::parse(&schedule).map_err(|e| anyhow!(e))?;
            let stream = stream::session(&session);
            let version = store.stream_version(&stream).await?;
            if version == 0 {
                bail!("no session {session}");
            }
            let job_id = uuid::Uuid::now_v7();
            store
                .append(
                    &stream,
                    ExpectedVersion::Exact(version),
                    vec![NewEvent::new(CronScheduled {
                        job_id,
                        session_id: session.clone(),
                        schedule: schedule.clone(),
                        prompt,
                    })],
                )
                .await?;
            println!("job {job_id} scheduled ({schedule}) in session {session}");
            Ok(())
        }
        CronCommand::List => {
            let rows: Vec<(String, String, String, String, i64, i64)> = sqlx::query_as(
                "SELECT job_id, session_id, schedule, prompt, fired, cancelled FROM cron_jobs ORDER BY scheduled_ms",
            )
            .fetch_all(&pool)
            .await?;
            if rows.is_empty() {
                println!("no cron jobs");
            }
            for (job, session, schedule, prompt, fired, cancelled) in rows {
                let state = if cancelled != 0 {
                    "cancelled"
                } else {
                    "active"
                };
                println!(
                    "{job} {state:<9} {schedule:<24} fired {fired:>4}  session {session}: {prompt}"
                );
            }
            Ok(())
        }
        CronCommand::Rm { job } => {
            let job_id = uuid::Uuid::parse_str(&job).context("not a job id")?;
            let session: Option<String> =
                sqlx::query_scalar("SELECT session_id FROM cron_jobs WHERE job_id = ?")
                    .bind(&job)
                    .fetch_optional(&pool)
                    .await?;
            let Some(session) = session else {
                bail!("no cron job {job}");
            };
            store
                .append_one(
                    &stream::session(&session),
                    NewEvent::new(CronCancelled { job_id }),
                )
                .await?;
            println!("job {job} cancelled");
            Ok(())
        }
    };
    store.close().await;
    result
}

/// `clawos approvals ...`: reads and answers the `approvals` stream.
pub async fn approvals(home: &Home, durability: Durability, cmd: ApprovalsCommand) -> Result<()> {
    use clawos_events::{ApprovalAnswered, EventPayload, ExpectedVersion};
    let store = home.open_log(durability).await?;
    let mut requested = Vec::new();
    let mut answered = std::collections::HashSet::new();
    for e in store.read_stream(stream::APPROVALS, u64::MAX).await? {
        match e.decode()? {
            EventPayload::ApprovalRequested(r) => requested.push(r),
            EventPayload::ApprovalAnswered(a) => {
                answered.insert(a.approval_id);
            }
            _ => {}
        }
    }
    let result = match cmd {
        ApprovalsCommand::List => {
            let pending: Vec<_> = requested
                .iter()
                .filter(|r| !answered.contains(&r.approval_id))
                .collect();
            if pending.is_empty() {
                println!("nothing waits for approval");
            }
            for r in pending {
                println!("{}  session {}  {}", r.approval_id, r.session_id, r.action);
            }
            Ok(())
        }
        ApprovalsCommand::Approve { id } | ApprovalsCommand::Deny { id }
            if uuid::Uuid::parse_str(&id).is_err() =>
        {
            Err(anyhow!(
                "`{id}` is not an approval id (see `clawos approvals list`)"
            ))
        }
        cmd @ (ApprovalsCommand::Approve { .. } | ApprovalsCommand::Deny { .. }) => {
            let (id, approved) = match cmd {
                ApprovalsCommand::Approve { id } => (id, true),
                ApprovalsCommand::Deny { id } => (id, false),
                ApprovalsCommand::List => unreachable!("handled above"),
            };
            let approval_id = uuid::Uuid::parse_str(&id)?;
            if !requested.iter().any(|r| r.approval_id == approval_id) {
                bail!("no approval request {id}");
            }
            let a = store
                .append(
                    stream::APPROVALS,
                    ExpectedVersion::Any,
                    vec![NewEvent::new(ApprovalAnswered {
                        approval_id,
                        approved,
                        by: "cli".into(),
                    })
                    .dedupe(clawos_kernel::approvals::approval_key(approval_id))],
                )
                .await?;
            if a.duplicate {
                println!("{id} was already answered");
            } else {
                println!("{id} {}", if approved { "approved" } else { "denied" });
            }
            Ok(())
        }
    };
    store.close().await;
    result
}

/// `clawos models ...`
pub async fn models(home: &Home, cmd: ModelsCommand) -> Result<()> {
    let dir = home.dir().join("models");
    match cmd {
        ModelsCommand::Pull { what } => crate::models_pull::pull(&dir, &what).await?,
        ModelsCommand::Add { path } if path.is_dir() => {
            use clawos_agents::embed::minilm;
            if !minilm::installed(&path) {
                bail!(
                    "{} does not hold model.safetensors, tokenizer.json and config.json",
                    path.display()
                );
            }
            let target = dir.join(minilm::FOLDER);
            std::fs::create_dir_all(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
            for f in ["model.safetensors", "tokenizer.json", "config.json"] {
                std::fs::copy(path.join(f), target.join(f))
                    .with_context(|| format!("cannot copy {f} to {}", target.display()))?;
            }
            minilm::MiniLmEmbedder::load(&target)?;
            println!(
                "added {}; the memory index uses it (embedder \"auto\") from the next Gateway \
                 start, which re-embeds every memory",
                target.display()
            );
        }
        ModelsCommand::Add { path } => {
            if path.extension().and_then(|e| e.to_str()) != Some("gguf") {
                bail!("{} is not a .gguf file", path.display());
            }
            let name = path.file_name().context("no file name")?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let target = dir.join(name);
            std::fs::copy(&path, &target).with_context(|| {
                format!("cannot copy {} to {}", path.display(), target.display())
            })?;
            println!(
                "added {}; Pi uses it when no provider is configured (restart the Gateway)",
                target.display()
            );
        }
        ModelsCommand::List => {
            let mut found = false;
            if let Ok(entries) = std::fs::read_dir(&dir) {
                let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
                names.sort();
                for p in names
                    .iter()
                    .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("gguf"))
                {
                    let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                    println!("{}  {:.1} MB", p.display(), size as f64 / 1e6);
                    found = true;
                }
            }
            if !found {
                println!(
                    "no models in {} (`clawos models add PATH.gguf`)",
                    dir.display()
                );
            }
        }
    }
    Ok(())
}
