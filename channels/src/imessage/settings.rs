//! `[channels.NAME]` settings of an iMessage channel (through a BlueBubbles server), and
//! how iMessage handles and chats map to clawos addresses.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::platform::KindSettings;

/// `[channels.NAME]` settings of an iMessage channel. The server password is the vault
/// secret named by `secret_name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImessageSettings {
    /// The BlueBubbles server's URL, e.g. `http://192.168.1.20:1234`.
    pub url: String,
    /// A name people may write in a group to address the bot (`clawbot: hi`).
    pub name: Option<String>,
    /// The server has the Private API helper: replies are threaded on the message they
    /// answer (`selectedMessageGuid`), and messages are sent with `private-api`.
    #[serde(default)]
    pub private_api: bool,
    /// How often new messages are asked for, in milliseconds (default 1000).
    pub poll_ms: Option<u64>,
    /// A PEM file of certificate authorities to trust besides the public ones.
    pub tls_ca_file: Option<PathBuf>,
    /// Messages that may go at once (default 5).
    pub burst: Option<u32>,
    /// Then one message per this many milliseconds (default 1000).
    pub pace_ms: Option<u64>,
}

impl KindSettings for ImessageSettings {
    fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "url `{}` must be the http(s) address of the BlueBubbles server",
                self.url
            ));
        }
        if self.poll_ms == Some(0) {
            return Err("poll_ms must be above 0".into());
        }
        Ok(())
    }
}

/// The clawos address of an iMessage handle (a phone number or an Apple ID email):
/// `+15550001234` is `imessage:+15550001234@imessage`.
pub fn address_of(handle: &str) -> String {
    format!("imessage:{handle}@imessage")
}

/// The handle of a clawos address (the inverse of [`address_of`]).
pub fn handle_of(address: &str) -> Option<String> {
    let local = address.strip_prefix("imessage:")?;
    let (handle, domain) = local.rsplit_once('@')?;
    (domain == "imessage" && !handle.is_empty()).then(|| handle.to_string())
}

/// The chat GUID of a direct chat with `handle`: `iMessage;-;HANDLE`.
pub fn direct_chat(handle: &str) -> String {
    format!("iMessage;-;{handle}")
}

/// Whether a chat GUID is a group chat (`SERVICE;+;chatNNN`).
pub fn is_group(chat_guid: &str) -> bool {
    chat_guid.split(';').nth(1) == Some("+")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_chats_map_both_ways() {
        assert_eq!(address_of("+15550001234"), "imessage:+15550001234@imessage");
        assert_eq!(
            handle_of("imessage:alice@icloud.com@imessage").as_deref(),
            Some("alice@icloud.com")
        );
        assert_eq!(handle_of("signal:+1@signal"), None);
        assert!(is_group("iMessage;+;chat123456"));
        assert!(!is_group(&direct_chat("+15550001234")));
    }
}
