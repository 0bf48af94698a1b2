//! `clawos media check|gc|list`: the media store (attachment bytes by blake3 hash) against
//! the log that references it.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::Subcommand;
use clawos_channels::media::MediaStore;
use clawos_events::Durability;
use clawos_kernel::media;
use clawos_replay::Home;

/// `clawos media ...`
#[derive(Subcommand)]
pub enum MediaCommand {
    /// Every blob the log references, and whether the store holds it.
    List,
    /// Report referenced blobs that are missing or damaged (exit status 1 if any).
    Check,
    /// Remove blobs no event references.
    Gc {
        /// Spare unreferenced blobs younger than this (a channel writes a blob just
        /// before the message naming it reaches the log), e.g. `1h`, `0s`.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        grace: Duration,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Run a `clawos media` command.
pub async fn run(home: &Home, durability: Durability, cmd: MediaCommand) -> Result<()> {
    let config = crate::cli_gateway::load_config(home)?;
    let store = MediaStore::new(home.media_dir(), config.media.max_bytes);
    let log = home.open_log(durability).await?;
    match cmd {
        MediaCommand::List => {
            for (hash, r) in media::referenced(&log).await? {
                let here = if store.contains(&hash) {
                    "kept"
                } else {
                    "MISSING"
                };
                let a = &r.attachment;
                println!(
                    "{hash}  {here:7}  {:>10}  {:24}  {}  (first at seq {})",
                    a.size,
                    a.mime.as_deref().unwrap_or("-"),
                    a.name,
                    r.seq
                );
            }
        }
        MediaCommand::Check => {
            let missing = media::missing(&log, &store).await?;
            if missing.is_empty() {
                println!("every referenced blob is in {}", store.dir().display());
                return Ok(());
            }
            for (hash, r) in &missing {
                println!(
                    "missing: {hash} ({}, {} bytes), first referenced at seq {}",
                    r.attachment.name, r.attachment.size, r.seq
                );
            }
            bail!(
                "{} referenced blob(s) missing from {}",
                missing.len(),
                store.dir().display()
            );
        }
        MediaCommand::Gc { grace, dry_run } => {
            let done = media::collect(&log, &store, grace, dry_run).await?;
            let verb = if dry_run { "would remove" } else { "removed" };
            for h in &done.removed {
                println!("{verb} {h}");
            }
            println!(
                "{verb} {} blob(s), {} bytes; kept {} referenced; spared {} younger than {}",
                done.removed.len(),
                done.freed,
                done.kept,
                done.spared,
                humantime::format_duration(grace)
            );
        }
    }
    Ok(())
}
