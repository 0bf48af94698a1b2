//! `[channels.NAME]` settings of a Signal channel, and how Signal numbers map to clawos
//! addresses.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::platform::KindSettings;

/// The daemon's address when none is set (`signal-cli daemon --http` listens there).
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// `[channels.NAME]` settings of a Signal channel. signal-cli has no password: whoever
/// reaches its daemon speaks as the account, so keep it on loopback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalSettings {
    /// The signal-cli daemon's HTTP base URL (`daemon --http HOST:PORT`); default
    /// `http://127.0.0.1:8080`.
    #[serde(default = "default_url")]
    pub url: String,
    /// The bot's Signal account, an E.164 number (`+15550001234`), registered or linked
    /// in signal-cli.
    pub account: String,
    /// Where signal-cli keeps received attachments; default
    /// `~/.local/share/signal-cli/attachments`.
    pub attachments_dir: Option<PathBuf>,
    /// A name people may write in a group to address the bot (`clawbot: hi`), besides
    /// a real Signal mention of its number.
    pub name: Option<String>,
    /// Messages that may go at once (default 5).
    pub burst: Option<u32>,
    /// Then one message per this many milliseconds (default 1000).
    pub pace_ms: Option<u64>,
}

fn default_url() -> String {
    DEFAULT_URL.to_string()
}

impl SignalSettings {
    /// The folder of received attachments (the setting, or signal-cli's default).
    pub fn attachments_dir(&self) -> PathBuf {
        if let Some(d) = &self.attachments_dir {
            return d.clone();
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        home.join(".local/share/signal-cli/attachments")
    }
}

impl KindSettings for SignalSettings {
    fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "url `{}` must be the http(s) address of `signal-cli daemon --http`",
                self.url
            ));
        }
        if !is_e164(&self.account) {
            return Err(format!(
                "account `{}` must be a phone number in E.164 form, e.g. +15550001234",
                self.account
            ));
        }
        Ok(())
    }
}

/// Whether `s` is `+` and 6 to 15 digits.
pub fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (6..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The clawos address of a Signal sender (a number, or a UUID when the number is
/// hidden): `+15550001234` is `signal:+15550001234@signal`.
pub fn address_of(number_or_uuid: &str) -> String {
    format!("signal:{number_or_uuid}@signal")
}

/// The Signal recipient (number or UUID) of a clawos address (the inverse of
/// [`address_of`]).
pub fn recipient_of(address: &str) -> Option<String> {
    let local = address.strip_prefix("signal:")?;
    let (who, _) = local.rsplit_once('@')?;
    let ok = is_e164(who)
        || (who.len() == 36 && who.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'));
    ok.then(|| who.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_addresses_map_both_ways() {
        assert_eq!(address_of("+15550001234"), "signal:+15550001234@signal");
        assert_eq!(
            recipient_of("signal:+15550001234@signal").as_deref(),
            Some("+15550001234")
        );
        let uuid = "7ccae375-cd51-4c82-8b1e-7be3280aa485";
        assert_eq!(recipient_of(&address_of(uuid)).as_deref(), Some(uuid));
        assert_eq!(recipient_of("signal:alice@signal"), None);
        assert_eq!(recipient_of("irc:alice@net"), None);
        assert!(!is_e164("15550001234") && is_e164("+15550001234"));
    }
}
