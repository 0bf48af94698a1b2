//! The parts of `clawos.toml` that set the policy of Pi's outward-facing skills: `[browser]`,
//! `[calendar]` and `[mcp_servers.NAME]`. The model never sets these: a prompt can ask a
//! skill for anything, the skill does only what this configuration allows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[browser]`: the headless Chromium of the `browser` skill.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserConfig {
    /// The Chromium binary (default: `chromium` on the PATH).
    pub binary: Option<PathBuf>,
    /// Domains the browser may load (and their subdomains); empty allows every domain that
    /// is not denied.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Domains it never loads, even when allowed.
    #[serde(default)]
    pub denied_domains: Vec<String>,
    /// Page loads per turn (default 10).
    #[serde(default = "default_pages")]
    pub max_pages_per_turn: u32,
    /// Longest wait for one page, in seconds (default 20).
    #[serde(default = "default_page_timeout")]
    pub page_timeout_secs: u64,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        BrowserConfig {
            binary: None,
            allowed_domains: Vec::new(),
            denied_domains: Vec::new(),
            max_pages_per_turn: default_pages(),
            page_timeout_secs: default_page_timeout(),
        }
    }
}

fn default_pages() -> u32 {
    10
}

fn default_page_timeout() -> u64 {
    20
}

/// `[calendar]`: the accounts of the `calendar` skill.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// The person's time zone, an IANA name such as `Europe/Berlin` (default `UTC`): times
    /// without an offset are read in it, and events are shown in it.
    pub time_zone: Option<String>,
    /// `[calendar.accounts.NAME]`.
    #[serde(default)]
    pub accounts: BTreeMap<String, CalendarAccountConfig>,
}

/// One calendar account: a CalDAV server (`url`) or a read-only ICS feed (`ics`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarAccountConfig {
    /// A CalDAV server, principal, home or calendar URL.
    pub url: Option<String>,
    /// A read-only ICS feed (http(s) URL or file path).
    pub ics: Option<String>,
    /// The CalDAV user name.
    pub username: Option<String>,
    /// Name of the vault secret holding the CalDAV password.
    pub password_secret: Option<String>,
}

/// `[mcp_servers.NAME]`: a Model Context Protocol server whose tools become skills of the
/// agents that list it in `mcp_servers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// The program of a stdio server.
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables set for it.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables set from vault secrets: `VARIABLE = "secret-name"`.
    #[serde(default)]
    pub env_secrets: BTreeMap<String, String>,
    /// Its working folder (default: the state folder).
    pub cwd: Option<PathBuf>,
    /// The endpoint of a streamable HTTP server (`http://host:port/mcp`).
    pub url: Option<String>,
    /// Name of the vault secret sent as a bearer token to an HTTP server.
    pub bearer_secret: Option<String>,
    /// The tools offered (default: every tool the server lists).
    pub tools: Option<Vec<String>>,
    /// Longest wait for the connection and for one call, in seconds (default 30).
    #[serde(default = "default_mcp_timeout")]
    pub timeout_secs: u64,
}

fn default_mcp_timeout() -> u64 {
    30
}

impl McpServerConfig {
    /// Vault secrets this server needs, with the key that names each.
    pub fn secrets(&self, name: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .env_secrets
            .iter()
            .map(|(var, s)| (format!("mcp_servers.{name}.env_secrets.{var}"), s.clone()))
            .collect();
        if let Some(s) = &self.bearer_secret {
            out.push((format!("mcp_servers.{name}.bearer_secret"), s.clone()));
        }
        out
    }

    /// The connection spec, secrets filled in from `secrets` (name to value).
    pub fn spec(
        &self,
        name: &str,
        home: &std::path::Path,
        secret: impl Fn(&str) -> Option<String>,
    ) -> clawos_agents::skills::mcp::McpServerSpec {
        use clawos_agents::skills::mcp::{McpServerSpec, McpTransport};
        let transport = match (&self.command, &self.url) {
            (Some(command), _) => {
                let mut env = self.env.clone();
                for (var, name) in &self.env_secrets {
                    if let Some(v) = secret(name) {
                        env.insert(var.clone(), v);
                    }
                }
                McpTransport::Stdio {
                    command: command.clone(),
                    args: self.args.clone(),
                    env,
                    cwd: Some(
                        self.cwd
                            .as_ref()
                            .map(|c| home.join(c))
                            .unwrap_or_else(|| home.to_path_buf()),
                    ),
                }
            }
            (None, url) => McpTransport::Http {
                url: url.clone().unwrap_or_default(),
                bearer: self
                    .bearer_secret
                    .as_ref()
                    .and_then(|s| secret(s))
                    .map(|t| format!("Bearer {t}")),
            },
        };
        McpServerSpec {
            name: name.to_string(),
            transport,
            tools: self.tools.clone(),
            timeout: Duration::from_secs(self.timeout_secs.max(1)),
        }
    }
}

