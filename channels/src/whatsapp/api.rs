//! The Graph API calls of the WhatsApp Cloud API the channel makes, over reqwest, with
//! the Graph error shape (`{"error":{"message","type","code","error_subcode",
//! "fbtrace_id"}}`) mapped to what the platform does next: 190 (the token expired or was
//! revoked) is a person's to fix, 131047 (the 24-hour window closed) refuses the one
//! message, rate limits (4, 80007, 130429, 131056, HTTP 429) are waited out and retried, a
//! 5xx or a dropped connection is a link down.

use std::time::Duration;

use serde_json::Value;

use super::settings::WhatsappSettings;
use crate::platform::AdapterError;

/// Times a rate-limited request is retried before it is reported.
const RATE_LIMIT_RETRIES: u32 = 4;
/// The first wait after a rate limit (doubled each time).
const FIRST_WAIT: Duration = Duration::from_secs(2);

/// A client of the Graph API with one access token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// A request body.
pub enum Body {
    /// JSON.
    Json(Value),
    /// `multipart/form-data`: text fields and one file (name, type, bytes).
    File {
        /// Text fields.
        fields: Vec<(String, String)>,
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

/// Whether a Graph error code is a rate limit.
fn rate_limited(status: u16, code: i64) -> bool {
    status == 429 || matches!(code, 4 | 17 | 32 | 613 | 80007 | 130429 | 131056)
}

/// What an error answer means for the platform.
pub fn error_of(what: &str, status: u16, v: &Value) -> AdapterError {
    let e = &v["error"];
    let code = e["code"].as_i64().unwrap_or(i64::from(status));
    let message = e["message"].as_str().unwrap_or("(no message)");
    let why = format!("{what}: Graph error {code}: {message}");
    match code {
        190 => AdapterError::AuthRefused(format!(
            "{why}: the access token is expired or revoked; make a permanent token (a System \
             User's, in Meta Business Settings) and store `ACCESS_TOKEN:APP_SECRET` again \
             (`clawos secrets set NAME`)"
        )),
        10 | 200..=299 => AdapterError::AuthRefused(format!(
            "{why}: the token lacks the whatsapp_business_messaging permission; grant it to \
             the System User and make the token again"
        )),
        131047 => AdapterError::Refused(format!(
            "{why}: more than 24 hours passed since this person last wrote; WhatsApp lets a \
             business answer freely only within 24 hours, so the person must write first"
        )),
        100 if what.starts_with("GET /") && !what.contains("media") => AdapterError::Config(
            format!("{why}: check phone_number_id (WhatsApp Manager, API Setup)"),
        ),
        _ if rate_limited(status, code) => AdapterError::Link(format!("{why}: still rate limited")),
        _ if (500..=599).contains(&status) => AdapterError::Link(why),
        _ => AdapterError::Refused(why),
    }
}

/// Check the token and number with `GET /{phone_number_id}`, for `clawos doctor`: the
/// number as WhatsApp shows it, with its verified name.
pub async fn probe(
    settings: &WhatsappSettings,
    token: &str,
    within: Duration,
) -> Result<String, AdapterError> {
    let http = crate::platform::http::client(settings.tls_ca_file.as_deref())?;
    let api = Api::new(http, settings, token.to_string());
    let v = api
        .call_within(&format!("/{}", settings.phone_number_id), None, within)
        .await?;
    let number = v["display_phone_number"].as_str().unwrap_or("?");
    let name = v["verified_name"].as_str().unwrap_or("?");
    Ok(format!("{number} ({name})"))
}

impl Api {
    /// A client of the API at `settings.api_url` with `token`.
    pub fn new(http: reqwest::Client, settings: &WhatsappSettings, token: String) -> Self {
        Api {
            http,
            base: settings.api_url(),
            token,
        }
    }

    /// Call `path` (a GET without a body, else a POST), 30 s at most.
    pub async fn call(&self, path: &str, body: Option<Body>) -> Result<Value, AdapterError> {
        self.call_within(path, body, Duration::from_secs(30)).await
    }

    /// Call `path`, waiting up to `within`; the JSON answer. Rate limits are waited out
    /// and retried.
    pub async fn call_within(
        &self,
        path: &str,
        body: Option<Body>,
        within: Duration,
    ) -> Result<Value, AdapterError> {
        let url = format!("{}{path}", self.base);
        let what = format!("{} {path}", if body.is_some() { "POST" } else { "GET" });
        let mut wait = FIRST_WAIT;
        for attempt in 0..=RATE_LIMIT_RETRIES {
            let req = match &body {
                None => self.http.get(&url),
                Some(Body::Json(v)) => self.http.post(&url).json(v),
                Some(Body::File {
                    fields,
                    name,
                    mime,
                    bytes,
                }) => {
                    let (ctype, data) = multipart(fields, name, mime, bytes);
                    self.http
                        .post(&url)
                        .header("content-type", ctype)
                        .body(data)
                }
            };
            let resp = req
                .bearer_auth(&self.token)
                .timeout(within)
                .send()
                .await
                .map_err(|e| link(&what, e))?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(|e| link(&what, e))?;
            let v: Value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(_) if (500..=599).contains(&status) => {
                    return Err(AdapterError::Link(format!("{what}: HTTP {status}")))
                }
                Err(e) => {
                    return Err(AdapterError::Protocol(format!(
                        "{what}: the answer is not JSON (HTTP {status}): {e}"
                    )))
                }
            };
            if (200..300).contains(&status) && v.get("error").is_none() {
                return Ok(v);
            }
            let code = v["error"]["code"].as_i64().unwrap_or(0);
            if rate_limited(status, code) && attempt < RATE_LIMIT_RETRIES {
                tracing::warn!(%what, code, ?wait, "rate limited by the Graph API; waiting");
                tokio::time::sleep(wait).await;
                wait *= 2;
                continue;
            }
            return Err(error_of(&what, status, &v));
        }
        Err(AdapterError::Link(format!("{what}: still rate limited")))
    }

    /// Download a media file from the `url` its `GET /{media_id}` gave (with the token),
    /// at most `cap` bytes.
    pub async fn download(&self, url: &str, cap: u64) -> Result<Vec<u8>, AdapterError> {
        let mut resp = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| link("media download", e))?;
        if !resp.status().is_success() {
            return Err(AdapterError::Refused(format!(
                "media download: HTTP {}",
                resp.status()
            )));
        }
        crate::platform::http::read_capped(&mut resp, "media download", cap).await
    }
}

