//! The IRC channel: channels (groups) and private messages on one network, over TLS,
//! logged in with SASL PLAIN or NickServ, with CTCP ACTION both ways.
//!
//! Addresses are `irc:NICK@NETWORK`; a channel message carries the channel (`#room`) as
//! its chat. IRC keeps no history for a client that was away, so what was said while the
//! link was down is not caught up. Lines are capped at [`MAX_TEXT_BYTES`] so the relayed
//! line (with the server's prefix) stays within the protocol's 512 bytes.

pub mod link;
pub mod settings;

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::platform::{
    Adapter, AdapterError, Capabilities, InboundStream, LengthUnit, Outbox, Outgoing, RateLimit,
    TextFormat,
};
use crate::protocol::Inbound;
use link::{next_message, send_line, Lines};
pub use settings::{IrcAuth, IrcSettings};

/// Longest text of one PRIVMSG: 512 bytes minus CRLF, the relayed prefix
/// (`:nick!user@host`, up to ~100 bytes on real networks) and `PRIVMSG #target :`.
pub const MAX_TEXT_BYTES: usize = 350;
/// A PING when the server said nothing for this long; the link is dropped after twice it.
pub const KEEPALIVE: Duration = Duration::from_secs(90);

/// The IRC adapter.
pub struct IrcAdapter {
    settings: IrcSettings,
    password: Option<String>,
}

impl IrcAdapter {
    /// An adapter for these settings and password.
    pub fn new(settings: IrcSettings, password: Option<String>) -> Self {
        IrcAdapter { settings, password }
    }
}

/// The sending half: lines go to the connection's writer task.
pub struct IrcOutbox {
    lines: mpsc::Sender<String>,
}

impl Outbox for IrcOutbox {
    async fn send(&self, message: &Outgoing) -> Result<Option<String>, AdapterError> {
        let target = match &message.chat {
            Some(chat) => chat.clone(),
            None => nick_of(&message.to).to_string(),
        };
        if target.is_empty() || target.contains(' ') {
            return Err(AdapterError::Refused(format!(
                "no IRC target in `{}`",
                message.to
            )));
        }
        let line = match message.text.strip_prefix("/me ") {
            Some(action) => format!("PRIVMSG {target} :\u{1}ACTION {action}\u{1}"),
            None => format!("PRIVMSG {target} :{}", message.text),
        };
        self.lines
            .send(line)
            .await
            .map_err(|_| AdapterError::Link("the connection closed".into()))?;
        Ok(None)
    }
}

/// The nick in an address `irc:NICK@NETWORK`.
pub fn nick_of(address: &str) -> &str {
    let local = address.strip_prefix("irc:").unwrap_or(address);
    local.split('@').next().unwrap_or(local)
}

/// The text with a leading `NICK:` or `NICK,` removed, and whether the bot's nick was
/// mentioned anywhere in it (case-insensitively, as a word).
pub fn addressing(text: &str, nick: &str) -> (String, bool) {
    let lower = text.to_lowercase();
    let me = nick.to_lowercase();
    for sep in [':', ','] {
        if let Some(rest) = lower.strip_prefix(&format!("{me}{sep}")) {
            let cut = text.len() - rest.len();
            return (text[cut..].trim_start().to_string(), true);
        }
    }
    let mentioned = lower
        .split(|c: char| !(c.is_alphanumeric() || "-_[]\\`^{}|".contains(c)))
        .any(|w| w == me);
    (text.to_string(), mentioned)
}

impl Adapter for IrcAdapter {
    type Outbox = IrcOutbox;

    fn capabilities(&self) -> Capabilities {
        // RFC 1459 §8.10: a burst of about 5 lines, then one every 2 seconds.
        let pacing = RateLimit {
            burst: self.settings.burst.unwrap_or(5),
            every: Duration::from_millis(self.settings.pace_ms.unwrap_or(2000)),
        };
        Capabilities {
            multiline: false,
            ..Capabilities::text(MAX_TEXT_BYTES, LengthUnit::Bytes, TextFormat::Irc, pacing)
        }
    }

