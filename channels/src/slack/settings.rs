//! The `[channels.NAME]` settings of a Slack channel, its addresses and its two tokens.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::platform::KindSettings;

/// The Web API's public base URL.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// `[channels.NAME]` settings of a Slack channel. The vault secret named by
/// `secret_name` holds both tokens of the app: the app-level token (`xapp-…`, scope
/// `connections:write`, for Socket Mode) and the bot token (`xoxb-…`, for the Web API),
/// separated by a space, a newline or a `:` (`xapp-…:xoxb-…`), in either order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// The Web API base URL (default `https://slack.com/api`; a test stand-in otherwise).
    pub api_url: Option<String>,
    /// A PEM file of certificate authorities to trust besides the public ones.
    pub tls_ca_file: Option<PathBuf>,
    /// Messages that may go at once (default 3).
    pub burst: Option<u32>,
    /// Then one message per this many milliseconds (default 1000: Slack's `chat.postMessage`
    /// allows about one message a second in a channel).
    pub pace_ms: Option<u64>,
}

impl SlackSettings {
    /// The API base URL, without a trailing slash.
    pub fn api_url(&self) -> String {
        self.api_url
            .as_deref()
            .unwrap_or(DEFAULT_API_URL)
            .trim_end_matches('/')
            .to_string()
    }
}

impl KindSettings for SlackSettings {
    fn validate(&self) -> Result<(), String> {
        let url = self.api_url();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("api_url `{url}` must be an http(s) URL"));
        }
        if self.pace_ms == Some(0) || self.burst == Some(0) {
            return Err("burst and pace_ms must be above 0".into());
        }
        Ok(())
    }
}

/// The app's two tokens, as read from the one vault secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The app-level token (`xapp-…`), for `apps.connections.open`.
    pub app: String,
    /// The bot token (`xoxb-…`), for every other Web API call.
    pub bot: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(…)")
    }
}

/// Read the two tokens from a secret (`xapp-…:xoxb-…`, or separated by whitespace or a
/// comma, in either order); the reason for a person when one is missing.
pub fn tokens_of(secret: &str) -> Result<Tokens, String> {
    let parts: Vec<&str> = secret
        .split(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .filter(|p| !p.is_empty())
        .collect();
    let find = |prefix: &str| parts.iter().find(|p| p.starts_with(prefix)).copied();
    match (find("xapp-"), find("xoxb-")) {
        (Some(app), Some(bot)) => Ok(Tokens {
            app: app.to_string(),
            bot: bot.to_string(),
        }),
        (None, Some(_)) => Err(
            "the secret has the bot token (xoxb-…) but not the app-level \
             token (xapp-…) Socket Mode needs; store both as `xapp-…:xoxb-…`"
                .into(),
        ),
        (Some(_), None) => Err(
            "the secret has the app-level token (xapp-…) but not the bot \
             token (xoxb-…); store both as `xapp-…:xoxb-…`"
                .into(),
        ),
        (None, None) => Err(
            "the secret is not a pair of Slack tokens; store the app-level \
             token and the bot token as `xapp-…:xoxb-…`"
                .into(),
        ),
    }
}

/// The clawos address of a Slack user id: `slack:U0123@slack`.
pub fn address_of(user_id: &str) -> String {
    format!("slack:{user_id}@slack")
}

/// The Slack user id of a clawos address (the inverse of [`address_of`]).
pub fn user_of(address: &str) -> Option<&str> {
    let id = address.strip_prefix("slack:")?.strip_suffix("@slack")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_addresses() {
        let t = tokens_of("xapp-1-A1-2-ab:xoxb-1-2-cd").unwrap();
        assert_eq!(
            (t.app.as_str(), t.bot.as_str()),
            ("xapp-1-A1-2-ab", "xoxb-1-2-cd")
        );
        let t = tokens_of(" xoxb-9\nxapp-8 ").unwrap();
        assert_eq!((t.app.as_str(), t.bot.as_str()), ("xapp-8", "xoxb-9"));
        assert!(tokens_of("xoxb-only").unwrap_err().contains("xapp"));
        assert!(tokens_of("nonsense").is_err());
        assert_eq!(address_of("U1"), "slack:U1@slack");
        assert_eq!(user_of("slack:U1@slack"), Some("U1"));
        assert_eq!(user_of("slack:@slack"), None);
        assert_eq!(user_of("telegram:1@telegram"), None);
        assert!(SlackSettings::default().validate().is_ok());
    }
}
