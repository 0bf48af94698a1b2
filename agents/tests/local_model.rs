//! The local provider against a real GGUF model (SmolLM2-135M-Instruct, Q4_1).
//!
//! The model file comes from `bash tests/fetch-models.sh` (into `.models/`), or from the
//! path in `CLAWOS_TEST_GGUF`. Without it these tests fail: they never skip.

use std::path::PathBuf;
use std::sync::Mutex;

use clawos_agents::provider::local::{self, LocalProvider};
use clawos_agents::provider::{ChatMessage, ChatRequest, ChatResponse, Provider};

const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn model_path() -> PathBuf {
    let path = match std::env::var_os("CLAWOS_TEST_GGUF") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(".models")
            .join(MODEL_FILE),
    };
    assert!(
        path.is_file(),
        "model file {} is missing: run `bash tests/fetch-models.sh` at the repo root \
         (or set CLAWOS_TEST_GGUF to a {MODEL_FILE})",
        path.display()
    );
    path
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        system: String::new(),
        messages: vec![ChatMessage::user(text)],
        tools: Vec::new(),
        max_tokens: Some(32),
    }
}

async fn chat_collect(provider: &LocalProvider, req: &ChatRequest) -> (ChatResponse, String) {
    let streamed = Mutex::new(String::new());
    let on_delta = |s: &str| streamed.lock().expect("lock").push_str(s);
    let response = provider.chat(req, &on_delta).await.expect("local chat");
    let streamed = streamed.into_inner().expect("lock");
    (response, streamed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_capital_of_france_deterministically() {
    let path = model_path();
    let provider = LocalProvider::load(&path).await.expect("load model");
    assert_eq!(provider.name(), "local");
    assert_eq!(provider.model(), "SmolLM2-135M-Instruct.Q4_1");

    let req = ask("What is the capital of France? Answer in one word.");
    let body = provider.request_body(&req);
    assert_eq!(body["model"], "SmolLM2-135M-Instruct.Q4_1");
    assert_eq!(body["max_tokens"], 32);
    let prompt = body["prompt"].as_str().expect("prompt");
    assert!(
        prompt.ends_with("<|im_start|>user\nWhat is the capital of France? Answer in one word.<|im_end|>\n<|im_start|>assistant\n"),
        "{prompt}"
    );

    let (first, streamed) = chat_collect(&provider, &req).await;
    eprintln!("answer: {:?} ({first:?})", first.content);
    assert_eq!(streamed, first.content, "streamed deltas != content");
    assert!(!first.content.trim().is_empty(), "empty answer");
    assert!(
        first
            .content
            .chars()
            .all(|c| c.is_ascii_graphic() || c.is_ascii_whitespace()),
        "not plain text: {:?}",
        first.content
    );
    assert!(first.content.contains("Paris"), "{:?}", first.content);
    assert!(first.completion_tokens > 0);
    assert!(first.prompt_tokens > 10, "{}", first.prompt_tokens);
    assert!(first.completion_tokens <= 32);
    assert!(first.tool_calls.is_empty());
    assert_eq!(first.provider, "local");
    assert_eq!(first.model, "SmolLM2-135M-Instruct.Q4_1");
    assert!(!first.content.contains("<|im_end|>"));

    let (second, _) = chat_collect(&provider, &req).await;
    assert_eq!(first, second, "two runs of the same request differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokenizer_matches_the_model_vocabulary() {
    let path = model_path();
    let model = local::LocalModel::load_async(&path).await.expect("load");
    // Special tokens are single ids; text round-trips.
    let ids = model
        .encode("<|im_start|>user\nHello world<|im_end|>")
        .expect("encode");
    assert_eq!(ids.len(), 6, "{ids:?}"); // <|im_start|> user \n Hello Ġworld <|im_end|>
    assert_eq!(ids[0], 1, "{ids:?}");
    assert_eq!(ids[5], 2, "{ids:?}");
    // max_tokens bounds the completion.
    let gen = model
        .generate_blocking(
            &local::chatml_prompt(&ask("Write a long poem about the sea.")),
            5,
            |_| true,
        )
        .expect("generate");
    assert_eq!(gen.completion_tokens, 5, "{gen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_is_measured() {
    let path = model_path();
    let tps = local::tokens_per_second(&path, 32).await.expect("bench");
    eprintln!("local model: {tps:.1} tokens/s");
    assert!(tps > 0.0);
}
