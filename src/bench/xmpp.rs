//! A person on an XMPP server for `clawos bench channels --xmpp`: logs in over the XMPP
//! channel's own link (STARTTLS, SASL, bind), sends initial presence, and times round
//! trips of chat messages to the bot.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use clawos_channels::xmpp::link::{
    self, FallibleStreamElement, ReadError, Stream, XmppStreamElement,
};
use clawos_channels::xmpp::parsers::iq::Iq;
use clawos_channels::xmpp::parsers::jid::{BareJid, Jid};
use clawos_channels::xmpp::parsers::message::{Lang, Message, MessageType};
use clawos_channels::xmpp::parsers::ping::Ping;
use clawos_channels::xmpp::parsers::presence::Presence;
use clawos_channels::xmpp::parsers::stanza::Stanza;
use clawos_channels::xmpp::XmppSettings;
use futures::StreamExt;

use super::common::{BOT, PASSWORD, PERSON};

/// The XMPP server the bot and the person log in to.
pub struct XmppServer {
    /// Its client port, `host:port`.
    pub addr: String,
    /// Its certificate (or CA) to trust, for STARTTLS with a self-signed certificate.
    pub ca: Option<PathBuf>,
    /// The accounts' domain.
    pub domain: String,
}

impl XmppServer {
    /// The bot's JID.
    pub fn bot(&self) -> String {
        format!("{BOT}@{}", self.domain)
    }
}

/// A logged-in person.
pub struct XmppPerson {
    stream: Stream,
    bot: BareJid,
    domain: String,
}

impl XmppPerson {
    /// Log in as [`PERSON`] (with initial presence, so messages to the bare JID arrive).
    pub async fn connect(server: &XmppServer) -> Result<Self> {
        let settings = XmppSettings {
            jid: format!("{PERSON}@{}", server.domain),
            server: Some(server.addr.clone()),
            tls: true,
            tls_ca_file: server.ca.clone(),
            resource: Some("bench".into()),
            nick: None,
            rooms: vec![],
            upload_service: None,
            burst: None,
            pace_ms: None,
        };
        let link = link::connect(&settings, Some(PASSWORD))
            .await
            .map_err(|e| {
                anyhow!(
                    "cannot log in as {}: {e} (create `{BOT}` and `{PERSON}` with password \
                 `{PASSWORD}` first; --xmpp-ca names a self-signed server's certificate)",
                    settings.jid
                )
            })?;
        let mut p = XmppPerson {
            stream: link.stream,
            bot: BareJid::new(&server.bot())?,
            domain: server.domain.clone(),
        };
        p.send(Presence::available().into()).await?;
        Ok(p)
    }

    async fn send(&mut self, stanza: Stanza) -> Result<()> {
        link::send(&mut self.stream, stanza)
            .await
            .map_err(|e| anyhow!("{e}"))
    }

    /// The next stanza before `deadline` (the server pinged when it is quiet), `None` then.
    async fn next(&mut self, deadline: Instant) -> Result<Option<Stanza>> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let el = match tokio::time::timeout(left, self.stream.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => bail!("the XMPP server closed the connection"),
                Ok(Some(Err(ReadError::SoftTimeout))) => {
                    let ping = Iq::from_get("keepalive", Ping).with_to(Jid::new(&self.domain)?);
                    self.send(ping.into()).await?;
                    continue;
                }
                Ok(Some(Err(e))) => bail!("lost the XMPP server: {e}"),
                Ok(Some(Ok(el))) => el,
            };
            match el {
                FallibleStreamElement::Ok(XmppStreamElement::Stanza(s)) => return Ok(Some(s)),
                FallibleStreamElement::Ok(XmppStreamElement::StreamError(e)) => {
                    bail!("the XMPP server ended the stream: {e}")
                }
                _ => {}
            }
        }
    }

    /// Say `text` to the bot and wait (up to 10 s) for its answer.
    pub async fn round_trip(&mut self, text: &str) -> Result<Option<Duration>> {
        let t = Instant::now();
        let m =
            Message::chat(Jid::from(self.bot.clone())).with_body(Lang::default(), text.to_string());
        self.send(m.into()).await?;
        let want = format!("echo: {text} ");
        let deadline = t + Duration::from_secs(10);
        while let Some(stanza) = self.next(deadline).await? {
            let Stanza::Message(m) = stanza else { continue };
            let heard = matches!(m.type_, MessageType::Chat | MessageType::Normal)
                && m.from.as_ref().is_some_and(|f| f.to_bare() == self.bot)
                && m.bodies.values().any(|b| b.starts_with(&want));
            if heard {
                return Ok(Some(t.elapsed()));
            }
        }
        Ok(None)
    }
}
