//! Pacing: outbound messages within a service's documented rate, and reconnects spaced
//! by exponential backoff with jitter.

use std::num::NonZeroU32;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::RateLimit;

/// First reconnect delay.
pub const RECONNECT_FIRST: Duration = Duration::from_millis(250);
/// Longest reconnect delay while the service is unreachable.
pub const RECONNECT_CAP: Duration = Duration::from_secs(60);
/// Delay after a refusal only a person can fix (bad password, bad settings).
pub const NEEDS_A_PERSON_DELAY: Duration = Duration::from_secs(300);

/// A token bucket for one channel's outbound messages.
pub struct Pacer {
    limiter: DefaultDirectRateLimiter,
}

impl Pacer {
    /// A bucket holding `limit.burst` messages, refilled one per `limit.every`.
    pub fn new(limit: RateLimit) -> Self {
        let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(limit.every.max(Duration::from_micros(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Pacer {
            limiter: RateLimiter::direct(quota),
        }
    }

    /// Take a token if one is there now.
    pub fn try_now(&self) -> bool {
        self.limiter.check().is_ok()
    }

    /// Wait until one more message may go.
    pub async fn ready(&self) {
        self.limiter.until_ready().await;
    }
}

/// Reconnect delays: from [`RECONNECT_FIRST`] doubling to [`RECONNECT_CAP`], each with
/// random jitter so many channels do not reconnect in step. Start a new series after a
/// link that came up.
pub fn reconnect_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(RECONNECT_FIRST)
        .with_max_delay(RECONNECT_CAP)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter() {
        let delays: Vec<Duration> = reconnect_delays().take(12).collect();
        assert!(delays[0] >= RECONNECT_FIRST && delays[0] < RECONNECT_FIRST * 3);
        assert!(delays.iter().all(|d| *d <= RECONNECT_CAP * 2));
        assert!(delays[11] >= RECONNECT_CAP);
        // Jitter: two series differ somewhere.
        let again: Vec<Duration> = reconnect_delays().take(12).collect();
        assert_ne!(delays, again);
    }

    #[test]
    fn the_bucket_lets_a_burst_through_then_refuses_until_a_refill() {
        let pacer = Pacer::new(RateLimit {
            burst: 3,
            every: Duration::from_secs(3600),
        });
        assert!((0..3).all(|_| pacer.try_now()));
        assert!(
            !pacer.try_now(),
            "a fourth message within the hour must wait"
        );
    }
}
