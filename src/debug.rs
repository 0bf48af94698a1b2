//! Hidden subcommands used by the whole-system tests.

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use clawos_events::{stream, Durability, ExpectedVersion, IdentityLinked, NewEvent};
use clawos_replay::Home;

/// `clawos debug ...`
#[derive(Subcommand)]
pub enum DebugCommand {
    /// Append batches forever from several tasks, printing `acked FIRST LAST` after each
    /// append returns (the crash test kills this process at random moments).
    AppendLoop {
        /// Concurrent appenders.
        #[arg(long, default_value_t = 4)]
        tasks: usize,
        /// Events per append.
        #[arg(long, default_value_t = 5)]
        batch: usize,
    },
}

/// Run a `debug` subcommand.
pub async fn run(home: &Home, durability: Durability, cmd: DebugCommand) -> Result<()> {
    match cmd {
        DebugCommand::AppendLoop { tasks, batch } => {
            let store = home.open_log(durability).await?;
            let mut handles = Vec::new();
            for t in 0..tasks {
                let store = store.clone();
                handles.push(tokio::spawn(async move {
                    let mut n = 0u64;
                    loop {
                        n += 1;
                        let events = (0..batch)
                            .map(|i| {
                                NewEvent::new(IdentityLinked {
                                    identity: format!("person-{t}"),
                                    address: format!("test:{t}-{n}-{i}@crash"),
                                })
                            })
                            .collect();
                        let a = store
                            .append(
                                &stream::identity(&format!("person-{t}")),
                                ExpectedVersion::Any,
                                events,
                            )
                            .await?;
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "acked {} {}", a.first_seq, a.last_seq)?;
                        out.flush()?;
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), anyhow::Error>(())
                }));
            }
            for h in handles {
                h.await??;
            }
            Ok(())
        }
    }
}
