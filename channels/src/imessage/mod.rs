//! The Imessage channel (being built: connecting reports that it is not available yet).

use serde::{Deserialize, Serialize};

use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, KindSettings, LengthUnit, Outbox, Outgoing,
    RateLimit, TextFormat,
};

/// `[channels.NAME]` settings of a Imessage channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImessageSettings {}

impl KindSettings for ImessageSettings {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The Imessage adapter.
pub struct ImessageAdapter;

impl ImessageAdapter {
    /// An adapter for these settings and secret.
    pub fn new(_settings: ImessageSettings, _secret: Option<String>) -> Self {
        ImessageAdapter
    }
}

/// The sending half.
pub struct ImessageOutbox;

impl Outbox for ImessageOutbox {
    async fn send(&self, _message: &Outgoing) -> Result<Option<String>, AdapterError> {
        Err(AdapterError::Config(
            "the imessage channel is not available yet".into(),
        ))
    }
}

impl Adapter for ImessageAdapter {
    type Outbox = ImessageOutbox;

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
            "the imessage channel is not available yet".into(),
        ))
    }
}
