//! The few Matrix client-server API calls the channel makes, over reqwest, with the
//! API's error shapes mapped to what the platform does next: `M_FORBIDDEN` at login and
//! `M_UNKNOWN_TOKEN` are a person's to fix, `M_LIMIT_EXCEEDED` waits `retry_after_ms` and
//! tries again, a 5xx or a dropped connection is a link down.
//!
//! Bodies are read as JSON values and picked apart where used, rather than typed with a
//! full Matrix SDK: room ids changed shape in room version 12 (`!opaque` without a server
//! part), and a client that keeps ids as strings reads every room version alike.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};

use crate::platform::AdapterError;

/// Longest wait of one `/sync` long poll.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Times a rate-limited request is retried before it is reported.
const RATE_LIMIT_RETRIES: u32 = 5;

/// A logged-in client of one homeserver.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Url,
    token: String,
}

/// An error answer of the API: HTTP status, `errcode`, `error`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    errcode: String,
    error: String,
    retry_after: Option<Duration>,
}

impl ApiError {
    fn into_adapter(self, what: &str) -> AdapterError {
        let why = format!(
            "{what}: {} {} {}",
            self.status.as_u16(),
            self.errcode,
            self.error
        );
        match (self.status.as_u16(), self.errcode.as_str()) {
            (_, "M_UNKNOWN_TOKEN" | "M_MISSING_TOKEN" | "M_USER_DEACTIVATED") => {
                AdapterError::AuthRefused(why)
            }
            (401 | 403, _) if what == "login" => AdapterError::AuthRefused(why),
            (500..=599, _) => AdapterError::Link(why),
            (429, _) => AdapterError::Link(why),
            _ => AdapterError::Refused(why),
        }
    }
}

fn link(what: &str, e: reqwest::Error) -> AdapterError {
    AdapterError::Link(format!("{what}: {e}"))
}

fn endpoint(base: &Url, segments: &[&str]) -> Result<Url, AdapterError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| AdapterError::Config(format!("homeserver `{base}` cannot be a base URL")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Send a request, retrying rate limits; the JSON answer or the API's error.
async fn call(
    http: &reqwest::Client,
    method: Method,
    url: Url,
    token: Option<&str>,
    body: Option<Body>,
    timeout: Duration,
    what: &str,
) -> Result<Value, AdapterError> {
    for attempt in 0..=RATE_LIMIT_RETRIES {
        let mut req = http.request(method.clone(), url.clone()).timeout(timeout);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req = match &body {
            Some(Body::Json(v)) => req.json(v),
            Some(Body::Bytes(mime, bytes)) => req
                .header("content-type", mime.as_str())
                .body(bytes.clone()),
            None => req,
        };
        let resp = req.send().await.map_err(|e| link(what, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| link(what, e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                AdapterError::Protocol(format!("{what}: the answer is not JSON: {e}"))
            });
        }
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let err = ApiError {
            status,
            errcode: v["errcode"].as_str().unwrap_or("").to_string(),
            error: v["error"].as_str().unwrap_or("").to_string(),
            retry_after: v["retry_after_ms"].as_u64().map(Duration::from_millis),
        };
        if status == StatusCode::TOO_MANY_REQUESTS && attempt < RATE_LIMIT_RETRIES {
            let wait = err.retry_after.unwrap_or(Duration::from_secs(1));
            tracing::warn!(%what, ?wait, "rate limited by the homeserver");
            tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
            continue;
        }
        return Err(err.into_adapter(what));
    }
    Err(AdapterError::Link(format!("{what}: still rate limited")))
}

enum Body {
    Json(Value),
    Bytes(String, Vec<u8>),
}

/// Check the homeserver answers its client API (`GET /_matrix/client/versions`), for
/// `clawos doctor`.
pub async fn probe(
    settings: &super::settings::MatrixSettings,
    within: Duration,
) -> Result<(), AdapterError> {
    let http = crate::platform::http::client(settings.tls_ca_file.as_deref())?;
    let base = Url::parse(&settings.homeserver)
        .map_err(|e| AdapterError::Config(format!("homeserver `{}`: {e}", settings.homeserver)))?;
    let url = endpoint(&base, &["_matrix", "client", "versions"])?;
    let v = call(&http, Method::GET, url, None, None, within, "versions").await?;
    if v["versions"].as_array().is_none_or(|a| a.is_empty()) {
        return Err(AdapterError::Protocol(
            "it answers, but not as a Matrix homeserver (no versions)".into(),
        ));
    }
    Ok(())
}

/// Log in with a password: the access token and the device id (reused when given, so a
/// restarted channel stays one device).
pub async fn login(
    http: &reqwest::Client,
    homeserver: &str,
    user_id: &str,
    password: &str,
    device_id: Option<&str>,
    device_name: &str,
) -> Result<(String, String), AdapterError> {
    let base = Url::parse(homeserver)
        .map_err(|e| AdapterError::Config(format!("homeserver `{homeserver}`: {e}")))?;
    let mut body = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
        "initial_device_display_name": device_name,
    });
    if let Some(d) = device_id {
        body["device_id"] = json!(d);
    }
    let url = endpoint(&base, &["_matrix", "client", "v3", "login"])?;
    let v = call(
        http,
        Method::POST,
        url,
        None,
        Some(Body::Json(body)),
        Duration::from_secs(30),
        "login",
    )
    .await?;
    let token = v["access_token"]
        .as_str()
        .ok_or_else(|| AdapterError::Protocol("login: no access_token".into()))?;
    let device = v["device_id"].as_str().unwrap_or_default();
    Ok((token.to_string(), device.to_string()))
}

