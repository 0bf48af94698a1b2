//! One IRC connection: TCP or TLS, line framing with a length cap, registration (SASL
//! PLAIN or NickServ), then PING/PONG while the platform reads and writes messages.

use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use irc_proto::{CapSubCommand, Command, Message, Response};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::{AnyDelimiterCodec, Framed};

use super::settings::{IrcAuth, IrcSettings};
use crate::platform::AdapterError;

/// Longest line accepted from a server: 512 bytes of message plus 8191 of IRCv3 tags.
pub const MAX_LINE: usize = 8703;
/// Longest a connect plus registration may take.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(30);

/// A byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Framed IRC lines.
pub type Lines = Framed<Box<dyn Io>, AnyDelimiterCodec>;

/// A registered connection.
pub struct Registered {
    /// The framed connection.
    pub lines: Lines,
    /// The nick the server gave us (it may differ from the configured one).
    pub nick: String,
    /// The server tags messages with `msgid` (IRCv3 message-tags).
    pub message_tags: bool,
}

/// Read one line as a message. `Ok(None)`: the server closed. A line that does not parse
/// is skipped with a warning, never fatal.
pub async fn next_message(lines: &mut Lines) -> Result<Option<Message>, AdapterError> {
    loop {
        let Some(line) = lines.next().await else {
            return Ok(None);
        };
        let line = line.map_err(|e| match e {
            tokio_util::codec::AnyDelimiterCodecError::MaxChunkLengthExceeded => {
                AdapterError::Protocol(format!("the server sent a line over {MAX_LINE} bytes"))
            }
            tokio_util::codec::AnyDelimiterCodecError::Io(e) => AdapterError::Link(e.to_string()),
        })?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            continue;
        }
        match text.parse::<Message>() {
            Ok(m) => return Ok(Some(m)),
            Err(e) => {
                tracing::warn!(line = %text, error = %e, "skipping a malformed line from the IRC server")
            }
        }
    }
}

/// The answer to `PING a [b]`.
pub fn pong(a: &str, b: Option<&str>) -> String {
    match b {
        Some(b) => format!("PONG {a} {b}"),
        None => format!("PONG :{a}"),
    }
}

/// Write one raw line (CR, LF and NUL are removed from it first).
pub async fn send_line(lines: &mut Lines, line: &str) -> Result<(), AdapterError> {
    let clean: String = line
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .collect();
    lines
        .send(format!("{clean}\r\n"))
        .await
        .map_err(|e| AdapterError::Link(e.to_string()))
}

