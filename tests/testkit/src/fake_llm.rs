//! [`FakeLlm`]: a scripted LLM server for tests, speaking both wire protocols.
//!
//! It listens on loopback and answers OpenAI-style (`POST /v1/chat/completions`,
//! `POST /chat/completions`) and Anthropic-style (`POST /v1/messages`) requests, streamed
//! (SSE, when the body says `"stream": true`) or as one JSON body. Each request consumes
//! the next [`Step`] of its script; an exhausted script answers
//! `Text("(script exhausted)")`. [`FakeLlm::echo`] answers every request with
//! `echo: <last user text>` instead.
//!
//! Streamed answers are cut into several events (text word by word, tool-call arguments
//! in three fragments) and every event is written in two halves, so clients meet split
//! lines and split tool calls just as with real servers.
//!
//! Usage numbers are deterministic: see [`prompt_tokens`] and [`completion_tokens`].
//!
//! Scripts can also come from a JSON file (see [`parse_script`] and [`run_standalone`]):
//! an array of `{"text": "..."}`, `{"tool_call": {"name": "...", "arguments": {...}}}`,
//! `{"status": 500}`, `{"reject": {"status": 400, "message": "..."}}`, `{"hang": true}`,
//! `{"hang_mid_stream": true}`, `{"malformed": true}`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

/// What the fake answers to one request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "StepJson")]
pub enum Step {
    /// Answer with this text (streamed word by word).
    Text(String),
    /// Answer with one tool call (arguments streamed in fragments).
    ToolCall {
        /// Tool name.
        name: String,
        /// Arguments (sent as their JSON text).
        arguments: Value,
    },
    /// Answer with this HTTP status and an API-shaped error body; a 429 carries
    /// `Retry-After: 0`.
    Status(u16),
    /// Answer with this HTTP status and an API-shaped error body carrying `message` (a
    /// server's own words: `this model does not support image input`, ...).
    Reject {
        /// HTTP status.
        status: u16,
        /// The error message.
        message: String,
    },
    /// Accept the request and never answer (until the fake is dropped).
    Hang,
    /// Send the headers and the first text fragment, then stall (until the fake is
    /// dropped). Non-streaming requests get the start of a JSON body.
    HangMidStream,
    /// Answer 200 with a stream (or body) containing invalid JSON.
    MalformedJson,
}

/// The JSON form of a [`Step`] in script files.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum StepJson {
    Text(String),
    ToolCall {
        name: String,
        #[serde(default)]
        arguments: Value,
    },
    Status(u16),
    Reject {
        status: u16,
        message: String,
    },
    Hang(bool),
    HangMidStream(bool),
    #[serde(alias = "malformed_json")]
    Malformed(bool),
}

impl TryFrom<StepJson> for Step {
    type Error = String;

    fn try_from(step: StepJson) -> Result<Self, Self::Error> {
        let flag = |set: bool, step: Step, name: &str| {
            if set {
                Ok(step)
            } else {
                Err(format!("`{name}` must be true"))
            }
        };
        match step {
            StepJson::Text(text) => Ok(Step::Text(text)),
            StepJson::ToolCall { name, arguments } => Ok(Step::ToolCall {
                name,
                arguments: if arguments.is_null() {
                    json!({})
                } else {
                    arguments
                },
            }),
            StepJson::Status(code) if (100..1000).contains(&code) => Ok(Step::Status(code)),
            StepJson::Status(code) => Err(format!("status {code} is not an HTTP status")),
            StepJson::Reject { status, message } if (100..1000).contains(&status) => {
                Ok(Step::Reject { status, message })
            }
            StepJson::Reject { status, .. } => {
                Err(format!("status {status} is not an HTTP status"))
            }
            StepJson::Hang(set) => flag(set, Step::Hang, "hang"),
            StepJson::HangMidStream(set) => flag(set, Step::HangMidStream, "hang_mid_stream"),
            StepJson::Malformed(set) => flag(set, Step::MalformedJson, "malformed"),
        }
    }
}