/// A `multipart/form-data` body with the file in the field `file`: its content type and
/// bytes.
fn multipart(
    fields: &[(String, String)],
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
                "--{boundary}\r\ncontent-disposition: form-data; name=\"{}\"\r\n\r\n{}\r\n",
                clean(k),
                clean(v)
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
             content-type: {}\r\n\r\n",
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
    fn graph_errors_map_to_what_the_platform_does() {
        let err = |code: i64| {
            json!({"error": {"message": "m", "type": "OAuthException",
                                            "code": code, "fbtrace_id": "x"}})
        };
        assert!(matches!(
            error_of("GET /1", 401, &err(190)),
            AdapterError::AuthRefused(w) if w.contains("permanent token")
        ));
        assert!(matches!(
            error_of("POST /1/messages", 400, &err(131047)),
            AdapterError::Refused(w) if w.contains("must write first")
        ));
        assert!(matches!(
            error_of("POST /1/messages", 400, &err(130429)),
            AdapterError::Link(_)
        ));
        assert!(matches!(
            error_of("POST /1/messages", 502, &json!({})),
            AdapterError::Link(_)
        ));
        assert!(matches!(
            error_of("POST /1/messages", 400, &err(131026)),
            AdapterError::Refused(_)
        ));
        let (ctype, body) = multipart(
            &[("type".into(), "image/png".into())],
            "a.png",
            "image/png",
            b"xy",
        );
        assert!(ctype.starts_with("multipart/form-data; boundary="));
        assert!(String::from_utf8_lossy(&body).contains("name=\"file\"; filename=\"a.png\""));
    }
}
