//! The Email channel (being built: connecting reports that it is not available yet).

use serde::{Deserialize, Serialize};

use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, KindSettings, LengthUnit, Outbox, Outgoing,
    RateLimit, TextFormat,
};

/// `[channels.NAME]` settings of a Email channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {}

impl KindSettings for EmailSettings {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The Email adapter.
pub struct EmailAdapter;

impl EmailAdapter {
    /// An adapter for these settings and secret.
    pub fn new(_settings: EmailSettings, _secret: Option<String>) -> Self {
        EmailAdapter
    }
}

/// The sending half.
pub struct EmailOutbox;

impl Outbox for EmailOutbox {
    async fn send(&self, _message: &Outgoing) -> Result<Option<String>, AdapterError> {
        Err(AdapterError::Config(
            "the email channel is not available yet".into(),
        ))
    }
}

impl Adapter for EmailAdapter {
    type Outbox = EmailOutbox;

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
            "the email channel is not available yet".into(),
        ))
    }
}
