//! The cron scheduler. Jobs are `CronScheduled` events in a session's stream (from
//! `clawos cron add` or an agent); the scheduler reads them from the `cron_jobs`
//! projection, and when one is due appends `CronFired` (with the prompt) to the session
//! and starts a turn. A job missed while the Gateway was down fires once at start, for its
//! latest missed due time. The dedupe key `(job, due time)` makes a fire happen once even
//! if two schedulers raced.
//! Schedules are parsed in `schedule.rs`.

use std::sync::Arc;
use std::time::Duration;

use clawos_events::{stream, CronFired, ExpectedVersion, NewEvent};
use clawos_projections::views;
use uuid::Uuid;

use crate::clock::now_ms;
use crate::gateway::Gateway;
pub use crate::schedule::{due, parse, Schedule};
use crate::KernelError;

/// How often the scheduler looks at the jobs.
pub const TICK: Duration = Duration::from_millis(250);

/// Run the scheduler until shutdown.
pub async fn run(gw: Arc<Gateway>) {
    let mut shutdown = gw.shutdown_signal();
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
    gw.projected_through(gw.log().head()).await;
    let jobs = views::active_cron_jobs(gw.read_models()).await?;
    let now = now_ms();
    for job in jobs {
        let Ok(schedule) = parse(&job.schedule) else {
            continue;
        };
        let Some(due_at) = due(schedule, job.scheduled_ms, job.last_due_ms, now) else {
            continue;
        };
        let Ok(job_id) = Uuid::parse_str(&job.job_id) else {
            continue;
        };
        let Some((_, agent)) = views::session_owner(gw.read_models(), &job.session_id).await?
        else {
            continue;
        };
        let appended = gw
            .log()
            .append(
                &stream::session(&job.session_id),
                ExpectedVersion::Any,
                vec![NewEvent::new(CronFired {
                    job_id,
                    due_at_ms: due_at,
                    prompt: job.prompt,
                })
                .dedupe(format!("cron\u{1f}{}\u{1f}{due_at}", job.job_id))],
            )
            .await?;
        if !appended.duplicate {
            gw.dispatch(&job.session_id, &agent, appended.last_seq);
        }
    }
    Ok(())
}
