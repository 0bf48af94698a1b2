//! One XMPP client connection: TCP, STARTTLS with rustls (the public roots plus a
//! configured CA), SASL (SCRAM or PLAIN, through tokio-xmpp), resource binding. What comes
//! back is tokio-xmpp's XML stream of stanzas, which the driver reads and writes.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use sasl::common::{ChannelBinding, Credentials};
use tokio::io::{AsyncRead, AsyncWrite, BufStream};
use tokio::net::TcpStream;
use tokio_xmpp::error::{AuthError, Error as XmppError};
use tokio_xmpp::jid::FullJid;
use tokio_xmpp::parsers::bind::{BindQuery, BindResponse};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::stream_features::StreamFeatures;
use tokio_xmpp::parsers::{sasl_cb, starttls};
use tokio_xmpp::xmlstream::{initiate_stream, StreamHeader, Timeouts, XmppStream};
/// The elements of the stream and its read errors (for the tests' hand clients).
pub use tokio_xmpp::xmlstream::{FallibleStreamElement, ReadError, XmppStreamElement};
use tokio_xmpp::Stanza;

use super::settings::XmppSettings;
use crate::platform::AdapterError;

/// Longest a connect, TLS, log-in and bind may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// After this much silence from the server the driver pings it (XEP-0199).
pub const KEEPALIVE: Duration = Duration::from_secs(60);
/// A ping unanswered this long means the link is dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(30);

/// A byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The XML stream of a logged-in connection.
pub type Stream = XmppStream<BufStream<Box<dyn Io>>>;

/// A logged-in, bound connection.
pub struct Link {
    /// The stream of stanzas.
    pub stream: Stream,
    /// The JID the server bound.
    pub jid: FullJid,
    /// Stanzas that arrived while `request` waited for an answer, in order.
    pub early: Vec<Stanza>,
}

pub use crate::platform::tls::ca_certs;

fn tls_config(
    settings: &XmppSettings,
) -> Result<Arc<tokio_rustls::rustls::ClientConfig>, AdapterError> {
    crate::platform::tls::client_config(settings.tls_ca_file.as_deref())
}

/// What a tokio-xmpp error means for the platform.
pub fn classify(e: XmppError) -> AdapterError {
    match e {
        XmppError::Auth(AuthError::Fail(why)) => {
            AdapterError::AuthRefused(format!("the server refused the log-in ({why:?})"))
        }
        XmppError::Auth(AuthError::NoMechanism) => {
            AdapterError::AuthRefused("no SASL mechanism in common with the server".into())
        }
        XmppError::Auth(e) => AdapterError::AuthRefused(e.to_string()),
        XmppError::Io(e) => io_error(e),
        XmppError::Disconnected => AdapterError::Link("the server closed the connection".into()),
        XmppError::StreamError(e) => {
            AdapterError::Link(format!("the server ended the stream: {e}"))
        }
        other => AdapterError::Protocol(other.to_string()),
    }
}

/// An I/O error of the stream: malformed XML is a protocol error, the rest a link error.
pub fn io_error(e: std::io::Error) -> AdapterError {
    match e.kind() {
        std::io::ErrorKind::InvalidData => AdapterError::Protocol(format!("the server sent {e}")),
        std::io::ErrorKind::TimedOut => AdapterError::Link(format!(
            "no answer from the server for {}s",
            (KEEPALIVE + PING_TIMEOUT).as_secs()
        )),
        _ => AdapterError::Link(e.to_string()),
    }
}

/// A read error of the stream (a soft timeout is not one: the caller pings).
pub fn read_error(e: ReadError) -> AdapterError {
    match e {
        ReadError::HardError(e) => io_error(e),
        ReadError::ParseError(e) => {
            AdapterError::Protocol(format!("the server sent malformed XML: {e}"))
        }
        ReadError::StreamFooterReceived => {
            AdapterError::Link("the server closed the stream".into())
        }
        ReadError::SoftTimeout => AdapterError::Link("no answer from the server".into()),
    }
}

fn header(domain: &str) -> StreamHeader<'_> {
    StreamHeader {
        to: Some(Cow::Borrowed(domain)),
        from: None,
        id: None,
    }
}

