//! The signal-cli daemon's HTTP interface (`signal-cli-jsonrpc(5)`): JSON-RPC 2.0 requests
//! on `POST /api/v1/rpc`, and the `receive` notifications as Server-Sent Events on
//! `GET /api/v1/events`, resumed after the last event seen with `Last-Event-ID`.
//!
//! Error objects are mapped to what the platform does next: an account the daemon does
//! not know is a person's to fix, a failed send is refused (not sent again), an I/O or
//! rate-limit error and a dropped connection are a link down, an answer that is not
//! JSON-RPC is a protocol error.

use std::time::Duration;

use reqwest::Url;
use serde_json::{json, Value};

use super::settings::SignalSettings;
use crate::platform::AdapterError;

/// Largest Server-Sent Event accepted (an envelope is a few KiB; attachments are files).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// How long one request may take (sending a large attachment included).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A client of one daemon, for one account.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Url,
    account: String,
}

/// A JSON-RPC error object as an [`AdapterError`]. signal-cli's codes: -1 user error
/// (e.g. "Failed to send message"), -3 I/O error, -4 untrusted identity, -5 rate limited;
/// the JSON-RPC ones -32600, -32601, -32602, -32603.
pub fn map_error(what: &str, account: &str, error: &Value) -> AdapterError {
    let code = error["code"].as_i64().unwrap_or(0);
    let message = error["message"].as_str().unwrap_or("").to_string();
    let why = format!("{what}: signal-cli error {code}: {message}");
    let lower = message.to_lowercase();
    if lower.contains("account does not exist")
        || lower.contains("not registered")
        || lower.contains("unregistered")
    {
        return AdapterError::AuthRefused(format!(
            "signal-cli does not know the account {account}: register or link it with \
             signal-cli first ({why})"
        ));
    }
    match code {
        -3 | -5 | -32603 => AdapterError::Link(why),
        -32600 | -32601 | -32700 => AdapterError::Protocol(why),
        _ => AdapterError::Refused(why),
    }
}

fn link(what: &str, e: reqwest::Error) -> AdapterError {
    AdapterError::Link(format!("{what}: {e}"))
}

impl Api {
    /// A client of the daemon in `settings`.
    pub fn new(http: reqwest::Client, settings: &SignalSettings) -> Result<Self, AdapterError> {
        let base = Url::parse(&settings.url)
            .map_err(|e| AdapterError::Config(format!("url `{}`: {e}", settings.url)))?;
        Ok(Api {
            http,
            base,
            account: settings.account.clone(),
        })
    }

    fn endpoint(&self, path: &str) -> Result<Url, AdapterError> {
        self.base
            .join(path)
            .map_err(|e| AdapterError::Config(format!("url `{}`: {e}", self.base)))
    }

    /// One JSON-RPC call; its `result`. `params` gets the `account` (needed by a daemon
    /// in multi-account mode).
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, AdapterError> {
        self.call_within(method, params, CALL_TIMEOUT).await
    }

    async fn call_within(
        &self,
        method: &str,
        mut params: Value,
        timeout: Duration,
    ) -> Result<Value, AdapterError> {
        if let Some(p) = params.as_object_mut() {
            p.insert("account".into(), json!(self.account));
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
        let resp = self
            .http
            .post(self.endpoint("api/v1/rpc")?)
            .timeout(timeout)
            .json(&body)
            .send()
            .await
            .map_err(|e| link(method, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| link(method, e))?;
        if status.is_server_error() {
            return Err(AdapterError::Link(format!("{method}: HTTP {status}")));
        }
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
            AdapterError::Protocol(format!(
                "{method}: HTTP {status}, and the answer is not JSON-RPC"
            ))
        })?;
        if v.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(AdapterError::Protocol(format!(
                "{method}: HTTP {status}, and the answer is not JSON-RPC 2.0"
            )));
        }
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(map_error(method, &self.account, e));
        }
        if v["id"] != json!(id) {
            return Err(AdapterError::Protocol(format!(
                "{method}: the answer is for another request"
            )));
        }
        v.get("result")
            .cloned()
            .ok_or_else(|| AdapterError::Protocol(format!("{method}: no result")))
    }

    /// Open the event stream, after event `last_id` when given.
    pub async fn events(&self, last_id: Option<&str>) -> Result<Events, AdapterError> {
        let mut req = self
            .http
            .get(self.endpoint("api/v1/events")?)
            .header("accept", "text/event-stream");
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.map_err(|e| link("events", e))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(AdapterError::Link(format!("events: HTTP {status}")));
        }
        let sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if !status.is_success() || !sse {
            return Err(AdapterError::Protocol(format!(
                "events: HTTP {status}, not an event stream (is this signal-cli daemon --http?)"
            )));
        }
        Ok(Events {
            resp,
            buf: Vec::new(),
            dropping: None,
        })
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its `id:`, if any.
    pub id: Option<String>,
    /// Its `event:` name (`message` when none).
    pub name: String,
    /// Its `data:` lines, joined by newlines.
    pub data: String,
    /// It was larger than [`MAX_EVENT_BYTES`]: its data was dropped.
    pub oversize: bool,
}

