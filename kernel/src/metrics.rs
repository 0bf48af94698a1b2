//! Counters exported at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Append latency histogram bucket bounds in microseconds.
const APPEND_BUCKETS_US: [u64; 8] = [250, 500, 1000, 2500, 5000, 10_000, 50_000, 250_000];

/// The Gateway's counters.
#[derive(Default)]
pub struct Metrics {
    messages_in: Mutex<BTreeMap<String, u64>>,
    messages_out: Mutex<BTreeMap<String, u64>>,
    channel_restarts: Mutex<BTreeMap<String, u64>>,
    auth_refused: Mutex<BTreeMap<String, u64>>,
    turns: AtomicU64,
    turn_us_total: AtomicU64,
    append_buckets: [AtomicU64; 8],
    append_count: AtomicU64,
    append_us_total: AtomicU64,
}

fn bump(m: &Mutex<BTreeMap<String, u64>>, key: &str) {
    let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(key.to_string()).or_default() += 1;
}

impl Metrics {
    /// An inbound message was committed.
    pub fn message_in(&self, channel: &str) {
        bump(&self.messages_in, channel);
    }
    /// A reply was handed to a channel.
    pub fn message_out(&self, channel: &str) {
        bump(&self.messages_out, channel);
    }
    /// A channel process was restarted.
    pub fn channel_restart(&self, channel: &str) {
        bump(&self.channel_restarts, channel);
    }
    /// A request without a valid token (or a sender over the pairing limit) was refused
    /// at `endpoint` (`api`, `ws`, `bus`, `hooks`, `admin`, `pairing`).
    pub fn auth_refused(&self, endpoint: &str) {
        bump(&self.auth_refused, endpoint);
    }
    /// An agent turn finished.
    pub fn turn(&self, micros: u64) {
        self.turns.fetch_add(1, Ordering::Relaxed);
        self.turn_us_total.fetch_add(micros, Ordering::Relaxed);
    }
    /// An append completed.
    pub fn append(&self, micros: u64) {
        self.append_count.fetch_add(1, Ordering::Relaxed);
        self.append_us_total.fetch_add(micros, Ordering::Relaxed);
        for (i, b) in APPEND_BUCKETS_US.iter().enumerate() {
            if micros <= *b {
                self.append_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Render in the Prometheus text format.
    pub fn render(&self, events: u64, backlog: u64) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "# HELP clawos_events_appended_total Events in the log.\n# TYPE clawos_events_appended_total counter\nclawos_events_appended_total {events}");
        let _ = writeln!(s, "# HELP clawos_append_latency_seconds Durable append latency.\n# TYPE clawos_append_latency_seconds histogram");
        for (i, b) in APPEND_BUCKETS_US.iter().enumerate() {
            let _ = writeln!(
                s,
                "clawos_append_latency_seconds_bucket{{le=\"{}\"}} {}",
                *b as f64 / 1e6,
                self.append_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.append_count.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "clawos_append_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            s,
            "clawos_append_latency_seconds_sum {}",
            self.append_us_total.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "clawos_append_latency_seconds_count {count}");
        for (name, m, help) in [
            (
                "clawos_messages_in_total",
                &self.messages_in,
                "Inbound messages committed.",
            ),
            (
                "clawos_messages_out_total",
                &self.messages_out,
                "Replies handed to channels.",
            ),
            (
                "clawos_channel_restarts_total",
                &self.channel_restarts,
                "Channel process restarts.",
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
            for (ch, n) in m.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = writeln!(s, "{name}{{channel=\"{ch}\"}} {n}");
            }
        }
        let _ = writeln!(s, "# HELP clawos_auth_refused_total Requests refused for a missing or wrong token.\n# TYPE clawos_auth_refused_total counter");
        for (endpoint, n) in self
            .auth_refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                s,
                "clawos_auth_refused_total{{endpoint=\"{endpoint}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP clawos_turn_seconds Agent turn latency.\n# TYPE clawos_turn_seconds summary"
        );
        let _ = writeln!(
            s,
            "clawos_turn_seconds_sum {}",
            self.turn_us_total.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            s,
            "clawos_turn_seconds_count {}",
            self.turns.load(Ordering::Relaxed)
        );
        let _ = writeln!(s, "# HELP clawos_delivery_backlog Replies not yet acked by their channel.\n# TYPE clawos_delivery_backlog gauge\nclawos_delivery_backlog {backlog}");
        s
    }
}
