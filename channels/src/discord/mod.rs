//! The Discord channel (being built: connecting reports that it is not available yet).

use serde::{Deserialize, Serialize};

use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, KindSettings, LengthUnit, Outbox, Outgoing,
    RateLimit, TextFormat,
};

/// `[channels.NAME]` settings of a Discord channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordSettings {}

impl KindSettings for DiscordSettings {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The Discord adapter.
pub struct DiscordAdapter;

impl DiscordAdapter {
    /// An adapter for these settings and secret.
    pub fn new(_settings: DiscordSettings, _secret: Option<String>) -> Self {
        DiscordAdapter
    }
}

/// The sending half.
pub struct DiscordOutbox;

impl Outbox for DiscordOutbox {
    async fn send(&self, _message: &Outgoing) -> Result<Option<String>, AdapterError> {
        Err(AdapterError::Config(
            "the discord channel is not available yet".into(),
        ))
    }
}

impl Adapter for DiscordAdapter {
    type Outbox = DiscordOutbox;

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
            "the discord channel is not available yet".into(),
        ))
    }
}
