//! `clawos log tail|show|stats`.

use anyhow::{bail, Result};
use clap::Subcommand;
use clawos_events::{Durability, RecordedEvent};
use clawos_replay::{export::event_json, Home};

/// `clawos log ...`
#[derive(Subcommand)]
pub enum LogCommand {
    /// Print the last events, then follow new ones with `--follow`.
    Tail {
        /// How many of the newest events to print first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Keep printing events as they are appended.
        #[arg(short, long)]
        follow: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print one event with its envelope and decoded payload.
    Show {
        /// Seq of the event.
        seq: u64,
    },
    /// Counts per kind, streams, file size.
    Stats,
}

fn one_line(e: &RecordedEvent) -> String {
    let payload = match e.decode() {
        Ok(p) => {
            let v = serde_json::to_value(&p).unwrap_or_default();
            let mut s = v.get("payload").map(|p| p.to_string()).unwrap_or_default();
            if s.len() > 120 {
                let mut end = 117;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                s.push_str("...");
            }
            s
        }
        Err(err) => format!("<{err}>"),
    };
    format!("{:>8}  {:<18} {:<28} {}", e.seq, e.kind, e.stream, payload)
}

/// Run a `log` subcommand.
pub async fn run(home: &Home, durability: Durability, cmd: LogCommand) -> Result<()> {
    let store = home.open_log(durability).await?;
    match cmd {
        LogCommand::Tail {
            lines,
            follow,
            json,
        } => {
            let mut recent = store.read_back(store.head(), lines).await?;
            recent.reverse();
            let print = |e: &RecordedEvent| {
                if json {
                    println!("{}", event_json(e));
                } else {
                    println!("{}", one_line(e));
                }
            };
            recent.iter().for_each(print);
            if follow {
                let mut sub = store.subscribe(store.head() + 1);
                loop {
                    tokio::select! {
                        e = sub.next() => print(&e?),
                        _ = tokio::signal::ctrl_c() => break,
                    }
                }
            }
        }
        LogCommand::Show { seq } => match store.get(seq).await? {
            Some(e) => println!("{}", serde_json::to_string_pretty(&event_json(&e))?),
            None => bail!("no event with seq {seq} (the log ends at {})", store.head()),
        },
        LogCommand::Stats => {
            let s = store.stats().await?;
            println!("events   {}", s.events);
            println!("streams  {}", s.streams);
            println!(
                "file     {} bytes ({})",
                s.file_bytes,
                store.path().display()
            );
            for (kind, n) in s.kinds {
                println!("  {kind:<20} {n}");
            }
        }
    }
    store.close().await;
    Ok(())
}
