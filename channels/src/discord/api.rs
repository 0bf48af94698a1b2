//! The few Discord REST calls the channel makes (API v10), over reqwest, with Discord's
//! error shapes mapped to what the platform does next: a 401 is a token a person must fix,
//! a 429 waits its `retry_after` (seconds, a float) and tries again, a 5xx or a dropped
//! connection is a link down, any other refusal is this one message's.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::settings::DiscordSettings;
use crate::platform::AdapterError;

/// Times a rate-limited request is retried before it is reported.
const RATE_LIMIT_RETRIES: u32 = 5;
/// Longest wait for one request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A client of the REST API with the bot's token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// A request body.
pub enum Body {
    /// No body.
    None,
    /// JSON.
    Json(Value),
    /// `payload_json` and one file as `files[0]` (multipart/form-data).
    File {
        /// The message's JSON.
        payload: Value,
        /// File name.
        name: String,
        /// Media type.
        mime: String,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

/// An HTTP client that trusts the public roots and, if given, a private CA.
pub fn http_client(ca_file: Option<&std::path::Path>) -> Result<reqwest::Client, AdapterError> {
    let builder =
        reqwest::Client::builder().user_agent("DiscordBot (https://github.com/clawos/clawos, 1)");
    crate::platform::http::client_with(builder, ca_file)
}

/// What an error answer means for the platform.
fn refusal(what: &str, status: StatusCode, v: &Value) -> AdapterError {
    let why = format!(
        "{what}: {} {} (code {}){}",
        status.as_u16(),
        v["message"].as_str().unwrap_or(""),
        v["code"].as_i64().unwrap_or(0),
        match v.get("errors") {
            Some(e) => format!(" {e}"),
            None => String::new(),
        }
    );
    match status.as_u16() {
        401 => AdapterError::AuthRefused(format!(
            "{why}: Discord refused the bot token; copy it again from the developer portal \
             (your application, Bot, Reset Token) into the vault (`clawos secrets set NAME`)"
        )),
        500..=599 => AdapterError::Link(why),
        _ => AdapterError::Refused(why),
    }
}

/// A multipart/form-data body of `payload_json` and `files[0]`.
fn multipart(payload: &Value, name: &str, mime: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("clawos-{}", uuid::Uuid::now_v7().simple());
    let clean: String = name
        .chars()
        .map(|c| if c == '"' || c.is_control() { '_' } else { c })
        .collect();
    let mut out = Vec::with_capacity(bytes.len() + 512);
    out.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"payload_json\"\r\n\
             content-type: application/json\r\n\r\n{payload}\r\n--{boundary}\r\n\
             content-disposition: form-data; name=\"files[0]\"; filename=\"{clean}\"\r\n\
             content-type: {mime}\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(bytes);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), out)
}

impl Api {
    /// A client of the API at `settings`' `api_url` with `token`.
    pub fn new(settings: &DiscordSettings, token: String) -> Result<Self, AdapterError> {
        Ok(Api {
            http: http_client(settings.tls_ca_file.as_deref())?,
            base: settings.api_url(),
            token,
        })
    }

    /// The HTTP client (also for attachment downloads).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Send a request, waiting out rate limits; the JSON answer or the API's error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Body,
        what: &str,
    ) -> Result<Value, AdapterError> {
        let url = format!("{}{path}", self.base);
        for attempt in 0..=RATE_LIMIT_RETRIES {
            let mut req = self.http.request(method.clone(), &url).timeout(TIMEOUT);
            if !self.token.is_empty() {
                req = req.header("authorization", format!("Bot {}", self.token));
            }
            req = match &body {
                Body::None => req,
                Body::Json(v) => req.json(v),
                Body::File {
                    payload,
                    name,
                    mime,
                    bytes,
                } => {
                    let (ctype, data) = multipart(payload, name, mime, bytes);
                    req.header("content-type", ctype).body(data)
                }
            };
            let resp = req
                .send()
                .await
                .map_err(|e| AdapterError::Link(format!("{what}: {e}")))?;
            let status = resp.status();
            let header_wait = resp
                .headers()
                .get("retry-after")
                .and_then(|h| h.to_str().ok())
                .and_then(|s| s.parse::<f64>().ok());
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| AdapterError::Link(format!("{what}: {e}")))?;
            if status.is_success() {
                if bytes.is_empty() {
                    return Ok(Value::Null);
                }
                return serde_json::from_slice(&bytes).map_err(|e| {
                    AdapterError::Protocol(format!("{what}: the answer is not JSON: {e}"))
                });
            }
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status == StatusCode::TOO_MANY_REQUESTS && attempt < RATE_LIMIT_RETRIES {
                let secs = v["retry_after"].as_f64().or(header_wait).unwrap_or(1.0);
                let wait = Duration::from_secs_f64(secs.clamp(0.0, 60.0));
                tracing::warn!(%what, ?wait, global = v["global"].as_bool().unwrap_or(false),
                    "rate limited by Discord; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(refusal(what, status, &v));
        }
        Err(AdapterError::Link(format!("{what}: still rate limited")))
    }

    /// The bot's own user (`GET /users/@me`): its id and name.
    pub async fn me(&self) -> Result<(String, String), AdapterError> {
        let v = self
            .call(Method::GET, "/users/@me", Body::None, "users/@me")
            .await?;
        let id = v["id"]
            .as_str()
            .ok_or_else(|| AdapterError::Protocol("users/@me: no id".into()))?;
        let name = v["username"].as_str().unwrap_or_default();
        Ok((id.to_string(), name.to_string()))
    }

    /// The Gateway's WebSocket URL (`GET /gateway/bot`).
    pub async fn gateway_url(&self) -> Result<String, AdapterError> {
        let v = self
            .call(Method::GET, "/gateway/bot", Body::None, "gateway/bot")
            .await?;
        v["url"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| AdapterError::Protocol("gateway/bot: no url".into()))
    }

    /// The DM channel with a user (`POST /users/@me/channels`).
    pub async fn open_dm(&self, user_id: &str) -> Result<String, AdapterError> {
        let v = self
            .call(
                Method::POST,
                "/users/@me/channels",
                Body::Json(json!({"recipient_id": user_id})),
                "open a DM",
            )
            .await?;
        v["id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| AdapterError::Protocol("users/@me/channels: no id".into()))
    }

    /// Post a message; its id.
    pub async fn post(&self, channel: &str, body: Body) -> Result<String, AdapterError> {
        let v = self
            .call(
                Method::POST,
                &format!("/channels/{channel}/messages"),
                body,
                "send a message",
            )
            .await?;
        v["id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| AdapterError::Protocol("the sent message has no id".into()))
    }

    /// Show the bot typing in a channel for the next 10 seconds
    /// (`POST /channels/{id}/typing`).
    pub async fn typing(&self, channel: &str) -> Result<(), AdapterError> {
        self.call(
            Method::POST,
            &format!("/channels/{channel}/typing"),
            Body::None,
            "show typing",
        )
        .await
        .map(|_| ())
    }

    /// Replace the text of a message the bot sent.
    pub async fn edit(&self, channel: &str, id: &str, text: &str) -> Result<(), AdapterError> {
        self.call(
            Method::PATCH,
            &format!("/channels/{channel}/messages/{id}"),
            Body::Json(json!({"content": text})),
            "edit a message",
        )
        .await
        .map(|_| ())
    }

    /// Download an attachment (a CDN URL, no token), refusing more than `max` bytes.
    pub async fn download(&self, url: &str, max: u64) -> Result<Vec<u8>, AdapterError> {
        let mut resp = self
            .http
            .get(url)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| AdapterError::Link(format!("download: {e}")))?;
        if !resp.status().is_success() {
            return Err(AdapterError::Refused(format!(
                "download {url}: {}",
                resp.status()
            )));
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| AdapterError::Link(format!("download: {e}")))?
        {
            out.extend_from_slice(&chunk);
            if out.len() as u64 > max {
                return Err(AdapterError::Refused(format!(
                    "download {url}: more than {max} bytes"
                )));
            }
        }
        Ok(out)
    }
}

/// Check the token against the API (`GET /users/@me`), for `clawos doctor`; without a
/// token at hand (it is in the vault), that the API answers (`GET /gateway`).
pub async fn probe(
    settings: &DiscordSettings,
    token: Option<&str>,
    within: Duration,
) -> Result<(), AdapterError> {
    let api = Api::new(settings, token.unwrap_or_default().to_string())?;
    let call = async {
        match token {
            Some(_) => api.me().await.map(|_| ()),
            None => {
                let v = api
                    .call(Method::GET, "/gateway", Body::None, "gateway")
                    .await?;
                match v["url"].as_str() {
                    Some(_) => Ok(()),
                    None => Err(AdapterError::Protocol(
                        "it answers, but not as the Discord API (no gateway url)".into(),
                    )),
                }
            }
        }
    };
    tokio::time::timeout(within, call)
        .await
        .map_err(|_| AdapterError::Link(format!("no answer within {within:?}")))?
}
