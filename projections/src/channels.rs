//! Channel status: up or down, how often it started and exited, the last exit, and the
//! link to the outside service as the channel last reported it.

use std::collections::BTreeMap;

use clawos_events::{EventPayload, RecordedEvent};
use serde::{Deserialize, Serialize};

use crate::changes::Changes;
use crate::fold::{decode_state, encode_state, Projection};
use crate::value::Table;
use crate::{row, ProjectionError};

/// `channels(channel, kind, state, pid, starts, exits, last_exit, changed_seq, link)`.
pub const CHANNELS: Table = Table {
    name: "channels",
    columns: &[
        "channel",
        "kind",
        "state",
        "pid",
        "starts",
        "exits",
        "last_exit",
        "changed_seq",
        "link",
    ],
    key_len: 1,
};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ChannelState {
    kind: String,
    up: bool,
    pid: Option<u32>,
    starts: u64,
    exits: u64,
    last_exit: Option<String>,
    changed: u64,
    link: Option<String>,
}

/// How a supervised process last ended, for a status row: `exit code 1: crashed`,
/// `signal 9: ...`, or `unknown: reason` when neither is known.
pub(crate) fn last_exit(
    code: Option<i32>,
    signal: Option<i32>,
    reason: &str,
    unknown: &str,
) -> String {
    let how = match (code, signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => unknown.to_string(),
    };
    format!("{how}: {reason}")
}

/// The channel status projection.
#[derive(Default)]
pub struct Channels {
    channels: BTreeMap<String, ChannelState>,
}

impl Projection for Channels {
    fn name(&self) -> &'static str {
        "channels"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&CHANNELS]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(
            kind,
            "ChannelStarted" | "ChannelExited" | "ChannelLinkChanged"
        )
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        let name = match payload {
            EventPayload::ChannelStarted(s) => {
                let c = self.channels.entry(s.channel.clone()).or_default();
                c.kind = s.kind.clone();
                c.up = true;
                c.pid = Some(s.pid);
                c.starts += 1;
                c.changed = event.seq;
                &s.channel
            }
            EventPayload::ChannelExited(x) => {
                let c = self.channels.entry(x.channel.clone()).or_default();
                c.up = false;
                c.pid = None;
                c.exits += 1;
                c.last_exit = Some(last_exit(x.code, x.signal, &x.reason, "unknown status"));
                c.changed = event.seq;
                &x.channel
            }
            EventPayload::ChannelLinkChanged(l) => {
                let c = self.channels.entry(l.channel.clone()).or_default();
                let state = if l.up { "up" } else { "down" };
                c.link = Some(format!("{state}: {}", l.detail));
                c.changed = event.seq;
                &l.channel
            }
            _ => return,
        };
        if let Some(c) = self.channels.get(name) {
            out.upsert(
                &CHANNELS,
                row![
                    name,
                    &c.kind,
                    if c.up { "up" } else { "down" },
                    c.pid.map(|p| p as i64),
                    c.starts,
                    c.exits,
                    c.last_exit.as_deref(),
                    c.changed,
                    c.link.as_deref()
                ],
            );
        }
    }
    fn save_state(&self) -> Vec<u8> {
        encode_state(&self.channels)
    }
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), ProjectionError> {
        self.channels = decode_state(self.name(), bytes)?;
        Ok(())
    }
}
