//! Outbound hooks: each `[[outbound_hooks]]` entry gets every event of its kinds POSTed as
//! JSON (envelope and payload) as it is appended, from the moment the Gateway starts.
//! A failed POST is retried with backoff, three times, then logged and skipped.

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
    let mut shutdown = gw.shutdown.subscribe();
    let mut sub = gw.store.subscribe(gw.store.head() + 1);
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
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
}
