//! The providers over real HTTP against the scripted [`FakeLlm`], for both protocols.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use clawos_agents::provider::{
    build, ChatMessage, ChatRequest, ChatResponse, Failover, Provider, ProviderConfig,
    ProviderError, ProviderKind, ToolSpec,
};
use clawos_events::ToolCallRequest;
use clawos_testkit::fake_llm::{self, FakeLlm, Step};
use serde_json::{json, Value};

const KINDS: [ProviderKind; 2] = [ProviderKind::OpenAi, ProviderKind::Anthropic];

/// A short timeout for the hang tests.
const SHORT: Duration = Duration::from_millis(300);

fn config(kind: ProviderKind, fake: &FakeLlm) -> ProviderConfig {
    let base_url = match kind {
        ProviderKind::OpenAi => fake.base_url_openai(),
        ProviderKind::Anthropic => fake.base_url_anthropic(),
    };
    ProviderConfig {
        kind,
        base_url,
        model: format!("{kind}-model"),
        api_key: None,
        // Generous: the machine may be busy compiling; hang tests use SHORT.
        timeout: Duration::from_secs(10),
        retries: 0,
        backoff: Duration::from_millis(10),
    }
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        system: "You are a test.".into(),
        messages: vec![ChatMessage::user(text)],
        tools: vec![],
        max_tokens: None,
    }
}

/// Run `provider.chat`, collecting the deltas.
async fn chat(
    provider: &dyn Provider,
    req: &ChatRequest,
) -> (Result<ChatResponse, ProviderError>, Vec<String>) {
    let deltas = Mutex::new(Vec::new());
    let on_delta = |d: &str| deltas.lock().unwrap().push(d.to_string());
    let result = provider.chat(req, &on_delta).await;
    (result, deltas.into_inner().unwrap())
}

#[tokio::test]
async fn streamed_text_arrives_in_deltas_with_usage() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::Text("Hello there, world".into())]);
        let provider = build(&config(kind, &fake));
        assert_eq!(provider.name(), kind.as_str());
        assert_eq!(provider.model(), format!("{kind}-model"));
        let (result, deltas) = chat(provider.as_ref(), &ask("hi")).await;
        let resp = result.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(deltas, vec!["Hello ", "there, ", "world"], "{kind}");
        assert_eq!(resp.content, "Hello there, world");
        assert!(resp.tool_calls.is_empty());
        assert_eq!(resp.provider, kind.as_str());
        assert_eq!(resp.model, format!("{kind}-model"));
        let requests = fake.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(resp.prompt_tokens, fake_llm::prompt_tokens(&requests[0]));
        assert!(resp.prompt_tokens > 1);
        assert_eq!(resp.completion_tokens, 3);
    }
}

