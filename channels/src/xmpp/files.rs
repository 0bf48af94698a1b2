//! Files over HTTP: fetching what people share (XEP-0066 URLs, kept in the media store
//! within its size cap) and uploading what the bot sends (XEP-0363: a slot from the
//! upload service, then an HTTP PUT with the headers it gave).

use std::net::IpAddr;
use std::time::Duration;

use clawos_events::Attachment;
use reqwest::Url;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::disco::DiscoInfoResult;
use tokio_xmpp::parsers::http_upload::SlotRequest;
use tokio_xmpp::parsers::iq::Iq;

use super::settings::XmppSettings;
use crate::media::MediaStore;
use crate::platform::AdapterError;

/// XEP-0363 HTTP File Upload.
pub const NS_UPLOAD: &str = "urn:xmpp:http:upload:0";
/// Longest one HTTP transfer may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

/// The server's upload service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadService {
    /// Its JID.
    pub jid: Jid,
    /// The largest file it takes, when it says.
    pub max_bytes: Option<u64>,
}

/// Whether a disco#info answer is an upload service, and its size limit.
pub fn upload_service(jid: Jid, info: &DiscoInfoResult) -> Option<UploadService> {
    if !info.features.contains(NS_UPLOAD) {
        return None;
    }
    let max_bytes = info
        .extensions
        .iter()
        .flat_map(|form| form.fields.iter())
        .find(|f| f.var.as_deref() == Some("max-file-size"))
        .and_then(|f| f.values.first())
        .and_then(|v| v.trim().parse().ok());
    Some(UploadService { jid, max_bytes })
}

/// An upload slot: where to PUT (with which headers) and the URL people GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// PUT here.
    pub put: String,
    /// With these headers (only the ones XEP-0363 allows).
    pub headers: Vec<(String, String)>,
    /// Then share this URL.
    pub get: String,
}

/// The slot request IQ for a file.
pub fn slot_request(service: &UploadService, name: &str, size: u64, mime: Option<&str>) -> Iq {
    let filename: String = name
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    Iq::from_get(
        "",
        SlotRequest {
            filename: if filename.is_empty() {
                "file".into()
            } else {
                filename
            },
            size,
            content_type: mime.map(String::from),
        },
    )
    .with_to(service.jid.clone())
}

/// Read a `<slot/>` answer (by hand: servers add headers the typed parser refuses).
pub fn parse_slot(slot: &Element) -> Result<Slot, AdapterError> {
    let bad = |what: &str| AdapterError::Protocol(format!("upload slot: {what}"));
    if !slot.is("slot", NS_UPLOAD) {
        return Err(bad("not a <slot/>"));
    }
    let put = slot
        .get_child("put", NS_UPLOAD)
        .ok_or_else(|| bad("no <put/>"))?;
    let get = slot
        .get_child("get", NS_UPLOAD)
        .ok_or_else(|| bad("no <get/>"))?;
    let url = |el: &Element| {
        el.attr("url")
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .map(String::from)
            .ok_or_else(|| bad("no http(s) url"))
    };
    let headers = put
        .children()
        .filter(|h| h.is("header", NS_UPLOAD))
        .filter_map(|h| {
            let name = h.attr("name")?;
            let allowed = ["Authorization", "Cookie", "Expires"]
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name));
            let value = h.text().replace(['\r', '\n'], "");
            allowed.then(|| (name.to_string(), value))
        })
        .collect();
    Ok(Slot {
        put: url(put)?,
        headers,
        get: url(get)?,
    })
}

/// The HTTP side: one client, trusting the configured CA, following no redirects.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    /// The XMPP server's host: files on it may be fetched even from a private address.
    server_host: String,
}

impl Http {
    /// A client for this channel's settings.
    pub fn new(settings: &XmppSettings) -> Result<Self, AdapterError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(HTTP_TIMEOUT)
            .user_agent("clawos");
        if let Some(ca) = &settings.tls_ca_file {
            for cert in super::link::ca_certs(ca)? {
                let cert = reqwest::Certificate::from_der(cert.as_ref()).map_err(|e| {
                    AdapterError::Config(format!("tls_ca_file {}: {e}", ca.display()))
                })?;
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| AdapterError::Config(format!("HTTP client: {e}")))?;
        Ok(Http {
            client,
            server_host: settings.host_port()?.0,
        })
    }

