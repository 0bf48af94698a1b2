//! Images in: the images that come with a turn's message reach the model as image parts
//! (OpenAI `image_url`, Anthropic `image`), against the scripted [`FakeLlm`] over real
//! HTTP; the log records a placeholder instead of their base64; a model without vision,
//! a missing blob, the caps and a server's refusal of images give notes, never a failed
//! turn.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use clawos_agents::pi::Pi;
use clawos_agents::provider::{build, ProviderConfig, ProviderKind};
use clawos_agents::skills::SkillSet;
use clawos_agents::{Agent, AgentError, ContextMessage, TurnInput, TurnOutput, TurnRecorder};
use clawos_events::{Attachment, EventPayload, LlmRequested};
use clawos_testkit::fake_llm::{FakeLlm, Step};
use serde_json::{json, Value};

const KINDS: [ProviderKind; 2] = [ProviderKind::OpenAi, ProviderKind::Anthropic];

/// A 1x1 PNG's first 33 bytes (signature and IHDR chunk).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89";
/// [`PNG`] in base64, computed independently (Python's `base64.b64encode`).
const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ";
/// The turn's message, as the Gateway words it for one attached PNG.
const MESSAGE: &str = "what is this?\n[attached: cat.png (image/png, 33 bytes)]";

/// A recorder keeping the events in memory and serving `load_media` from a map of
/// blake3 hash to bytes.
#[derive(Default)]
struct Recorder {
    media: HashMap<String, Vec<u8>>,
    events: Mutex<Vec<EventPayload>>,
    loads: Mutex<Vec<String>>,
}

impl Recorder {
    /// A recorder whose media store holds `blobs`; their attachments, in order.
    fn with(blobs: &[(&str, &str, Vec<u8>)]) -> (Recorder, Vec<Attachment>) {
        let mut recorder = Recorder::default();
        let attachments = blobs
            .iter()
            .map(|(name, mime, bytes)| {
                let a = attachment(name, mime, bytes);
                let hash = a.blake3.clone().expect("hashed");
                recorder.media.insert(hash, bytes.clone());
                a
            })
            .collect();
        (recorder, attachments)
    }

    fn requested(&self) -> Vec<LlmRequested> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                EventPayload::LlmRequested(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| match e {
                EventPayload::LlmRequested(_) => "LlmRequested",
                EventPayload::LlmResponded(_) => "LlmResponded",
                EventPayload::ToolCalled(_) => "ToolCalled",
                EventPayload::ToolReturned(_) => "ToolReturned",
                _ => "other",
            })
            .collect()
    }
}

#[async_trait]
impl TurnRecorder for Recorder {
    async fn record(&self, payload: EventPayload) -> Result<u64, AgentError> {
        let mut events = self.events.lock().unwrap();
        events.push(payload);
        Ok(events.len() as u64)
    }

    async fn load_media(&self, attachment: &Attachment) -> Result<Vec<u8>, AgentError> {
        self.loads.lock().unwrap().push(attachment.name.clone());
        attachment
            .blake3
            .as_ref()
            .and_then(|hash| self.media.get(hash))
            .cloned()
            .ok_or_else(|| AgentError::Refused(format!("{} is missing", attachment.name)))
    }
}

fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn attachment(name: &str, mime: &str, bytes: &[u8]) -> Attachment {
    Attachment {
        name: name.into(),
        mime: Some(mime.into()),
        size: bytes.len() as u64,
        blake3: Some(hash(bytes)),
        location: None,
    }
}

fn pi(kind: ProviderKind, fake: &FakeLlm) -> Pi {
    let base_url = match kind {
        ProviderKind::OpenAi => fake.base_url_openai(),
        ProviderKind::Anthropic => fake.base_url_anthropic(),
    };
    let config = ProviderConfig {
        kind,
        base_url,
        model: format!("{kind}-model"),
        api_key: None,
        timeout: Duration::from_secs(10),
        retries: 0,
        backoff: Duration::from_millis(10),
    };
    Pi::new(
        "pi",
        build(&config),
        SkillSet::default(),
        PathBuf::from("/nonexistent/clawos-images-workspace"),
        4,
    )
}

fn input(message: &str, attachments: Vec<Attachment>) -> TurnInput {
    TurnInput {
        turn_id: uuid::Uuid::now_v7(),
        session_id: "s".into(),
        branch: "main".into(),
        trigger_seq: 1,
        message: message.into(),
        history: vec![
            ContextMessage {
                role: "user".into(),
                text: "earlier".into(),
            },
            ContextMessage {
                role: "assistant".into(),
                text: "noted".into(),
            },
        ],
        summary: None,
        attachments,
    }
}

async fn turn(pi: &Pi, input: TurnInput, recorder: &Recorder) -> Result<TurnOutput, AgentError> {
    pi.run_turn(input, recorder).await
}

