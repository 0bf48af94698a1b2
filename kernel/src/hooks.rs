//! Outbound hooks: each `[[outbound_hooks]]` entry gets every event of its kinds POSTed as
//! JSON (envelope and payload) as it is appended, at least once. A hook's cursor (the last
//! seq it handled, in `hook_cursors`, keyed by URL and kinds) survives restarts, so events appended while the
//! Gateway was down, or in flight when it stopped, are sent at the next start; a hook seen
//! for the first time starts at the head. A failed POST is retried with backoff, three
//! times, then logged and skipped.

use std::sync::Arc;
use std::time::Duration;

use crate::config::OutboundHook;
use crate::gateway::Gateway;

/// Follow the log and POST matching events to `hook.url` until shutdown.
pub async fn outbound(gw: Arc<Gateway>, hook: OutboundHook) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(url = %hook.url, error = %e, "outbound hook disabled");
            return;
        }
    };
    let mut shutdown = gw.shutdown_signal();
    let key = cursor_key(&hook);
    let from = match clawos_projections::hook_cursors::load(gw.read_models(), &key).await {
        Ok(Some(seq)) => seq,
        Ok(None) => {
            let head = gw.log().head();
            if let Err(e) =
                clawos_projections::hook_cursors::save(gw.read_models(), &key, head).await
            {
                tracing::warn!(url = %hook.url, error = %e, "outbound hook cursor not stored");
            }
            head
        }
        Err(e) => {
            tracing::error!(url = %hook.url, error = %e, "outbound hook disabled: its cursor is unreadable");
            return;
        }
    };
    let mut sub = gw.log().subscribe(from + 1);
    loop {
        let e = tokio::select! {
            e = sub.next() => match e { Ok(e) => e, Err(_) => return },
            _ = shutdown.wait_for(|s| *s) => return,
        };
        if !hook.kinds.contains(&e.kind) {
            continue;
        }
        let body = clawos_replay::export::event_json(&e);
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=4 {
            match client.post(&hook.url).json(&body).send().await {
                Ok(r) if r.status().is_success() => break,
                outcome => {
                    let why = match outcome {
                        Ok(r) => format!("HTTP {}", r.status()),
                        Err(err) => err.to_string(),
                    };
                    if attempt == 4 {
                        tracing::warn!(url = %hook.url, seq = e.seq, %why, "outbound hook gave up on this event");
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        // Stopping mid-retry leaves the cursor before this event: it is
                        // sent again at the next start.
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                    delay *= 2;
                }
            }
        }
        if let Err(err) =
            clawos_projections::hook_cursors::save(gw.read_models(), &key, e.seq).await
        {
            tracing::warn!(url = %hook.url, seq = e.seq, error = %err, "outbound hook cursor not stored");
        }
    }
}

/// A hook's cursor key: its URL and its kinds, so two entries that share a URL but want
/// different kinds each keep their own place.
fn cursor_key(hook: &OutboundHook) -> String {
    let mut kinds = hook.kinds.clone();
    kinds.sort();
    kinds.dedup();
    format!("{} {}", hook.url, kinds.join(","))
}
