//! The projection follower: folds every new event into the read models and publishes the
//! seq they have applied. Reads that must see a decision's own events wait on it.

use std::time::Duration;

use clawos_events::LogStore;
use clawos_projections::Runner;
use tokio::sync::watch;

/// The seq the read models have applied, as published by the follower.
#[derive(Debug, Clone)]
pub struct Projected(watch::Receiver<u64>);

impl Projected {
    /// A handle on the follower's published position.
    pub fn new(position: watch::Receiver<u64>) -> Self {
        Projected(position)
    }

    /// The seq applied so far.
    pub fn position(&self) -> u64 {
        *self.0.borrow()
    }

    /// Wait until the read models have applied `seq` (returns at once if the follower has
    /// stopped: its error is logged, and reads then see what was applied).
    pub async fn through(&self, seq: u64) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|p| *p >= seq).await;
    }
}

/// Follow the log until shutdown, publishing each committed batch's seq at once (a turn
/// waiting for its message does not also wait for the catch-up's closing read).
pub async fn follow(
    mut runner: Runner,
    store: LogStore,
    position: watch::Sender<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut head = store.watch_head();
    loop {
        match runner
            .catch_up(&store, |seq| {
                position.send_replace(seq);
            })
            .await
        {
            Ok(r) => {
                position.send_replace(r.position);
            }
            Err(e) => {
                tracing::error!(error = %e, "projections stopped: {e}; fix the cause and restart (or `clawos replay rebuild`)");
                return;
            }
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => if *shutdown.borrow() { return },
            // Pick up events appended by other processes (CLI commands).
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
