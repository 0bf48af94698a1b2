//! `[channels.NAME]` settings of a WhatsApp channel, its secret and its addresses.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::platform::{AdapterError, KindSettings};

/// The Graph API's public base URL, with the version the channel was written against.
pub const DEFAULT_API_URL: &str = "https://graph.facebook.com/v21.0";

/// `[channels.NAME]` settings of a WhatsApp channel. The vault secret named by
/// `secret_name` holds `ACCESS_TOKEN:APP_SECRET`: the permanent access token and the Meta
/// app's secret (which signs the webhook notifications).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappSettings {
    /// The Graph API base URL (default `https://graph.facebook.com/v21.0`).
    pub api_url: Option<String>,
    /// The business phone number's id (WhatsApp Manager, API Setup), not the number.
    pub phone_number_id: String,
    /// Where the webhook listens, e.g. `127.0.0.1:8444` (behind a tunnel or proxy that
    /// Meta reaches over HTTPS).
    pub webhook_listen: String,
    /// The verify token typed into the app's webhook settings.
    pub verify_token: String,
    /// A PEM file of certificate authorities to trust besides the public ones.
    pub tls_ca_file: Option<PathBuf>,
    /// Seconds between checks that the Graph API still takes the token (default 30).
    pub probe_secs: Option<u64>,
}

impl WhatsappSettings {
    /// The API base URL, without a trailing slash.
    pub fn api_url(&self) -> String {
        self.api_url
            .as_deref()
            .unwrap_or(DEFAULT_API_URL)
            .trim_end_matches('/')
            .to_string()
    }
}

impl KindSettings for WhatsappSettings {
    fn validate(&self) -> Result<(), String> {
        let url = self.api_url();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("api_url `{url}` must be an http(s) URL"));
        }
        if self.phone_number_id.is_empty()
            || !self.phone_number_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err("phone_number_id must be the number's numeric id".into());
        }
        if self.webhook_listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "webhook_listen `{}` must be an address and port, e.g. 127.0.0.1:8444",
                self.webhook_listen
            ));
        }
        if self.verify_token.is_empty() {
            return Err("verify_token must not be empty".into());
        }
        if self.probe_secs == Some(0) {
            return Err("probe_secs must be above 0".into());
        }
        Ok(())
    }
}

/// The access token and the app secret, from the vault secret `ACCESS_TOKEN:APP_SECRET`.
pub fn split_secret(secret: Option<&str>) -> Result<(String, String), AdapterError> {
    let secret = secret
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            AdapterError::Config(
                "a WhatsApp channel needs its secret: set `secret_name` and store \
             `ACCESS_TOKEN:APP_SECRET` in the vault"
                    .into(),
            )
        })?;
    match secret.split_once(':') {
        Some((t, s)) if !t.is_empty() && !s.is_empty() => Ok((t.to_string(), s.to_string())),
        _ => Err(AdapterError::Config(
            "the WhatsApp secret must be `ACCESS_TOKEN:APP_SECRET` (the token, a colon, the \
             app secret from the Meta app's Basic settings)"
                .into(),
        )),
    }
}

/// The clawos address of a WhatsApp id: `whatsapp:15551234567@whatsapp`.
pub fn address_of(wa_id: &str) -> String {
    format!("whatsapp:{wa_id}@whatsapp")
}

/// The WhatsApp id of a clawos address (the inverse of [`address_of`]).
pub fn wa_id_of(address: &str) -> Option<&str> {
    address
        .strip_prefix("whatsapp:")?
        .strip_suffix("@whatsapp")
        .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_addresses_and_settings() {
        assert_eq!(
            split_secret(Some("EAAB:abc\n")).ok(),
            Some(("EAAB".into(), "abc".into()))
        );
        assert!(matches!(
            split_secret(Some("EAAB")),
            Err(AdapterError::Config(_))
        ));
        assert!(matches!(split_secret(None), Err(AdapterError::Config(_))));
        assert_eq!(address_of("155"), "whatsapp:155@whatsapp");
        assert_eq!(wa_id_of("whatsapp:155@whatsapp"), Some("155"));
        assert_eq!(wa_id_of("whatsapp:x@whatsapp"), None);
        let s = WhatsappSettings {
            phone_number_id: "123".into(),
            webhook_listen: "127.0.0.1:8444".into(),
            verify_token: "v".into(),
            ..Default::default()
        };
        assert!(s.validate().is_ok());
        assert_eq!(s.api_url(), DEFAULT_API_URL);
        assert!(WhatsappSettings::default().validate().is_err());
    }
}
