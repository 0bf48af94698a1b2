//! The cron scheduler. Jobs are `CronScheduled` events in a session's stream (from
//! `clawos cron add` or an agent); the scheduler reads them from the `cron_jobs`
//! projection, and when one is due appends `CronFired` (with the prompt) to the session
//! and starts a turn. A job missed while the Gateway was down fires once at start, for its
//! latest missed due time. The dedupe key `(job, due time)` makes a fire happen once even
//! if two schedulers raced.
//!
//! Schedules: `every DURATION` (`every 30s`, `every 5m`, `every 1h 30m`, `every 1d`) and
//! `at TIME` (RFC 3339, e.g. `at 2026-11-27T08:00:00Z`, once).

use std::sync::Arc;
use std::time::Duration;

use clawos_events::{stream, CronFired, ExpectedVersion, NewEvent};
use uuid::Uuid;

use crate::gateway::{now_ms, Gateway};
use crate::KernelError;

/// How often the scheduler looks at the jobs.
pub const TICK: Duration = Duration::from_millis(250);

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

type JobRow = (String, String, String, String, i64, Option<i64>);

/// Run the scheduler until shutdown.
pub async fn run(gw: Arc<Gateway>) {
    let mut shutdown = gw.shutdown.subscribe();
    loop {
        if let Err(e) = tick(&gw).await {
            tracing::error!(error = %e, "cron tick failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

async fn tick(gw: &Arc<Gateway>) -> Result<(), KernelError> {
    gw.projected_through(gw.store.head()).await;
    let jobs: Vec<JobRow> = sqlx::query_as(
        "SELECT job_id, session_id, schedule, prompt, scheduled_ms, last_due_ms \
         FROM cron_jobs WHERE cancelled = 0",
    )
    .fetch_all(&gw.projections)
    .await?;
    let now = now_ms();
    for (job, session, schedule, prompt, scheduled, last_due) in jobs {
        let Ok(schedule) = parse(&schedule) else {
            continue;
        };
        let Some(due_at) = due(schedule, scheduled, last_due, now) else {
            continue;
        };
        let Ok(job_id) = Uuid::parse_str(&job) else {
            continue;
        };
        let agent: Option<String> =
            sqlx::query_scalar("SELECT agent FROM sessions WHERE session_id = ?")
                .bind(&session)
                .fetch_optional(&gw.projections)
                .await?;
        let Some(agent) = agent else { continue };
        let appended = gw
            .store
            .append(
                &stream::session(&session),
                ExpectedVersion::Any,
                vec![NewEvent::new(CronFired {
                    job_id,
                    due_at_ms: due_at,
                    prompt,
                })
                .dedupe(format!("cron\u{1f}{job}\u{1f}{due_at}"))],
            )
            .await?;
        if !appended.duplicate {
            gw.dispatch(&session, &agent, appended.last_seq);
        }
    }
    Ok(())
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
