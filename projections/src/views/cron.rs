//! Cron jobs: what is scheduled, when each last fired, what was cancelled.

use serde::Serialize;
use sqlx::SqlitePool;
use uuid::Uuid;

use super::rows::{int, load_matching, load_rows, signed, text};
use crate::changes::MemoryTables;
use crate::cron::CRON_JOBS;
use crate::ProjectionError;

/// One cron job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CronJobView {
    /// Job id.
    pub job_id: String,
    /// Session whose agent gets the prompt.
    pub session_id: String,
    /// `every DURATION` or `at TIME`.
    pub schedule: String,
    /// What the agent is asked.
    pub prompt: String,
    /// Time of the `CronScheduled` event (unix ms).
    pub scheduled_ms: i64,
    /// Due time of the last `CronFired` (unix ms).
    pub last_due_ms: Option<i64>,
    /// How often it fired.
    pub fired: u64,
    /// Whether it was cancelled.
    pub cancelled: bool,
}

/// Every job, by scheduling time (then id).
pub fn cron_jobs_in(t: &MemoryTables) -> Vec<CronJobView> {
    let mut jobs: Vec<CronJobView> = t
        .rows(CRON_JOBS.name)
        .iter()
        .map(|r| CronJobView {
            job_id: text(r, 0),
            session_id: text(r, 1),
            schedule: text(r, 2),
            prompt: text(r, 3),
            scheduled_ms: signed(r, 4).unwrap_or(0),
            last_due_ms: signed(r, 5),
            fired: int(r, 6).unwrap_or(0),
            cancelled: signed(r, 7).is_some_and(|c| c != 0),
        })
        .collect();
    jobs.sort_by_key(|j| j.scheduled_ms);
    jobs
}

/// The jobs not cancelled (what the scheduler looks at), by scheduling time.
pub fn active_cron_jobs_in(t: &MemoryTables) -> Vec<CronJobView> {
    cron_jobs_in(t)
        .into_iter()
        .filter(|j| !j.cancelled)
        .collect()
}

/// The jobs of one session not cancelled, by scheduling time.
pub fn session_cron_jobs_in(t: &MemoryTables, session_id: &str) -> Vec<CronJobView> {
    active_cron_jobs_in(t)
        .into_iter()
        .filter(|j| j.session_id == session_id)
        .collect()
}

/// One job by id, cancelled or not.
pub fn cron_job_in(t: &MemoryTables, job_id: Uuid) -> Option<CronJobView> {
    let id = job_id.to_string();
    cron_jobs_in(t).into_iter().find(|j| j.job_id == id)
}

/// [`cron_jobs_in`] over the live tables.
pub async fn cron_jobs(pool: &SqlitePool) -> Result<Vec<CronJobView>, ProjectionError> {
    Ok(cron_jobs_in(
        &super::rows::load_tables(pool, &[&CRON_JOBS]).await?,
    ))
}

/// [`active_cron_jobs_in`] over the live tables.
pub async fn active_cron_jobs(pool: &SqlitePool) -> Result<Vec<CronJobView>, ProjectionError> {
    let mut t = MemoryTables::default();
    load_rows(pool, &mut t, &CRON_JOBS, "cancelled = 0", &[]).await?;
    Ok(active_cron_jobs_in(&t))
}

/// [`session_cron_jobs_in`] over the live tables.
pub async fn session_cron_jobs(
    pool: &SqlitePool,
    session_id: &str,
) -> Result<Vec<CronJobView>, ProjectionError> {
    let t = load_matching(pool, &CRON_JOBS, "session_id", session_id.into()).await?;
    Ok(session_cron_jobs_in(&t, session_id))
}

/// [`cron_job_in`] over the live tables.
pub async fn cron_job(
    pool: &SqlitePool,
    job_id: Uuid,
) -> Result<Option<CronJobView>, ProjectionError> {
    let t = load_matching(pool, &CRON_JOBS, "job_id", job_id.to_string().into()).await?;
    Ok(cron_job_in(&t, job_id))
}
