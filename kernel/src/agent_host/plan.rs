//! Which configured agents run in processes of their own, and how each is started.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clawos_replay::Home;

use super::ProcessAgent;
use crate::assembly::ConfigSecrets;
use crate::config::{AgentConfig, Config};
use crate::KernelError;

/// How to start one agent process.
#[derive(Debug, Clone)]
pub struct AgentProcessSpec {
    /// The agent's name.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Vault secrets handed over in the welcome, by name.
    pub secrets: BTreeMap<String, String>,
    /// Address-space limit of the process, in MiB (`memory_limit_mb`).
    pub memory_limit_mb: Option<u64>,
}

/// An agent the Gateway runs as a process: how to start it, and the [`ProcessAgent`]
/// the Gateway dispatches its turns to.
pub struct HostedAgent {
    /// How to start it.
    pub spec: AgentProcessSpec,
    /// Its turns go here.
    pub agent: Arc<ProcessAgent>,
}

impl AgentConfig {
    /// Whether `isolation`, `command` and `kind` fit together.
    pub(crate) fn check_isolation(&self, name: &str) -> Result<(), String> {
        if let Some(i) = self
            .isolation
            .as_deref()
            .filter(|i| !["none", "process"].contains(i))
        {
            return Err(format!(
                "agents.{name}.isolation = \"{i}\": expected \"none\" or \"process\""
            ));
        }
        match (self.kind == "process", self.command.is_empty()) {
            (true, true) => Err(format!(
                "agents.{name}: kind \"process\" needs `command = [\"program\", ...]`"
            )),
            (true, false) if self.isolation.as_deref() == Some("none") => Err(format!(
                "agents.{name}: kind \"process\" always runs as a process; drop `isolation = \"none\"`"
            )),
            (false, false) => Err(format!(
                "agents.{name}.command: only agents of kind \"process\" run a command"
            )),
            _ => Ok(()),
        }
    }

    /// Whether the agent runs in its own process (`kind = "process"`, or
    /// `isolation = "process"`).
    pub fn isolated(&self) -> bool {
        self.kind == "process" || self.isolation.as_deref() == Some("process")
    }

    /// The vault secrets the agent's process needs, by name: its provider keys, the
    /// calendar passwords and its MCP servers' secrets for Pi; `secrets` for an agent of
    /// kind `process`.
    fn process_secrets(&self, config: &Config) -> Vec<String> {
        if self.kind == "process" {
            return self.secrets.clone();
        }
        let mut names: Vec<String> = self
            .api_key_secret
            .iter()
            .chain(
                self.failover
                    .iter()
                    .filter_map(|f| f.api_key_secret.as_ref()),
            )
            .cloned()
            .collect();
        let offers_calendar = self
            .skills
            .as_ref()
            .is_none_or(|s| s.iter().any(|s| s == "calendar"));
        if offers_calendar {
            names.extend(
                config
                    .calendar
                    .accounts
                    .values()
                    .filter_map(|a| a.password_secret.clone()),
            );
        }
        for server in &self.mcp_servers {
            if let Some(m) = config.mcp_servers.get(server) {
                names.extend(m.secrets(server).into_iter().map(|(_, s)| s));
            }
        }
        names
    }
}

/// The agents of `config` that run as processes. Pi and `echo` run as `exe agent NAME`;
/// an agent of kind `process` runs its `command`.
pub fn plan(
    home: &Home,
    config: &Config,
    secrets: &ConfigSecrets,
    exe: &Path,
) -> Result<Vec<HostedAgent>, KernelError> {
    let mut hosted = Vec::new();
    for (name, a) in config.agents.iter().filter(|(_, a)| a.isolated()) {
        let (program, args) = if a.kind == "process" {
            let Some((program, args)) = a.command.split_first() else {
                return Err(KernelError::Config(format!(
                    "agents.{name}: kind \"process\" needs `command = [\"program\", ...]`"
                )));
            };
            (PathBuf::from(program), args.to_vec())
        } else {
            (exe.to_path_buf(), vec!["agent".to_string(), name.clone()])
        };
        let mut handed = BTreeMap::new();
        for s in a.process_secrets(config) {
            match secrets.get(&s) {
                Some(v) => {
                    handed.insert(s, v.to_string());
                }
                None => {
                    return Err(KernelError::Config(format!(
                        "agents.{name}: the vault has no secret `{s}`; store it with \
                         `clawos secrets set {s}`"
                    )))
                }
            }
        }
        hosted.push(HostedAgent {
            spec: AgentProcessSpec {
                name: name.clone(),
                program,
                args,
                env: vec![("CLAWOS_HOME".to_string(), home.dir().display().to_string())],
                secrets: handed,
                memory_limit_mb: a.memory_limit_mb,
            },
            agent: Arc::new(ProcessAgent::new(name, a.turn_retries)),
        });
    }
    Ok(hosted)
}
