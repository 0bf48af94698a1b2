//! `clawos cron add|list|rm`: jobs are events in the session's stream; the Gateway's
//! scheduler fires them. Every append carries the session stream's version its check saw.

use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use clawos_events::{
    stream, CronCancelled, CronScheduled, Durability, ExpectedVersion, LogStore, NewEvent,
};
use clawos_projections::views;
use clawos_replay::{rebuild, Home};
use sqlx::SqlitePool;
use uuid::Uuid;

/// `clawos cron ...`
#[derive(Subcommand)]
pub enum CronCommand {
    /// Schedule a prompt for a session's agent.
    Add {
        /// Session id (`clawos status` or `/status` in a chat shows it).
        #[arg(long)]
        session: String,
        /// `every DURATION` (e.g. `every 30m`) or `at TIME` (RFC 3339).
        #[arg(long)]
        schedule: String,
        /// What the agent is asked each time.
        #[arg(long)]
        prompt: String,
    },
    /// Scheduled jobs.
    List,
    /// Cancel a job.
    Rm {
        /// Job id.
        job: String,
    },
}

/// `clawos cron ...`
pub async fn cron(home: &Home, durability: Durability, cmd: CronCommand) -> Result<()> {
    let store = home.open_log(durability).await?;
    let pool = home.open_projections().await?;
    let result = match cmd {
        CronCommand::Add {
            session,
            schedule,
            prompt,
        } => add(&store, &session, &schedule, prompt).await,
        CronCommand::List => list(&store, &pool).await,
        CronCommand::Rm { job } => rm(&store, &pool, &job).await,
    };
    store.close().await;
    result
}

/// The session must exist: its stream is not empty at the version the append expects.
async fn add(store: &LogStore, session: &str, schedule: &str, prompt: String) -> Result<()> {
    clawos_kernel::schedule::parse(schedule).map_err(|e| anyhow!(e))?;
    let stream = stream::session(session);
    let version = store.stream_version(&stream).await?;
    if version == 0 {
        bail!("no session {session}");
    }
    let job_id = Uuid::now_v7();
    store
        .append(
            &stream,
            ExpectedVersion::Exact(version),
            vec![NewEvent::new(CronScheduled {
                job_id,
                session_id: session.to_string(),
                schedule: schedule.to_string(),
                prompt,
            })],
        )
        .await?;
    println!("job {job_id} scheduled ({schedule}) in session {session}");
    Ok(())
}

async fn list(store: &LogStore, pool: &SqlitePool) -> Result<()> {
    rebuild::catch_up(store, pool).await?;
    let jobs = views::cron_jobs(pool).await?;
    if jobs.is_empty() {
        println!("no cron jobs");
    }
    for j in jobs {
        let state = if j.cancelled { "cancelled" } else { "active" };
        println!(
            "{} {state:<9} {:<24} fired {:>4}  session {}: {}",
            j.job_id, j.schedule, j.fired, j.session_id, j.prompt
        );
    }
    Ok(())
}

async fn rm(store: &LogStore, pool: &SqlitePool, job: &str) -> Result<()> {
    let job_id = Uuid::parse_str(job).context("not a job id")?;
    rebuild::catch_up(store, pool).await?;
    // The job names its session, whose stream the cancellation goes to.
    let Some(found) = views::cron_job(pool, job_id).await? else {
        bail!("no cron job {job}");
    };
    let stream = stream::session(&found.session_id);
    crate::cli_validated::validated(store, pool, &stream, async |version| {
        let Some(j) = views::cron_job(pool, job_id).await? else {
            return Err(anyhow!("no cron job {job}"));
        };
        if j.session_id != found.session_id {
            bail!(
                "cron job {job} moved to session {} meanwhile; run again",
                j.session_id
            );
        }
        if j.cancelled {
            println!("job {job} was already cancelled");
            return Ok(());
        }
        store
            .append(
                &stream,
                ExpectedVersion::Exact(version),
                vec![NewEvent::new(CronCancelled { job_id })],
            )
            .await?;
        println!("job {job} cancelled");
        Ok(())
    })
    .await
}
