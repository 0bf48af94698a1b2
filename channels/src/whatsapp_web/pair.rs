//! Linking the channel to a phone, as WhatsApp Web does: WhatsApp sends a series of QR
//! codes (the first valid 60 s, each next 20 s) for the phone to scan in Settings →
//! Linked devices; or, given the phone's number, an 8-character code to type there.
//! Run by `clawos channels pair NAME` in a terminal; the session it creates is what the
//! channel process then connects with.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::prelude::{Bot, Event};
use whatsapp_rust::transport::TokioWebSocketTransportFactory;

use super::settings::WhatsappWebSettings;
use super::store::SessionStore;
use crate::platform::AdapterError;

/// How long to wait for WhatsApp's first answer before giving up.
const FIRST_ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// What to show the person while pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Render `code` as a QR code to scan; valid for `valid_for`.
    Qr {
        /// The QR code's text.
        code: String,
        /// How long it is valid.
        valid_for: Duration,
    },
    /// Type `code` on the phone (Linked devices → Link with phone number instead).
    Code {
        /// The 8-character code.
        code: String,
        /// How long it is valid.
        valid_for: Duration,
    },
}

/// Pair the channel whose state folder is `dir`: show each prompt with `show` until the
/// phone links it. Returns the linked number. Already linked: returns at once.
pub async fn pair(
    dir: &Path,
    settings: &WhatsappWebSettings,
    show: impl Fn(Prompt) + Send + Sync + 'static,
) -> Result<String, AdapterError> {
    let store = Arc::new(SessionStore::open(dir).map_err(|e| AdapterError::Config(e.to_string()))?);
    if let Some(number) = linked_number(&store).await {
        return Ok(number);
    }
    let (tx, mut rx) = mpsc::channel::<Arc<Event>>(16);
    let show = Arc::new(show);
    let mut builder = Bot::builder()
        .with_backend_arc(store.clone())
        .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(settings.url()))
        .with_http_client(super::http::ReqwestHttp::new()?)
        .skip_history_sync()
        .on_event(move |event, _client| {
            let tx = tx.clone();
            let show = show.clone();
            async move {
                match &*event {
                    Event::PairingQrCode(q) => show(Prompt::Qr {
                        code: q.code.clone(),
                        valid_for: q.timeout,
                    }),
                    Event::PairingCode(p) => show(Prompt::Code {
                        code: p.code.clone(),
                        valid_for: p.timeout,
                    }),
                    _ => {}
                }
                let _ = tx.send(event).await;
            }
        });
    if let Some(phone) = settings.pair_digits() {
        builder = builder.with_pair_code(PairCodeOptions {
            phone_number: phone,
            ..Default::default()
        });
    }
    let bot = builder
        .build()
        .await
        .map_err(|e| AdapterError::Config(format!("WhatsApp client: {e}")))?;
    let handle = bot.spawn();
    let outcome = wait_for_link(&mut rx, settings.url()).await;
    handle.abort();
    outcome?;
    linked_number(&store).await.ok_or_else(|| {
        AdapterError::Protocol("WhatsApp said the pairing worked, but no number was saved".into())
    })
}

/// The phone number a session is linked to (its user part), if it is linked.
pub async fn linked_number(store: &SessionStore) -> Option<String> {
    use whatsapp_rust::wacore::store::traits::DeviceStore;
    let device = store.load().await.ok()??;
    device.pn.map(|j| j.user.to_string())
}

async fn wait_for_link(rx: &mut mpsc::Receiver<Arc<Event>>, url: &str) -> Result<(), AdapterError> {
    let mut answered = false;
    loop {
        let next = if answered {
            rx.recv().await
        } else {
            tokio::time::timeout(FIRST_ANSWER_WITHIN, rx.recv())
                .await
                .map_err(|_| {
                    AdapterError::Link(format!(
                        "no answer from WhatsApp at {url} within {}s",
                        FIRST_ANSWER_WITHIN.as_secs()
                    ))
                })?
        };
        let Some(event) = next else {
            return Err(AdapterError::Link("the WhatsApp client stopped".into()));
        };
        match &*event {
            Event::PairingQrCode(_) | Event::PairingCode(_) => answered = true,
            // Paired: the session is saved once the first login after it succeeds.
            Event::PairSuccess(_) => answered = true,
            Event::Connected(_) if answered => return Ok(()),
            Event::PairingQrCodesExhausted(_) => {
                return Err(AdapterError::AuthRefused(
                    "no QR code was scanned in time: run the pairing again".into(),
                ))
            }
            Event::PairError(e) => {
                return Err(AdapterError::AuthRefused(format!(
                    "the phone refused the pairing: {e:?}"
                )))
            }
            Event::PairingCodeError(e) => {
                return Err(AdapterError::AuthRefused(format!(
                    "WhatsApp refused the pairing code: {e:?}"
                )))
            }
            Event::ConnectFailure(f) => {
                return Err(AdapterError::Link(format!("connection refused: {f:?}")))
            }
            Event::ClientOutdated(_) => {
                return Err(AdapterError::Config(
                    "WhatsApp refuses this client version: update clawos".into(),
                ))
            }
            _ => {}
        }
    }
}
