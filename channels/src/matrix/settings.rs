//! `[channels.NAME]` settings of a Matrix channel, checked by the Gateway when it loads
//! `clawos.toml` and read by the channel process from its environment.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::platform::KindSettings;

/// Which room invites the bot accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvitePolicy {
    /// Every invite (who may talk to the agent is still the Gateway's `dm_policy`).
    #[default]
    All,
    /// Invites from the users in `invite_from` only.
    Listed,
    /// None: the bot stays in `rooms`.
    None,
}

/// `[channels.NAME]` settings of a Matrix channel (the password is the vault secret named
/// by `secret_name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSettings {
    /// The homeserver's client API base URL, e.g. `https://matrix.example.org`.
    pub homeserver: String,
    /// The bot's user id, e.g. `@clawbot:example.org`.
    pub user_id: String,
    /// Rooms to join at start (ids `!…` or aliases `#…:server`).
    #[serde(default)]
    pub rooms: Vec<String>,
    /// Which invites are accepted: `all` (default), `listed`, `none`.
    #[serde(default)]
    pub invites: InvitePolicy,
    /// With `invites = "listed"`: the user ids whose invites are accepted.
    #[serde(default)]
    pub invite_from: Vec<String>,
    /// A PEM file of certificate authorities to trust besides the public ones.
    pub tls_ca_file: Option<PathBuf>,
    /// The device display name of the bot's login (default `clawos`).
    pub device_name: Option<String>,
    /// Messages that may go at once (default 10, Synapse's `rc_message` burst).
    pub burst: Option<u32>,
    /// Then one message per this many milliseconds (default 5000, Synapse's 0.2/s). A
    /// homeserver with looser limits may allow less.
    pub pace_ms: Option<u64>,
}

impl KindSettings for MatrixSettings {
    fn validate(&self) -> Result<(), String> {
        if !(self.homeserver.starts_with("https://") || self.homeserver.starts_with("http://")) {
            return Err(format!(
                "homeserver `{}` must be an http(s) URL",
                self.homeserver
            ));
        }
        user_parts(&self.user_id)?;
        for u in &self.invite_from {
            user_parts(u)?;
        }
        for r in &self.rooms {
            if !r.starts_with(['!', '#']) {
                return Err(format!(
                    "room `{r}` must be a room id (`!…`) or an alias (`#name:server`)"
                ));
            }
        }
        Ok(())
    }
}

/// The local part and server of a user id `@local:server`.
pub fn user_parts(user_id: &str) -> Result<(&str, &str), String> {
    user_id
        .strip_prefix('@')
        .and_then(|rest| rest.split_once(':'))
        .filter(|(l, s)| !l.is_empty() && !s.is_empty())
        .ok_or_else(|| format!("`{user_id}` is not a Matrix user id (`@name:server`)"))
}

/// The clawos address of a Matrix user: `@alice:example.org` is `matrix:alice@example.org`.
pub fn address_of(user_id: &str) -> String {
    match user_parts(user_id) {
        Ok((local, server)) => format!("matrix:{local}@{server}"),
        Err(_) => format!("matrix:{user_id}"),
    }
}

/// The Matrix user id of a clawos address (the inverse of [`address_of`]).
pub fn user_of(address: &str) -> Option<String> {
    let local = address.strip_prefix("matrix:")?;
    let (name, server) = local.split_once('@')?;
    Some(format!("@{name}:{server}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_user_ids_map_both_ways() {
        assert_eq!(address_of("@alice:clawos.test"), "matrix:alice@clawos.test");
        assert_eq!(
            user_of("matrix:alice@clawos.test").as_deref(),
            Some("@alice:clawos.test")
        );
        assert_eq!(user_of("irc:alice@net"), None);
        assert!(user_parts("alice").is_err());
    }
}
