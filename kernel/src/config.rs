//! `clawos.toml`: strictly validated configuration. An unknown key is an error naming the
//! key and its line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use crate::KernelError;

/// The default Gateway port.
pub const DEFAULT_PORT: u16 = 18789;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[gateway]`.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// `[agents.NAME]`.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentConfig>,
    /// `[channels.NAME]`.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// `[[outbound_hooks]]`: POST chosen events to a URL as they are appended.
    #[serde(default)]
    pub outbound_hooks: Vec<OutboundHook>,
    /// `[memory]`: the embedder of the long-term memory index.
    #[serde(default)]
    pub memory: MemoryConfig,
    /// `[media]`: the store of attachment bytes.
    #[serde(default)]
    pub media: MediaConfig,
    /// `[prices."MODEL"]`: US dollars per million tokens, over the built-in table.
    #[serde(default)]
    pub prices: BTreeMap<String, crate::usage::Price>,
    /// `[[budgets]]`: caps on what an agent or an identity spends per day or month.
    #[serde(default)]
    pub budgets: Vec<crate::usage::Budget>,
    /// `[browser]`: the policy of the `browser` skill.
    #[serde(default)]
    pub browser: crate::skill_config::BrowserConfig,
    /// `[calendar]`: the accounts of the `calendar` skill.
    #[serde(default)]
    pub calendar: crate::skill_config::CalendarConfig,
    /// `[mcp_servers.NAME]`: MCP servers whose tools agents may offer.
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, crate::skill_config::McpServerConfig>,
}

/// `[media]`: limits of the media store (attachment bytes in `STATE/media/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Largest attachment kept, in bytes (default 25 MiB). A larger one is recorded by
    /// name, type and size only, and the agent is told it was not kept.
    #[serde(default = "default_media_max_bytes")]
    pub max_bytes: u64,
}

fn default_media_max_bytes() -> u64 {
    clawos_channels::media::DEFAULT_MAX_BYTES
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_bytes: default_media_max_bytes(),
        }
    }
}

/// `[memory]`: which embedder the memory index uses. Changing it re-embeds every memory
/// (`clawos memory rebuild`, or automatically at the next Gateway start).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// `auto` (default: all-MiniLM-L6-v2 when installed in `STATE/models/all-MiniLM-L6-v2`,
    /// else the built-in one), `builtin` (hashed word and character n-grams, no files, no
    /// network), `minilm`, or `openai` (any OpenAI-compatible `/v1/embeddings`).
    pub embedder: Option<String>,
    /// `minilm`: the model folder (default `STATE/models/all-MiniLM-L6-v2`).
    pub model_dir: Option<std::path::PathBuf>,
    /// `openai`: base URL before `/embeddings`, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1` (Ollama).
    pub base_url: Option<String>,
    /// `openai`: model id, e.g. `text-embedding-3-small` or `nomic-embed-text`.
    pub model: Option<String>,
    /// `openai`: environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// `openai`: the model's dimensions (asked from the server once when unset).
    pub dims: Option<usize>,
    /// `openai`: texts per request (default 64).
    pub batch: Option<usize>,
    /// `openai`: timeout of one request in seconds (default 60).
    pub timeout_secs: Option<u64>,
    /// `openai`: retries of a failed request, with exponential backoff (default 3).
    pub retries: Option<u32>,
}

/// Embedders this build has.
pub const EMBEDDERS: &[&str] = &["auto", "builtin", "minilm", "openai"];

