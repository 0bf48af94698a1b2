//! The `session` skill: branch, switch, list branches and compact, the same operations as
//! the chat commands.

use async_trait::async_trait;
use serde_json::json;

use super::{service, Skill, SkillContext, SkillOutput};
use crate::provider::ToolSpec;

/// The `session` skill.
pub struct SessionSkill;

#[async_trait]
impl Skill for SessionSkill {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "session".into(),
            description: "This conversation's branches: branch, switch, list, compact.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "op": {"enum": ["branch", "switch", "list", "compact"]},
                    "name": {"type": "string"}
                },
                "required": ["op"]
            }),
        }
    }

    async fn call(&self, _: &serde_json::Value) -> SkillOutput {
        SkillOutput::err("session needs a session")
    }

    async fn call_in(&self, ctx: &SkillContext<'_>, args: &serde_json::Value) -> SkillOutput {
        let name = args.get("name").and_then(|v| v.as_str()).unwrap_or("");
        let command = match args.get("op").and_then(|v| v.as_str()) {
            Some("branch") => format!("/branch {name}"),
            Some("switch") => format!("/switch {name}"),
            Some("list") => "/branches".to_string(),
            Some("compact") => "/compact".to_string(),
            other => {
                return SkillOutput::err(format!(
                    "unknown op {other:?}; use branch, switch, list or compact"
                ))
            }
        };
        service(ctx.recorder.session_command(&command).await, |answer| {
            answer
        })
    }
}
