//! The `memory` skill: remember, recall and forget long-term memories of the person the
//! session belongs to. The writes are events (`MemoryWritten`, `MemoryForgotten`); recall is
//! served by the host's memory index.

use async_trait::async_trait;
use serde_json::json;

use super::{service, Skill, SkillContext, SkillOutput};
use crate::provider::ToolSpec;

/// The `memory` skill.
pub struct MemorySkill;

#[async_trait]
impl Skill for MemorySkill {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "memory".into(),
            description: "Long-term memory of this person: remember, recall, forget.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "op": {"enum": ["remember", "recall", "forget"]},
                    "text": {"type": "string"},
                    "id": {"type": "string"}
                },
                "required": ["op"]
            }),
        }
    }

    async fn call(&self, _: &serde_json::Value) -> SkillOutput {
        SkillOutput::err("memory needs a session")
    }

    async fn call_in(&self, ctx: &SkillContext<'_>, args: &serde_json::Value) -> SkillOutput {
        let s = |k: &str| args.get(k).and_then(|v| v.as_str()).unwrap_or("");
        match s("op") {
            "remember" if !s("text").trim().is_empty() => {
                service(ctx.recorder.remember(s("text"), &[]).await, |id| {
                    format!("remembered ({id})")
                })
            }
            "recall" if !s("text").trim().is_empty() => {
                service(ctx.recorder.recall(s("text"), 5).await, |hits| {
                    if hits.is_empty() {
                        "nothing remembered about that".into()
                    } else {
                        hits.iter()
                            .map(|h| format!("{} ({})", h.text, h.id))
                            .collect::<Vec<_>>()
                            .join("\n")
                    }
                })
            }
            "forget" => match uuid::Uuid::parse_str(s("id")) {
                Ok(id) => service(ctx.recorder.forget(id).await, |found| {
                    if found {
                        "forgotten".into()
                    } else {
                        "no such memory".into()
                    }
                }),
                Err(_) => SkillOutput::err("forget needs the memory's `id`"),
            },
            "remember" | "recall" => SkillOutput::err("`text` is required"),
            other => SkillOutput::err(format!(
                "unknown op `{other}`; use remember, recall or forget"
            )),
        }
    }
}