/// `[[outbound_hooks]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundHook {
    /// Where to POST each event (JSON: envelope and payload).
    pub url: String,
    /// Event kinds to send (e.g. `["MessageSent", "AgentTurnFailed"]`).
    pub kinds: Vec<String>,
}

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on (default `127.0.0.1:18789`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Agent for messages no binding matches.
    #[serde(default = "default_agent")]
    pub default_agent: String,
    /// Log durability: `full` or `normal`.
    #[serde(default = "default_durability")]
    pub durability: String,
    /// How long a pairing code stays valid, in seconds (default 3600).
    #[serde(default = "default_pairing_ttl")]
    pub pairing_ttl_secs: u64,
    /// Whether a device connecting on `/ws` from the loopback address with the admin
    /// token is paired without asking (default true). Turn it off behind a reverse proxy
    /// on the same host, where every client seems to come from the loopback.
    #[serde(default = "default_true")]
    pub pair_loopback_devices: bool,
    /// `[gateway.tls]`: a second listener, with TLS, for phones and other machines on
    /// the LAN (absent: none).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// `[gateway.tls]`: the TLS listener for devices on the LAN. The plain listener stays on
/// the loopback for the CLI and the channel processes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the TLS listener, e.g. `0.0.0.0:18790` for every interface.
    pub listen: SocketAddr,
    /// PEM certificate chain to serve (with `key`). Without both, a self-signed
    /// certificate is made on first start and kept in the state folder (`tls/`).
    #[serde(default)]
    pub cert: Option<std::path::PathBuf>,
    /// PEM private key of `cert`.
    #[serde(default)]
    pub key: Option<std::path::PathBuf>,
    /// More DNS names or IP addresses the self-signed certificate names (the loopback
    /// names, the listen address and the machine's LAN address are always in it).
    #[serde(default)]
    pub names: Vec<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))
}
fn default_agent() -> String {
    "pi".into()
}
fn default_durability() -> String {
    "full".into()
}
fn default_true() -> bool {
    true
}
fn default_pairing_ttl() -> u64 {
    3600
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: default_listen(),
            default_agent: default_agent(),
            durability: default_durability(),
            pairing_ttl_secs: default_pairing_ttl(),
            pair_loopback_devices: true,
            tls: None,
        }
    }
}

/// `[agents.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// `pi` (default), or `process` (a program of yours speaking the agent protocol,
    /// `docs/agent-protocol.md`). The diagnostic [`DIAGNOSTIC_AGENT_KIND`] is accepted too.
    #[serde(default = "default_agent")]
    pub kind: String,
    /// The model provider: `openai` (any OpenAI-compatible server), `anthropic`, or `local`
    /// (a GGUF model run in-process; `model` is its path or a file in `STATE/models`).
    /// Without one, Pi uses a model found in `STATE/models`, or explains what to configure.
    pub provider: Option<String>,
    /// Base URL, e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1` (Ollama),
    /// `https://api.anthropic.com`.
    pub base_url: Option<String>,
    /// Model id.
    pub model: Option<String>,
    /// Environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Name of the vault secret holding the API key (`clawos secrets set NAME`); it wins
    /// over `api_key_env`.
    pub api_key_secret: Option<String>,
    /// Timeout of one provider call in seconds (default 120).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Retries of a failed call, with exponential backoff (default 2).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Most tokens per answer (provider default when unset).
    pub max_tokens: Option<u32>,
    /// Most LLM calls in one turn (default 8).
    #[serde(default = "default_steps")]
    pub max_steps: u32,
    /// Workspace folder for the `fs` and `shell` skills (default `STATE/workspace/NAME`).
    pub workspace: Option<std::path::PathBuf>,
    /// Shell policy: `deny` (default), `allowlist`, or `ask` (each command waits for
    /// `clawos approvals approve ID`; `shell_allow` programs run without asking).
    #[serde(default = "default_shell")]
    pub shell: String,
    /// Programs the shell skill may run under `allowlist`.
    #[serde(default)]
    pub shell_allow: Vec<String>,
    /// Further providers tried in order when this one fails.
    #[serde(default)]
    pub failover: Vec<FailoverConfig>,
    /// The agent's system prompt (default: Pi's own, short one).
    pub system_prompt: Option<String>,
    /// A file holding the system prompt (relative to the state folder); instead of
    /// `system_prompt`.
    pub system_prompt_file: Option<std::path::PathBuf>,
    /// The skills offered to the model (default: every one of [`SKILLS`], but `calendar`
    /// only when `[calendar.accounts]` has one).
    pub skills: Option<Vec<String>>,
    /// MCP servers (`[mcp_servers.NAME]`) whose tools this agent offers.
    #[serde(default)]
    pub mcp_servers: Vec<String>,
    /// Whether the model sees images (default: yes for `openai` and `anthropic`, no for
    /// `local`); without, an image sent to the agent reaches it as a text note.
    pub vision: Option<bool>,
    /// `none` (default: the agent runs inside the Gateway) or `process` (in a process of
    /// its own, `clawos agent NAME`, restarted when it dies).
    pub isolation: Option<String>,
    /// The program and arguments of a `kind = "process"` agent.
    #[serde(default)]
    pub command: Vec<String>,
    /// Vault secrets handed to a `kind = "process"` agent in its welcome.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// How often a turn is run again when the agent's process died mid-turn (default 1;
    /// never once a tool ran).
    #[serde(default = "default_turn_retries")]
    pub turn_retries: u32,
    /// Cap on the agent process's address space, in MiB: a model that needs more fails
    /// in its process, not in the Gateway.
    pub memory_limit_mb: Option<u64>,
}

