//! The Signal channel (being built: connecting reports that it is not available yet).

use serde::{Deserialize, Serialize};

use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, KindSettings, LengthUnit, Outbox, Outgoing,
    RateLimit, TextFormat,
};

/// `[channels.NAME]` settings of a Signal channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalSettings {}

impl KindSettings for SignalSettings {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The Signal adapter.
pub struct SignalAdapter;

impl SignalAdapter {
    /// An adapter for these settings and secret.
    pub fn new(_settings: SignalSettings, _secret: Option<String>) -> Self {
        SignalAdapter
    }
}

/// The sending half.
pub struct SignalOutbox;

impl Outbox for SignalOutbox {
    async fn send(&self, _message: &Outgoing) -> Result<Option<String>, AdapterError> {
        Err(AdapterError::Config(
            "the signal channel is not available yet".into(),
        ))
    }
}

impl Adapter for SignalAdapter {
    type Outbox = SignalOutbox;

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
            "the signal channel is not available yet".into(),
        ))
    }
}
