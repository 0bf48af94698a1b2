//! Export: a session's events as JSON lines, envelope and decoded payload.

use std::io::Write;

use clawos_events::{stream, LogStore, RecordedEvent};
use serde_json::{json, Value};

use crate::ReplayError;

/// One event as JSON: the envelope plus its payload, or a `decode_error` when this build
/// cannot read it (the line is still written: nothing is dropped).
pub fn event_json(e: &RecordedEvent) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    match e.decode() {
        Ok(p) => {
            let tagged = serde_json::to_value(&p).unwrap_or(Value::Null);
            v["payload"] = tagged.get("payload").cloned().unwrap_or(Value::Null);
        }
        Err(err) => v["decode_error"] = json!(err.to_string()),
    }
    v
}

/// Write every event of the session's stream as one JSON object per line; returns the count.
pub async fn export_session(
    store: &LogStore,
    session: &str,
    out: &mut impl Write,
) -> Result<u64, ReplayError> {
    let events = store
        .read_stream(&stream::session(session), u64::MAX)
        .await?;
    if events.is_empty() {
        return Err(ReplayError::NoSuchSession(session.to_string()));
    }
    for e in &events {
        serde_json::to_writer(&mut *out, &event_json(e))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(events.len() as u64)
}
