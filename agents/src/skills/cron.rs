//! The `cron` skill: schedule, list and cancel prompts in this session.

use async_trait::async_trait;
use serde_json::json;

use super::{service, Skill, SkillContext, SkillOutput};
use crate::provider::ToolSpec;

/// The `cron` skill.
pub struct CronSkill;

#[async_trait]
impl Skill for CronSkill {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "cron".into(),
            description: "Scheduled prompts to yourself in this chat.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "op": {"enum": ["schedule", "list", "cancel"]},
                    "schedule": {"type": "string", "description": "every 30m | at 2026-01-01T08:00:00Z"},
                    "prompt": {"type": "string"},
                    "id": {"type": "string"}
                },
                "required": ["op"]
            }),
        }
    }

    async fn call(&self, _: &serde_json::Value) -> SkillOutput {
        SkillOutput::err("cron needs a session")
    }

    async fn call_in(&self, ctx: &SkillContext<'_>, args: &serde_json::Value) -> SkillOutput {
        let s = |k: &str| args.get(k).and_then(|v| v.as_str()).unwrap_or("");
        match s("op") {
            "schedule" => service(
                ctx.recorder.schedule(s("schedule"), s("prompt")).await,
                |id| format!("scheduled ({id})"),
            ),
            "list" => service(ctx.recorder.cron_jobs().await, |jobs| {
                if jobs.is_empty() {
                    "no jobs".into()
                } else {
                    jobs.join("\n")
                }
            }),
            "cancel" => match uuid::Uuid::parse_str(s("id")) {
                Ok(id) => service(ctx.recorder.cancel_cron(id).await, |found| {
                    if found {
                        "cancelled".into()
                    } else {
                        "no such job".into()
                    }
                }),
                Err(_) => SkillOutput::err("cancel needs the job's `id`"),
            },
            other => SkillOutput::err(format!(
                "unknown op `{other}`; use schedule, list or cancel"
            )),
        }
    }
}