fn default_turn_retries() -> u32 {
    1
}

/// Pi's skills, by the name the model calls them.
pub const SKILLS: &[&str] = &[
    "browser", "calendar", "canvas", "cron", "editor", "fs", "memory", "nodes", "session", "shell",
];

/// One entry of `[[agents.NAME.failover]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverConfig {
    /// `openai` or `anthropic`.
    pub provider: String,
    /// Base URL.
    pub base_url: String,
    /// Model id.
    pub model: String,
    /// Environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Name of the vault secret holding the API key.
    pub api_key_secret: Option<String>,
}

fn default_timeout() -> u64 {
    120
}
fn default_retries() -> u32 {
    2
}
fn default_steps() -> u32 {
    8
}
fn default_shell() -> String {
    "deny".into()
}

/// Provider kinds this build speaks.
pub const PROVIDERS: &[&str] = &["openai", "anthropic", "local"];

/// Who may talk to the agents through a channel.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    /// Everyone.
    Open,
    /// Only addresses in `allow`.
    Allowlist,
    /// An unknown sender gets a one-time code; `clawos pairing approve CODE` lets them in.
    Pairing,
}

/// When the agent answers in a group chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GroupPolicy {
    /// Only when addressed: its name mentioned, a reply to it, or a keyword (default).
    #[default]
    Mention,
    /// Every message.
    Always,
    /// Never: messages are only kept as the group's context.
    Never,
}

/// `[channels.NAME.groups."CHAT"]`: one group's own settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// This group's policy (default: the channel's `group_policy`).
    pub policy: Option<GroupPolicy>,
}

/// `[channels.NAME]`. Keys other than the common ones below are the kind's own settings
/// (e.g. `server` and `nick` for IRC), checked against that kind's settings type.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelConfig {
    /// One of [`CHANNEL_KINDS`].
    pub kind: String,
    /// Webhook: address to listen on.
    pub listen: Option<SocketAddr>,
    /// Webhook: shared secret (bearer token / HMAC key), 16 characters or more, written
    /// here in clear. Prefer `secret_name`.
    pub secret: Option<String>,
    /// Webhook: name of the vault secret holding the shared secret
    /// (`clawos secrets set NAME`).
    pub secret_name: Option<String>,
    /// Who may talk: `pairing` (default, except `open` for the local terminal),
    /// `allowlist` or `open`.
    pub dm_policy: Option<DmPolicy>,
    /// Addresses allowed under `allowlist`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// When the agent answers in group chats: `mention` (default), `always` or `never`.
    pub group_policy: Option<GroupPolicy>,
    /// Words that address the agent in a group as a mention does (case-insensitive).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Per-group settings, by chat (`"#clawos"`, a room id).
    #[serde(default)]
    pub groups: BTreeMap<String, GroupConfig>,
    /// The kind's own settings, passed to the channel process as JSON.
    #[serde(flatten)]
    pub settings: toml::Table,
}

impl ChannelConfig {
    /// The group policy in force for `chat`: its own, else the channel's, else `mention`.
    pub fn group_policy_for(&self, chat: &str) -> GroupPolicy {
        self.groups
            .get(chat)
            .and_then(|g| g.policy)
            .or(self.group_policy)
            .unwrap_or_default()
    }

    /// The policy in force: the configured one, else `open` for the terminal (the local
    /// user) and `pairing` for every other kind.
    pub fn policy(&self) -> DmPolicy {
        self.dm_policy.unwrap_or(if self.kind == "terminal" {
            DmPolicy::Open
        } else {
            DmPolicy::Pairing
        })
    }
}

/// The kinds of channel this build has.
pub const CHANNEL_KINDS: &[&str] = clawos_channels::process::KINDS;
/// The kinds of agent a person chooses from.
pub const AGENT_KINDS: &[&str] = &["pi", "process"];
/// `echo`: a diagnostic agent that answers with the message it got, with no model. The
/// benchmarks (`clawos bench gateway|turn`) and the Gateway's tests use it to time and test
/// the kernel alone; `clawos.toml` accepts it for that use, and it is not offered as a
/// choice.
pub const DIAGNOSTIC_AGENT_KIND: &str = "echo";

/// The commented file `clawos up` writes when there is none.
pub const DEFAULT_CONFIG: &str = r#"# clawos configuration. Unknown keys are errors: check with `clawos config check`.

