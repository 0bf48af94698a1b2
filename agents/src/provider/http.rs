//! HTTP plumbing every HTTP provider shares: the client, URLs, and turning transport
//! failures and error statuses into [`ProviderError`]s.

use std::time::Duration;

use super::config::ProviderConfig;
use super::error::ProviderError;

/// An HTTP client for `config` (no proxy for loopback servers), or why there is none.
pub(crate) fn http_client(config: &ProviderConfig) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().connect_timeout(config.timeout);
    if is_loopback(&config.base_url) {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| error_chain(&e))
}

/// Whether `url` points at this machine.
fn is_loopback(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `base` without trailing slashes, followed by `path`.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Map a reqwest failure to a [`ProviderError`].
pub(crate) fn map_reqwest(e: reqwest::Error, timeout: Duration) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout(timeout)
    } else if e.is_decode() {
        ProviderError::Malformed(error_chain(&e))
    } else {
        ProviderError::Connect(error_chain(&e))
    }
}

/// Send `request`; a transport failure or an error status (its body read) is the error.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<reqwest::Response, ProviderError> {
    let resp = request.send().await.map_err(|e| map_reqwest(e, timeout))?;
    if !resp.status().is_success() {
        return Err(status_error(resp, timeout).await);
    }
    Ok(resp)
}

/// Turn a non-success response into an error (reads the body).
async fn status_error(resp: reqwest::Response, timeout: Duration) -> ProviderError {
    let status = resp.status().as_u16();
    if status == 429 {
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        return ProviderError::RateLimited { retry_after };
    }
    match resp.text().await {
        Ok(body) => ProviderError::http(status, &body),
        Err(e) => map_reqwest(e, timeout),
    }
}

/// `Retry-After` in (possibly fractional) seconds; HTTP dates are not honoured.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    if secs.is_finite() && secs >= 0.0 {
        Duration::try_from_secs_f64(secs).ok()
    } else {
        None
    }
}

/// Whether a response is a plain JSON body rather than an event stream.
pub(crate) fn is_json_body(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds() {
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://127.0.0.1:11434/v1"));
        assert!(is_loopback("http://localhost/v1"));
        assert!(is_loopback("http://[::1]:8080"));
        assert!(!is_loopback("https://api.openai.com/v1"));
    }
}
