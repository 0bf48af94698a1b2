//! Retries: each attempt bounded by [`ProviderConfig::timeout`], retryable failures
//! ([`ProviderError::retryable`]) tried again after an exponential backoff, or after the
//! server's `Retry-After` when it sent one.

use std::future::Future;
use std::time::Duration;

use super::config::ProviderConfig;
use super::error::ProviderError;

/// Longest `Retry-After` we are willing to wait for; a longer one ends the retries.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Cap on the exponential backoff between two attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The delay before retry number `attempt + 1`, or `None` when `err` says not to retry.
pub(crate) fn retry_delay(
    err: &ProviderError,
    backoff: Duration,
    attempt: u32,
) -> Option<Duration> {
    if let ProviderError::RateLimited {
        retry_after: Some(d),
    } = err
    {
        return (*d <= MAX_RETRY_AFTER).then_some(*d);
    }
    let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
    Some(backoff.saturating_mul(factor).min(MAX_BACKOFF))
}

/// Run `attempt` under `config`'s per-attempt timeout, retrying retryable failures up to
/// `config.retries` times. `provider` names the caller in the retry warnings.
pub(crate) async fn with_retries<T, F, Fut>(
    provider: &str,
    config: &ProviderConfig,
    mut attempt: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let mut done = 0u32;
    loop {
        let result = match tokio::time::timeout(config.timeout, attempt()).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::Timeout(config.timeout)),
        };
        let err = match result {
            Ok(response) => return Ok(response),
            Err(err) => err,
        };
        if !err.retryable() || done >= config.retries {
            return Err(err);
        }
        let Some(delay) = retry_delay(&err, config.backoff, done) else {
            return Err(err);
        };
        done += 1;
        tracing::warn!(
            provider,
            model = %config.model,
            error = %err,
            retry = done,
            of = config.retries,
            delay_ms = delay.as_millis() as u64,
            "provider call failed, retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_retry_after_is_bounded() {
        let b = Duration::from_millis(100);
        let e = ProviderError::Connect("x".into());
        assert_eq!(retry_delay(&e, b, 0), Some(Duration::from_millis(100)));
        assert_eq!(retry_delay(&e, b, 3), Some(Duration::from_millis(800)));
        assert_eq!(retry_delay(&e, b, 40), Some(MAX_BACKOFF));
        let ok = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(retry_delay(&ok, b, 0), Some(Duration::from_secs(2)));
        let too_long = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(retry_delay(&too_long, b, 0), None);
    }
}
