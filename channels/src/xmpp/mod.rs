//! The Xmpp channel (being built: connecting reports that it is not available yet).

use serde::{Deserialize, Serialize};

use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, KindSettings, LengthUnit, Outbox, Outgoing,
    RateLimit, TextFormat,
};

/// `[channels.NAME]` settings of a Xmpp channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmppSettings {}

impl KindSettings for XmppSettings {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The Xmpp adapter.
pub struct XmppAdapter;

impl XmppAdapter {
    /// An adapter for these settings and secret.
    pub fn new(_settings: XmppSettings, _secret: Option<String>) -> Self {
        XmppAdapter
    }
}

/// The sending half.
pub struct XmppOutbox;

impl Outbox for XmppOutbox {
    async fn send(&self, _message: &Outgoing) -> Result<Option<String>, AdapterError> {
        Err(AdapterError::Config(
            "the xmpp channel is not available yet".into(),
        ))
    }
}

impl Adapter for XmppAdapter {
    type Outbox = XmppOutbox;

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
            "the xmpp channel is not available yet".into(),
        ))
    }
}
