//! `clawos replay rebuild|verify|state-at|fork|export` and `clawos audit`.

use anyhow::{bail, Result};
use clap::Subcommand;
use clawos_events::Durability;
use clawos_replay::{audit, export, fork, rebuild, state_at, Home};
use indicatif::{ProgressBar, ProgressStyle};

/// `clawos replay ...`
#[derive(Subcommand)]
pub enum ReplayCommand {
    /// Drop projections and rebuild them from seq 1.
    Rebuild {
        /// Only this projection (repeatable); all when omitted.
        #[arg(long = "projection")]
        projections: Vec<String>,
    },
    /// Check the hash chain and the append-only triggers.
    Verify,
    /// Sessions, branches and transcripts exactly as they were after event SEQ.
    StateAt {
        /// The seq.
        #[arg(long)]
        seq: u64,
        /// Only this session.
        #[arg(long)]
        session: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start a new branch at a message (appends `BranchCreated`; history is untouched).
    Fork {
        /// Session id.
        #[arg(long)]
        session: String,
        /// Seq of the message to fork at.
        #[arg(long)]
        at: u64,
        /// Branch name (default `fork-SEQ`).
        #[arg(long)]
        name: Option<String>,
        /// Also make it the session's active branch.
        #[arg(long)]
        switch: bool,
    },
    /// A workspace file as it was after event SEQ, rebuilt from the log alone (the
    /// `editor` skill records every change with its diff).
    FileAt {
        /// The seq.
        #[arg(long)]
        seq: u64,
        /// The agent whose workspace it is.
        #[arg(long, default_value = "pi")]
        agent: String,
        /// Path relative to the workspace.
        path: String,
    },
    /// Print a session's events as JSON lines.
    Export {
        /// Session id.
        #[arg(long)]
        session: String,
    },
}

fn bar(len: u64) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// Run a `replay` subcommand.
pub async fn run(home: &Home, durability: Durability, cmd: ReplayCommand) -> Result<()> {
    let store = home.open_log(durability).await?;
    match cmd {
        ReplayCommand::Rebuild { projections } => {
            let pool = home.open_projections().await?;
            let pb = bar(store.head());
            let names = (!projections.is_empty()).then_some(projections.as_slice());
            let report = rebuild::rebuild(&store, &pool, names, |seq| pb.set_position(seq)).await?;
            pb.finish_and_clear();
            println!(
                "rebuilt {} from {} events ({} row writes) in {:.2?}: {:.0} events/s",
                report.projections.join(", "),
                report.events,
                report.rows,
                report.elapsed,
                report.events_per_sec()
            );
        }
        ReplayCommand::Verify => {
            let pb = bar(store.head());
            let report = clawos_events::verify(&store, |n| pb.set_position(n)).await?;
            pb.finish_and_clear();
            for t in &report.missing_triggers {
                println!("MISSING TRIGGER {t}: the log is not protected against changes");
            }
            match &report.first_break {
                Some(b) => println!("BROKEN at seq {}: {}", b.seq, b.reason),
                None => println!("chain intact: {} events verified", report.events_checked),
            }
            if !report.ok() {
                store.close().await;
                std::process::exit(1);
            }
        }
        ReplayCommand::StateAt { seq, session, json } => {
            let state = state_at::state_at(&store, seq, session.as_deref()).await?;
            let sessions = state.sessions();
            if json {
                println!("{}", serde_json::to_string_pretty(&sessions)?);
            } else {
                println!("state after seq {seq}: {} session(s)", sessions.len());
                for s in sessions {
                    let v = &s.session;
                    println!(
                        "session {} (identity {}, agent {}, active branch {})",
                        v.session_id, v.identity, v.agent, v.active_branch
                    );
                    for b in s.branches {
                        let fork = b
                            .branch
                            .fork_seq
                            .map(|f| format!(", forked at {f}"))
                            .unwrap_or_default();
                        println!("  branch {}{}", b.branch.name, fork);
                        for c in &b.compactions {
                            println!("    [summary through {}] {}", c.covers_through, c.summary);
                        }
                        for m in b.transcript {
                            println!("    {:>6} {:<9} {}", m.seq, m.role, m.text);
                        }
                    }
                }
            }
        }
        ReplayCommand::Fork {
            session,
            at,
            name,
            switch,
        } => {
            let (appended, branch) =
                fork::fork(&store, &session, at, name.as_deref(), switch).await?;
            println!(
                "branch `{branch}` created at message {at} (event seq {})",
                appended.first_seq
            );
        }
        ReplayCommand::FileAt { seq, agent, path } => {
            let mut changes = Vec::new();
            let mut from = 1;
            loop {
                let page = store
                    .read_kinds(from, seq, &["WorkspaceFileChanged"], 1000)
                    .await?;
                let Some(last) = page.last().map(|e| e.seq) else {
                    break;
                };
                for e in &page {
                    if let clawos_events::EventPayload::WorkspaceFileChanged(c) = e.decode()? {
                        changes.push(c);
                    }
                }
                from = last + 1;
            }
            let file = clawos_agents::skills::editor::file_at(&changes, &agent, &path)
                .map_err(|e| anyhow::anyhow!(e))?;
            store.close().await;
            match file {
                Some(text) => print!("{text}"),
                None => bail!(
                    "the log records no change of `{path}` in {agent}'s workspace up to seq {seq}"
                ),
            }
            return Ok(());
        }
        ReplayCommand::Export { session } => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            export::export_session(&store, &session, &mut lock).await?;
        }
    }
    store.close().await;
    Ok(())
}

/// `clawos audit --session ID`: catches projections up first, then prints the turns.
pub async fn audit(home: &Home, durability: Durability, session: &str, json: bool) -> Result<()> {
    let store = home.open_log(durability).await?;
    let pool = home.open_projections().await?;
    rebuild::catch_up(&store, &pool).await?;
    let turns = audit::audit_session(&pool, session).await?;
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&turns)?);
        return Ok(());
    }
    if turns.is_empty() {
        bail!("no agent turns recorded for session `{session}`");
    }
    for t in turns {
        println!(
            "turn {} ({}, branch {}, triggered by seq {}): {}{}",
            t.turn_id,
            t.agent,
            t.branch,
            t.trigger_seq,
            t.status,
            t.detail.map(|d| format!(": {d}")).unwrap_or_default()
        );
        for s in t.steps {
            println!("  {:>8} {:<13} {}", s.seq, s.kind, s.detail);
        }
    }
    Ok(())
}
