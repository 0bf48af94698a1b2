//! The `nodes` skill: list the devices paired with the Gateway as nodes (phones,
//! computers) and run their commands (`canvas.present`, `camera.snap`, `location.get`,
//! `system.notify`, ...). The Gateway records every invocation and its result.

use async_trait::async_trait;
use serde_json::json;

use super::{cap, service, Skill, SkillContext, SkillOutput};
use crate::provider::ToolSpec;

/// Most bytes of a node's result given back to the model.
const MAX_RESULT: usize = 16 * 1024;

/// The `nodes` skill.
pub struct NodesSkill;

#[async_trait]
impl Skill for NodesSkill {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "nodes".into(),
            description: "The person's paired devices: list them, or run a command one offers."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "op": {"enum": ["list", "invoke"]},
                    "node": {"type": "string"},
                    "command": {"type": "string"},
                    "params": {"type": "object"}
                },
                "required": ["op"]
            }),
        }
    }

    async fn call(&self, _: &serde_json::Value) -> SkillOutput {
        SkillOutput::err("nodes needs a turn")
    }

    async fn call_in(&self, ctx: &SkillContext<'_>, args: &serde_json::Value) -> SkillOutput {
        let s = |k: &str| args.get(k).and_then(|v| v.as_str()).unwrap_or("");
        match s("op") {
            "list" => service(ctx.recorder.nodes().await, |nodes| {
                if nodes.is_empty() {
                    "no node is connected".into()
                } else {
                    nodes.join("\n")
                }
            }),
            "invoke" if s("node").is_empty() || s("command").is_empty() => {
                SkillOutput::err("invoke needs `node` and `command` (op list shows them)")
            }
            "invoke" => {
                let params = args
                    .get("params")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null);
                service(
                    ctx.recorder
                        .invoke_node(s("node"), s("command"), params)
                        .await,
                    |r| cap(r, MAX_RESULT),
                )
            }
            other => SkillOutput::err(format!("unknown op `{other}`; use list or invoke")),
        }
    }
}