[gateway]
listen = "127.0.0.1:18789"
# "full": every acknowledged event survives a power loss (fsync per group commit).
# "normal": survives a crash of the process, not of the machine.
durability = "full"
default_agent = "pi"

[agents.pi]
kind = "pi"
# A model provider. Without one, Pi runs the first .gguf model in the models/ folder of the
# state folder (`clawos models add PATH`), or tells you how to set one up.
# provider = "openai"                       # any OpenAI-compatible server, or "anthropic"
# base_url = "http://127.0.0.1:11434/v1"    # Ollama; https://api.openai.com/v1; https://api.anthropic.com
# model = "llama3.2"
# api_key_secret = "openai"                 # vault secret with the key: `clawos secrets set openai`
# api_key_env = "OPENAI_API_KEY"            # or an environment variable with the key
# shell = "deny"                            # or "allowlist" with shell_allow = ["ls", "git"]

# The terminal channel: `clawos up` attaches it to your terminal.
[channels.terminal]
kind = "terminal"

# A webhook channel: POST http://127.0.0.1:18790/message with a bearer token.
# [channels.hooks]
# kind = "webhook"
# listen = "127.0.0.1:18790"
# secret_name = "hooks"       # the shared secret, kept in the vault: `clawos secrets set hooks`
# Who may talk: "pairing" (default: an unknown sender gets a code to approve with
# `clawos pairing approve CODE`), "allowlist" (only `allow = [...]`) or "open".
# dm_policy = "pairing"

# What Pi's outward skills may reach (README: "Browser, calendar and MCP servers").
# [browser]
# allowed_domains = []                      # empty: every domain not in denied_domains
# denied_domains = []
# [calendar]
# time_zone = "Europe/Berlin"
# [calendar.accounts.home]
# url = "https://dav.example.org/"          # CalDAV; or ics = "https://.../feed.ics" (read-only)
# username = "me"
# password_secret = "caldav"                # `clawos secrets set caldav`
# [mcp_servers.files]                       # then mcp_servers = ["files"] under [agents.pi]
# command = "npx"
# args = ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/notes"]
# tools = ["read_text_file", "list_directory"]

# Long-term memory. The embedder turns memories into vectors for recall by meaning:
# "auto" uses all-MiniLM-L6-v2 when it is in models/all-MiniLM-L6-v2, else the built-in
# one (word and character n-grams: no files, no network, but no synonyms either).
# [memory]
# embedder = "auto"                         # "builtin", "minilm" or "openai"
# base_url = "http://127.0.0.1:11434/v1"    # openai: any /v1/embeddings server
# model = "nomic-embed-text"
"#;

