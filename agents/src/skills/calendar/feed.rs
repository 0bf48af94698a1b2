//! Read-only ICS feeds: an `http(s)://` URL, a `file://` URL or a path.

use std::time::Duration;

use super::error::CalendarError;

/// Largest feed read.
pub const MAX_FEED: usize = 20 * 1024 * 1024;

/// The text of the feed at `url` (account `account`, for errors).
pub async fn fetch(account: &str, url: &str) -> Result<String, CalendarError> {
    let unreachable = |reason: String| CalendarError::Unreachable {
        account: account.to_string(),
        url: url.to_string(),
        reason,
    };
    if url.starts_with("http://") || url.starts_with("https://") || url.starts_with("webcal://") {
        let url = url.replacen("webcal://", "https://", 1);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(10))
            .user_agent("clawos-calendar")
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        let resp = client.get(&url).send().await.map_err(|e| {
            unreachable(if e.is_timeout() {
                "no answer within 10 s".into()
            } else {
                e.to_string()
            })
        })?;
        let status = resp.status();
        if status.as_u16() == 401 {
            return Err(CalendarError::Unauthorized {
                account: account.to_string(),
                url: url.clone(),
            });
        }
        if !status.is_success() {
            return Err(CalendarError::Status {
                account: account.to_string(),
                method: "GET".into(),
                url: url.clone(),
                status: status.as_u16(),
                detail: String::new(),
            });
        }
        let bytes = resp.bytes().await.map_err(|e| unreachable(e.to_string()))?;
        if bytes.len() > MAX_FEED {
            return Err(unreachable(format!(
                "the feed is larger than {MAX_FEED} bytes"
            )));
        }
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