/// The content of the last message of a request body.
fn last_content(request: &Value) -> &Value {
    request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .map(|m| &m["content"])
        .expect("a last message")
}

/// What a user message with text alone looks like in `kind`'s body.
fn text_only(kind: ProviderKind, text: &str) -> Value {
    match kind {
        ProviderKind::OpenAi => json!(text),
        ProviderKind::Anthropic => json!([{"type": "text", "text": text}]),
    }
}

/// What `kind` sends for the image `b64` of type `mime` with `text`.
fn with_image(kind: ProviderKind, text: &str, mime: &str, b64: &str) -> Value {
    match kind {
        ProviderKind::OpenAi => json!([
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": format!("data:{mime};base64,{b64}")}},
        ]),
        ProviderKind::Anthropic => json!([
            {"type": "image", "source": {"type": "base64", "media_type": mime, "data": b64}},
            {"type": "text", "text": text},
        ]),
    }
}

#[tokio::test]
async fn an_attached_png_reaches_the_model_as_an_image_part() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::Text("a cat".into())]);
        let (recorder, attachments) = Recorder::with(&[("cat.png", "image/png", PNG.to_vec())]);
        let out = turn(&pi(kind, &fake), input(MESSAGE, attachments), &recorder)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(out.reply, "a cat");
        let requests = fake.requests();
        assert_eq!(requests.len(), 1, "{kind}");
        assert_eq!(
            *last_content(&requests[0]),
            with_image(kind, MESSAGE, "image/png", PNG_B64),
            "{kind}"
        );
        // Only the turn's own message carries images; the history stays text.
        let messages = requests[0]["messages"].as_array().unwrap();
        let earlier = messages
            .iter()
            .find(|m| m["role"] == "user")
            .expect("the history's user message");
        assert_eq!(earlier["content"], text_only(kind, "earlier"), "{kind}");
    }
}

#[tokio::test]
async fn a_text_only_turn_sends_plain_text() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::Text("hi".into())]);
        let recorder = Recorder::default();
        let pdf = attachment("doc.pdf", "application/pdf", b"%PDF-1.7");
        let message = "read this\n[attached: doc.pdf (application/pdf, 8 bytes)]";
        turn(&pi(kind, &fake), input(message, vec![pdf]), &recorder)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(
            *last_content(&fake.requests()[0]),
            text_only(kind, message),
            "{kind}"
        );
        assert!(
            recorder.loads.lock().unwrap().is_empty(),
            "a PDF is not loaded"
        );
        let requested = recorder.requested();
        assert_eq!(requested[0].request, fake.requests()[0].to_string());
    }
}

#[tokio::test]
async fn the_log_records_a_placeholder_not_the_base64() {
    for kind in KINDS {
        // A tool call first: the image stays in the conversation for the second call.
        let fake = FakeLlm::start(vec![
            Step::ToolCall {
                name: "nope".into(),
                arguments: json!({}),
            },
            Step::Text("done".into()),
        ]);
        let (recorder, attachments) = Recorder::with(&[("cat.png", "image/png", PNG.to_vec())]);
        turn(&pi(kind, &fake), input(MESSAGE, attachments), &recorder)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let sent = fake.requests();
        let requested = recorder.requested();
        assert_eq!(sent.len(), 2, "{kind}");
        assert_eq!(requested.len(), 2, "{kind}");
        let placeholder = format!("data:image/png;blake3={};bytes=33", hash(PNG));
        let in_body = match kind {
            ProviderKind::OpenAi => format!("data:image/png;base64,{PNG_B64}"),
            ProviderKind::Anthropic => PNG_B64.to_string(),
        };
        for (recorded, sent) in requested.iter().zip(&sent) {
            assert!(
                !recorded.request.contains(PNG_B64),
                "{kind}: {}",
                recorded.request
            );
            assert!(
                recorded.request.contains(&placeholder),
                "{kind}: {}",
                recorded.request
            );
            assert!(
                sent.to_string().contains(PNG_B64),
                "{kind}: the image was sent"
            );
            assert_eq!(
                recorded.request_bytes as usize,
                sent.to_string().len(),
                "{kind}: request_bytes is the size sent"
            );
            // The placeholder is the only difference.
            let restored: Value =
                serde_json::from_str(&recorded.request.replace(&placeholder, &in_body))
                    .expect("JSON");
            assert_eq!(&restored, sent, "{kind}");
        }
    }
}

#[tokio::test]
async fn without_vision_no_image_is_sent_and_the_note_is() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::Text("ok".into())]);
        let (recorder, attachments) = Recorder::with(&[("cat.png", "image/png", PNG.to_vec())]);
        turn(
            &pi(kind, &fake).with_vision(false),
            input(MESSAGE, attachments),
            &recorder,
        )
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let expected = format!("{MESSAGE}\n[cat.png was not shown: the model cannot see images]");
        assert_eq!(
            *last_content(&fake.requests()[0]),
            text_only(kind, &expected),
            "{kind}"
        );
        assert!(
            recorder.loads.lock().unwrap().is_empty(),
            "{kind}: nothing is read from the media store"
        );
    }
}