#[tokio::test]
async fn tool_calls_are_assembled_from_fragments() {
    let arguments = json!({"path": "notes/today.md", "lines": [1, 2], "note": "héllo"});
    for kind in KINDS {
        let step = Step::ToolCall {
            name: "read_file".into(),
            arguments: arguments.clone(),
        };
        let fake = FakeLlm::start(vec![step.clone()]);
        let provider = build(&config(kind, &fake));
        let mut req = ask("read my notes");
        req.tools.push(ToolSpec {
            name: "read_file".into(),
            description: "Read a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        });
        let (result, deltas) = chat(provider.as_ref(), &req).await;
        let resp = result.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(deltas.is_empty(), "{kind}: {deltas:?}");
        assert_eq!(resp.content, "");
        assert_eq!(resp.tool_calls.len(), 1, "{kind}");
        let call = &resp.tool_calls[0];
        let expected_id = match kind {
            ProviderKind::OpenAi => "call_1",
            ProviderKind::Anthropic => "toolu_1",
        };
        assert_eq!(call.call_id, expected_id);
        assert_eq!(call.tool, "read_file");
        let parsed: Value = serde_json::from_str(&call.arguments).unwrap();
        assert_eq!(parsed, arguments, "{kind}");
        assert_eq!(
            resp.completion_tokens,
            fake_llm::completion_tokens(&step),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn recorded_request_bodies_match_request_body() {
    let req = ChatRequest {
        system: "Be brief.".into(),
        messages: vec![
            ChatMessage::user("what's in notes?"),
            ChatMessage::Assistant {
                text: "Let me look.".into(),
                tool_calls: vec![ToolCallRequest {
                    call_id: "call_9".into(),
                    tool: "list".into(),
                    arguments: r#"{"dir":"notes"}"#.into(),
                }],
            },
            ChatMessage::Tool {
                call_id: "call_9".into(),
                name: "list".into(),
                output: "a.md\nb.md".into(),
            },
            ChatMessage::Assistant {
                text: "Two files.".into(),
                tool_calls: vec![],
            },
            ChatMessage::user("thanks"),
        ],
        tools: vec![ToolSpec {
            name: "list".into(),
            description: "List a folder".into(),
            parameters: json!({"type": "object", "properties": {"dir": {"type": "string"}}, "required": ["dir"]}),
        }],
        max_tokens: Some(256),
    };
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::Text("ok".into())]);
        let provider = build(&config(kind, &fake));
        let (result, _) = chat(provider.as_ref(), &req).await;
        result.unwrap_or_else(|e| panic!("{kind}: {e}"));
        let requests = fake.requests();
        assert_eq!(requests, vec![provider.request_body(&req)], "{kind}");
        let body = &requests[0];
        assert_eq!(body["stream"], json!(true));
        assert_eq!(body["model"], json!(format!("{kind}-model")));
        match kind {
            ProviderKind::OpenAi => {
                assert_eq!(body["stream_options"], json!({"include_usage": true}));
                assert_eq!(body["max_tokens"], json!(256));
                assert_eq!(
                    body["messages"][0],
                    json!({"role": "system", "content": "Be brief."})
                );
                assert_eq!(
                    body["messages"][2]["tool_calls"][0]["function"]["name"],
                    "list"
                );
                assert_eq!(
                    body["messages"][3],
                    json!({"role": "tool", "tool_call_id": "call_9", "content": "a.md\nb.md"})
                );
                assert_eq!(body["tools"][0]["type"], "function");
            }
            ProviderKind::Anthropic => {
                assert_eq!(body["system"], json!("Be brief."));
                assert_eq!(body["max_tokens"], json!(256));
                assert_eq!(body["messages"][1]["content"][1]["type"], "tool_use");
                assert_eq!(
                    body["messages"][1]["content"][1]["input"],
                    json!({"dir": "notes"})
                );
                assert_eq!(
                    body["messages"][2]["content"][0],
                    json!({"type": "tool_result", "tool_use_id": "call_9", "content": "a.md\nb.md"})
                );
                assert_eq!(body["tools"][0]["input_schema"]["required"], json!(["dir"]));
            }
        }
    }
}

#[tokio::test]
async fn anthropic_max_tokens_defaults_to_1024() {
    let fake = FakeLlm::start(vec![]);
    let provider = build(&config(ProviderKind::Anthropic, &fake));
    let (result, _) = chat(provider.as_ref(), &ask("hi")).await;
    assert_eq!(result.unwrap().content, "(script exhausted)");
    assert_eq!(fake.requests()[0]["max_tokens"], json!(1024));
}

#[tokio::test]
async fn auth_and_version_headers_are_sent() {
    let header = |headers: &[(String, String)], name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let fake = FakeLlm::start(vec![]);
    let mut openai = config(ProviderKind::OpenAi, &fake);
    openai.api_key = Some("sk-test".into());
    chat(build(&openai).as_ref(), &ask("a")).await.0.unwrap();
    let mut anthropic = config(ProviderKind::Anthropic, &fake);
    anthropic.api_key = Some("sk-ant-test".into());
    chat(build(&anthropic).as_ref(), &ask("b")).await.0.unwrap();
    let keyless = config(ProviderKind::OpenAi, &fake);
    chat(build(&keyless).as_ref(), &ask("c")).await.0.unwrap();

    let headers = fake.request_headers();
    assert_eq!(
        header(&headers[0], "authorization").as_deref(),
        Some("Bearer sk-test")
    );
    assert_eq!(
        header(&headers[1], "x-api-key").as_deref(),
        Some("sk-ant-test")
    );
    assert_eq!(
        header(&headers[1], "anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(header(&headers[1], "authorization"), None);
    assert_eq!(header(&headers[2], "authorization"), None);
}

#[tokio::test]
async fn openai_base_url_without_v1_works() {
    let fake = FakeLlm::start(vec![Step::Text("plain".into())]);
    let mut cfg = config(ProviderKind::OpenAi, &fake);
    cfg.base_url = format!("http://{}/", fake.addr());
    let (result, _) = chat(build(&cfg).as_ref(), &ask("hi")).await;
    assert_eq!(result.unwrap().content, "plain");
}

#[tokio::test]
async fn rate_limit_is_retried() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::Status(429), Step::Text("after the wait".into())]);
        let mut cfg = config(kind, &fake);
        cfg.retries = 2;
        let (result, _) = chat(build(&cfg).as_ref(), &ask("hi")).await;
        assert_eq!(
            result.unwrap_or_else(|e| panic!("{kind}: {e}")).content,
            "after the wait"
        );
        assert_eq!(fake.requests().len(), 2, "{kind}");
    }
}