/// Why the standalone fake could not run.
#[derive(Debug, thiserror::Error)]
pub enum FakeLlmError {
    /// Reading the script or binding/serving the socket failed.
    #[error("fake LLM: {0}")]
    Io(#[from] std::io::Error),
    /// The script file is not a JSON array of steps.
    #[error("fake LLM script: {0}")]
    Script(String),
}

/// Parse a script: a JSON array of steps (see the module docs for their form).
pub fn parse_script(json: &str) -> Result<Vec<Step>, FakeLlmError> {
    serde_json::from_str(json).map_err(|e| FakeLlmError::Script(e.to_string()))
}

/// The prompt tokens the fake reports for `request`: its compact JSON length / 4, at
/// least 1.
pub fn prompt_tokens(request: &Value) -> u32 {
    let len = request.to_string().len() / 4;
    u32::try_from(len).unwrap_or(u32::MAX).max(1)
}

/// The completion tokens the fake reports for a `Text` or `ToolCall` step: the text's
/// word count, or 1 + the arguments' JSON length / 4; 0 for other steps.
pub fn completion_tokens(step: &Step) -> u32 {
    match step {
        Step::Text(text) => u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX),
        Step::ToolCall { arguments, .. } => {
            u32::try_from(1 + arguments.to_string().len() / 4).unwrap_or(u32::MAX)
        }
        _ => 0,
    }
}

/// State shared by the server's handlers.
struct Shared {
    /// `None`: echo mode.
    script: Option<Mutex<VecDeque<Step>>>,
    requests: Mutex<Vec<Value>>,
    headers: Mutex<Vec<Vec<(String, String)>>>,
    served: AtomicU64,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn new(script: Option<Vec<Step>>) -> Arc<Self> {
        Arc::new(Shared {
            script: script.map(|s| Mutex::new(s.into())),
            requests: Mutex::new(Vec::new()),
            headers: Mutex::new(Vec::new()),
            served: AtomicU64::new(0),
            shutdown: watch::channel(false).0,
        })
    }

    /// The step answering `request` (consumes it).
    fn next_step(&self, request: &Value) -> Step {
        match &self.script {
            Some(script) => lock(script)
                .pop_front()
                .unwrap_or_else(|| Step::Text("(script exhausted)".to_string())),
            None => Step::Text(format!("echo: {}", last_user_text(request))),
        }
    }

    /// Resolves once the fake is shut down.
    async fn stopped(&self) {
        let mut rx = self.shutdown.subscribe();
        // An error means the sender is gone, which also means shut down.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running scripted LLM server; stops when dropped.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeLlm {
    /// Serve `script` on `127.0.0.1:<free port>`.
    ///
    /// # Panics
    /// When called outside a Tokio runtime, or when no loopback port can be bound.
    pub fn start(script: Vec<Step>) -> FakeLlm {
        Self::spawn(Shared::new(Some(script)))
    }

    /// Serve echo mode: every request is answered `echo: <last user text>`.
    ///
    /// # Panics
    /// As [`FakeLlm::start`].
    pub fn echo() -> FakeLlm {
        Self::spawn(Shared::new(None))
    }

    fn spawn(shared: Arc<Shared>) -> FakeLlm {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .expect("fake LLM: bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("fake LLM: a bound socket has an address");
        let server = tokio::spawn(serve(listener, Arc::clone(&shared)));
        FakeLlm {
            addr,
            shared,
            server,
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL for an OpenAI-compatible provider: `http://ADDR/v1`.
    pub fn base_url_openai(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Base URL for an Anthropic provider: `http://ADDR`.
    pub fn base_url_anthropic(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The JSON bodies received so far, in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.shared.requests).clone()
    }

    /// The headers of each request received, in arrival order (names lowercase).
    pub fn request_headers(&self) -> Vec<Vec<(String, String)>> {
        lock(&self.shared.headers).clone()
    }

    /// Append a step to the script (no effect in echo mode).
    pub fn push(&self, step: Step) {
        if let Some(script) = &self.shared.script {
            lock(script).push_back(step);
        }
    }

    /// How many steps are left in the script (0 in echo mode).
    pub fn remaining(&self) -> usize {
        self.shared.script.as_ref().map_or(0, |s| lock(s).len())
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        // Release stalled handlers, then stop accepting.
        self.shared.shutdown.send_replace(true);
        self.server.abort();
    }
}

/// Serve a script read from `script_path` (a JSON array of steps), or echo mode when
/// `None`, on `addr` until the future is dropped.
pub async fn run_standalone(
    addr: SocketAddr,
    script_path: Option<PathBuf>,
) -> Result<(), FakeLlmError> {
    let script = match script_path {
        Some(path) => Some(parse_script(&tokio::fs::read_to_string(&path).await?)?),
        None => None,
    };
    let steps = script.as_ref().map(Vec::len);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, ?steps, "fake LLM listening");
    let shared = Shared::new(script);
    let app = router(shared);
    axum::serve(
        listener.tap_io(|s| {
            let _ = s.set_nodelay(true);
        }),
        app,
    )
    .await?;
    Ok(())
}

async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let app = router(shared);
    let listener = listener.tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "fake LLM server stopped");
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai_handler))
        .route("/chat/completions", post(openai_handler))
        .route("/v1/messages", post(anthropic_handler))
        .route("/v1/embeddings", post(embeddings_handler))
        .route("/embeddings", post(embeddings_handler))
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(shared)
}

