//! The Matrix channel (being built: connecting reports that it is not available yet).

use serde::{Deserialize, Serialize};

use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, KindSettings, LengthUnit, Outbox, Outgoing,
    RateLimit, TextFormat,
};

/// `[channels.NAME]` settings of a Matrix channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSettings {}

impl KindSettings for MatrixSettings {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The Matrix adapter.
pub struct MatrixAdapter;

impl MatrixAdapter {
    /// An adapter for these settings and secret.
    pub fn new(_settings: MatrixSettings, _secret: Option<String>) -> Self {
        MatrixAdapter
    }
}

/// The sending half.
pub struct MatrixOutbox;

impl Outbox for MatrixOutbox {
    async fn send(&self, _message: &Outgoing) -> Result<Option<String>, AdapterError> {
        Err(AdapterError::Config(
            "the matrix channel is not available yet".into(),
        ))
    }
}

impl Adapter for MatrixAdapter {
    type Outbox = MatrixOutbox;

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
            "the matrix channel is not available yet".into(),
        ))
    }
}
