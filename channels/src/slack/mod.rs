//! The Slack channel (being built: connecting reports that it is not available yet).

use serde::{Deserialize, Serialize};

use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, KindSettings, LengthUnit, Outbox, Outgoing,
    RateLimit, TextFormat,
};

/// `[channels.NAME]` settings of a Slack channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {}

impl KindSettings for SlackSettings {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The Slack adapter.
pub struct SlackAdapter;

impl SlackAdapter {
    /// An adapter for these settings and secret.
    pub fn new(_settings: SlackSettings, _secret: Option<String>) -> Self {
        SlackAdapter
    }
}

/// The sending half.
pub struct SlackOutbox;

impl Outbox for SlackOutbox {
    async fn send(&self, _message: &Outgoing) -> Result<Option<String>, AdapterError> {
        Err(AdapterError::Config(
            "the slack channel is not available yet".into(),
        ))
    }
}

impl Adapter for SlackAdapter {
    type Outbox = SlackOutbox;

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
            "the slack channel is not available yet".into(),
        ))
    }
}