/// Dimensions of the fake's embeddings.
pub const FAKE_EMBEDDING_DIMS: usize = 16;

/// The fake's embedding of `text`: 16 numbers from its blake3 hash (deterministic, not
/// normalised, so clients must normalise).
pub fn fake_embedding(text: &str) -> Vec<f32> {
    blake3::hash(text.as_bytes())
        .as_bytes()
        .iter()
        .take(FAKE_EMBEDDING_DIMS)
        .map(|b| f32::from(*b) - 127.5)
        .collect()
}

/// OpenAI-compatible `/v1/embeddings`: records the request; a [`Step::Status`] at the
/// front of the script is consumed and answered with that status (so a test can script
/// a 500 before a success); otherwise every input gets [`fake_embedding`].
async fn embeddings_handler(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("request is not JSON: {e}")).into_response()
        }
    };
    lock(&shared.headers).push(
        headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    );
    lock(&shared.requests).push(request.clone());
    if let Some(script) = &shared.script {
        let mut script = lock(script);
        if let Some(Step::Status(code)) = script.front().cloned() {
            script.pop_front();
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (
                status,
                axum::Json(
                    json!({"error": {"message": "scripted failure", "type": "server_error"}}),
                ),
            )
                .into_response();
        }
    }
    let inputs: Vec<String> = match request.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => return (StatusCode::BAD_REQUEST, "`input` is required").into_response(),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": fake_embedding(t)}))
        .collect();
    axum::Json(json!({
        "object": "list",
        "data": data,
        "model": request.get("model").cloned().unwrap_or(Value::Null),
        "usage": {"prompt_tokens": 0, "total_tokens": 0}
    }))
    .into_response()
}

/// Which protocol a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    OpenAi,
    Anthropic,
}

async fn openai_handler(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(shared, Api::OpenAi, &headers, body).await
}

async fn anthropic_handler(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(shared, Api::Anthropic, &headers, body).await
}

/// One content of an answer.
struct Answer {
    text: String,
    /// (id, name, arguments JSON text).
    tool: Option<(String, String, String)>,
    prompt_tokens: u32,
    completion_tokens: u32,
}