#[tokio::test]
async fn rate_limit_without_retries_is_an_error() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::Status(429)]);
        let (result, _) = chat(build(&config(kind, &fake)).as_ref(), &ask("hi")).await;
        assert_eq!(
            result.unwrap_err(),
            ProviderError::RateLimited {
                retry_after: Some(Duration::ZERO)
            },
            "{kind}"
        );
    }
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::Status(400), Step::Text("never".into())]);
        let mut cfg = config(kind, &fake);
        cfg.retries = 3;
        let (result, _) = chat(build(&cfg).as_ref(), &ask("hi")).await;
        match result {
            Err(ProviderError::Http { status: 400, body }) => {
                assert!(body.contains("scripted status 400"), "{kind}: {body}")
            }
            other => panic!("{kind}: {other:?}"),
        }
        assert_eq!(fake.requests().len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn server_errors_exhaust_retries_then_fail_over() {
    let first = FakeLlm::start(vec![
        Step::Status(500),
        Step::Status(502),
        Step::Status(503),
    ]);
    let second = FakeLlm::start(vec![Step::Text("second here".into())]);
    let mut a = config(ProviderKind::OpenAi, &first);
    a.retries = 2;
    let mut b = config(ProviderKind::Anthropic, &second);
    b.model = "backup-model".into();
    let failover = Failover::new(vec![build(&a), build(&b)]);
    assert_eq!(failover.name(), "openai");
    assert_eq!(failover.model(), "openai-model");
    let req = ask("hi");
    assert_eq!(failover.request_body(&req), build(&a).request_body(&req));

    let started = Instant::now();
    let (result, deltas) = chat(&failover, &req).await;
    let resp = result.unwrap();
    assert_eq!(resp.content, "second here");
    assert_eq!(resp.provider, "anthropic");
    assert_eq!(resp.model, "backup-model");
    assert_eq!(deltas.concat(), "second here");
    assert_eq!(first.requests().len(), 3, "one attempt and two retries");
    assert_eq!(second.requests().len(), 1);
    // Backoff 10 ms then 20 ms.
    assert!(started.elapsed() >= Duration::from_millis(30));
}

#[tokio::test]
async fn all_failed_lists_every_reason() {
    let first = FakeLlm::start(vec![Step::Status(500)]);
    let second = FakeLlm::start(vec![Step::MalformedJson]);
    let failover = Failover::new(vec![
        build(&config(ProviderKind::Anthropic, &first)),
        build(&config(ProviderKind::OpenAi, &second)),
    ]);
    let (result, _) = chat(&failover, &ask("hi")).await;
    match result {
        Err(ProviderError::AllFailed(reasons)) => {
            assert_eq!(reasons.len(), 2, "{reasons:?}");
            assert!(reasons[0].starts_with("anthropic/anthropic-model: "));
            assert!(reasons[0].contains("HTTP 500"), "{}", reasons[0]);
            assert!(reasons[1].starts_with("openai/openai-model: "));
            assert!(reasons[1].contains("malformed"), "{}", reasons[1]);
        }
        other => panic!("{other:?}"),
    }
    let empty = Failover::new(vec![]);
    assert_eq!(empty.name(), "");
    let (result, _) = chat(&empty, &ask("hi")).await;
    assert_eq!(result.unwrap_err(), ProviderError::AllFailed(vec![]));
}

#[tokio::test]
async fn hang_times_out_within_the_configured_timeout() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::Hang]);
        let mut cfg = config(kind, &fake);
        cfg.timeout = SHORT;
        let started = Instant::now();
        let (result, _) = chat(build(&cfg).as_ref(), &ask("hi")).await;
        let elapsed = started.elapsed();
        assert_eq!(result.unwrap_err(), ProviderError::Timeout(SHORT), "{kind}");
        assert!(elapsed >= SHORT, "{kind}: {elapsed:?}");
        assert!(elapsed < SHORT * 5, "{kind}: {elapsed:?}");
    }
}

#[tokio::test]
async fn hang_mid_stream_times_out() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::HangMidStream]);
        let mut cfg = config(kind, &fake);
        cfg.timeout = SHORT;
        let started = Instant::now();
        let (result, deltas) = chat(build(&cfg).as_ref(), &ask("hi")).await;
        let elapsed = started.elapsed();
        assert_eq!(result.unwrap_err(), ProviderError::Timeout(SHORT), "{kind}");
        assert_eq!(deltas, vec!["partial "], "{kind}: the first chunk arrived");
        assert!(elapsed >= SHORT, "{kind}: {elapsed:?}");
        assert!(elapsed < SHORT * 5, "{kind}: {elapsed:?}");
    }
}

#[tokio::test]
async fn a_timeout_is_retried() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::Hang, Step::Text("second try".into())]);
        let mut cfg = config(kind, &fake);
        cfg.timeout = SHORT;
        cfg.retries = 1;
        let (result, _) = chat(build(&cfg).as_ref(), &ask("hi")).await;
        assert_eq!(
            result.unwrap_or_else(|e| panic!("{kind}: {e}")).content,
            "second try"
        );
        assert_eq!(fake.requests().len(), 2);
    }
}