async fn open(settings: &IrcSettings) -> Result<Box<dyn Io>, AdapterError> {
    let (host, _) = settings.host_port()?;
    let tcp = TcpStream::connect(&settings.server)
        .await
        .map_err(|e| AdapterError::Link(format!("cannot reach {}: {e}", settings.server)))?;
    let _ = tcp.set_nodelay(true);
    if !settings.tls {
        return Ok(Box::new(tcp));
    }
    let config = crate::platform::tls::client_config(settings.tls_ca_file.as_deref())?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| AdapterError::Config(format!("server name {host}: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| AdapterError::Link(format!("TLS with {}: {e}", settings.server)))?;
    Ok(Box::new(tls))
}

/// Whether the server can be reached (TCP, and the TLS handshake when configured) within
/// `within`: what `clawos doctor` checks.
pub async fn probe(settings: &IrcSettings, within: Duration) -> Result<(), AdapterError> {
    tokio::time::timeout(within, open(settings))
        .await
        .map_err(|_| {
            AdapterError::Link(format!(
                "{} did not answer within {within:?}",
                settings.server
            ))
        })?
        .map(|_| ())
}

/// Connect and register, within [`REGISTER_TIMEOUT`].
pub async fn connect(
    settings: &IrcSettings,
    password: Option<&str>,
) -> Result<Registered, AdapterError> {
    tokio::time::timeout(REGISTER_TIMEOUT, register(settings, password))
        .await
        .map_err(|_| {
            AdapterError::Link(format!(
                "{} did not finish registration within {REGISTER_TIMEOUT:?}",
                settings.server
            ))
        })?
}

async fn register(
    settings: &IrcSettings,
    password: Option<&str>,
) -> Result<Registered, AdapterError> {
    let io = open(settings).await?;
    let mut lines = Framed::new(
        io,
        AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), MAX_LINE),
    );
    let account = settings
        .account
        .clone()
        .unwrap_or_else(|| settings.nick.clone());
    let needs_password = settings.auth != IrcAuth::None;
    let password = match (needs_password, password) {
        (true, None) => {
            return Err(AdapterError::Config(format!(
                "auth = \"{}\" needs a password: set `secret_name` to a vault secret",
                settings.auth.as_str()
            )))
        }
        (_, p) => p.unwrap_or_default().to_string(),
    };
    send_line(&mut lines, "CAP LS 302").await?;
    let mut nick = settings.nick.clone();
    send_line(&mut lines, &format!("NICK {nick}")).await?;
    send_line(&mut lines, &format!("USER {} 0 * :clawos", settings.nick)).await?;
    let mut offered = String::new();
    let mut message_tags = false;
    let mut cap_done = false;
    loop {
        let Some(m) = next_message(&mut lines).await? else {
            return Err(AdapterError::Link(
                "the server closed during registration".into(),
            ));
        };
        match &m.command {
            Command::PING(a, b) => send_line(&mut lines, &pong(a, b.as_deref())).await?,
            Command::CAP(_, CapSubCommand::LS, more, list) => {
                // `CAP * LS * :caps` continues; `CAP * LS :caps` ends the list.
                let (caps, continues) = match (more, list) {
                    (Some(star), Some(l)) if star == "*" => (l.as_str(), true),
                    (Some(l), None) | (None, Some(l)) => (l.as_str(), false),
                    (Some(_), Some(l)) => (l.as_str(), false),
                    (None, None) => ("", false),
                };
                offered.push(' ');
                offered.push_str(caps);
                if continues {
                    continue;
                }
                let has = |cap: &str| {
                    offered
                        .split_whitespace()
                        .any(|c| c == cap || c.starts_with(&format!("{cap}=")))
                };
                let mut want = Vec::new();
                if has("message-tags") {
                    want.push("message-tags");
                }
                if settings.auth == IrcAuth::Sasl {
                    if !has("sasl") {
                        return Err(AdapterError::AuthRefused(format!(
                            "{} offers no SASL; use auth = \"nickserv\"",
                            settings.server
                        )));
                    }
                    want.push("sasl");
                }
                if want.is_empty() {
                    send_line(&mut lines, "CAP END").await?;
                    cap_done = true;
                } else {
                    send_line(&mut lines, &format!("CAP REQ :{}", want.join(" "))).await?;
                }
            }
            Command::CAP(_, CapSubCommand::ACK, a, b) => {
                let acked = b.as_deref().or(a.as_deref()).unwrap_or_default();
                message_tags |= acked.split_whitespace().any(|c| c == "message-tags");
                if acked.split_whitespace().any(|c| c == "sasl") {
                    send_line(&mut lines, "AUTHENTICATE PLAIN").await?;
                } else {
                    send_line(&mut lines, "CAP END").await?;
                    cap_done = true;
                }
            }
            Command::CAP(_, CapSubCommand::NAK, _, _) => {
                if settings.auth == IrcAuth::Sasl {
                    return Err(AdapterError::AuthRefused(
                        "the server refused the SASL capability".into(),
                    ));
                }
                send_line(&mut lines, "CAP END").await?;
                cap_done = true;
            }
            Command::AUTHENTICATE(challenge) if challenge == "+" => {
                let blob = format!("{account}\0{account}\0{password}");
                let encoded = base64::engine::general_purpose::STANDARD.encode(blob);
                send_line(&mut lines, &format!("AUTHENTICATE {encoded}")).await?;
            }
            Command::Response(Response::RPL_SASLSUCCESS, _) => {
                send_line(&mut lines, "CAP END").await?;
                cap_done = true;
            }
            Command::Response(
                r @ (Response::ERR_SASLFAIL
                | Response::ERR_SASLTOOLONG
                | Response::ERR_SASLABORT
                | Response::ERR_NICKLOCKED
                | Response::ERR_PASSWDMISMATCH
                | Response::ERR_YOUREBANNEDCREEP),
                args,
            ) => {
                return Err(AdapterError::AuthRefused(format!(
                    "{r:?}: {}",
                    args.last().cloned().unwrap_or_default()
                )));
            }
            Command::Response(Response::ERR_NICKNAMEINUSE | Response::ERR_ERRONEOUSNICKNAME, _) => {
                if nick.len() > settings.nick.len() + 3 {
                    return Err(AdapterError::Config(format!(
                        "the nick {} and its variants are taken",
                        settings.nick
                    )));
                }
                nick.push('_');
                send_line(&mut lines, &format!("NICK {nick}")).await?;
            }
            Command::Response(Response::RPL_WELCOME, args) => {
                if let Some(given) = args.first() {
                    nick = given.clone();
                }
                if !cap_done {
                    send_line(&mut lines, "CAP END").await?;
                }
                break;
            }
            Command::ERROR(why) => {
                return Err(AdapterError::Link(format!(
                    "the server closed the link: {why}"
                )));
            }
            _ => {}
        }
    }
    if settings.auth == IrcAuth::NickServ {
        send_line(
            &mut lines,
            &format!("PRIVMSG NickServ :IDENTIFY {account} {password}"),
        )
        .await?;
    }
    for channel in &settings.channels {
        send_line(&mut lines, &format!("JOIN {channel}")).await?;
    }
    Ok(Registered {
        lines,
        nick,
        message_tags,
    })
}
