//! `[channels.NAME]` settings of an IRC channel, checked by the Gateway when it loads
//! `clawos.toml` and read by the channel process from its environment.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::platform::AdapterError;

/// How the bot logs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IrcAuth {
    /// No account.
    #[default]
    None,
    /// SASL PLAIN during registration (refused login stops the link).
    Sasl,
    /// `PRIVMSG NickServ :IDENTIFY` after registration.
    NickServ,
}

impl IrcAuth {
    /// The setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            IrcAuth::None => "none",
            IrcAuth::Sasl => "sasl",
            IrcAuth::NickServ => "nickserv",
        }
    }
}

fn yes() -> bool {
    true
}

/// `[channels.NAME]` settings of an IRC channel (the password is the vault secret named
/// by `secret_name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrcSettings {
    /// `host:port`, e.g. `irc.libera.chat:6697`.
    pub server: String,
    /// TLS (default true).
    #[serde(default = "yes")]
    pub tls: bool,
    /// A PEM file of certificate authorities to trust besides the public ones (a
    /// self-hosted server's own CA).
    pub tls_ca_file: Option<PathBuf>,
    /// The bot's nick.
    pub nick: String,
    /// Channels to join, e.g. `["#clawos"]`.
    #[serde(default)]
    pub channels: Vec<String>,
    /// `none` (default), `sasl` or `nickserv`.
    #[serde(default)]
    pub auth: IrcAuth,
    /// Account name for SASL or NickServ (default: the nick).
    pub account: Option<String>,
    /// The domain of sender addresses (default: the server's host name).
    pub network: Option<String>,
    /// Lines that may go at once (default 5, RFC 1459 §8.10).
    pub burst: Option<u32>,
    /// Then one line per this many milliseconds (default 2000). A private server
    /// without flood limits may allow less.
    pub pace_ms: Option<u64>,
}

impl crate::platform::KindSettings for IrcSettings {
    fn validate(&self) -> Result<(), String> {
        IrcSettings::validate(self)
    }
}

impl IrcSettings {
    /// Check what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        self.host_port().map_err(|e| e.to_string())?;
        if self.nick.is_empty() || self.nick.contains([' ', ',', '*', '?', '!', '@']) {
            return Err(format!("nick `{}` is not a valid IRC nick", self.nick));
        }
        for c in &self.channels {
            if !c.starts_with(['#', '&']) || c.contains([' ', ',', '\u{7}']) {
                return Err(format!(
                    "`{c}` is not an IRC channel name (e.g. \"#clawos\")"
                ));
            }
        }
        Ok(())
    }

    /// The host and port of `server`.
    pub fn host_port(&self) -> Result<(&str, u16), AdapterError> {
        let (host, port) = self.server.rsplit_once(':').ok_or_else(|| {
            AdapterError::Config(format!("server `{}`: expected host:port", self.server))
        })?;
        let port = port
            .parse()
            .map_err(|_| AdapterError::Config(format!("server `{}`: bad port", self.server)))?;
        Ok((host, port))
    }

    /// The domain part of addresses.
    pub fn network(&self) -> String {
        self.network.clone().unwrap_or_else(|| {
            self.host_port()
                .map(|(h, _)| h.to_string())
                .unwrap_or_else(|_| "irc".into())
        })
    }
}
