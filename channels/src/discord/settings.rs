//! `[channels.NAME]` settings of a Discord channel, and the address of a Discord user.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::platform::KindSettings;

/// Discord's REST API base, version 10.
pub const DEFAULT_API_URL: &str = "https://discord.com/api/v10";

/// `[channels.NAME]` settings of a Discord channel (the bot token is the vault secret
/// named by `secret_name`). The bot reads every guild channel it can see; who may talk
/// to the agent is the Gateway's `dm_policy` and `group_policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordSettings {
    /// The REST API base (default `https://discord.com/api/v10`); the Gateway's address
    /// is asked from it (`GET /gateway/bot`).
    pub api_url: Option<String>,
    /// A PEM file of certificate authorities to trust besides the public ones.
    pub tls_ca_file: Option<PathBuf>,
    /// Messages that may go at once (default 5: Discord allows 5 per channel in 5 s).
    pub burst: Option<u32>,
    /// Then one message per this many milliseconds (default 1000).
    pub pace_ms: Option<u64>,
}

impl DiscordSettings {
    /// The REST API base, without a trailing slash.
    pub fn api_url(&self) -> String {
        self.api_url
            .as_deref()
            .unwrap_or(DEFAULT_API_URL)
            .trim_end_matches('/')
            .to_string()
    }
}

impl KindSettings for DiscordSettings {
    fn validate(&self) -> Result<(), String> {
        let url = self.api_url();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("api_url `{url}` must be an http(s) URL"));
        }
        Ok(())
    }
}

/// The clawos address of a Discord user id: `discord:ID`.
pub fn address_of(user_id: &str) -> String {
    format!("discord:{user_id}")
}

/// The Discord user id of a clawos address (a snowflake: digits only).
pub fn user_of(address: &str) -> Option<&str> {
    address
        .strip_prefix("discord:")
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// When a snowflake was made (unix ms): its top 42 bits, from Discord's epoch.
pub fn snowflake_ms(id: &str) -> i64 {
    id.parse::<u64>()
        .map(|n| ((n >> 22) + 1_420_070_400_000) as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_snowflakes() {
        assert_eq!(address_of("42"), "discord:42");
        assert_eq!(user_of("discord:42"), Some("42"));
        assert_eq!(user_of("discord:bob"), None);
        assert_eq!(snowflake_ms("175928847299117063"), 1_462_015_105_796);
        assert_eq!(snowflake_ms("x"), 0);
    }
}