impl Config {
    /// Parse and validate configuration text.
    pub fn parse(text: &str) -> Result<Config, KernelError> {
        let config: Config =
            toml::from_str(text).map_err(|e| KernelError::Config(format!("clawos.toml: {e}")))?;
        config.validate_in(Some(text))?;
        Ok(config)
    }

    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, KernelError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KernelError::io(format!("cannot read {}", path.display()), e))?;
        Config::parse(&text)
    }

    /// Check what serde cannot: kinds, durability, webhook settings, agent references.
    pub fn validate(&self) -> Result<(), KernelError> {
        self.validate_in(None)
    }

    /// [`Config::validate`], naming the line of a bad channel key when the text is known.
    fn validate_in(&self, text: Option<&str>) -> Result<(), KernelError> {
        let bad = |m: String| Err(KernelError::Config(format!("clawos.toml: {m}")));
        if !["full", "normal"].contains(&self.gateway.durability.as_str()) {
            return bad(format!(
                "gateway.durability = \"{}\": expected \"full\" or \"normal\"",
                self.gateway.durability
            ));
        }
        for (name, a) in &self.agents {
            if !AGENT_KINDS.contains(&a.kind.as_str()) && a.kind != DIAGNOSTIC_AGENT_KIND {
                return bad(format!(
                    "agents.{name}.kind = \"{}\": expected one of {}",
                    a.kind,
                    AGENT_KINDS.join(", ")
                ));
            }
            if let Err(m) = a.check_isolation(name) {
                return bad(m);
            }
            let providers = a
                .provider
                .iter()
                .chain(a.failover.iter().map(|f| &f.provider));
            for p in providers {
                if !PROVIDERS.contains(&p.as_str()) {
                    return bad(format!(
                        "agents.{name}: provider \"{p}\": expected one of {}",
                        PROVIDERS.join(", ")
                    ));
                }
            }
            let remote = a.provider.as_deref().is_some_and(|p| p != "local");
            if remote && (a.base_url.is_none() || a.model.is_none()) {
                return bad(format!(
                    "agents.{name}: a provider needs `base_url` and `model`"
                ));
            }
            for skill in a.skills.iter().flatten() {
                if !SKILLS.contains(&skill.as_str()) {
                    return bad(format!(
                        "agents.{name}.skills: \"{skill}\" is not a skill (there are: {})",
                        SKILLS.join(", ")
                    ));
                }
            }
            if a.skills.iter().flatten().any(|s| s == "calendar")
                && self.calendar.accounts.is_empty()
            {
                return bad(format!(
                    "agents.{name}.skills: \"calendar\" needs an account under [calendar.accounts]"
                ));
            }
            for server in &a.mcp_servers {
                if !self.mcp_servers.contains_key(server) {
                    return bad(format!(
                        "agents.{name}.mcp_servers: \"{server}\" is not under [mcp_servers]"
                    ));
                }
            }
            if a.system_prompt.is_some() && a.system_prompt_file.is_some() {
                return bad(format!(
                    "agents.{name}: give `system_prompt` or `system_prompt_file`, not both"
                ));
            }
            if !["deny", "allowlist", "ask"].contains(&a.shell.as_str()) {
                return bad(format!(
                    "agents.{name}.shell = \"{}\": expected \"deny\", \"allowlist\" or \"ask\"",
                    a.shell
                ));
            }
        }
        if let Err(m) =
            crate::skill_config::validate(&self.browser, &self.calendar, &self.mcp_servers)
        {
            return bad(m);
        }
        let agent_names: Vec<&str> = self.agents.keys().map(String::as_str).collect();
        if let Err(m) = crate::usage::validate(&self.budgets, &agent_names) {
            return bad(m);
        }
        if !self.agents.is_empty() && !self.agents.contains_key(&self.gateway.default_agent) {
            return bad(format!(
                "gateway.default_agent = \"{}\" is not defined under [agents]",
                self.gateway.default_agent
            ));
        }
        let m = &self.memory;
        let embedder = m.embedder.as_deref().unwrap_or("auto");
        if !EMBEDDERS.contains(&embedder) {
            return bad(format!(
                "memory.embedder = \"{embedder}\": expected one of {}",
                EMBEDDERS.join(", ")
            ));
        }
        if embedder == "openai" && (m.base_url.is_none() || m.model.is_none()) {
            return bad(
                "memory.embedder = \"openai\" needs memory.base_url and memory.model".into(),
            );
        }
        if m.batch == Some(0) || m.dims == Some(0) {
            return bad("memory.batch and memory.dims must be at least 1".into());
        }
        for h in &self.outbound_hooks {
            if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
                return bad(format!("outbound_hooks: url `{}` must be http(s)", h.url));
            }
            for k in &h.kinds {
                if !clawos_events::KINDS.iter().any(|(known, _)| known == k) {
                    return bad(format!("outbound_hooks: unknown event kind `{k}`"));
                }
            }
        }
        for (name, c) in &self.channels {
            if !CHANNEL_KINDS.contains(&c.kind.as_str()) {
                return bad(format!(
                    "channels.{name}.kind = \"{}\": expected one of {}",
                    c.kind,
                    CHANNEL_KINDS.join(", ")
                ));
            }
            if !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                return bad(format!(
                    "channel name `{name}`: use letters, digits, `-` and `_` only"
                ));
            }
            if let Err((key, why)) = check_settings(&c.kind, &c.settings) {
                let line = key
                    .and_then(|k| text.and_then(|t| line_of_key(t, name, &k)))
                    .map(|n| format!(" (line {n})"))
                    .unwrap_or_default();
                return bad(format!("channels.{name}: {why}{line}"));
            }
            if c.kind == "webhook" {
                if c.listen.is_none() {
                    return bad(format!("channels.{name}: a webhook channel needs `listen`"));
                }
                match (&c.secret, &c.secret_name) {
                    (Some(_), Some(_)) => {
                        return bad(format!(
                            "channels.{name}: give `secret` or `secret_name`, not both"
                        ))
                    }
                    (Some(s), None) if s.len() < 16 => {
                        return bad(format!(
                            "channels.{name}: a webhook `secret` needs 16 characters or more"
                        ))
                    }
                    (None, None) => {
                        return bad(format!(
                            "channels.{name}: a webhook channel needs `secret_name` (a vault \
                             secret) or `secret`"
                        ))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// A channel's kind-specific settings read as the kind's settings type.
pub fn settings_as<T: serde::de::DeserializeOwned>(
    settings: &toml::Table,
) -> Result<T, toml::de::Error> {
    toml::Value::Table(settings.clone()).try_into()
}

/// Check a channel's kind-specific settings against the kind's settings type; on error,
/// the offending key when there is one, and why.
fn check_settings(kind: &str, settings: &toml::Table) -> Result<(), (Option<String>, String)> {
    match kind {
        "irc" => check_kind::<clawos_channels::irc::IrcSettings>(settings),
        "matrix" => check_kind::<clawos_channels::matrix::MatrixSettings>(settings),
        "xmpp" => check_kind::<clawos_channels::xmpp::XmppSettings>(settings),
        "email" => check_kind::<clawos_channels::email::EmailSettings>(settings),
        "telegram" => check_kind::<clawos_channels::telegram::TelegramSettings>(settings),
        "slack" => check_kind::<clawos_channels::slack::SlackSettings>(settings),
        "discord" => check_kind::<clawos_channels::discord::DiscordSettings>(settings),
        "signal" => check_kind::<clawos_channels::signal::SignalSettings>(settings),
        "imessage" => check_kind::<clawos_channels::imessage::ImessageSettings>(settings),
        "whatsapp" => check_kind::<clawos_channels::whatsapp::WhatsappSettings>(settings),
        "whatsapp-web" => {
            check_kind::<clawos_channels::whatsapp_web::settings::WhatsappWebSettings>(settings)
        }
        _ => match settings.keys().next() {
            Some(key) => Err((
                Some(key.clone()),
                format!("unknown key `{key}` for a {kind} channel"),
            )),
            None => Ok(()),
        },
    }
}

/// Read `settings` as the kind's settings type `S` and validate them.
fn check_kind<S: clawos_channels::platform::KindSettings>(
    settings: &toml::Table,
) -> Result<(), (Option<String>, String)> {
    let parsed: S = settings_as(settings).map_err(|e| {
        let why = e.to_string().trim().to_string();
        let key = why
            .split_once("unknown field `")
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(k, _)| k.to_string());
        (key, why)
    })?;
    parsed.validate().map_err(|why| (None, why))
}

/// The line (1-based) of `key = ...` in the `[channels.NAME]` section of `text`.
fn line_of_key(text: &str, channel: &str, key: &str) -> Option<usize> {
    let mut in_section = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            let header = t.trim_matches(['[', ']']).trim();
            in_section = header == format!("channels.{channel}")
                || header == format!("channels.\"{channel}\"");
            continue;
        }
        let lhs = t.split('=').next().unwrap_or("").trim();
        if in_section && t.contains('=') && lhs == key {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const IRC: &str = "[channels.libera]\nkind = \"irc\"\nserver = \"irc.libera.chat:6697\"\n\
                       nick = \"clawbot\"\nchannels = [\"#clawos\"]\ngroup_policy = \"always\"\n\
                       keywords = [\"pi\"]\n[channels.libera.groups.\"#quiet\"]\npolicy = \"never\"\n";

    #[test]
    fn an_irc_channel_keeps_its_settings_and_group_policies() {
        let c = Config::parse(IRC).unwrap();
        let libera = &c.channels["libera"];
        assert_eq!(libera.settings["nick"].as_str(), Some("clawbot"));
        assert!(!libera.settings.contains_key("group_policy"));
        assert_eq!(libera.group_policy_for("#clawos"), GroupPolicy::Always);
        assert_eq!(libera.group_policy_for("#quiet"), GroupPolicy::Never);
        assert_eq!(libera.keywords, vec!["pi".to_string()]);
    }

    #[test]
    fn a_bad_irc_key_is_named_with_its_line() {
        let text = IRC.replace("nick = ", "nik = ");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("unknown field `nik`") && err.contains("(line 4)"),
            "{err}"
        );
        let err = Config::parse(&IRC.replace("#clawos", "clawos"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an IRC channel"), "{err}");
    }

    #[test]
    fn default_config_is_valid() {
        let c = Config::parse(DEFAULT_CONFIG).unwrap();
        assert_eq!(c.gateway.listen.port(), DEFAULT_PORT);
        assert!(c.channels.contains_key("terminal"));
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = Config::parse("[gateway]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn webhook_needs_secret() {
        let err = Config::parse("[channels.h]\nkind = \"webhook\"\nlisten = \"127.0.0.1:9\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("secret"), "{err}");
    }
}
