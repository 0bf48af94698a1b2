//! The Slack Web API calls the channel makes, over reqwest: JSON bodies with
//! `Authorization: Bearer`, answers `{"ok": true, …}` or HTTP 200 `{"ok": false, "error":
//! "…"}`, mapped to what the platform does next: a refused token or a missing scope is a
//! person's to fix (named, with what to do), HTTP 429 waits `Retry-After` seconds and tries
//! again, a 5xx or a dropped connection is a link down, anything else refuses the one
//! message.

use std::time::Duration;

use serde_json::Value;

use super::settings::SlackSettings;
use crate::platform::AdapterError;

/// Times a rate-limited request is retried before it is reported.
const RATE_LIMIT_RETRIES: u32 = 5;
/// Longest `Retry-After` waited in place (longer: reported as a link down).
const LONGEST_WAIT: Duration = Duration::from_secs(120);

/// A client of the Web API with one token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

fn link(what: &str, e: reqwest::Error) -> AdapterError {
    AdapterError::Link(format!("{what}: {}", e.without_url()))
}

/// What an `{"ok": false}` answer means for the platform.
pub fn error_of(method: &str, v: &Value) -> AdapterError {
    let error = v["error"].as_str().unwrap_or("(no error named)");
    let why = format!("Slack says {error} to {method}");
    match error {
        "invalid_auth"
        | "not_authed"
        | "account_inactive"
        | "token_revoked"
        | "token_expired"
        | "not_allowed_token_type" => {
            let which = if method == "apps.connections.open" {
                "the app-level token (xapp-…, scope connections:write)"
            } else {
                "the bot token (xoxb-…)"
            };
            AdapterError::AuthRefused(format!(
                "{why}: {which} was revoked or is wrong; copy it again from the app's page \
                 on api.slack.com and store the pair as `xapp-…:xoxb-…` (`clawos secrets set NAME`)"
            ))
        }
        "missing_scope" => AdapterError::AuthRefused(format!(
            "{why}: the app lacks the scope {} (it has {}); add it under OAuth & Permissions \
             and reinstall the app",
            v["needed"].as_str().unwrap_or("(not named)"),
            v["provided"].as_str().unwrap_or("(not named)")
        )),
        "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout"
        | "ratelimited" => AdapterError::Link(why),
        _ => AdapterError::Refused(why),
    }
}

/// Check the bot token with `auth.test`, for `clawos doctor`: the bot's name and team.
pub async fn probe(
    settings: &SlackSettings,
    secret: Option<&str>,
    within: Duration,
) -> Result<String, AdapterError> {
    let secret = secret.ok_or_else(|| {
        AdapterError::Config("no tokens: set `secret_name` and the vault secret".into())
    })?;
    let tokens = super::settings::tokens_of(secret).map_err(AdapterError::Config)?;
    let http = crate::platform::http::client(settings.tls_ca_file.as_deref())?;
    let api = Api::new(http, settings, tokens.bot);
    let me = api.call_within("auth.test", None, within).await?;
    Ok(format!(
        "@{} in {}",
        me["user"].as_str().unwrap_or("?"),
        me["team"].as_str().unwrap_or("?")
    ))
}

impl Api {
    /// A client of the API at `settings.api_url` with `token`.
    pub fn new(http: reqwest::Client, settings: &SlackSettings, token: String) -> Self {
        Api {
            http,
            base: settings.api_url(),
            token,
        }
    }

    /// Call `method` (30 s at most) with JSON arguments; its answer.
    pub async fn call(&self, method: &str, body: Option<Value>) -> Result<Value, AdapterError> {
        self.call_within(method, body, Duration::from_secs(30))
            .await
    }

