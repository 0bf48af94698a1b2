//! The few Bot API calls the channel makes, over reqwest, with the API's error shape
//! (`{"ok":false,"error_code":…,"description":…,"parameters":{"retry_after":…}}`) mapped
//! to what the platform does next: 401 (and 404 on `getMe`, a malformed token) is a
//! person's to fix, 429 waits `retry_after` and tries again, a 5xx or a dropped connection
//! is a link down, a 409 names the other program polling the same bot.
//!
//! The token is part of every URL (`/bot<token>/<method>`): errors are reported without
//! their URL so it never reaches a log or `clawos status`.

use std::time::Duration;

use serde_json::Value;

use super::settings::TelegramSettings;
use crate::platform::AdapterError;

/// Longest wait of one `getUpdates` long poll.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(30);
/// Times a rate-limited request is retried before it is reported.
const RATE_LIMIT_RETRIES: u32 = 5;
/// Longest `retry_after` waited in place (longer: reported as a link down).
const LONGEST_WAIT: Duration = Duration::from_secs(120);

/// A client of the Bot API with one bot's token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// A request body.
pub enum Body {
    /// JSON parameters.
    Json(Value),
    /// `multipart/form-data`: text fields and one file (field, name, type, bytes).
    File {
        /// Text fields.
        fields: Vec<(String, String)>,
        /// The file's field (`document`, `photo`).
        field: String,
        /// File name.
        name: String,
        /// Media type.
        mime: String,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

fn link(what: &str, e: reqwest::Error) -> AdapterError {
    AdapterError::Link(format!("{what}: {}", e.without_url()))
}

/// What an error answer means for the platform.
fn error_of(method: &str, status: u16, v: &Value) -> AdapterError {
    let code = v["error_code"].as_u64().unwrap_or(u64::from(status));
    let description = v["description"].as_str().unwrap_or("(no description)");
    let why = format!("{method}: {code} {description}");
    match code {
        401 => AdapterError::AuthRefused(format!(
            "{why}: Telegram does not know this bot token; copy it again from @BotFather \
             (`clawos secrets set NAME`)"
        )),
        404 if method == "getMe" => AdapterError::AuthRefused(format!(
            "{why}: the bot token is malformed or revoked; copy it again from @BotFather"
        )),
        409 if description.contains("webhook") => AdapterError::Config(format!(
            "{why}: this bot has a webhook set, so it cannot be polled; remove it \
             (Bot API deleteWebhook) or use another bot"
        )),
        409 => AdapterError::Link(format!(
            "{why}: another program is reading this bot's updates with the same token"
        )),
        429 => AdapterError::Link(format!("{why}: still rate limited")),
        500..=599 => AdapterError::Link(why),
        _ if (500..=599).contains(&status) => AdapterError::Link(why),
        _ => AdapterError::Refused(why),
    }
}

/// Check the token with `getMe`, for `clawos doctor`: the bot's username.
pub async fn probe(
    settings: &TelegramSettings,
    token: Option<&str>,
    within: Duration,
) -> Result<String, AdapterError> {
    let token = token.ok_or_else(|| {
        AdapterError::Config("no bot token: set `secret_name` and the vault secret".into())
    })?;
    let http = crate::platform::http::client(settings.tls_ca_file.as_deref())?;
    let api = Api::new(http, settings, token.to_string());
    let me = api.call_within("getMe", None, within).await?;
    me["username"]
        .as_str()
        .map(|u| format!("@{u}"))
        .ok_or_else(|| AdapterError::Protocol("getMe: no username in the answer".into()))
}

impl Api {
    /// A client of the API at `settings.api_url` with `token`.
    pub fn new(http: reqwest::Client, settings: &TelegramSettings, token: String) -> Self {
        Api {
            http,
            base: settings.api_url(),
            token,
        }
    }

    /// Call `method` (30 s at most); the `result` of its answer.
    pub async fn call(&self, method: &str, body: Option<Body>) -> Result<Value, AdapterError> {
        self.call_within(method, body, Duration::from_secs(30))
            .await
    }

    /// Call `method`, waiting up to `within` for the answer; the `result`. Rate limits are
    /// waited out (`retry_after`) and retried.
    pub async fn call_within(
        &self,
        method: &str,
        body: Option<Body>,
        within: Duration,
    ) -> Result<Value, AdapterError> {
        let url = format!("{}/bot{}/{method}", self.base, self.token);
        for attempt in 0..=RATE_LIMIT_RETRIES {
            let mut req = self.http.post(&url).timeout(within);
            req = match &body {
                Some(Body::Json(v)) => req.json(v),
                Some(Body::File {
                    fields,
                    field,
                    name,
                    mime,
                    bytes,
                }) => {
                    let (ctype, data) = multipart(fields, field, name, mime, bytes);
                    req.header("content-type", ctype).body(data)
                }
                None => req,
            };
            let resp = req.send().await.map_err(|e| link(method, e))?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(|e| link(method, e))?;
            let v: Value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(_) if (500..=599).contains(&status) => {
                    return Err(AdapterError::Link(format!("{method}: HTTP {status}")))
                }
                Err(e) => {
                    return Err(AdapterError::Protocol(format!(
                        "{method}: the answer is not JSON (HTTP {status}): {e}"
                    )))
                }
            };
            if v["ok"] == Value::Bool(true) {
                return v.get("result").cloned().ok_or_else(|| {
                    AdapterError::Protocol(format!("{method}: an ok answer without a result"))
                });
            }
            if v["ok"] != Value::Bool(false) {
                return Err(AdapterError::Protocol(format!(
                    "{method}: the answer is not a Bot API answer (no `ok`)"
                )));
            }
            let retry_after = v["parameters"]["retry_after"].as_u64();
            if (status == 429 || v["error_code"] == 429) && attempt < RATE_LIMIT_RETRIES {
                let wait = Duration::from_secs(retry_after.unwrap_or(1).max(1));
                if wait <= LONGEST_WAIT {
                    tracing::warn!(%method, ?wait, "rate limited by Telegram; waiting");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Err(error_of(method, status, &v));
        }
        Err(AdapterError::Link(format!("{method}: still rate limited")))
    }

    /// Download a file by its `file_path` (from `getFile`), at most `cap` bytes.
    pub async fn download(&self, file_path: &str, cap: u64) -> Result<Vec<u8>, AdapterError> {
        let url = format!("{}/file/bot{}/{file_path}", self.base, self.token);
        let mut resp = self
            .http
            .get(url)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| link("download", e))?;
        if !resp.status().is_success() {
            return Err(AdapterError::Refused(format!(
                "download {file_path}: HTTP {}",
                resp.status()
            )));
        }
        crate::platform::http::read_capped(&mut resp, &format!("download {file_path}"), cap).await
    }
}

/// A `multipart/form-data` body: its content type and bytes.
fn multipart(
    fields: &[(String, String)],
    field: &str,
    name: &str,
    mime: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    let boundary = format!("clawos-{}", uuid::Uuid::now_v7().simple());
    let clean = |s: &str| s.replace(['"', '\r', '\n', '\\'], "_");
    let mut out = Vec::with_capacity(bytes.len() + 512);
    for (k, v) in fields {
        out.extend_from_slice(
            format!(
                "--{boundary}\r\ncontent-disposition: form-data; name=\"{}\"\r\n\r\n{v}\r\n",
                clean(k)
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"{}\"; filename=\"{}\"\r\n\
             content-type: {}\r\n\r\n",
            clean(field),
            clean(name),
            clean(mime)
        )
        .as_bytes(),
    );
    out.extend_from_slice(bytes);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_answers_map_to_what_the_platform_does() {
        let e = |m, s, v| error_of(m, s, &v);
        assert!(matches!(
            e(
                "getMe",
                401,
                json!({"ok":false,"error_code":401,"description":"Unauthorized"})
            ),
            AdapterError::AuthRefused(_)
        ));
        assert!(matches!(
            e(
                "getMe",
                404,
                json!({"ok":false,"error_code":404,"description":"Not Found"})
            ),
            AdapterError::AuthRefused(_)
        ));
        assert!(matches!(
            e("sendMessage", 502, json!({})),
            AdapterError::Link(_)
        ));
        assert!(matches!(
            e(
                "sendMessage",
                400,
                json!({"ok":false,"error_code":400,"description":"Bad Request: chat not found"})
            ),
            AdapterError::Refused(_)
        ));
        assert!(matches!(
            e(
                "getUpdates",
                409,
                json!({"ok":false,"error_code":409,"description":"Conflict: can't use getUpdates method while webhook is active"})
            ),
            AdapterError::Config(_)
        ));
        let (ctype, body) = multipart(
            &[("chat_id".into(), "1".into())],
            "document",
            "a.png",
            "image/png",
            b"xy",
        );
        assert!(ctype.starts_with("multipart/form-data; boundary="));
        assert!(String::from_utf8_lossy(&body).contains("filename=\"a.png\""));
    }
}