/// Check the skill sections; the message names the key.
pub fn validate(
    browser: &BrowserConfig,
    calendar: &CalendarConfig,
    mcp: &BTreeMap<String, McpServerConfig>,
) -> Result<(), String> {
    if browser.max_pages_per_turn == 0 || browser.page_timeout_secs == 0 {
        return Err(
            "browser.max_pages_per_turn and browser.page_timeout_secs must be at least 1".into(),
        );
    }
    if let Some(zone) = &calendar.time_zone {
        if zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(format!(
                "calendar.time_zone = \"{zone}\": not an IANA time zone (e.g. \"Europe/Berlin\")"
            ));
        }
    }
    for (name, a) in &calendar.accounts {
        match (&a.url, &a.ics) {
            (Some(url), None) if url.starts_with("http://") || url.starts_with("https://") => {}
            (None, Some(_)) if a.username.is_none() && a.password_secret.is_none() => {}
            (None, Some(_)) => {
                return Err(format!(
                    "calendar.accounts.{name}: an `ics` feed takes no username or password"
                ))
            }
            (Some(url), None) => {
                return Err(format!(
                    "calendar.accounts.{name}.url = \"{url}\": expected an http(s) URL"
                ))
            }
            _ => {
                return Err(format!(
                    "calendar.accounts.{name}: give `url` (CalDAV) or `ics` (a read-only feed), one of them"
                ))
            }
        }
    }
    for (name, s) in mcp {
        if name.contains(clawos_agents::skills::mcp::SEPARATOR) || name.is_empty() {
            return Err(format!(
                "mcp_servers.{name}: a server name must not contain `{}`",
                clawos_agents::skills::mcp::SEPARATOR
            ));
        }
        match (&s.command, &s.url) {
            (Some(_), None) if s.bearer_secret.is_none() => {}
            (Some(_), None) => {
                return Err(format!(
                    "mcp_servers.{name}: `bearer_secret` is for `url` servers; give a stdio server `env_secrets`"
                ))
            }
            (None, Some(url)) if url.starts_with("http://") || url.starts_with("https://") => {
                if !s.args.is_empty() || !s.env.is_empty() || !s.env_secrets.is_empty() {
                    return Err(format!(
                        "mcp_servers.{name}: `args` and `env` are for `command` servers"
                    ));
                }
            }
            (None, Some(url)) => {
                return Err(format!(
                    "mcp_servers.{name}.url = \"{url}\": expected an http(s) URL"
                ))
            }
            _ => {
                return Err(format!(
                    "mcp_servers.{name}: give `command` (stdio) or `url` (streamable HTTP), one of them"
                ))
            }
        }
    }
    Ok(())
}

/// The MCP servers the agents use, connected once at start, by name.
pub type McpServers = BTreeMap<String, std::sync::Arc<clawos_agents::skills::mcp::McpServer>>;

/// The `browser` skill's policy for an agent working in `workspace`.
pub fn browser_policy(
    b: &BrowserConfig,
    workspace: &std::path::Path,
) -> clawos_agents::skills::browser::BrowserPolicy {
    clawos_agents::skills::browser::BrowserPolicy {
        binary: b.binary.clone(),
        allowed_domains: b.allowed_domains.clone(),
        denied_domains: b.denied_domains.clone(),
        max_pages_per_turn: b.max_pages_per_turn,
        page_timeout: Duration::from_secs(b.page_timeout_secs),
        workspace: workspace.to_path_buf(),
        ..Default::default()
    }
}

/// The `calendar` skill over the configured accounts; `None` when there is none.
pub fn calendar_skill(
    c: &CalendarConfig,
    secret: impl Fn(&str) -> Option<String>,
) -> Option<clawos_agents::skills::calendar::CalendarSkill> {
    use clawos_agents::skills::calendar::{CalendarAccount, CalendarSkill, CalendarSource};
    if c.accounts.is_empty() {
        return None;
    }
    let accounts = c
        .accounts
        .iter()
        .map(|(name, a)| CalendarAccount {
            name: name.clone(),
            source: match (&a.url, &a.ics) {
                (Some(url), _) => CalendarSource::CalDav {
                    url: url.clone(),
                    username: a.username.clone(),
                    password: a.password_secret.as_deref().and_then(&secret),
                },
                (None, ics) => CalendarSource::Ics {
                    url: ics.clone().unwrap_or_default(),
                },
            },
        })
        .collect();
    let zone = c
        .time_zone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    Some(CalendarSkill::new(accounts, zone))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn error_of(text: &str) -> String {
        match Config::parse(text) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn skill_sections_are_checked_and_name_the_key() {
        assert_eq!(
            error_of("[calendar]\ntime_zone = \"Europe/Berlin\"\n[calendar.accounts.a]\nics = \"/tmp/a.ics\"\n"),
            ""
        );
        assert!(
            error_of("[calendar]\ntime_zone = \"Mars/Olympus\"\n").contains("calendar.time_zone")
        );
        assert!(error_of(
            "[calendar.accounts.a]\nurl = \"https://x/\"\nics = \"https://x/a.ics\"\n"
        )
        .contains("calendar.accounts.a: give `url`"));
        assert!(
            error_of("[calendar.accounts.a]\nics = \"/a.ics\"\nusername = \"me\"\n")
                .contains("takes no username")
        );
        assert!(
            error_of("[mcp_servers.x]\ncommand = \"a\"\nurl = \"http://b/mcp\"\n")
                .contains("mcp_servers.x: give `command`")
        );
        assert!(error_of("[mcp_servers.\"a__b\"]\ncommand = \"a\"\n").contains("must not contain"));
        assert!(error_of("[mcp_servers.x]\nurl = \"ftp://b\"\n").contains("http(s) URL"));
        assert!(error_of("[browser]\nmax_pages_per_turn = 0\n").contains("at least 1"));
        assert!(
            error_of("[agents.pi]\nkind = \"pi\"\nskills = [\"calendar\"]\n")
                .contains("needs an account")
        );
    }
}
