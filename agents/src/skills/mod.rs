//! Skills: the tools Pi offers the model. Each has a JSON schema (kept short: every byte
//! of it is paid for in every request) and runs in-process under limits the kernel's
//! configuration sets, never limits the prompt asks for.

pub mod browser;
pub mod calendar;
pub mod canvas;
pub mod chart;
pub mod cron;
pub mod editor;
pub mod fs;
pub mod mcp;
pub mod memory;
pub mod nodes;
pub mod session;
pub mod shell;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::provider::ToolSpec;

/// What a skill call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillOutput {
    /// Text given back to the model.
    pub output: String,
    /// 0 on success; non-zero on failure or refusal.
    pub exit_status: i32,
    /// Files the skill produced for the person (a screenshot, a chart), already in the
    /// media store; the reply carries them.
    pub attachments: Vec<clawos_events::Attachment>,
}

impl SkillOutput {
    /// A success.
    pub fn ok(output: impl Into<String>) -> Self {
        SkillOutput {
            output: output.into(),
            exit_status: 0,
            attachments: Vec::new(),
        }
    }

    /// A failure or refusal, explained to the model.
    pub fn err(output: impl Into<String>) -> Self {
        SkillOutput {
            output: output.into(),
            exit_status: 1,
            attachments: Vec::new(),
        }
    }

    /// The same output, carrying `attachment` to the person.
    pub fn with_attachment(mut self, attachment: clawos_events::Attachment) -> Self {
        self.attachments.push(attachment);
        self
    }
}

/// What a skill may know of the turn it runs in.
pub struct SkillContext<'a> {
    /// The session.
    pub session_id: &'a str,
    /// The turn.
    pub turn_id: uuid::Uuid,
    /// The host's services for the turn (memory, cron, session commands).
    pub recorder: &'a dyn crate::TurnRecorder,
}

/// One tool.
#[async_trait]
pub trait Skill: Send + Sync {
    /// Name, description and JSON schema of the arguments.
    fn spec(&self) -> ToolSpec;
    /// Run with the model's arguments, outside any turn.
    async fn call(&self, arguments: &serde_json::Value) -> SkillOutput;
    /// Run with the model's arguments inside a turn (skills that need the session
    /// override this; the default ignores the context).
    async fn call_in(&self, _ctx: &SkillContext<'_>, arguments: &serde_json::Value) -> SkillOutput {
        self.call(arguments).await
    }
}

/// The skills an agent offers, by name.
#[derive(Default, Clone)]
pub struct SkillSet {
    skills: BTreeMap<String, Arc<dyn Skill>>,
}

impl SkillSet {
    /// Add a skill.
    pub fn with(mut self, skill: Arc<dyn Skill>) -> Self {
        self.skills.insert(skill.spec().name, skill);
        self
    }

    /// Specs of every skill, by name.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.skills.values().map(|s| s.spec()).collect()
    }

    /// Names of every skill.
    pub fn names(&self) -> Vec<String> {
        self.skills.keys().cloned().collect()
    }

    /// Only the skills named in `names` (an agent's `skills = [...]`).
    pub fn only(mut self, names: &[String]) -> Self {
        self.skills
            .retain(|name, _| names.iter().any(|n| n == name));
        self
    }

    /// Run a skill in a turn; arguments are the JSON text the model produced.
    pub async fn call(&self, ctx: &SkillContext<'_>, name: &str, arguments: &str) -> SkillOutput {
        let Some(skill) = self.skills.get(name) else {
            return SkillOutput::err(format!(
                "no tool named `{name}`; available: {}",
                self.names().join(", ")
            ));
        };
        let args: serde_json::Value = if arguments.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            match serde_json::from_str(arguments) {
                Ok(v) => v,
                Err(e) => return SkillOutput::err(format!("arguments are not valid JSON: {e}")),
            }
        };
        skill.call_in(ctx, &args).await
    }
}

/// Turn a host service's result into a skill output.
pub fn service<T>(r: Result<T, crate::AgentError>, ok: impl FnOnce(T) -> String) -> SkillOutput {
    match r {
        Ok(v) => SkillOutput::ok(ok(v)),
        Err(e) => SkillOutput::err(e.to_string()),
    }
}

/// Cut `s` to at most `max` bytes on a char boundary, saying how much was cut.
pub fn cap(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let total = s.len();
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(&format!("\n[output cut: {total} bytes, first {end} shown]"));
    s
}
