//! `[channels.NAME]` settings of an XMPP channel, checked by the Gateway when it loads
//! `clawos.toml` and read by the channel process from its environment.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio_xmpp::jid::BareJid;

use crate::platform::AdapterError;

fn yes() -> bool {
    true
}

/// The resource the bot binds when none is configured.
pub const DEFAULT_RESOURCE: &str = "clawos";

/// `[channels.NAME]` settings of an XMPP channel (the password is the vault secret named
/// by `secret_name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmppSettings {
    /// The bot's account, e.g. `clawbot@example.org`.
    pub jid: String,
    /// `host:port` of the server's client port (default: the JID's domain, port 5222;
    /// DNS SRV records are not looked up).
    pub server: Option<String>,
    /// STARTTLS, required (default true). `false` only for a server on loopback.
    #[serde(default = "yes")]
    pub tls: bool,
    /// A PEM file of certificate authorities (or a self-signed certificate) to trust
    /// besides the public ones: a self-hosted server's own CA. It is trusted for the
    /// client port and for file downloads and uploads over HTTPS.
    pub tls_ca_file: Option<PathBuf>,
    /// The resource to bind (default `clawos`).
    pub resource: Option<String>,
    /// The bot's nick in rooms (default: the JID's local part).
    pub nick: Option<String>,
    /// Group chats (XEP-0045 rooms) to join, e.g. `["team@conference.example.org"]`.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// The HTTP upload service (XEP-0363), e.g. `upload.example.org` (default: found by
    /// service discovery on the server).
    pub upload_service: Option<String>,
    /// Messages that may go at once (default 5).
    pub burst: Option<u32>,
    /// Then one message per this many milliseconds (default 1000). A server with looser
    /// limits may allow less.
    pub pace_ms: Option<u64>,
}

impl crate::platform::KindSettings for XmppSettings {
    fn validate(&self) -> Result<(), String> {
        XmppSettings::validate(self)
    }
}

impl XmppSettings {
    /// Check what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        self.account().map_err(|e| e.to_string())?;
        if self.server.is_some() {
            self.host_port().map_err(|e| e.to_string())?;
        }
        let nick = self.nick();
        if nick.trim().is_empty() || nick.contains('/') {
            return Err(format!("nick `{nick}` is not a valid room nick"));
        }
        if let Some(r) = &self.resource {
            if r.trim().is_empty() {
                return Err("resource must not be empty".into());
            }
        }
        for room in &self.rooms {
            let ok = BareJid::new(room).ok().filter(|j| j.node().is_some());
            if ok.is_none() {
                return Err(format!(
                    "`{room}` is not a room address (e.g. \"team@conference.example.org\")"
                ));
            }
        }
        if let Some(u) = &self.upload_service {
            BareJid::new(u).map_err(|e| format!("upload_service `{u}`: {e}"))?;
        }
        Ok(())
    }

    /// The bot's bare JID (it must have a local part).
    pub fn account(&self) -> Result<BareJid, AdapterError> {
        let jid = BareJid::new(&self.jid)
            .map_err(|e| AdapterError::Config(format!("jid `{}`: {e}", self.jid)))?;
        if jid.node().is_none() {
            return Err(AdapterError::Config(format!(
                "jid `{}`: expected an account, e.g. \"clawbot@example.org\"",
                self.jid
            )));
        }
        Ok(jid)
    }

    /// The host and port to connect to.
    pub fn host_port(&self) -> Result<(String, u16), AdapterError> {
        let Some(server) = &self.server else {
            return Ok((self.account()?.domain().to_string(), 5222));
        };
        let (host, port) = server.rsplit_once(':').ok_or_else(|| {
            AdapterError::Config(format!("server `{server}`: expected host:port"))
        })?;
        let port = port
            .parse()
            .map_err(|_| AdapterError::Config(format!("server `{server}`: bad port")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(AdapterError::Config(format!("server `{server}`: no host")));
        }
        Ok((host.to_string(), port))
    }

    /// The nick in rooms.
    pub fn nick(&self) -> String {
        match &self.nick {
            Some(n) => n.clone(),
            None => self.jid.split('@').next().unwrap_or(&self.jid).to_string(),
        }
    }

    /// The resource to bind.
    pub fn resource(&self) -> String {
        self.resource
            .clone()
            .unwrap_or_else(|| DEFAULT_RESOURCE.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> XmppSettings {
        XmppSettings {
            jid: "clawbot@clawos.test".into(),
            server: Some("127.0.0.1:15222".into()),
            tls: true,
            tls_ca_file: None,
            resource: None,
            nick: None,
            rooms: vec!["team@conference.clawos.test".into()],
            upload_service: None,
            burst: None,
            pace_ms: None,
        }
    }

    #[test]
    fn settings_are_checked() {
        let s = settings();
        assert!(s.validate().is_ok());
        assert_eq!(s.nick(), "clawbot");
        assert_eq!(s.resource(), "clawos");
        assert_eq!(s.host_port().unwrap(), ("127.0.0.1".to_string(), 15222));
        let default_port = XmppSettings {
            server: None,
            ..s.clone()
        };
        assert_eq!(
            default_port.host_port().unwrap(),
            ("clawos.test".to_string(), 5222)
        );
        let bad = XmppSettings {
            jid: "clawos.test".into(),
            ..s.clone()
        };
        assert!(bad.validate().unwrap_err().contains("expected an account"));
        let bad = XmppSettings {
            rooms: vec!["#room".into()],
            ..s.clone()
        };
        assert!(bad.validate().unwrap_err().contains("not a room address"));
        let bad = XmppSettings {
            server: Some("nohost".into()),
            ..s
        };
        assert!(bad.validate().is_err());
    }
}