#[tokio::test]
async fn malformed_json_is_malformed_and_not_retried() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::MalformedJson, Step::Text("never".into())]);
        let mut cfg = config(kind, &fake);
        cfg.retries = 2;
        let (result, _) = chat(build(&cfg).as_ref(), &ask("hi")).await;
        assert!(
            matches!(result, Err(ProviderError::Malformed(_))),
            "{kind}: {result:?}"
        );
        assert_eq!(fake.requests().len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn unreachable_server_is_a_connect_error() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    for kind in KINDS {
        let cfg = ProviderConfig {
            base_url: format!("http://{addr}"),
            retries: 1,
            backoff: Duration::from_millis(5),
            ..ProviderConfig::new(kind, "", "m")
        };
        let (result, _) = chat(build(&cfg).as_ref(), &ask("hi")).await;
        assert!(
            matches!(result, Err(ProviderError::Connect(_))),
            "{kind}: {result:?}"
        );
    }
}

#[tokio::test]
async fn echo_mode_and_exhausted_script() {
    let echo = FakeLlm::echo();
    let exhausted = FakeLlm::start(vec![Step::Text("only".into())]);
    for kind in KINDS {
        let (result, _) = chat(build(&config(kind, &echo)).as_ref(), &ask("ping me")).await;
        assert_eq!(result.unwrap().content, "echo: ping me", "{kind}");
    }
    let provider = build(&config(ProviderKind::OpenAi, &exhausted));
    assert_eq!(
        chat(provider.as_ref(), &ask("1")).await.0.unwrap().content,
        "only"
    );
    assert_eq!(
        chat(provider.as_ref(), &ask("2")).await.0.unwrap().content,
        "(script exhausted)"
    );
}

/// The fake's non-streaming mode, as plain HTTP clients see it.
#[tokio::test]
async fn fake_answers_non_streaming_requests() {
    let fake = FakeLlm::start(vec![
        Step::Text("whole answer".into()),
        Step::ToolCall {
            name: "t".into(),
            arguments: json!({"a": 1}),
        },
        Step::MalformedJson,
    ]);
    let client = reqwest::Client::new();
    let openai: Value = client
        .post(format!("{}/chat/completions", fake.base_url_openai()))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        openai["choices"][0]["message"]["content"],
        json!("whole answer")
    );
    assert_eq!(openai["usage"]["completion_tokens"], json!(2));
    let anthropic: Value = client
        .post(format!("{}/v1/messages", fake.base_url_anthropic()))
        .json(
            &json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anthropic["content"][0]["type"], json!("tool_use"));
    assert_eq!(anthropic["content"][0]["input"], json!({"a": 1}));
    assert_eq!(anthropic["stop_reason"], json!("tool_use"));
    let broken = client
        .post(format!("http://{}/v1/chat/completions", fake.addr()))
        .json(&json!({"model": "m", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 200);
    let broken = broken.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&broken).is_err(), "{broken}");
    assert_eq!(fake.remaining(), 0, "{:?}", fake.requests());
}

#[tokio::test]
async fn standalone_serves_a_script_file() {
    let dir = std::env::temp_dir().join(format!("clawos-fake-llm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("script.json");
    std::fs::write(
        &path,
        r#"[{"text": "from the file"}, {"tool_call": {"name": "t", "arguments": {"x": 1}}}]"#,
    )
    .unwrap();
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let server = tokio::spawn(fake_llm::run_standalone(addr, Some(path.clone())));
    let cfg = ProviderConfig {
        retries: 20,
        backoff: Duration::from_millis(10),
        ..ProviderConfig::new(ProviderKind::OpenAi, format!("http://{addr}/v1"), "m")
    };
    let provider = build(&cfg);
    let first = chat(provider.as_ref(), &ask("a")).await.0.unwrap();
    assert_eq!(first.content, "from the file");
    let second = chat(provider.as_ref(), &ask("b")).await.0.unwrap();
    assert_eq!(second.tool_calls[0].tool, "t");
    assert_eq!(second.tool_calls[0].arguments, r#"{"x":1}"#);
    server.abort();

    let missing = fake_llm::run_standalone(addr, Some(dir.join("missing.json"))).await;
    assert!(matches!(missing, Err(fake_llm::FakeLlmError::Io(_))));
    std::fs::write(&path, r#"[{"dance": true}]"#).unwrap();
    let bad = fake_llm::run_standalone(addr, Some(path)).await;
    assert!(matches!(bad, Err(fake_llm::FakeLlmError::Script(_))));
    let _ = std::fs::remove_dir_all(&dir);
}
