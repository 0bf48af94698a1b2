//! The few BlueBubbles server REST calls the channel makes (`/api/v1/...`, the server
//! password as the `password` query parameter), with its answers
//! `{"status", "message", "data", "error": {"type", "message"}}` mapped to what the
//! platform does next: 401 is a person's to fix, 5xx and a dropped connection a link
//! down, any other refusal refuses the one message, a body that is not JSON a protocol
//! error.

use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::{json, Value};

use super::settings::ImessageSettings;
use crate::platform::AdapterError;

/// How long one request may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A client of one BlueBubbles server.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Url,
    password: String,
}

fn link(what: &str, e: reqwest::Error) -> AdapterError {
    // Without the URL: it carries the password.
    AdapterError::Link(format!("{what}: {}", e.without_url()))
}

/// The body of a request.
enum Body {
    Json(Value),
    Multipart(String, Vec<u8>),
}

impl Api {
    /// A client of the server in `settings` with its password.
    pub fn new(settings: &ImessageSettings, password: &str) -> Result<Self, AdapterError> {
        let http = crate::platform::http::client(settings.tls_ca_file.as_deref())?;
        let base = Url::parse(&settings.url)
            .map_err(|e| AdapterError::Config(format!("url `{}`: {e}", settings.url)))?;
        Ok(Api {
            http,
            base,
            password: password.to_string(),
        })
    }

    fn url(&self, segments: &[&str]) -> Result<Url, AdapterError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| AdapterError::Config(format!("url `{}` cannot be a base", self.base)))?
            .pop_if_empty()
            .extend(segments);
        url.query_pairs_mut()
            .append_pair("password", &self.password);
        Ok(url)
    }

    async fn raw(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Body>,
        what: &str,
    ) -> Result<reqwest::Response, AdapterError> {
        let mut req = self
            .http
            .request(method, self.url(segments)?)
            .timeout(CALL_TIMEOUT);
        req = match body {
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Multipart(boundary, bytes)) => req
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(bytes),
            None => req,
        };
        let resp = req.send().await.map_err(|e| link(what, e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp.bytes().await.map_err(|e| link(what, e))?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let why = format!(
            "{what}: HTTP {} {} {}",
            status.as_u16(),
            v["message"].as_str().unwrap_or(""),
            v["error"]["message"].as_str().unwrap_or("")
        )
        .trim_end()
        .to_string();
        Err(match status.as_u16() {
            401 | 403 => AdapterError::AuthRefused(format!(
                "the BlueBubbles server refused the password ({why})"
            )),
            429 | 500..=599 => AdapterError::Link(why),
            _ => AdapterError::Refused(why),
        })
    }

    /// One call; the answer's `data`.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Body>,
        what: &str,
    ) -> Result<Value, AdapterError> {
        let resp = self.raw(method, segments, body, what).await?;
        let bytes = resp.bytes().await.map_err(|e| link(what, e))?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|_| AdapterError::Protocol(format!("{what}: the answer is not JSON")))?;
        if !v.is_object() || !v["status"].is_number() {
            return Err(AdapterError::Protocol(format!(
                "{what}: the answer is not a BlueBubbles answer (no status)"
            )));
        }
        Ok(v.get("data").cloned().unwrap_or(Value::Null))
    }

    /// `GET /api/v1/ping` (checks the password).
    pub async fn ping(&self) -> Result<(), AdapterError> {
        self.call(Method::GET, &["api", "v1", "ping"], None, "ping")
            .await
            .map(|_| ())
    }

    /// Messages created after `after` (unix ms), oldest first, at most `limit`; or, with
    /// `newest`, the newest one.
    pub async fn messages(
        &self,
        after: Option<i64>,
        limit: u32,
        newest: bool,
    ) -> Result<Vec<Value>, AdapterError> {
        let mut body = json!({
            "limit": limit,
            "offset": 0,
            "sort": if newest { "DESC" } else { "ASC" },
            "with": ["chat", "chat.participants", "attachment", "handle"],
        });
        if let Some(a) = after {
            body["after"] = json!(a);
        }
        let v = self
            .call(
                Method::POST,
                &["api", "v1", "message", "query"],
                Some(Body::Json(body)),
                "message/query",
            )
            .await?;
        v.as_array().cloned().ok_or_else(|| {
            AdapterError::Protocol("message/query: data is not a list of messages".into())
        })
    }

    /// Send a text; the new message's GUID, when the server gives it.
    pub async fn send_text(
        &self,
        chat: &str,
        text: &str,
        reply_to: Option<&str>,
        private_api: bool,
    ) -> Result<Option<String>, AdapterError> {
        let temp = format!("temp-{}", uuid::Uuid::now_v7().simple());
        let mut body = json!({
            "chatGuid": chat,
            "tempGuid": temp,
            "message": text,
            "method": if private_api { "private-api" } else { "apple-script" },
        });
        if let Some(r) = reply_to {
            body["selectedMessageGuid"] = json!(r);
            body["partIndex"] = json!(0);
        }
        let v = self
            .call(
                Method::POST,
                &["api", "v1", "message", "text"],
                Some(Body::Json(body)),
                "message/text",
            )
            .await?;
        Ok(v["guid"].as_str().map(String::from))
    }

    /// Show the bot typing in `chat` (`POST /api/v1/chat/{guid}/typing`, Private API).
    pub async fn typing(&self, chat: &str) -> Result<(), AdapterError> {
        self.call(
            Method::POST,
            &["api", "v1", "chat", chat, "typing"],
            None,
            "chat/typing",
        )
        .await
        .map(|_| ())
    }

    /// Send a file (multipart `attachment`); the new message's GUID, if given.
    pub async fn send_attachment(
        &self,
        chat: &str,
        name: &str,
        mime: &str,
        bytes: &[u8],
        private_api: bool,
    ) -> Result<Option<String>, AdapterError> {
        let boundary = format!("clawos{}", uuid::Uuid::now_v7().simple());
        let temp = format!("temp-{}", uuid::Uuid::now_v7().simple());
        let method = if private_api {
            "private-api"
        } else {
            "apple-script"
        };
        let mut body = Vec::with_capacity(bytes.len() + 1024);
        for (k, v) in [
            ("chatGuid", chat),
            ("tempGuid", temp.as_str()),
            ("name", name),
            ("method", method),
        ] {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        let quoted = name.replace(['"', '\r', '\n'], "_");
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; \
                 filename=\"{quoted}\"\r\nContent-Type: {mime}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let v = self
            .call(
                Method::POST,
                &["api", "v1", "message", "attachment"],
                Some(Body::Multipart(boundary, body)),
                "message/attachment",
            )
            .await?;
        Ok(v["guid"].as_str().map(String::from))
    }

    /// Download an attachment's bytes, at most `cap`.
    pub async fn download(&self, guid: &str, cap: u64) -> Result<Vec<u8>, AdapterError> {
        let mut resp = self
            .raw(
                Method::GET,
                &["api", "v1", "attachment", guid, "download"],
                None,
                "attachment/download",
            )
            .await?;
        crate::platform::http::read_capped(&mut resp, &format!("attachment {guid}"), cap).await
    }
}

/// Check the server answers and takes the password (`GET /api/v1/ping`), for
/// `clawos doctor`.
pub async fn probe(
    settings: &ImessageSettings,
    password: Option<&str>,
    within: Duration,
) -> Result<(), AdapterError> {
    let api = Api::new(settings, password.unwrap_or_default())?;
    tokio::time::timeout(within, api.ping())
        .await
        .map_err(|_| AdapterError::Link(format!("no answer within {within:?}")))?
}