impl Api {
    /// A client of `homeserver` with an access token.
    pub fn new(
        http: reqwest::Client,
        homeserver: &str,
        token: String,
    ) -> Result<Self, AdapterError> {
        let base = Url::parse(homeserver)
            .map_err(|e| AdapterError::Config(format!("homeserver `{homeserver}`: {e}")))?;
        Ok(Api { http, base, token })
    }

    async fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Body>,
        timeout: Duration,
        what: &str,
    ) -> Result<Value, AdapterError> {
        let mut url = endpoint(&self.base, segments)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        call(
            &self.http,
            method,
            url,
            Some(&self.token),
            body,
            timeout,
            what,
        )
        .await
    }

    /// The user id the token belongs to (checks the token).
    pub async fn whoami(&self) -> Result<String, AdapterError> {
        let v = self
            .request(
                Method::GET,
                &["_matrix", "client", "v3", "account", "whoami"],
                &[],
                None,
                Duration::from_secs(30),
                "whoami",
            )
            .await?;
        Ok(v["user_id"].as_str().unwrap_or_default().to_string())
    }

    /// One `/sync`: from `since` (or the start), waiting up to `timeout` for news.
    pub async fn sync(
        &self,
        since: Option<&str>,
        timeout: Duration,
        timeline_limit: u32,
    ) -> Result<Value, AdapterError> {
        let filter = json!({"room": {"timeline": {"limit": timeline_limit}},
                            "presence": {"not_types": ["*"]}})
        .to_string();
        let ms = timeout.as_millis().to_string();
        let mut query = vec![("timeout", ms.as_str()), ("filter", filter.as_str())];
        if let Some(s) = since {
            query.push(("since", s));
        }
        self.request(
            Method::GET,
            &["_matrix", "client", "v3", "sync"],
            &query,
            None,
            timeout + Duration::from_secs(30),
            "sync",
        )
        .await
    }

    /// Join a room by id or alias; its id.
    pub async fn join(&self, room: &str) -> Result<String, AdapterError> {
        let v = self
            .request(
                Method::POST,
                &["_matrix", "client", "v3", "join", room],
                &[],
                Some(Body::Json(json!({}))),
                Duration::from_secs(30),
                "join",
            )
            .await?;
        Ok(v["room_id"].as_str().unwrap_or(room).to_string())
    }

    /// Leave (or reject the invite to) a room.
    pub async fn leave(&self, room: &str) -> Result<(), AdapterError> {
        self.request(
            Method::POST,
            &["_matrix", "client", "v3", "rooms", room, "leave"],
            &[],
            Some(Body::Json(json!({}))),
            Duration::from_secs(30),
            "leave",
        )
        .await
        .map(|_| ())
    }

    /// How many users are joined to a room.
    pub async fn joined_members(&self, room: &str) -> Result<usize, AdapterError> {
        let v = self
            .request(
                Method::GET,
                &["_matrix", "client", "v3", "rooms", room, "joined_members"],
                &[],
                None,
                Duration::from_secs(30),
                "joined_members",
            )
            .await?;
        Ok(v["joined"].as_object().map(|m| m.len()).unwrap_or(0))
    }

    /// Send an event to a room; its event id. `txn` makes a retry idempotent.
    pub async fn send(
        &self,
        room: &str,
        event_type: &str,
        txn: &str,
        content: Value,
    ) -> Result<String, AdapterError> {
        let v = self
            .request(
                Method::PUT,
                &[
                    "_matrix", "client", "v3", "rooms", room, "send", event_type, txn,
                ],
                &[],
                Some(Body::Json(content)),
                Duration::from_secs(30),
                "send",
            )
            .await?;
        Ok(v["event_id"].as_str().unwrap_or_default().to_string())
    }

    /// Show `user` (the bot) typing in `room` for `timeout`.
    pub async fn typing(
        &self,
        room: &str,
        user: &str,
        timeout: Duration,
    ) -> Result<(), AdapterError> {
        let body = serde_json::json!({"typing": true, "timeout": timeout.as_millis() as u64});
        self.request(
            Method::PUT,
            &["_matrix", "client", "v3", "rooms", room, "typing", user],
            &[],
            Some(Body::Json(body)),
            Duration::from_secs(30),
            "typing",
        )
        .await
        .map(|_| ())
    }

    /// Create a direct chat with `user`; the room id.
    pub async fn create_direct(&self, user: &str) -> Result<String, AdapterError> {
        let body = json!({"is_direct": true, "invite": [user], "preset": "trusted_private_chat"});
        let v = self
            .request(
                Method::POST,
                &["_matrix", "client", "v3", "createRoom"],
                &[],
                Some(Body::Json(body)),
                Duration::from_secs(30),
                "createRoom",
            )
            .await?;
        v["room_id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| AdapterError::Protocol("createRoom: no room_id".into()))
    }

    /// Upload a file; its `mxc://` URI.
    pub async fn upload(
        &self,
        name: &str,
        mime: &str,
        bytes: Vec<u8>,
    ) -> Result<String, AdapterError> {
        let v = self
            .request(
                Method::POST,
                &["_matrix", "media", "v3", "upload"],
                &[("filename", name)],
                Some(Body::Bytes(mime.to_string(), bytes)),
                Duration::from_secs(120),
                "upload",
            )
            .await?;
        v["content_uri"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| AdapterError::Protocol("upload: no content_uri".into()))
    }

    /// Download an `mxc://server/id` file (authenticated media), at most `cap` bytes.
    pub async fn download(&self, mxc: &str, cap: u64) -> Result<Vec<u8>, AdapterError> {
        let (server, id) = mxc
            .strip_prefix("mxc://")
            .and_then(|r| r.split_once('/'))
            .ok_or_else(|| AdapterError::Protocol(format!("`{mxc}` is not an mxc:// URI")))?;
        let url = endpoint(
            &self.base,
            &["_matrix", "client", "v1", "media", "download", server, id],
        )?;
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
                "download {mxc}: HTTP {}",
                resp.status()
            )));
        }
        crate::platform::http::read_capped(&mut resp, &format!("download {mxc}"), cap).await
    }
}