    async fn connect(&mut self) -> Result<(IrcOutbox, InboundStream), AdapterError> {
        let registered = link::connect(&self.settings, self.password.as_deref()).await?;
        let (tx, rx) = mpsc::channel::<String>(256);
        let (in_tx, in_rx) = mpsc::channel::<Result<Inbound, AdapterError>>(256);
        let nick = registered.nick.clone();
        tokio::spawn(drive(
            registered.lines,
            rx,
            in_tx,
            nick,
            self.settings.network(),
        ));
        let stream = tokio_stream_from(in_rx);
        Ok((IrcOutbox { lines: tx }, stream))
    }
}

fn tokio_stream_from(rx: mpsc::Receiver<Result<Inbound, AdapterError>>) -> InboundStream {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) }).boxed()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The connection's task: writes queued lines, answers PINGs, keeps the link alive and
/// turns PRIVMSGs into inbound messages. It ends when the link drops, after putting the
/// reason on the inbound stream.
async fn drive(
    mut lines: Lines,
    mut outgoing: mpsc::Receiver<String>,
    inbound: mpsc::Sender<Result<Inbound, AdapterError>>,
    nick: String,
    network: String,
) {
    let mut quiet = tokio::time::interval(KEEPALIVE);
    quiet.reset();
    let mut pinged = false;
    let ended = loop {
        tokio::select! {
            line = outgoing.recv() => {
                let Some(line) = line else { break None };
                if let Err(e) = send_line(&mut lines, &line).await {
                    break Some(e);
                }
            }
            m = next_message(&mut lines) => {
                quiet.reset();
                pinged = false;
                let m = match m {
                    Ok(Some(m)) => m,
                    Ok(None) => break Some(AdapterError::Link("the server closed the connection".into())),
                    Err(e) => break Some(e),
                };
                match handle(&m, &nick, &network) {
                    Handled::Reply(line) => {
                        if let Err(e) = send_line(&mut lines, &line).await {
                            break Some(e);
                        }
                    }
                    Handled::Inbound(i) => {
                        if inbound.send(Ok(i)).await.is_err() {
                            break None;
                        }
                    }
                    Handled::Closed(why) => break Some(AdapterError::Link(why)),
                    Handled::Nothing => {}
                }
            }
            _ = quiet.tick() => {
                if pinged {
                    break Some(AdapterError::Link(format!("no answer from the server for {:?}", KEEPALIVE * 2)));
                }
                pinged = true;
                if let Err(e) = send_line(&mut lines, "PING :clawos").await {
                    break Some(e);
                }
            }
        }
    };
    if let Some(e) = ended {
        let _ = inbound.send(Err(e)).await;
    }
}

enum Handled {
    Reply(String),
    Inbound(Inbound),
    Closed(String),
    Nothing,
}

