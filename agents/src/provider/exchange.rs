//! One exchange with a chat API: send a prepared request and fold its answer, whatever its
//! form (an error status, one JSON body, or an event stream that must reach its end),
//! through the dialect's [`AnswerFold`].

use std::time::Duration;

use super::chat::ChatResponse;
use super::error::ProviderError;
use super::http::{is_json_body, map_reqwest, send};
use super::sse::{read_sse, SseEvent};

/// How one dialect folds an answer into a [`ChatResponse`], whether it comes whole (a JSON
/// body) or as a stream of server-sent events.
pub(crate) trait AnswerFold: Default + Send {
    /// What a complete stream ends with, named in the error when a stream stops short.
    const STREAM_END: &'static str;
    /// Fold a whole JSON body.
    fn whole(
        &mut self,
        body: &serde_json::Value,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), ProviderError>;
    /// Fold one event; `true` once the stream's end marker arrived.
    fn event(
        &mut self,
        event: &SseEvent,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<bool, ProviderError>;
    /// Whether what arrived is a whole answer even though the end marker did not.
    fn finished(&self) -> bool {
        false
    }
    /// The answer, for `model`.
    fn into_response(self, model: &str) -> ChatResponse;
}

/// Send one prepared request and fold its answer with `F`: an HTTP error status, a whole
/// JSON body, or an event stream that must reach its end.
pub(crate) async fn exchange<F: AnswerFold>(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    model: &str,
    on_delta: &(dyn Fn(&str) + Send + Sync),
) -> Result<ChatResponse, ProviderError> {
    let resp = send(request, timeout).await?;
    let mut fold = F::default();
    if is_json_body(&resp) {
        let bytes = resp.bytes().await.map_err(|e| map_reqwest(e, timeout))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ProviderError::Malformed(format!("response body: {e}")))?;
        fold.whole(&value, on_delta)?;
        return Ok(fold.into_response(model));
    }
    let done = read_sse(resp, timeout, |event| fold.event(&event, on_delta)).await?;
    if !done && !fold.finished() {
        return Err(ProviderError::Connect(format!(
            "the event stream ended before {}",
            F::STREAM_END
        )));
    }
    Ok(fold.into_response(model))
}

/// Append a text fragment of the answer to `content` and pass it to `on_delta`; empty
/// fragments are dropped.
pub(crate) fn push_text(content: &mut String, text: &str, on_delta: &(dyn Fn(&str) + Send + Sync)) {
    if !text.is_empty() {
        content.push_str(text);
        on_delta(text);
    }
}

/// A `u32` from a JSON number (0 when absent or not a number; saturating).
pub(crate) fn json_u32(v: Option<&serde_json::Value>) -> u32 {
    v.and_then(serde_json::Value::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .unwrap_or(0)
}
