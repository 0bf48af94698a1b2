//! The Telegram channel (being built: connecting reports that it is not available yet).

use serde::{Deserialize, Serialize};

use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, KindSettings, LengthUnit, Outbox, Outgoing,
    RateLimit, TextFormat,
};

/// `[channels.NAME]` settings of a Telegram channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSettings {}

impl KindSettings for TelegramSettings {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The Telegram adapter.
pub struct TelegramAdapter;

impl TelegramAdapter {
    /// An adapter for these settings and secret.
    pub fn new(_settings: TelegramSettings, _secret: Option<String>) -> Self {
        TelegramAdapter
    }
}

/// The sending half.
pub struct TelegramOutbox;

impl Outbox for TelegramOutbox {
    async fn send(&self, _message: &Outgoing) -> Result<Option<String>, AdapterError> {
        Err(AdapterError::Config(
            "the telegram channel is not available yet".into(),
        ))
    }
}

impl Adapter for TelegramAdapter {
    type Outbox = TelegramOutbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities::text(
            4000,
            LengthUnit::Chars,
            TextFormat::Plain,
            RateLimit {
                burst: 5,
                every: std::time::Duration::from_secs(1),
            },
        )
    }

    async fn connect(&mut self) -> Result<(Self::Outbox, InboundStream), AdapterError> {
        Err(AdapterError::Config(
            "the telegram channel is not available yet".into(),
        ))
    }
}