    /// Whether the bot may fetch `url`: http(s), and not a loopback, private or
    /// link-local address unless it is the XMPP server's own host (a person could
    /// otherwise make the bot read the machine's or the network's internal services).
    pub fn may_fetch(&self, url: &Url) -> bool {
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        let Some(host) = url.host_str() else {
            return false;
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.eq_ignore_ascii_case(&self.server_host) {
            return true;
        }
        match bare.parse::<IpAddr>() {
            Ok(ip) => public(ip),
            Err(_) => {
                let d = bare.to_ascii_lowercase();
                d != "localhost" && !d.ends_with(".localhost")
            }
        }
    }

    /// Fetch a shared file into the media store. Never fails: a file that could not be
    /// fetched, or is above the cap, is described without a hash (not kept).
    pub async fn fetch(&self, url: &str, media: Option<&MediaStore>) -> Attachment {
        let mut att = Attachment {
            name: file_name(url),
            mime: None,
            size: 0,
            blake3: None,
            location: Some(url.to_string()),
        };
        let Some(media) = media else {
            return att;
        };
        let parsed = match Url::parse(url) {
            Ok(u) if self.may_fetch(&u) => u,
            _ => {
                tracing::warn!(%url, "not fetching a file from this address");
                return att;
            }
        };
        let resp = match self.client.get(parsed).send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::warn!(%url, status = %r.status(), "a shared file could not be fetched");
                return att;
            }
            Err(e) => {
                tracing::warn!(%url, error = %e, "a shared file could not be fetched");
                return att;
            }
        };
        att.mime = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
            .filter(|v| !v.is_empty());
        let cap = media.max_bytes();
        if let Some(len) = resp.content_length() {
            att.size = len;
            if len > cap {
                tracing::warn!(%url, size = len, cap, "a shared file is above the size cap; not kept");
                return att;
            }
        }
        let mut bytes = Vec::new();
        let mut resp = resp;
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    bytes.extend_from_slice(&c);
                    if bytes.len() as u64 > cap {
                        att.size = att.size.max(bytes.len() as u64);
                        tracing::warn!(%url, cap, "a shared file is above the size cap; not kept");
                        return att;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%url, error = %e, "a shared file broke off");
                    return att;
                }
            }
        }
        match media.put(&att.name, att.mime.as_deref(), &bytes) {
            Ok(kept) => Attachment {
                location: att.location,
                ..kept
            },
            Err(e) => {
                tracing::warn!(%url, error = %e, "a shared file could not be kept");
                att.size = bytes.len() as u64;
                att
            }
        }
    }

    /// PUT the bytes into the slot. A refusal (4xx) is the message's, a failure to reach
    /// the server the link's.
    pub async fn put(
        &self,
        slot: &Slot,
        bytes: Vec<u8>,
        mime: Option<&str>,
    ) -> Result<(), AdapterError> {
        let mut req = self
            .client
            .put(&slot.put)
            .header(reqwest::header::CONTENT_LENGTH, bytes.len())
            .header(
                reqwest::header::CONTENT_TYPE,
                mime.unwrap_or("application/octet-stream"),
            );
        for (name, value) in &slot.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let resp = req
            .body(bytes)
            .send()
            .await
            .map_err(|e| AdapterError::Link(format!("upload to {}: {e}", slot.put)))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else if status.is_client_error() {
            Err(AdapterError::Refused(format!(
                "the upload service answered {status}"
            )))
        } else {
            Err(AdapterError::Link(format!(
                "the upload service answered {status}"
            )))
        }
    }
}

fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The file name in a URL: its last path segment, percent-decoded.
pub fn file_name(url: &str) -> String {
    let last = Url::parse(url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(String::from))
        })
        .unwrap_or_default();
    let decoded = percent_decode(&last);
    let clean: String = decoded
        .chars()
        .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
        .collect();
    if clean.trim().is_empty() {
        "file".into()
    } else {
        clean
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_read_and_odd_headers_dropped() {
        let el: Element = "<slot xmlns='urn:xmpp:http:upload:0'><put url='http://127.0.0.1:1/f/a%20b.txt'><header name='Authorization'>Bearer x</header><header name='X-Evil'>y</header></put><get url='http://127.0.0.1:1/f/a%20b.txt'/></slot>".parse().unwrap();
        let slot = parse_slot(&el).unwrap();
        assert_eq!(
            slot.headers,
            vec![("Authorization".to_string(), "Bearer x".to_string())]
        );
        assert_eq!(slot.get, "http://127.0.0.1:1/f/a%20b.txt");
        assert_eq!(file_name(&slot.get), "a b.txt");
        let el: Element = "<slot xmlns='urn:xmpp:http:upload:0'><put url='file:///etc/passwd'/><get url='x'/></slot>".parse().unwrap();
        assert!(parse_slot(&el).is_err());
        assert_eq!(file_name("https://h/"), "file");
        assert_eq!(file_name("https://h/%2e%2e%2Fx"), "..x");
    }

    #[test]
    fn internal_addresses_are_not_fetched() {
        let s = XmppSettings {
            jid: "bot@clawos.test".into(),
            server: Some("127.0.0.1:5222".into()),
            tls: true,
            tls_ca_file: None,
            resource: None,
            nick: None,
            rooms: vec![],
            upload_service: None,
            burst: None,
            pace_ms: None,
        };
        let http = Http::new(&s).unwrap();
        let may = |u: &str| http.may_fetch(&Url::parse(u).unwrap());
        assert!(may("http://127.0.0.1:5280/file_share/x/a.png"));
        assert!(may("https://upload.example.org/a.png"));
        assert!(may("https://93.184.216.34/a.png"));
        for u in [
            "http://127.0.0.2/a.png",
            "http://localhost/a.png",
            "http://10.1.2.3/a.png",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/a.png",
            "http://[fd00::1]/a.png",
            "http://[::ffff:192.168.0.1]/a.png",
            "file:///etc/passwd",
        ] {
            assert!(!may(u), "{u}");
        }
    }
}
