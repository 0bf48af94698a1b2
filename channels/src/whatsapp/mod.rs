//! The Whatsapp channel (being built: connecting reports that it is not available yet).

use serde::{Deserialize, Serialize};

use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, KindSettings, LengthUnit, Outbox, Outgoing,
    RateLimit, TextFormat,
};

/// `[channels.NAME]` settings of a Whatsapp channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappSettings {}

impl KindSettings for WhatsappSettings {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The Whatsapp adapter.
pub struct WhatsappAdapter;

impl WhatsappAdapter {
    /// An adapter for these settings and secret.
    pub fn new(_settings: WhatsappSettings, _secret: Option<String>) -> Self {
        WhatsappAdapter
    }
}

/// The sending half.
pub struct WhatsappOutbox;

impl Outbox for WhatsappOutbox {
    async fn send(&self, _message: &Outgoing) -> Result<Option<String>, AdapterError> {
        Err(AdapterError::Config(
            "the whatsapp channel is not available yet".into(),
        ))
    }
}

impl Adapter for WhatsappAdapter {
    type Outbox = WhatsappOutbox;

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
            "the whatsapp channel is not available yet".into(),
        ))
    }
}