async fn open<S: Io>(
    io: S,
    domain: &str,
) -> Result<(StreamFeatures, XmppStream<BufStream<S>>), AdapterError> {
    let timeouts = Timeouts {
        read_timeout: KEEPALIVE,
        response_timeout: PING_TIMEOUT,
    };
    let pending = initiate_stream(
        BufStream::new(io),
        ns::JABBER_CLIENT,
        header(domain),
        timeouts,
    )
    .await
    .map_err(io_error)?;
    pending
        .recv_features()
        .await
        .map_err(|e| classify(e.into()))
}

/// The next element of the stream (soft timeouts skipped), as the platform's error when
/// the stream ends or breaks.
pub async fn next_element(stream: &mut Stream) -> Result<FallibleStreamElement, AdapterError> {
    loop {
        match stream.next().await {
            None => {
                return Err(AdapterError::Link(
                    "the server closed the connection".into(),
                ))
            }
            Some(Ok(el)) => return Ok(el),
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(e)) => return Err(read_error(e)),
        }
    }
}

/// Write one stanza.
pub async fn send(stream: &mut Stream, stanza: Stanza) -> Result<(), AdapterError> {
    stream
        .send(&XmppStreamElement::Stanza(stanza))
        .await
        .map_err(|e| AdapterError::Link(format!("writing to the server: {e}")))
}

/// Send an IQ and wait for its answer (before the driver runs); what else arrives is kept
/// in `early`.
pub async fn request(
    stream: &mut Stream,
    early: &mut Vec<Stanza>,
    iq: Iq,
) -> Result<Iq, AdapterError> {
    let id = iq.id().to_string();
    send(stream, iq.into()).await?;
    loop {
        match next_element(stream).await? {
            FallibleStreamElement::Ok(XmppStreamElement::Stanza(Stanza::Iq(answer)))
                if answer.id() == id && matches!(answer, Iq::Result { .. } | Iq::Error { .. }) =>
            {
                return Ok(answer)
            }
            FallibleStreamElement::Ok(XmppStreamElement::Stanza(s)) => early.push(s),
            FallibleStreamElement::Ok(XmppStreamElement::StreamError(e)) => {
                return Err(AdapterError::Link(format!(
                    "the server ended the stream: {e}"
                )))
            }
            FallibleStreamElement::Ok(_) => {}
            FallibleStreamElement::Err(e) => {
                tracing::warn!(error = %e, "skipping an invalid stanza from the XMPP server")
            }
        }
    }
}

/// Check the server answers as an XMPP server for the account's domain (and offers
/// STARTTLS when `tls` is on), for `clawos doctor`. Does not log in.
pub async fn probe(settings: &XmppSettings, within: Duration) -> Result<(), AdapterError> {
    let account = settings.account()?;
    let (host, port) = settings.host_port()?;
    let domain = account.domain().to_string();
    let check = async {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| AdapterError::Link(format!("cannot reach {host}:{port}: {e}")))?;
        let (features, _stream) = open(tcp, &domain).await?;
        if settings.tls && !features.can_starttls() {
            return Err(AdapterError::Config(format!(
                "{host}:{port} offers no STARTTLS"
            )));
        }
        Ok(())
    };
    tokio::time::timeout(within, check).await.map_err(|_| {
        AdapterError::Link(format!("{host}:{port} did not answer within {within:?}"))
    })?
}

/// Connect, log in and bind, within [`CONNECT_TIMEOUT`].
pub async fn connect(
    settings: &XmppSettings,
    password: Option<&str>,
) -> Result<Link, AdapterError> {
    let (host, port) = settings.host_port()?;
    tokio::time::timeout(CONNECT_TIMEOUT, log_in(settings, password))
        .await
        .map_err(|_| {
            AdapterError::Link(format!(
                "{host}:{port} did not finish the log-in within {CONNECT_TIMEOUT:?}"
            ))
        })?
}

