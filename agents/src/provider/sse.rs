//! Server-sent events: an incremental `text/event-stream` parser and the loop that reads a
//! response's body through it.

use std::time::Duration;

use super::error::ProviderError;
use super::http::map_reqwest;

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SseEvent {
    /// The `event:` field; empty when the server sent none.
    pub event: String,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
}

/// An incremental `text/event-stream` parser: feed it bytes as they arrive, it returns
/// the events completed so far. Lines may be split anywhere, even inside a UTF-8 char.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl SseParser {
    /// Feed `bytes`; returns the events they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, ProviderError> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            let mut line = &self.buf[start..end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let line = std::str::from_utf8(line)
                .map_err(|e| ProviderError::Malformed(format!("event stream is not UTF-8: {e}")))?
                .to_string();
            start = end + 1;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        self.buf.drain(..start);
        Ok(events)
    }

    /// The stream ended: the event still being assembled, if any.
    pub fn finish(&mut self) -> Result<Option<SseEvent>, ProviderError> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8(rest)
                .map_err(|e| ProviderError::Malformed(format!("event stream is not UTF-8: {e}")))?;
            if let Some(event) = self.line(&line) {
                return Ok(Some(event));
            }
        }
        Ok(self.dispatch())
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.data).join("\n");
        Some(SseEvent { event, data })
    }
}

/// Read `resp`'s body as an event stream, handing each event to `on_event` until it
/// returns `Ok(true)` (done) or the body ends. Returns whether `on_event` said done.
pub(crate) async fn read_sse(
    mut resp: reqwest::Response,
    timeout: Duration,
    mut on_event: impl FnMut(SseEvent) -> Result<bool, ProviderError>,
) -> Result<bool, ProviderError> {
    let mut parser = SseParser::default();
    loop {
        let chunk = resp.chunk().await.map_err(|e| map_reqwest(e, timeout))?;
        let Some(chunk) = chunk else { break };
        for event in parser.feed(&chunk)? {
            if on_event(event)? {
                return Ok(true);
            }
        }
    }
    if let Some(event) = parser.finish()? {
        return on_event(event);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_handles_any_split() {
        let stream = "event: a\r\ndata: {\"x\":\"é\"}\r\n\r\n: comment\n\ndata: one\ndata: two\n\nevent: b\ndata:tail";
        let bytes = stream.as_bytes();
        for step in 1..bytes.len() {
            let mut parser = SseParser::default();
            let mut events = Vec::new();
            for chunk in bytes.chunks(step) {
                events.extend(parser.feed(chunk).expect("valid utf-8"));
            }
            events.extend(parser.finish().expect("valid utf-8"));
            assert_eq!(
                events,
                vec![
                    SseEvent {
                        event: "a".into(),
                        data: "{\"x\":\"é\"}".into()
                    },
                    SseEvent {
                        event: String::new(),
                        data: "one\ntwo".into()
                    },
                    SseEvent {
                        event: "b".into(),
                        data: "tail".into()
                    },
                ],
                "split every {step} bytes"
            );
        }
    }

    #[test]
    fn sse_parser_rejects_invalid_utf8() {
        let mut parser = SseParser::default();
        let err = parser
            .feed(b"data: \xff\xfe\n\n")
            .expect_err("invalid utf-8");
        assert!(matches!(err, ProviderError::Malformed(_)));
    }
}