async fn handle(shared: Arc<Shared>, api: Api, headers: &HeaderMap, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("request is not JSON: {e}")).into_response()
        }
    };
    let header_list = headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_string(), value)
        })
        .collect();
    {
        // Both under the requests lock, so their indices agree.
        let mut requests = lock(&shared.requests);
        lock(&shared.headers).push(header_list);
        requests.push(request.clone());
    }
    let n = shared.served.fetch_add(1, Ordering::SeqCst) + 1;
    let step = shared.next_step(&request);
    let streaming = request.get("stream").and_then(Value::as_bool) == Some(true);
    let include_usage = api == Api::Anthropic
        || request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake")
        .to_string();
    let answer = |text: String, tool: Option<(String, String, String)>| Answer {
        text,
        tool,
        prompt_tokens: prompt_tokens(&request),
        completion_tokens: completion_tokens(&step),
    };
    match &step {
        Step::Text(text) => respond(
            api,
            n,
            &model,
            streaming,
            include_usage,
            answer(text.clone(), None),
            &shared,
        ),
        Step::ToolCall { name, arguments } => {
            let id = match api {
                Api::OpenAi => format!("call_{n}"),
                Api::Anthropic => format!("toolu_{n}"),
            };
            let tool = Some((id, name.clone(), arguments.to_string()));
            respond(
                api,
                n,
                &model,
                streaming,
                include_usage,
                answer(String::new(), tool),
                &shared,
            )
        }
        Step::Status(code) => status_response(api, *code, None),
        Step::Reject { status, message } => status_response(api, *status, Some(message)),
        Step::Hang => {
            shared.stopped().await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Step::HangMidStream => {
            let first = Answer {
                text: "partial ".to_string(),
                tool: None,
                prompt_tokens: prompt_tokens(&request),
                completion_tokens: 1,
            };
            let (events, content_type) = if streaming {
                let mut events = match api {
                    Api::OpenAi => openai_events(n, &model, &first, false),
                    Api::Anthropic => anthropic_events(n, &model, &first),
                };
                // Up to and including the first text fragment.
                let upto = events
                    .iter()
                    .position(|e| e.contains("partial"))
                    .map_or(events.len(), |i| i + 1);
                events.truncate(upto);
                (events, "text/event-stream")
            } else {
                let full = match api {
                    Api::OpenAi => openai_full(n, &model, &first),
                    Api::Anthropic => anthropic_full(n, &model, &first),
                }
                .to_string();
                let mut half = full.len() / 2;
                while !full.is_char_boundary(half) {
                    half -= 1;
                }
                (vec![full[..half].to_string()], "application/json")
            };
            stream_body(events, true, content_type, &shared)
        }
        Step::MalformedJson => {
            if streaming {
                let events = match api {
                    Api::OpenAi => vec![
                        sse(None, &openai_chunk(n, &model, json!({"role": "assistant"}), None)),
                        "data: {\"choices\": [{\"delta\": {\"content\": \"oops\n\n".to_string(),
                        "data: [DONE]\n\n".to_string(),
                    ],
                    Api::Anthropic => vec![
                        sse(
                            Some("message_start"),
                            &json!({"type": "message_start", "message": {"id": format!("msg_{n}"), "usage": {"input_tokens": 1, "output_tokens": 1}}}),
                        ),
                        "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"text\n\n".to_string(),
                        sse(Some("message_stop"), &json!({"type": "message_stop"})),
                    ],
                };
                stream_body(events, false, "text/event-stream", &shared)
            } else {
                stream_body(
                    vec!["{\"id\": \"broken\", \"choices\": [".to_string()],
                    false,
                    "application/json",
                    &shared,
                )
            }
        }
    }
}