async fn log_in(settings: &XmppSettings, password: Option<&str>) -> Result<Link, AdapterError> {
    let account = settings.account()?;
    let Some(password) = password else {
        return Err(AdapterError::Config(
            "an XMPP channel needs the account's password: set `secret_name` to a vault secret"
                .into(),
        ));
    };
    let (host, port) = settings.host_port()?;
    let domain = account.domain().to_string();
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| AdapterError::Link(format!("cannot reach {host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = Box::new(tcp);
    let (features, stream) = open(io, &domain).await?;
    let (features, stream, binding) = if settings.tls {
        if !features.can_starttls() {
            return Err(AdapterError::Config(format!(
                "{host}:{port} offers no STARTTLS; set `tls = false` only for a server on \
                 loopback"
            )));
        }
        let tcp = starttls(stream).await?;
        let name = ServerName::try_from(domain.clone())
            .map_err(|e| AdapterError::Config(format!("server name {domain}: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config(settings)?)
            .connect(name, tcp)
            .await
            .map_err(|e| AdapterError::Link(format!("TLS with {host}:{port} ({domain}): {e}")))?;
        let exporter = tls_exporter(&tls);
        let io: Box<dyn Io> = Box::new(tls);
        let (features, stream) = open(io, &domain).await?;
        let binding = channel_binding(&features, exporter);
        (features, stream, binding)
    } else {
        (features, stream, ChannelBinding::None)
    };
    let mechanisms = features.sasl_mechanisms.clone();
    let username = account.node().map(|n| n.to_string()).unwrap_or_default();
    let creds = Credentials::default()
        .with_username(username)
        .with_password(password)
        .with_channel_binding(binding);
    let stream = tokio_xmpp::client_login(stream, mechanisms, creds)
        .await
        .map_err(classify)?;
    let (features, mut stream) = stream
        .send_header(header(&domain))
        .await
        .map_err(io_error)?
        .recv_features()
        .await
        .map_err(|e| classify(e.into()))?;
    if !features.can_bind() {
        return Err(AdapterError::Protocol(
            "the server offers no resource binding".into(),
        ));
    }
    let mut early = Vec::new();
    let bind = Iq::from_set("bind", BindQuery::new(Some(settings.resource())));
    let jid = match request(&mut stream, &mut early, bind).await? {
        Iq::Result {
            payload: Some(p), ..
        } => BindResponse::try_from(p)
            .map(FullJid::from)
            .map_err(|e| AdapterError::Protocol(format!("bind answer: {e}")))?,
        Iq::Error { error, .. } => {
            return Err(AdapterError::Protocol(format!(
                "the server refused the resource: {:?}",
                error.defined_condition
            )))
        }
        _ => return Err(AdapterError::Protocol("an empty bind answer".into())),
    };
    if jid.to_bare() != account {
        tracing::warn!(%jid, %account, "the server bound another account's JID");
    }
    Ok(Link { stream, jid, early })
}

/// `<starttls/>`, then the TCP stream under the XML stream for the TLS handshake.
async fn starttls(mut stream: Stream) -> Result<Box<dyn Io>, AdapterError> {
    stream
        .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
            starttls::Request,
        )))
        .await
        .map_err(io_error)?;
    loop {
        match stream.next().await {
            Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Starttls(
                starttls::Nonza::Proceed(_),
            )))) => break,
            Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Starttls(_)))) => {
                return Err(AdapterError::Protocol("the server refused STARTTLS".into()))
            }
            Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) => {}
            Some(Err(e)) => return Err(read_error(e)),
            None => {
                return Err(AdapterError::Link(
                    "the server closed the connection".into(),
                ))
            }
        }
    }
    Ok(stream.into_inner().into_inner())
}

/// The TLS 1.3 exporter value for `tls-exporter` channel binding (RFC 9266), if any.
fn tls_exporter(tls: &tokio_rustls::client::TlsStream<Box<dyn Io>>) -> Option<Vec<u8>> {
    let (_, conn) = tls.get_ref();
    if conn.protocol_version() != Some(tokio_rustls::rustls::ProtocolVersion::TLSv1_3) {
        return None;
    }
    conn.export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
        .ok()
}

/// Channel binding for SCRAM: `tls-exporter` when the server offers a `-PLUS` mechanism
/// (and, if it lists its binding types, that one); "supported by us, not offered" when it
/// offers none (so a stripped `-PLUS` is detected); none when we cannot bind.
fn channel_binding(features: &StreamFeatures, exporter: Option<Vec<u8>>) -> ChannelBinding {
    let plus = features
        .sasl_mechanisms
        .iter()
        .any(|m| m.ends_with("-PLUS"));
    if !plus {
        return ChannelBinding::Unsupported;
    }
    let exporter_offered = features.sasl_cb.as_ref().is_none_or(|cb| {
        cb.types
            .iter()
            .any(|t| matches!(t, sasl_cb::Type::TlsExporter))
    });
    match exporter {
        Some(data) if exporter_offered => ChannelBinding::TlsExporter(data),
        _ => ChannelBinding::None,
    }
}