#[tokio::test]
async fn a_missing_blob_is_a_note_not_a_failed_turn() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![Step::Text("ok".into())]);
        let recorder = Recorder::default();
        let cat = attachment("cat.png", "image/png", PNG);
        let out = turn(&pi(kind, &fake), input(MESSAGE, vec![cat]), &recorder)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(out.reply, "ok");
        let expected = format!(
            "{MESSAGE}\n[cat.png was not shown: its bytes could not be read from the media store]"
        );
        assert_eq!(
            *last_content(&fake.requests()[0]),
            text_only(kind, &expected),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn caps_and_types_are_notes() {
    let png = |n: u8| {
        let mut bytes = PNG.to_vec();
        bytes.push(n);
        bytes
    };
    let mut big = PNG.to_vec();
    big.resize(5 * 1024 * 1024 + 1, 0);
    let jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
    let (recorder, mut attachments) = Recorder::with(&[
        ("big.png", "image/png", big),
        ("fake.png", "image/png", b"not an image".to_vec()),
        ("one.png", "image/png", png(1)),
        // Declared as PNG, really a JPEG: sent as what it is.
        ("two.png", "image/png", jpeg.clone()),
        ("three.png", "image/png", png(3)),
        ("four.png", "", png(4)),
        ("five.png", "image/png", png(5)),
        ("doc.pdf", "application/pdf", b"%PDF-1.7".to_vec()),
    ]);
    // No type at all: recognised by its name.
    attachments[5].mime = None;
    let fake = FakeLlm::start(vec![Step::Text("ok".into())]);
    turn(
        &pi(ProviderKind::OpenAi, &fake),
        input("look", attachments),
        &recorder,
    )
    .await
    .expect("the turn runs");
    let content = last_content(&fake.requests()[0]).clone();
    let parts = content.as_array().expect("parts");
    let urls: Vec<&str> = parts[1..]
        .iter()
        .map(|p| p["image_url"]["url"].as_str().expect("an image_url part"))
        .collect();
    let url = |mime: &str, bytes: &[u8]| {
        format!(
            "data:{mime};base64,{}",
            clawos_agents::provider::image::base64(bytes)
        )
    };
    assert_eq!(
        urls,
        [
            url("image/png", &png(1)),
            url("image/jpeg", &jpeg),
            url("image/png", &png(3)),
            url("image/png", &png(4)),
        ]
    );
    assert_eq!(
        parts[0]["text"],
        "look\n[big.png was not shown: 5242881 bytes is above the 5242880-byte cap on images]\
         \n[fake.png was not shown: it is not a PNG, JPEG, GIF or WebP image]\
         \n[five.png was not shown: at most 4 images are sent with a message]"
    );
    assert!(
        !recorder
            .loads
            .lock()
            .unwrap()
            .contains(&"big.png".to_string()),
        "an image above the cap is not read"
    );
}

#[tokio::test]
async fn a_refusal_of_the_images_is_asked_again_without_them() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![
            Step::Reject {
                status: 400,
                message: "this model does not support image input".into(),
            },
            Step::Text("I cannot see it".into()),
        ]);
        let (recorder, attachments) = Recorder::with(&[("cat.png", "image/png", PNG.to_vec())]);
        let out = turn(&pi(kind, &fake), input(MESSAGE, attachments), &recorder)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(out.reply, "I cannot see it");
        let sent = fake.requests();
        assert_eq!(sent.len(), 2, "{kind}");
        assert_eq!(
            *last_content(&sent[0]),
            with_image(kind, MESSAGE, "image/png", PNG_B64)
        );
        let expected = format!("{MESSAGE}\n[cat.png was not shown: the model cannot see images]");
        assert_eq!(
            *last_content(&sent[1]),
            text_only(kind, &expected),
            "{kind}"
        );
        assert_eq!(
            recorder.kinds(),
            ["LlmRequested", "LlmRequested", "LlmResponded"],
            "{kind}"
        );
        assert_eq!(recorder.requested()[1].request, sent[1].to_string());
    }
}

#[tokio::test]
async fn other_client_errors_are_not_asked_again() {
    for kind in KINDS {
        let fake = FakeLlm::start(vec![
            Step::Reject {
                status: 400,
                message: "max_tokens is too large".into(),
            },
            Step::Text("unreached".into()),
        ]);
        let (recorder, attachments) = Recorder::with(&[("cat.png", "image/png", PNG.to_vec())]);
        let result = turn(&pi(kind, &fake), input(MESSAGE, attachments), &recorder).await;
        assert!(
            matches!(result, Err(AgentError::Provider(_))),
            "{kind}: {result:?}"
        );
        assert_eq!(fake.requests().len(), 1, "{kind}");
    }
}
