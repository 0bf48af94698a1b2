//! The `canvas` skill: the agent presents content on a canvas (Markdown, HTML shown in a
//! sandboxed frame by the clients, or an image by URL) and clears it. Each presentation is
//! an event (`CanvasPresented`, `CanvasCleared`) folded into the `canvas` read model, so
//! the admin UI's state at any seq shows the canvas as it was; every connected node that
//! offers `canvas.present` (the companion app) is sent the content at once.

use async_trait::async_trait;
use clawos_events::{CanvasCleared, CanvasPresented, EventPayload};
use serde_json::json;

use super::{Skill, SkillContext, SkillOutput};
use crate::provider::ToolSpec;

/// Largest content presented.
pub const MAX_CONTENT: usize = 256 * 1024;
/// What a canvas shows.
pub const KINDS: &[&str] = &["markdown", "html", "image", "chart"];
/// The node command that renders a canvas.
pub const NODE_COMMAND: &str = "canvas.present";

/// The `canvas` skill of one agent.
pub struct CanvasSkill {
    agent: String,
}

impl CanvasSkill {
    /// The canvas of `agent`.
    pub fn new(agent: impl Into<String>) -> Self {
        CanvasSkill {
            agent: agent.into(),
        }
    }

    async fn present(&self, ctx: &SkillContext<'_>, args: &serde_json::Value) -> SkillOutput {
        let s = |k: &str| args.get(k).and_then(|v| v.as_str());
        let kind = s("kind").unwrap_or("markdown");
        if !KINDS.contains(&kind) {
            return SkillOutput::err(format!("`kind` is one of {}", KINDS.join(", ")));
        }
        let Some(content) = s("content").filter(|c| !c.is_empty()) else {
            return SkillOutput::err("present needs `content`");
        };
        if content.len() > MAX_CONTENT {
            return SkillOutput::err(format!("`content` is larger than {MAX_CONTENT} bytes"));
        }
        if kind == "image"
            && !(content.starts_with("https://") || content.starts_with("data:image/"))
        {
            return SkillOutput::err("an image is an https:// or data:image/ URL");
        }
        let title = s("title").map(String::from);
        // A chart is drawn here and presented as the image it is; the reply carries it.
        let mut drawn = None;
        let (kind, content) = if kind == "chart" {
            let svg = match super::chart::parse(content)
                .and_then(|spec| super::chart::render(&spec, title.as_deref().unwrap_or("")))
            {
                Ok(svg) => svg,
                Err(e) => return SkillOutput::err(e.to_string()),
            };
            use base64::Engine;
            let url = format!(
                "data:image/svg+xml;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(svg.as_bytes())
            );
            drawn = Some(svg);
            ("image", url)
        } else {
            (kind, content.to_string())
        };
        let content = content.as_str();
        let event = CanvasPresented {
            turn_id: ctx.turn_id,
            agent: self.agent.clone(),
            kind: kind.to_string(),
            title: title.clone(),
            content: content.to_string(),
        };
        if let Err(e) = ctx
            .recorder
            .record(EventPayload::CanvasPresented(event))
            .await
        {
            return SkillOutput::err(format!("cannot record the canvas: {e}"));
        }
        let params = json!({"kind": kind, "content": content, "title": title});
        let mut shown = 0;
        for node in ctx.recorder.nodes_offering(NODE_COMMAND).await {
            if ctx
                .recorder
                .invoke_node(&node, NODE_COMMAND, params.clone())
                .await
                .is_ok()
            {
                shown += 1;
            }
        }
        let out = SkillOutput::ok(format!(
            "presented on the canvas; shown on {shown} device(s)"
        ));
        let Some(svg) = drawn else { return out };
        match ctx
            .recorder
            .store_media("chart.svg", "image/svg+xml", svg.into_bytes())
            .await
        {
            Ok(att) => {
                let mut out = out.with_attachment(att);
                out.output.push_str("; the chart is sent with the reply");
                out
            }
            Err(_) => out,
        }
    }

    async fn clear(&self, ctx: &SkillContext<'_>) -> SkillOutput {
        let event = CanvasCleared {
            turn_id: ctx.turn_id,
            agent: self.agent.clone(),
        };
        match ctx
            .recorder
            .record(EventPayload::CanvasCleared(event))
            .await
        {
            Ok(_) => SkillOutput::ok("the canvas is clear"),
            Err(e) => SkillOutput::err(format!("cannot record the canvas: {e}")),
        }
    }
}

#[async_trait]
impl Skill for CanvasSkill {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "canvas".into(),
            description: "Show the user content on their canvas (app, admin UI): present \
                          markdown, html, an image URL or a chart (content: JSON \
                          {type:line|bar, x:[labels], series:{name:[numbers]}}); clear."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "op": {"enum": ["present", "clear"]},
                    "kind": {"enum": KINDS},
                    "title": {"type": "string"},
                    "content": {"type": "string"}
                },
                "required": ["op"]
            }),
        }
    }

    async fn call(&self, _args: &serde_json::Value) -> SkillOutput {
        SkillOutput::err("the canvas belongs to a conversation: it works only in a turn")
    }

    async fn call_in(&self, ctx: &SkillContext<'_>, args: &serde_json::Value) -> SkillOutput {
        match args.get("op").and_then(|v| v.as_str()) {
            Some("present") => self.present(ctx, args).await,
            Some("clear") => self.clear(ctx).await,
            _ => SkillOutput::err("`op` is present or clear"),
        }
    }
}