/// The event stream of the daemon.
pub struct Events {
    resp: reqwest::Response,
    buf: Vec<u8>,
    /// Dropping an oversize event: its start (for its id) is kept.
    dropping: Option<Vec<u8>>,
}

impl Events {
    /// The next event; `Link` when the stream ends or drops, `Protocol` for an event that
    /// is not UTF-8. An event above [`MAX_EVENT_BYTES`] comes back with `oversize` set and
    /// no data, so that its id can be skipped.
    pub async fn next(&mut self) -> Result<Event, AdapterError> {
        loop {
            if let Some(block) = take_block(&mut self.buf) {
                if let Some(head) = self.dropping.take() {
                    let head = String::from_utf8_lossy(&head).to_string();
                    let mut e = parse_event(&head).unwrap_or(Event {
                        id: None,
                        name: "message".into(),
                        data: String::new(),
                        oversize: true,
                    });
                    e.data.clear();
                    e.oversize = true;
                    return Ok(e);
                }
                let text = String::from_utf8(block).map_err(|_| {
                    AdapterError::Protocol("events: an event that is not UTF-8".into())
                })?;
                if let Some(e) = parse_event(&text) {
                    return Ok(e);
                }
                continue;
            }
            if self.buf.len() > MAX_EVENT_BYTES {
                // Keep the start (its id), drop the rest up to the blank line; the last
                // byte stays in case it begins the blank line.
                let keep = self.buf.len() - 1;
                let mut taken: Vec<u8> = self.buf.drain(..keep).collect();
                let head = self.dropping.get_or_insert_with(Vec::new);
                if head.is_empty() {
                    taken.truncate(4096);
                    *head = taken;
                }
            }
            match self.resp.chunk().await.map_err(|e| link("events", e))? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None => {
                    return Err(AdapterError::Link(
                        "events: signal-cli closed the event stream".into(),
                    ))
                }
            }
        }
    }
}

/// Cut the first complete event block (ended by a blank line) off `buf`.
fn take_block(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut i = 0;
    while i + 1 < buf.len() {
        let end = if buf[i] == b'\n' && buf[i + 1] == b'\n' {
            Some(2)
        } else if buf[i..].starts_with(b"\r\n\r\n") {
            Some(4)
        } else {
            None
        };
        if let Some(n) = end {
            let block = buf[..i].to_vec();
            buf.drain(..i + n);
            return Some(block);
        }
        i += 1;
    }
    None
}

/// One event block's fields (`None` for a block of comments alone, e.g. a keep-alive).
pub fn parse_event(block: &str) -> Option<Event> {
    let mut e = Event {
        id: None,
        name: "message".into(),
        data: String::new(),
        oversize: false,
    };
    let mut any = false;
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => {
                if any {
                    e.data.push('\n');
                }
                e.data.push_str(value);
                any = true;
            }
            "event" => e.name = value.to_string(),
            "id" => e.id = Some(value.to_string()),
            _ => {}
        }
    }
    any.then_some(e)
}

/// Check the daemon answers JSON-RPC (`version`), for `clawos doctor`: its version.
pub async fn probe(settings: &SignalSettings, within: Duration) -> Result<String, AdapterError> {
    let api = Api::new(crate::platform::http::client(None)?, settings)?;
    let v = api.call_within("version", json!({}), within).await?;
    Ok(v["version"].as_str().unwrap_or("unknown").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_cut_at_blank_lines_and_comments_are_skipped() {
        let mut buf =
            b": keep-alive\n\nid: 7\nevent: receive\ndata: {\"a\":\ndata: 1}\n\nid: 8".to_vec();
        let first = take_block(&mut buf).unwrap();
        assert_eq!(parse_event(std::str::from_utf8(&first).unwrap()), None);
        let second = take_block(&mut buf).unwrap();
        let e = parse_event(std::str::from_utf8(&second).unwrap()).unwrap();
        assert_eq!(e.id.as_deref(), Some("7"));
        assert_eq!(e.name, "receive");
        assert_eq!(e.data, "{\"a\":\n1}");
        assert_eq!(take_block(&mut buf), None);
        assert_eq!(buf, b"id: 8");
    }

    #[test]
    fn error_objects_map_to_what_happens_next() {
        let e =
            |code: i64, m: &str| map_error("send", "+1555", &json!({"code": code, "message": m}));
        assert!(matches!(
            e(-1, "Failed to send message"),
            AdapterError::Refused(_)
        ));
        assert!(matches!(
            e(-32601, "Method not implemented"),
            AdapterError::Protocol(_)
        ));
        assert!(matches!(e(-3, "IO error"), AdapterError::Link(_)));
        assert!(matches!(
            e(-32602, "Specified account does not exist"),
            AdapterError::AuthRefused(_)
        ));
    }
}