fn handle(m: &irc_proto::Message, nick: &str, network: &str) -> Handled {
    use irc_proto::Command;
    match &m.command {
        Command::PING(a, b) => Handled::Reply(link::pong(a, b.as_deref())),
        Command::ERROR(why) => Handled::Closed(format!("the server closed the link: {why}")),
        Command::PRIVMSG(target, text) => {
            let Some(from) = m.source_nickname() else {
                return Handled::Nothing;
            };
            let direct = target.eq_ignore_ascii_case(nick);
            let (text, ctcp_reply) = match ctcp(text) {
                Some(("ACTION", rest)) => (format!("/me {rest}"), None),
                Some(("VERSION", _)) => (
                    String::new(),
                    Some(format!("NOTICE {from} :\u{1}VERSION clawos\u{1}")),
                ),
                Some(("PING", arg)) => (
                    String::new(),
                    Some(format!("NOTICE {from} :\u{1}PING {arg}\u{1}")),
                ),
                Some(_) => (String::new(), None),
                None => (text.clone(), None),
            };
            if let Some(reply) = ctcp_reply {
                return Handled::Reply(reply);
            }
            if text.trim().is_empty() {
                return Handled::Nothing;
            }
            let (text, mentioned) = if direct {
                (text, true)
            } else {
                addressing(&text, nick)
            };
            let tag = |name: &str| {
                m.tags
                    .as_ref()
                    .and_then(|tags| tags.iter().find(|t| t.0 == name).and_then(|t| t.1.clone()))
            };
            Handled::Inbound(Inbound {
                external_id: tag("msgid").unwrap_or_else(|| Uuid::now_v7().to_string()),
                sender: format!("irc:{from}@{network}"),
                chat: if direct { None } else { Some(target.clone()) },
                text,
                attachments: Vec::new(),
                sent_at_ms: now_ms(),
                mentioned,
            })
        }
        _ => Handled::Nothing,
    }
}

/// A CTCP request `\x01VERB rest\x01`, as (verb, rest).
fn ctcp(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix('\u{1}')?;
    let inner = inner.strip_suffix('\u{1}').unwrap_or(inner);
    Some(inner.split_once(' ').unwrap_or((inner, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addressing_strips_a_leading_nick_and_finds_mentions() {
        assert_eq!(
            addressing("clawbot: hi there", "clawbot"),
            ("hi there".into(), true)
        );
        assert_eq!(addressing("ClawBot, hi", "clawbot"), ("hi".into(), true));
        assert!(addressing("ask clawbot please", "clawbot").1);
        assert!(!addressing("clawbotty is not me", "clawbot").1);
        assert!(!addressing("nothing here", "clawbot").1);
    }

    #[test]
    fn privmsgs_become_inbound_and_ctcp_is_answered() {
        let m: irc_proto::Message = ":alice!a@h PRIVMSG #room :clawbot: hello".parse().unwrap();
        let Handled::Inbound(i) = handle(&m, "clawbot", "net") else {
            panic!()
        };
        assert_eq!(
            (
                i.sender.as_str(),
                i.chat.as_deref(),
                i.text.as_str(),
                i.mentioned
            ),
            ("irc:alice@net", Some("#room"), "hello", true)
        );
        let m: irc_proto::Message = ":alice!a@h PRIVMSG clawbot :\u{1}ACTION waves\u{1}"
            .parse()
            .unwrap();
        let Handled::Inbound(i) = handle(&m, "clawbot", "net") else {
            panic!()
        };
        assert_eq!((i.chat, i.text.as_str()), (None, "/me waves"));
        let m: irc_proto::Message = ":alice!a@h PRIVMSG clawbot :\u{1}VERSION\u{1}"
            .parse()
            .unwrap();
        assert!(
            matches!(handle(&m, "clawbot", "net"), Handled::Reply(r) if r.contains("VERSION clawos"))
        );
        let m: irc_proto::Message = "PING :x".parse().unwrap();
        assert!(matches!(handle(&m, "clawbot", "net"), Handled::Reply(r) if r == "PONG :x"));
    }

    #[test]
    fn settings_are_checked() {
        let s = IrcSettings {
            server: "irc.test:6697".into(),
            tls: true,
            tls_ca_file: None,
            nick: "clawbot".into(),
            channels: vec!["#ok".into()],
            auth: IrcAuth::None,
            account: None,
            network: None,
            burst: None,
            pace_ms: None,
        };
        assert!(s.validate().is_ok());
        assert_eq!(s.network(), "irc.test");
        let bad = IrcSettings {
            channels: vec!["nohash".into()],
            ..s.clone()
        };
        assert!(bad.validate().unwrap_err().contains("not an IRC channel"));
        let bad = IrcSettings {
            server: "nohost".into(),
            ..s
        };
        assert!(bad.validate().is_err());
    }
}
