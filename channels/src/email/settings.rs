//! `[channels.NAME]` settings of an email channel, checked by the Gateway when it loads
//! `clawos.toml` and read by the channel process from its environment. The password (the
//! same for IMAP and SMTP) is the vault secret named by `secret_name`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::platform::AdapterError;

/// How a connection is secured. There is no plain-text choice: the password would travel
/// in the clear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    #[default]
    Tls,
    /// Plain first, then `STARTTLS` before logging in (IMAP 143, submission 587).
    Starttls,
}

/// The longest reply sent as one mail, in characters (longer ones go as several mails).
pub const DEFAULT_MAX_CHARS: usize = 100_000;
/// How often a server without IDLE is asked for new mail.
pub const DEFAULT_POLL_SECS: u64 = 60;

fn inbox() -> String {
    "INBOX".into()
}

/// `[channels.NAME]` settings of an email channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The bot's address, `bot@example.com`: From of every reply, and the login name
    /// unless `username` is given.
    pub address: String,
    /// A display name for From (`Claw <bot@example.com>`).
    pub display_name: Option<String>,
    /// IMAP server, `host:port` (e.g. `imap.example.com:993`).
    pub imap_server: String,
    /// `tls` (default) or `starttls`.
    #[serde(default)]
    pub imap_tls: Security,
    /// SMTP submission server, `host:port` (e.g. `smtp.example.com:465`).
    pub smtp_server: String,
    /// `tls` (default) or `starttls`.
    #[serde(default)]
    pub smtp_tls: Security,
    /// IMAP login name (default: `address`).
    pub username: Option<String>,
    /// SMTP login name (default: the IMAP one).
    pub smtp_username: Option<String>,
    /// A PEM file of certificate authorities to trust besides the public ones (a
    /// self-hosted server's own CA, or its self-signed certificate).
    pub tls_ca_file: Option<PathBuf>,
    /// The folder to read (default `INBOX`).
    #[serde(default = "inbox")]
    pub mailbox: String,
    /// The longest reply sent as one mail, in characters (default 100000).
    pub max_chars: Option<usize>,
    /// How often to look for mail when the server offers no IDLE, in seconds (default 60).
    pub poll_secs: Option<u64>,
}

impl crate::platform::KindSettings for EmailSettings {
    fn validate(&self) -> Result<(), String> {
        EmailSettings::validate(self)
    }
}

/// `host:port` of a server setting.
fn host_port<'a>(key: &str, value: &'a str) -> Result<(&'a str, u16), AdapterError> {
    let bad = |why: &str| AdapterError::Config(format!("{key} `{value}`: {why}"));
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad("no host name"));
    }
    let port = port.parse().map_err(|_| bad("bad port"))?;
    Ok((host, port))
}

/// Whether `address` looks like `local@domain` (one `@`, both sides, nothing that would
/// break a header).
pub fn is_address(address: &str) -> bool {
    let mut parts = address.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty()
        && (domain.contains('.') || domain == "localhost")
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c))
}

impl EmailSettings {
    /// Check what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !is_address(&self.address) {
            return Err(format!(
                "address `{}` is not an email address (bot@example.com)",
                self.address
            ));
        }
        self.imap_host_port().map_err(|e| e.to_string())?;
        self.smtp_host_port().map_err(|e| e.to_string())?;
        if let Some(name) = &self.display_name {
            if name.chars().any(char::is_control) {
                return Err("display_name holds a control character".into());
            }
        }
        for (key, value) in [
            ("username", &self.username),
            ("smtp_username", &self.smtp_username),
        ] {
            if value
                .as_deref()
                .is_some_and(|v| v.is_empty() || v.chars().any(char::is_control))
            {
                return Err(format!("{key} is empty or holds a control character"));
            }
        }
        if self.mailbox.is_empty() || self.mailbox.chars().any(char::is_control) {
            return Err(format!("mailbox `{}` is not a folder name", self.mailbox));
        }
        if self.max_chars.is_some_and(|n| n < 500) {
            return Err("max_chars must be 500 or more".into());
        }
        if self.poll_secs.is_some_and(|n| n < 5) {
            return Err("poll_secs must be 5 or more".into());
        }
        Ok(())
    }

    /// Host and port of the IMAP server.
    pub fn imap_host_port(&self) -> Result<(&str, u16), AdapterError> {
        host_port("imap_server", &self.imap_server)
    }

    /// Host and port of the SMTP server.
    pub fn smtp_host_port(&self) -> Result<(&str, u16), AdapterError> {
        host_port("smtp_server", &self.smtp_server)
    }

    /// The IMAP login name.
    pub fn imap_user(&self) -> &str {
        self.username.as_deref().unwrap_or(&self.address)
    }

    /// The SMTP login name.
    pub fn smtp_user(&self) -> &str {
        self.smtp_username
            .as_deref()
            .unwrap_or_else(|| self.imap_user())
    }

    /// The bot's address, lowercased (what sender addresses are compared with).
    pub fn address_lower(&self) -> String {
        self.address.to_lowercase()
    }

    /// The domain of the bot's address (for Message-IDs and EHLO).
    pub fn domain(&self) -> &str {
        self.address.rsplit('@').next().unwrap_or("localhost")
    }

    /// How often a server without IDLE is polled.
    pub fn poll_every(&self) -> Duration {
        Duration::from_secs(self.poll_secs.unwrap_or(DEFAULT_POLL_SECS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EmailSettings {
        EmailSettings {
            address: "bot@example.com".into(),
            display_name: None,
            imap_server: "imap.example.com:993".into(),
            imap_tls: Security::Tls,
            smtp_server: "smtp.example.com:587".into(),
            smtp_tls: Security::Starttls,
            username: None,
            smtp_username: None,
            tls_ca_file: None,
            mailbox: inbox(),
            max_chars: None,
            poll_secs: None,
        }
    }

    #[test]
    fn settings_are_checked() {
        let s = settings();
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.smtp_user(), "bot@example.com");
        assert_eq!(s.domain(), "example.com");
        let bad = |s: EmailSettings| s.validate().unwrap_err();
        assert!(bad(EmailSettings {
            address: "bot".into(),
            ..settings()
        })
        .contains("not an email address"));
        assert!(bad(EmailSettings {
            address: "a@b@c.d".into(),
            ..settings()
        })
        .contains("not an email address"));
        assert!(bad(EmailSettings {
            imap_server: "imap.example.com".into(),
            ..settings()
        })
        .contains("host:port"));
        assert!(bad(EmailSettings {
            smtp_server: "smtp:x".into(),
            ..settings()
        })
        .contains("bad port"));
        assert!(bad(EmailSettings {
            mailbox: "".into(),
            ..settings()
        })
        .contains("folder"));
        assert!(bad(EmailSettings {
            max_chars: Some(10),
            ..settings()
        })
        .contains("max_chars"));
        let parsed: EmailSettings = serde_json::from_value(serde_json::json!({
            "address": "bot@example.com", "imap_server": "h:993", "smtp_server": "h:465",
            "smtp_tls": "starttls"
        }))
        .unwrap();
        assert_eq!(parsed.mailbox, "INBOX");
        assert_eq!(
            (parsed.imap_tls, parsed.smtp_tls),
            (Security::Tls, Security::Starttls)
        );
        assert!(serde_json::from_value::<EmailSettings>(serde_json::json!({
            "address": "bot@example.com", "imap_server": "h:993", "smtp_server": "h:465",
            "password": "no"
        }))
        .is_err());
    }
}