/// A complete answer, streamed or not.
fn respond(
    api: Api,
    n: u64,
    model: &str,
    streaming: bool,
    include_usage: bool,
    answer: Answer,
    shared: &Arc<Shared>,
) -> Response {
    if !streaming {
        let body = match api {
            Api::OpenAi => openai_full(n, model, &answer),
            Api::Anthropic => anthropic_full(n, model, &answer),
        };
        return (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    let events = match api {
        Api::OpenAi => openai_events(n, model, &answer, include_usage),
        Api::Anthropic => anthropic_events(n, model, &answer),
    };
    stream_body(events, false, "text/event-stream", shared)
}

/// A 200 response whose body is `parts`, each written in two halves; with `stall`, the
/// body then stays open until the fake shuts down.
fn stream_body(
    parts: Vec<String>,
    stall: bool,
    content_type: &'static str,
    shared: &Arc<Shared>,
) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        for part in parts {
            let bytes = Bytes::from(part);
            let half = bytes.len() / 2;
            for piece in [bytes.slice(..half), bytes.slice(half..)] {
                if piece.is_empty() {
                    continue;
                }
                if tx.send(piece).await.is_err() {
                    return; // the client went away
                }
                tokio::task::yield_now().await;
            }
        }
        if stall {
            tokio::select! {
                _ = shared.stopped() => {}
                _ = tx.closed() => {}
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<Bytes, Infallible>(bytes), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    response
}

/// An API-shaped error answer with status `code`.
fn status_response(api: Api, code: u16, message: Option<&str>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = message.map_or_else(
        || format!("fake LLM scripted status {code}"),
        str::to_string,
    );
    let body = match api {
        Api::OpenAi => json!({
            "error": { "message": message, "type": "fake_error", "code": code }
        }),
        Api::Anthropic => {
            let kind = match code {
                429 => "rate_limit_error",
                529 => "overloaded_error",
                400 => "invalid_request_error",
                401 => "authentication_error",
                _ => "api_error",
            };
            json!({ "type": "error", "error": { "type": kind, "message": message } })
        }
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if code == 429 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("0"));
    }
    response
}

/// One SSE event: an optional `event:` line and one `data:` line.
fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(event) => format!("event: {event}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// `text` in word-sized fragments ("a b c" -> "a ", "b ", "c").
fn words(text: &str) -> Vec<&str> {
    text.split_inclusive(' ').collect()
}

/// `text` in three fragments of about equal size (fewer if it is short).
fn thirds(text: &str) -> Vec<&str> {
    let mut cuts = vec![0];
    for k in 1..3 {
        let mut at = text.len() * k / 3;
        while !text.is_char_boundary(at) {
            at += 1;
        }
        cuts.push(at);
    }
    cuts.push(text.len());
    cuts.windows(2)
        .map(|w| &text[w[0]..w[1]])
        .filter(|s| !s.is_empty())
        .collect()
}

fn openai_chunk(n: u64, model: &str, delta: Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": format!("chatcmpl-{n}"),
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason }],
    })
}

fn openai_events(n: u64, model: &str, answer: &Answer, include_usage: bool) -> Vec<String> {
    let mut events = Vec::new();
    match &answer.tool {
        None => {
            events.push(sse(
                None,
                &openai_chunk(n, model, json!({"role": "assistant", "content": ""}), None),
            ));
            for word in words(&answer.text) {
                events.push(sse(
                    None,
                    &openai_chunk(n, model, json!({ "content": word }), None),
                ));
            }
            events.push(sse(None, &openai_chunk(n, model, json!({}), Some("stop"))));
        }
        Some((id, name, arguments)) => {
            let start = json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "index": 0, "id": id, "type": "function",
                    "function": { "name": name, "arguments": "" },
                }],
            });
            events.push(sse(None, &openai_chunk(n, model, start, None)));
            for fragment in thirds(arguments) {
                let delta = json!({
                    "tool_calls": [{ "index": 0, "function": { "arguments": fragment } }],
                });
                events.push(sse(None, &openai_chunk(n, model, delta, None)));
            }
            events.push(sse(
                None,
                &openai_chunk(n, model, json!({}), Some("tool_calls")),
            ));
        }
    }
    if include_usage {
        events.push(sse(
            None,
            &json!({
                "id": format!("chatcmpl-{n}"),
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [],
                "usage": openai_usage(answer),
            }),
        ));
    }
    events.push("data: [DONE]\n\n".to_string());
    events
}

fn openai_usage(answer: &Answer) -> Value {
    json!({
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens.saturating_add(answer.completion_tokens),
    })
}

fn openai_full(n: u64, model: &str, answer: &Answer) -> Value {
    let (message, finish) = match &answer.tool {
        None => (
            json!({ "role": "assistant", "content": answer.text }),
            "stop",
        ),
        Some((id, name, arguments)) => (
            json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": id, "type": "function",
                    "function": { "name": name, "arguments": arguments },
                }],
            }),
            "tool_calls",
        ),
    };
    json!({
        "id": format!("chatcmpl-{n}"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
        "usage": openai_usage(answer),
    })
}

