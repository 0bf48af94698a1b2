//! Cron schedules: `every DURATION` (`every 30s`, `every 5m`, `every 1h 30m`, `every 1d`)
//! and `at TIME` (RFC 3339, e.g. `at 2026-11-27T08:00:00Z`, once). Pure functions: the
//! scheduler (`cron.rs`) passes the time in.

use std::time::Duration;

/// A parsed schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every so often, from the time it was scheduled.
    Every(Duration),
    /// Once, at this time (unix ms).
    At(i64),
}

/// Parse `every DURATION` or `at RFC3339`.
pub fn parse(text: &str) -> Result<Schedule, String> {
    let text = text.trim();
    if let Some(d) = text.strip_prefix("every ") {
        let d = humantime::parse_duration(d.trim())
            .map_err(|e| format!("`{text}`: {e} (e.g. `every 30m`)"))?;
        if d < Duration::from_secs(1) {
            return Err(format!("`{text}`: the shortest period is 1s"));
        }
        return Ok(Schedule::Every(d));
    }
    if let Some(t) = text.strip_prefix("at ") {
        let t = humantime::parse_rfc3339_weak(t.trim())
            .map_err(|e| format!("`{text}`: {e} (e.g. `at 2026-11-27T08:00:00Z`)"))?;
        let ms = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| format!("`{text}`: before 1970"))?
            .as_millis() as i64;
        return Ok(Schedule::At(ms));
    }
    Err(format!("`{text}`: use `every DURATION` or `at TIME`"))
}

/// The due time to fire at `now`, if any: for a periodic job the latest period end that
/// has passed (so a long outage fires once, not once per missed period).
pub fn due(schedule: Schedule, scheduled_ms: i64, last_due: Option<i64>, now: i64) -> Option<i64> {
    match schedule {
        Schedule::At(t) => (last_due.is_none() && now >= t).then_some(t),
        Schedule::Every(d) => {
            let period = d.as_millis().max(1) as i64;
            let base = last_due.unwrap_or(scheduled_ms);
            if now < base + period {
                return None;
            }
            Some(base + (now - base) / period * period)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse() {
        assert_eq!(
            parse("every 30m"),
            Ok(Schedule::Every(Duration::from_secs(1800)))
        );
        assert_eq!(
            parse("every 1h 30m"),
            Ok(Schedule::Every(Duration::from_secs(5400)))
        );
        assert_eq!(parse("at 1970-01-01T00:00:10Z"), Ok(Schedule::At(10_000)));
        assert!(parse("every 10ms").is_err());
        assert!(parse("sometimes").is_err());
    }

    #[test]
    fn periodic_jobs_fire_once_for_a_long_outage() {
        let every = Schedule::Every(Duration::from_secs(10));
        assert_eq!(due(every, 0, None, 9_999), None);
        assert_eq!(due(every, 0, None, 10_000), Some(10_000));
        assert_eq!(due(every, 0, Some(10_000), 15_000), None);
        // Down from 10 s to 95 s: one fire, for the latest missed period (90 s).
        assert_eq!(due(every, 0, Some(10_000), 95_000), Some(90_000));
        assert_eq!(due(every, 0, Some(90_000), 95_000), None);
        let once = Schedule::At(5_000);
        assert_eq!(due(once, 0, None, 4_999), None);
        assert_eq!(due(once, 0, None, 50_000), Some(5_000));
        assert_eq!(due(once, 0, Some(5_000), 60_000), None);
    }
}
