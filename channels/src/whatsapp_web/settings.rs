//! `[channels.NAME]` settings of a WhatsApp linked device, and how WhatsApp ids map to
//! clawos addresses.

use serde::{Deserialize, Serialize};

use crate::platform::KindSettings;

/// WhatsApp Web's chat endpoint.
pub const DEFAULT_URL: &str = "wss://web.whatsapp.com/ws/chat";

/// The name of the file, in the channel's state folder, that holds the linked session.
pub const SESSION_FILE: &str = "whatsapp-session.json";

/// `[channels.NAME]` settings of a WhatsApp channel that is a linked device of a
/// person's phone (Settings → Linked devices), like WhatsApp Web.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappWebSettings {
    /// The phone number to link by an 8-character pairing code (typed on the phone)
    /// instead of a QR code: digits with the country code, e.g. `15550001234`.
    pub pair_phone: Option<String>,
    /// The WhatsApp Web endpoint; default `wss://web.whatsapp.com/ws/chat`.
    pub url: Option<String>,
    /// A name people may write in a group to address the bot (`clawbot: hi`), besides
    /// a WhatsApp @-mention of its number or a reply to its message.
    pub name: Option<String>,
    /// Messages that may go at once (default 3).
    pub burst: Option<u32>,
    /// Then one message per this many milliseconds (default 1500): WhatsApp bans
    /// numbers that send fast.
    pub pace_ms: Option<u64>,
}

impl WhatsappWebSettings {
    /// The endpoint to dial.
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or(DEFAULT_URL)
    }

    /// The pairing phone number as WhatsApp wants it: digits only.
    pub fn pair_digits(&self) -> Option<String> {
        self.pair_phone
            .as_deref()
            .map(|p| p.chars().filter(char::is_ascii_digit).collect())
    }
}

impl KindSettings for WhatsappWebSettings {
    fn validate(&self) -> Result<(), String> {
        let url = self.url();
        if !(url.starts_with("wss://") || url.starts_with("ws://")) {
            return Err(format!("url `{url}` must be a ws:// or wss:// address"));
        }
        if let Some(p) = &self.pair_phone {
            let digits = self.pair_digits().unwrap_or_default();
            let only_digits = p
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-'));
            if !only_digits || !(6..=15).contains(&digits.len()) {
                return Err(format!(
                    "pair_phone `{p}` must be a phone number with its country code, \
                     e.g. 15550001234"
                ));
            }
        }
        Ok(())
    }
}

/// The clawos address of a WhatsApp user: a phone number's id is `whatsapp:NUMBER@whatsapp`
/// (the same as the Cloud API channel's, so one person is one identity on both); a
/// hidden number (a LID) is `whatsapp:ID@lid.whatsapp`.
pub fn address_of(user: &str, hidden_number: bool) -> String {
    if hidden_number {
        format!("whatsapp:{user}@lid.whatsapp")
    } else {
        format!("whatsapp:{user}@whatsapp")
    }
}

/// The WhatsApp JID (`NUMBER@s.whatsapp.net` or `ID@lid`) of a clawos address.
pub fn jid_of(address: &str) -> Option<String> {
    let rest = address.strip_prefix("whatsapp:")?;
    let (user, server) = rest.split_once('@')?;
    if user.is_empty() || !user.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match server {
        "whatsapp" => Some(format!("{user}@s.whatsapp.net")),
        "lid.whatsapp" => Some(format!("{user}@lid")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_map_both_ways() {
        assert_eq!(
            address_of("15550001234", false),
            "whatsapp:15550001234@whatsapp"
        );
        assert_eq!(
            jid_of("whatsapp:15550001234@whatsapp").as_deref(),
            Some("15550001234@s.whatsapp.net")
        );
        assert_eq!(
            jid_of(&address_of("987654321", true)).as_deref(),
            Some("987654321@lid")
        );
        assert_eq!(jid_of("whatsapp:bob@whatsapp"), None);
        assert_eq!(jid_of("signal:+1555@signal"), None);
    }

    #[test]
    fn settings_are_checked() {
        let ok = WhatsappWebSettings {
            pair_phone: Some("+1 555-000-1234".into()),
            ..Default::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.pair_digits().as_deref(), Some("15550001234"));
        let bad_phone = WhatsappWebSettings {
            pair_phone: Some("call me".into()),
            ..Default::default()
        };
        assert!(bad_phone.validate().unwrap_err().contains("pair_phone"));
        let bad_url = WhatsappWebSettings {
            url: Some("https://web.whatsapp.com".into()),
            ..Default::default()
        };
        assert!(bad_url.validate().unwrap_err().contains("ws://"));
    }
}
