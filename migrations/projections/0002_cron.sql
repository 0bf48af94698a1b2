-- Cron jobs folded from CronScheduled / CronFired / CronCancelled.
CREATE TABLE cron_jobs (
    job_id        TEXT PRIMARY KEY,
    session_id    TEXT    NOT NULL,
    schedule      TEXT    NOT NULL,
    prompt        TEXT    NOT NULL,
    scheduled_ms  INTEGER NOT NULL,  -- time of the CronScheduled event
    last_due_ms   INTEGER,           -- due time of the last CronFired
    fired         INTEGER NOT NULL,
    cancelled     INTEGER NOT NULL
);
