//! A person on a Matrix homeserver for `clawos bench channels --matrix`: logs in, opens a
//! direct chat with the bot, and times round trips with `/sync` long polls.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::common::{BOT, PASSWORD, PERSON};

/// A logged-in person with a direct chat to the bot.
pub struct MatrixPerson {
    http: reqwest::Client,
    base: String,
    token: String,
    room: String,
    since: String,
    bot: String,
}

impl MatrixPerson {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(60));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.with_context(|| path.to_string())?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status} {v}");
        }
        Ok(v)
    }

    /// Log in as [`PERSON`] and open a direct chat with `@BOT:server`.
    pub async fn connect(base: &str, server: &str) -> Result<Self> {
        let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
        let login: Value = http
            .post(format!("{base}/_matrix/client/v3/login"))
            .json(&json!({"type": "m.login.password",
                          "identifier": {"type": "m.id.user", "user": PERSON},
                          "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let token = login["access_token"]
            .as_str()
            .with_context(|| format!("cannot log in as {PERSON}: {login}"))?
            .to_string();
        let mut p = MatrixPerson {
            http,
            base: base.to_string(),
            token,
            room: String::new(),
            since: String::new(),
            bot: format!("@{BOT}:{server}"),
        };
        let v = p
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(
                    json!({"is_direct": true, "preset": "trusted_private_chat", "invite": [p.bot]}),
                ),
            )
            .await?;
        p.room = v["room_id"].as_str().context("no room id")?.to_string();
        let v = p
            .call(
                reqwest::Method::GET,
                "/_matrix/client/v3/sync?timeout=0&filter={\"room\":{\"timeline\":{\"limit\":0}}}",
                None,
            )
            .await?;
        p.since = v["next_batch"].as_str().unwrap_or_default().to_string();
        Ok(p)
    }

    /// Say `text` to the bot and wait (up to 10 s) for its answer.
    pub async fn round_trip(&mut self, text: &str) -> Result<Option<Duration>> {
        let t = Instant::now();
        let room = self.room.replace('!', "%21").replace(':', "%3A");
        let txn = uuid::Uuid::now_v7().simple().to_string();
        self.call(
            reqwest::Method::PUT,
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"),
            Some(json!({"msgtype": "m.text", "body": text})),
        )
        .await?;
        let want = format!("echo: {text} ");
        while t.elapsed() < Duration::from_secs(10) {
            let v = self
                .call(
                    reqwest::Method::GET,
                    &format!("/_matrix/client/v3/sync?timeout=5000&since={}", self.since),
                    None,
                )
                .await?;
            self.since = v["next_batch"].as_str().unwrap_or_default().to_string();
            let heard = v["rooms"]["join"][&self.room]["timeline"]["events"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| {
                    e["sender"] == self.bot.as_str()
                        && e["content"]["body"]
                            .as_str()
                            .is_some_and(|b| b.starts_with(&want))
                });
            if heard {
                return Ok(Some(t.elapsed()));
            }
        }
        Ok(None)
    }
}
