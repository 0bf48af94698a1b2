//! Assembly of what the configuration names: the vault secrets it refers to, and the
//! agents (Pi with its provider chain and skills, the embedded local model, or the
//! diagnostic `echo` agent).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use clawos_agents::Agent;
use clawos_replay::Home;

use crate::config::{self, Config};
use crate::skill_config::McpServers;
use crate::vault;
use crate::KernelError;

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
        for s in &a.secrets {
            wanted.push((format!("agents.{name}.secrets"), s.clone()));
        }
    }
    for (name, c) in &config.channels {
        if let Some(s) = &c.secret_name {
            wanted.push((format!("channels.{name}.secret_name"), s.clone()));
        }
    }
    for (name, a) in &config.calendar.accounts {
        if let Some(s) = &a.password_secret {
            wanted.push((
                format!("calendar.accounts.{name}.password_secret"),
                s.clone(),
            ));
        }
    }
    for (name, m) in &config.mcp_servers {
        wanted.extend(m.secrets(name));
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

/// Build the agents named in the configuration that run inside the Gateway (an
/// unconfigured Pi when none are); those with `isolation = "process"` are the
/// supervisor's ([`crate::agent_host`]).
pub fn build_agents(
    home: &Home,
    config: &Config,
    secrets: &ConfigSecrets,
    mcp: &McpServers,
) -> Result<HashMap<String, Arc<dyn Agent>>, KernelError> {
    let env = SkillEnv {
        config,
        secrets,
        mcp,
    };
    let mut agents: HashMap<String, Arc<dyn Agent>> = HashMap::new();
    for (name, a) in config.agents.iter().filter(|(_, a)| !a.isolated()) {
        agents.insert(name.clone(), build_agent(home, name, a, &env)?);
    }
    if agents.is_empty() && !config.agents.values().any(|a| a.isolated()) {
        agents.insert("pi".into(), Arc::new(clawos_agents::pi::UnconfiguredPi));
    }
    Ok(agents)
}

/// Build one agent as configured, in this process (the Gateway for agents without
/// isolation, `clawos agent NAME` for the others).
pub fn build_agent(
    home: &Home,
    name: &str,
    a: &config::AgentConfig,
    env: &SkillEnv<'_>,
) -> Result<Arc<dyn Agent>, KernelError> {
    let embedded = clawos_agents::provider::local::find_model(&home.dir().join("models"));
    let agent: Arc<dyn Agent> = match (a.kind.as_str(), &a.provider, embedded) {
        ("echo", _, _) => Arc::new(clawos_agents::echo::EchoAgent::new(name.to_string())),
        // The embedded default: no provider configured, a model in STATE/models.
        // A model that does not load is said by Pi, not a Gateway that will not start:
        // it may be a download of the first run, not something the person configured.
        (_, None, Some(model)) => {
            let mut local = a.clone();
            local.provider = Some("local".into());
            local.model = Some(model.display().to_string());
            match build_pi(home, name, &local, env) {
                Ok(pi) => Arc::new(pi),
                Err(e) => {
                    tracing::error!(model = %model.display(), error = %e, "the model in models/ does not load");
                    Arc::new(clawos_agents::pi::UnloadablePi {
                        model,
                        reason: e.to_string(),
                    })
                }
            }
        }
        (_, None, None) => Arc::new(clawos_agents::pi::UnconfiguredPi),
        (_, Some(_), _) => Arc::new(build_pi(home, name, a, env)?),
    };
    Ok(agent)
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

/// What Pi's skills need beyond the agent's own settings.
pub struct SkillEnv<'a> {
    /// The whole configuration (`[browser]`, `[calendar]`).
    pub config: &'a Config,
    /// The vault secrets it names.
    pub secrets: &'a ConfigSecrets,
    /// The connected MCP servers.
    pub mcp: &'a McpServers,
}

impl SkillEnv<'_> {
    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).map(|v| v.to_string())
    }
}

fn build_pi(
    home: &Home,
    name: &str,
    a: &config::AgentConfig,
    env: &SkillEnv<'_>,
) -> Result<clawos_agents::pi::Pi, KernelError> {
    let secrets = env.secrets;
    use clawos_agents::provider::{build, failover::Failover, Provider};
    use clawos_agents::skills::shell::ShellPolicy;
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
    let policy = match a.shell.as_str() {
        "allowlist" => ShellPolicy::Allowlist(a.shell_allow.clone()),
        "ask" => ShellPolicy::Ask(a.shell_allow.clone()),
        _ => ShellPolicy::Deny,
    };
    let mut skills = pi_skills(name, &workspace, policy, env)?;
    if let Some(only) = &a.skills {
        skills = skills.only(only);
    }
    for server in &a.mcp_servers {
        match env.mcp.get(server) {
            Some(s) => {
                for skill in s.skills() {
                    skills = skills.with(skill);
                }
            }
            None => tracing::warn!(
                agent = name,
                server,
                "the MCP server is not connected; its tools are not offered"
            ),
        }
    }
    let mut pi = clawos_agents::pi::Pi::new(name, provider, skills, workspace, a.max_steps)
        .with_max_tokens(a.max_tokens)
        .with_vision(a.vision.unwrap_or(a.provider.as_deref() != Some("local")));
    if let Some(prompt) = &a.system_prompt {
        pi = pi.with_system_prompt(prompt.clone());
    }
    if let Some(file) = &a.system_prompt_file {
        let path = home.dir().join(file);
        let prompt = std::fs::read_to_string(&path).map_err(|e| {
            KernelError::io(
                format!(
                    "agents.{name}.system_prompt_file: cannot read {}",
                    path.display()
                ),
                e,
            )
        })?;
        pi = pi.with_system_prompt(prompt.trim_end().to_string());
    }
    Ok(pi)
}

/// Every skill Pi offers, working in `workspace` under the shell `policy` (what
/// `clawos bench prompt` measures is exactly this set).
pub fn pi_skills(
    agent: &str,
    workspace: &std::path::Path,
    policy: clawos_agents::skills::shell::ShellPolicy,
    env: &SkillEnv<'_>,
) -> Result<clawos_agents::skills::SkillSet, KernelError> {
    use clawos_agents::skills::{editor::EditorSkill, fs::FsSkill, shell::ShellSkill, SkillSet};
    let no_workspace = |e| {
        KernelError::io(
            format!("cannot create the workspace {}", workspace.display()),
            e,
        )
    };
    let fs = FsSkill::new(workspace).map_err(no_workspace)?;
    let editor = EditorSkill::new(workspace, agent).map_err(no_workspace)?;
    let browser = clawos_agents::skills::browser::BrowserSkill::new(
        crate::skill_config::browser_policy(&env.config.browser, workspace),
    );
    let mut set = SkillSet::default().with(Arc::new(browser));
    if let Some(calendar) =
        crate::skill_config::calendar_skill(&env.config.calendar, |n| env.secret(n))
    {
        set = set.with(Arc::new(calendar));
    }
    Ok(set
        .with(Arc::new(clawos_agents::skills::memory::MemorySkill))
        .with(Arc::new(clawos_agents::skills::cron::CronSkill))
        .with(Arc::new(clawos_agents::skills::session::SessionSkill))
        .with(Arc::new(clawos_agents::skills::nodes::NodesSkill))
        .with(Arc::new(fs))
        .with(Arc::new(editor))
        .with(Arc::new(clawos_agents::skills::canvas::CanvasSkill::new(
            agent,
        )))
        .with(Arc::new(ShellSkill::new(
            workspace.to_path_buf(),
            policy,
            Duration::from_secs(30),
            16 * 1024,
        ))))
}