    /// Call `method`, waiting up to `within` for the answer. Rate limits are waited out
    /// (`Retry-After`) and retried.
    pub async fn call_within(
        &self,
        method: &str,
        body: Option<Value>,
        within: Duration,
    ) -> Result<Value, AdapterError> {
        let url = format!("{}/{method}", self.base);
        for attempt in 0..=RATE_LIMIT_RETRIES {
            let mut req = self
                .http
                .post(&url)
                .timeout(within)
                .bearer_auth(&self.token);
            req = match &body {
                Some(v) => req
                    .header("content-type", "application/json; charset=utf-8")
                    .body(v.to_string()),
                None => req,
            };
            let resp = req.send().await.map_err(|e| link(method, e))?;
            let status = resp.status().as_u16();
            if status == 429 {
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|h| h.to_str().ok())
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .unwrap_or(1)
                    .max(1);
                let wait = Duration::from_secs(wait);
                if attempt < RATE_LIMIT_RETRIES && wait <= LONGEST_WAIT {
                    tracing::warn!(%method, ?wait, "rate limited by Slack; waiting");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(AdapterError::Link(format!("{method}: still rate limited")));
            }
            let bytes = resp.bytes().await.map_err(|e| link(method, e))?;
            if (500..=599).contains(&status) {
                return Err(AdapterError::Link(format!("{method}: HTTP {status}")));
            }
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                AdapterError::Protocol(format!(
                    "{method}: the answer is not JSON (HTTP {status}): {e}"
                ))
            })?;
            return match v["ok"] {
                Value::Bool(true) => Ok(v),
                Value::Bool(false) => Err(error_of(method, &v)),
                _ => Err(AdapterError::Protocol(format!(
                    "{method}: the answer is not a Web API answer (no `ok`, HTTP {status})"
                ))),
            };
        }
        Err(AdapterError::Link(format!("{method}: still rate limited")))
    }

    /// POST `bytes` to an upload URL from `files.getUploadURLExternal`.
    pub async fn upload(&self, url: &str, name: &str, bytes: Vec<u8>) -> Result<(), AdapterError> {
        let resp = self
            .http
            .post(url)
            .timeout(Duration::from_secs(120))
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .map_err(|e| link("upload", e))?;
        if !resp.status().is_success() {
            return Err(AdapterError::Refused(format!(
                "upload of {name}: HTTP {}",
                resp.status()
            )));
        }
        Ok(())
    }

    /// Download a file's `url_private` with the bot token, at most `cap` bytes.
    pub async fn download(&self, url: &str, cap: u64) -> Result<Vec<u8>, AdapterError> {
        let mut resp = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| link("download", e))?;
        if !resp.status().is_success() {
            return Err(AdapterError::Refused(format!(
                "download: HTTP {}",
                resp.status()
            )));
        }
        let html = resp
            .headers()
            .get("content-type")
            .and_then(|h| h.to_str().ok())
            .is_some_and(|c| c.starts_with("text/html"));
        if html {
            return Err(AdapterError::Refused(
                "download: Slack answered with a login page; the app needs the files:read scope"
                    .into(),
            ));
        }
        crate::platform::http::read_capped(&mut resp, "download", cap).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_answers_map_to_what_the_platform_does() {
        let e = |m, v| error_of(m, &v);
        let auth = e("auth.test", json!({"ok": false, "error": "invalid_auth"}));
        assert!(
            matches!(&auth, AdapterError::AuthRefused(w) if w.contains("Slack says invalid_auth")),
            "{auth:?}"
        );
        let scope = e(
            "chat.postMessage",
            json!({"ok": false, "error": "missing_scope", "needed": "chat:write"}),
        );
        assert!(matches!(&scope, AdapterError::AuthRefused(w) if w.contains("chat:write")));
        assert!(matches!(
            e(
                "chat.postMessage",
                json!({"ok": false, "error": "channel_not_found"})
            ),
            AdapterError::Refused(_)
        ));
        assert!(matches!(
            e(
                "chat.postMessage",
                json!({"ok": false, "error": "internal_error"})
            ),
            AdapterError::Link(_)
        ));
    }
}
