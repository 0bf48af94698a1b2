//! The local provider on a Qwen2-architecture GGUF: a tiny one written here (random
//! weights, a byte-level vocabulary, Qwen2's pre-tokenizer name and a chat template that
//! teaches `<tool_call>`), so the loading path for that architecture, its tokenizer and
//! its template run without a multi-hundred-megabyte download.

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use serde_json::json;

use super::chat::{ChatMessage, ChatRequest, Provider, ToolSpec};
use super::local::{LocalModel, LocalProvider};

const HIDDEN: usize = 16;
const KV: usize = 8;
const FFN: usize = 32;
const TEMPLATE: &str = "{%- if tools %}<|im_start|>system\n# Tools\n<tools>{% for t in tools %}{{ t | tojson }}{% endfor %}</tools>\nAnswer with <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call><|im_end|>\n{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

fn tiny_qwen2(path: &std::path::Path) {
    use gguf_file::Value;
    let device = Device::Cpu;
    let mut tokens: Vec<String> = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
        .into_iter()
        .map(String::from)
        .collect();
    tokens.sort();
    tokens.extend(["<|endoftext|>", "<|im_start|>", "<|im_end|>"].map(String::from));
    let vocab = tokens.len();
    let types: Vec<Value> = (0..vocab)
        .map(|i| Value::I32(if i >= vocab - 3 { 3 } else { 1 }))
        .collect();
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("qwen2".into())),
        ("qwen2.attention.head_count", Value::U32(2)),
        ("qwen2.attention.head_count_kv", Value::U32(1)),
        ("qwen2.embedding_length", Value::U32(HIDDEN as u32)),
        ("qwen2.context_length", Value::U32(256)),
        ("qwen2.block_count", Value::U32(1)),
        ("qwen2.attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
        ("qwen2.rope.freq_base", Value::F32(10000.0)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("qwen2".into())),
        (
            "tokenizer.ggml.tokens",
            Value::Array(tokens.iter().cloned().map(Value::String).collect()),
        ),
        ("tokenizer.ggml.merges", Value::Array(Vec::new())),
        ("tokenizer.ggml.token_type", Value::Array(types)),
        (
            "tokenizer.ggml.eos_token_id",
            Value::U32((vocab - 1) as u32),
        ),
        ("tokenizer.chat_template", Value::String(TEMPLATE.into())),
    ];
    let random = |dims: &[usize]| {
        let t = Tensor::randn(0f32, 0.2, dims, &device).unwrap();
        QTensor::quantize(&t, GgmlDType::F32).unwrap()
    };
    let ones = |n: usize| {
        QTensor::quantize(
            &Tensor::ones(n, candle_core::DType::F32, &device).unwrap(),
            GgmlDType::F32,
        )
        .unwrap()
    };
    let tensors: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), random(&[vocab, HIDDEN])),
        ("output_norm.weight".into(), ones(HIDDEN)),
        ("blk.0.attn_q.weight".into(), random(&[HIDDEN, HIDDEN])),
        ("blk.0.attn_k.weight".into(), random(&[KV, HIDDEN])),
        ("blk.0.attn_v.weight".into(), random(&[KV, HIDDEN])),
        ("blk.0.attn_q.bias".into(), random(&[HIDDEN])),
        ("blk.0.attn_k.bias".into(), random(&[KV])),
        ("blk.0.attn_v.bias".into(), random(&[KV])),
        ("blk.0.attn_output.weight".into(), random(&[HIDDEN, HIDDEN])),
        ("blk.0.ffn_gate.weight".into(), random(&[FFN, HIDDEN])),
        ("blk.0.ffn_up.weight".into(), random(&[FFN, HIDDEN])),
        ("blk.0.ffn_down.weight".into(), random(&[HIDDEN, FFN])),
        ("blk.0.attn_norm.weight".into(), ones(HIDDEN)),
        ("blk.0.ffn_norm.weight".into(), ones(HIDDEN)),
    ];
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &md, &ts).unwrap();
}

#[tokio::test]
async fn a_qwen2_gguf_loads_tokenizes_runs_and_is_prompted_with_its_template() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-qwen2.gguf");
    tiny_qwen2(&path);
    let model = LocalModel::load_async(&path)
        .await
        .expect("a qwen2 GGUF loads");
    assert!(
        model.format().knows_tools(),
        "its template teaches tool calls"
    );
    // Qwen2's pattern splits digits one by one; special tokens stay whole.
    let ids = model.encode("<|im_start|>ab 12").unwrap();
    assert_eq!(
        ids[0] as usize,
        model.encode("<|im_start|>").unwrap()[0] as usize
    );
    assert_eq!(ids.len(), 1 + 2 + 1 + 2, "{ids:?}");
    let generated = model
        .generate_blocking(
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
            4,
            |_| true,
        )
        .expect("it generates");
    assert!(generated.completion_tokens <= 4);

    let provider = LocalProvider::new(model);
    let mut req = ChatRequest {
        system: String::new(),
        messages: vec![ChatMessage::user("hi")],
        tools: vec![ToolSpec {
            name: "fs".into(),
            description: "files".into(),
            parameters: json!({"type": "object"}),
        }],
        max_tokens: Some(2),
    };
    let prompt = provider.request_body(&req)["prompt"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        prompt.starts_with("<|im_start|>system\n# Tools\n<tools>"),
        "{prompt}"
    );
    req.tools.clear();
    let prompt = provider.request_body(&req)["prompt"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        prompt.starts_with("<|im_start|>system\nYou are a helpful"),
        "ChatML without tools: {prompt}"
    );
    let answer = provider
        .chat(&req, &|_: &str| {})
        .await
        .expect("a turn runs");
    assert!(answer.tool_calls.is_empty());
}