fn anthropic_events(n: u64, model: &str, answer: &Answer) -> Vec<String> {
    let mut events = vec![
        sse(
            Some("message_start"),
            &json!({
                "type": "message_start",
                "message": {
                    "id": format!("msg_{n}"), "type": "message", "role": "assistant",
                    "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": { "input_tokens": answer.prompt_tokens, "output_tokens": 1 },
                },
            }),
        ),
        sse(Some("ping"), &json!({ "type": "ping" })),
    ];
    let stop_reason = match &answer.tool {
        None => {
            events.push(sse(
                Some("content_block_start"),
                &json!({
                    "type": "content_block_start", "index": 0,
                    "content_block": { "type": "text", "text": "" },
                }),
            ));
            for word in words(&answer.text) {
                events.push(sse(
                    Some("content_block_delta"),
                    &json!({
                        "type": "content_block_delta", "index": 0,
                        "delta": { "type": "text_delta", "text": word },
                    }),
                ));
            }
            "end_turn"
        }
        Some((id, name, arguments)) => {
            events.push(sse(
                Some("content_block_start"),
                &json!({
                    "type": "content_block_start", "index": 0,
                    "content_block": { "type": "tool_use", "id": id, "name": name, "input": {} },
                }),
            ));
            for fragment in thirds(arguments) {
                events.push(sse(
                    Some("content_block_delta"),
                    &json!({
                        "type": "content_block_delta", "index": 0,
                        "delta": { "type": "input_json_delta", "partial_json": fragment },
                    }),
                ));
            }
            "tool_use"
        }
    };
    events.push(sse(
        Some("content_block_stop"),
        &json!({ "type": "content_block_stop", "index": 0 }),
    ));
    events.push(sse(
        Some("message_delta"),
        &json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop_reason, "stop_sequence": null },
            "usage": { "output_tokens": answer.completion_tokens },
        }),
    ));
    events.push(sse(
        Some("message_stop"),
        &json!({ "type": "message_stop" }),
    ));
    events
}

fn anthropic_full(n: u64, model: &str, answer: &Answer) -> Value {
    let (content, stop_reason) = match &answer.tool {
        None => (json!([{ "type": "text", "text": answer.text }]), "end_turn"),
        Some((id, name, arguments)) => {
            let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
            (
                json!([{ "type": "tool_use", "id": id, "name": name, "input": input }]),
                "tool_use",
            )
        }
    };
    json!({
        "id": format!("msg_{n}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": { "input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens },
    })
}

/// The text of the last user message that has any (both protocols; string content or
/// text parts).
fn last_user_text(request: &Value) -> String {
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return String::new();
    };
    for message in messages.iter().rev() {
        if message.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        let text = match message.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        };
        if !text.is_empty() {
            return text;
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_parse() {
        let steps = parse_script(
            r#"[{"text": "hi"}, {"tool_call": {"name": "t", "arguments": {"a": 1}}},
                {"status": 500}, {"hang": true}, {"hang_mid_stream": true}, {"malformed": true},
                {"tool_call": {"name": "u"}},
                {"reject": {"status": 400, "message": "no images"}}]"#,
        )
        .expect("valid script");
        assert_eq!(
            steps,
            vec![
                Step::Text("hi".into()),
                Step::ToolCall {
                    name: "t".into(),
                    arguments: json!({"a": 1})
                },
                Step::Status(500),
                Step::Hang,
                Step::HangMidStream,
                Step::MalformedJson,
                Step::ToolCall {
                    name: "u".into(),
                    arguments: json!({})
                },
                Step::Reject {
                    status: 400,
                    message: "no images".into()
                },
            ]
        );
        for bad in [
            r#"{"text": "x"}"#,
            r#"[{"hang": false}]"#,
            r#"[{"status": 5}]"#,
            r#"[{"dance": true}]"#,
        ] {
            assert!(parse_script(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fragments_rejoin() {
        for text in ["", "a", "ab", "{\"path\":\"é/ü\"}", "hello there world"] {
            assert_eq!(thirds(text).concat(), text);
            assert_eq!(words(text).concat(), text);
        }
        assert_eq!(words("a b c"), vec!["a ", "b ", "c"]);
    }

    #[test]
    fn last_user_text_both_shapes() {
        let openai = json!({"messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": "second"},
            {"role": "tool", "content": "out"},
        ]});
        assert_eq!(last_user_text(&openai), "second");
        let anthropic = json!({"messages": [
            {"role": "user", "content": [{"type": "text", "text": "q"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": "r"}]},
        ]});
        assert_eq!(last_user_text(&anthropic), "q");
    }
}
