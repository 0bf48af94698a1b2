//! `[channels.NAME]` settings of a Telegram channel, and its addresses.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::platform::KindSettings;

/// The Bot API's public base URL.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// `[channels.NAME]` settings of a Telegram channel (the bot token from @BotFather is the
/// vault secret named by `secret_name`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSettings {
    /// The Bot API base URL (default `https://api.telegram.org`; a self-hosted
    /// `telegram-bot-api` server or a test stand-in otherwise).
    pub api_url: Option<String>,
    /// A PEM file of certificate authorities to trust besides the public ones.
    pub tls_ca_file: Option<PathBuf>,
    /// Messages that may go at once (default 3).
    pub burst: Option<u32>,
    /// Then one message per this many milliseconds (default 1000: Telegram's advice of
    /// about one message a second in a chat).
    pub pace_ms: Option<u64>,
}

impl TelegramSettings {
    /// The API base URL, without a trailing slash.
    pub fn api_url(&self) -> String {
        self.api_url
            .as_deref()
            .unwrap_or(DEFAULT_API_URL)
            .trim_end_matches('/')
            .to_string()
    }
}

impl KindSettings for TelegramSettings {
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

/// The clawos address of a Telegram user id: `telegram:123456@telegram`.
pub fn address_of(user_id: i64) -> String {
    format!("telegram:{user_id}@telegram")
}

/// The Telegram user id of a clawos address (the inverse of [`address_of`]); it is also
/// the id of the bot's private chat with that user.
pub fn user_of(address: &str) -> Option<i64> {
    address
        .strip_prefix("telegram:")?
        .strip_suffix("@telegram")?
        .parse()
        .ok()
}

/// Whether a token looks like a Bot API token (`123456:ABC…`): said before asking the
/// service, so a pasted wrong thing is named as such.
pub fn token_shape_ok(token: &str) -> bool {
    match token.split_once(':') {
        Some((id, rest)) => {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_user_ids_map_both_ways() {
        assert_eq!(address_of(42), "telegram:42@telegram");
        assert_eq!(user_of("telegram:42@telegram"), Some(42));
        assert_eq!(user_of("matrix:a@b"), None);
        assert_eq!(user_of("telegram:x@telegram"), None);
        assert!(token_shape_ok("123:AAH-x_y"));
        assert!(!token_shape_ok("no token"));
        let s = TelegramSettings::default();
        assert_eq!(s.api_url(), DEFAULT_API_URL);
        assert!(s.validate().is_ok());
    }
}
