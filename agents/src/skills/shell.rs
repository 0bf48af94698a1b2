//! The `shell` skill: run one program with arguments in the workspace, under a policy the
//! kernel's configuration sets (`deny` by default, or an allowlist of programs), with a
//! timeout and an output cap. No shell interprets the command, so `;`, pipes and
//! substitutions cannot smuggle in another program.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::{cap, Skill, SkillContext, SkillOutput};
use crate::provider::ToolSpec;

/// Who may run what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellPolicy {
    /// Nothing runs.
    Deny,
    /// Only these program names run.
    Allowlist(Vec<String>),
    /// Each command waits for a person's approval (`clawos approvals approve ID`);
    /// programs in the list run without asking.
    Ask(Vec<String>),
}

/// The `shell` skill.
pub struct ShellSkill {
    workspace: PathBuf,
    policy: ShellPolicy,
    timeout: Duration,
    max_output: usize,
}

impl ShellSkill {
    /// A shell skill in `workspace`.
    pub fn new(
        workspace: PathBuf,
        policy: ShellPolicy,
        timeout: Duration,
        max_output: usize,
    ) -> Self {
        ShellSkill {
            workspace,
            policy,
            timeout,
            max_output,
        }
    }

    fn allowed(&self, program: &str) -> Result<(), String> {
        if program.contains('/') {
            return Err(format!(
                "refused: `{program}`: give a program name, not a path"
            ));
        }
        match &self.policy {
            ShellPolicy::Ask(list) if list.iter().any(|p| p == program) => Ok(()),
            ShellPolicy::Ask(_) => Err(format!("refused: `{program}` needs a person's approval")),
            ShellPolicy::Deny => Err("refused: the shell policy is `deny` (set [agents.NAME] shell = \"allowlist\" and shell_allow in clawos.toml)".into()),
            ShellPolicy::Allowlist(list) => {
                if list.iter().any(|p| p == program) {
                    Ok(())
                } else {
                    Err(format!("refused: `{program}` is not in the allowlist ({})", list.join(", ")))
                }
            }
        }
    }

    /// Run `program` with `argv` in the workspace under the timeout and output cap (the
    /// policy has been checked).
    async fn run(&self, program: &str, argv: &[String]) -> SkillOutput {
        let child = tokio::process::Command::new(program)
            .args(argv)
            .current_dir(&self.workspace)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => return SkillOutput::err(format!("cannot run `{program}`: {e}")),
        };
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Err(_) => SkillOutput::err(format!(
                "`{program}` timed out after {:?} and was killed",
                self.timeout
            )),
            Ok(Err(e)) => SkillOutput::err(format!("`{program}` failed: {e}")),
            Ok(Ok(out)) => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                if !out.stderr.is_empty() {
                    text.push_str(&String::from_utf8_lossy(&out.stderr));
                }
                SkillOutput {
                    output: cap(text, self.max_output),
                    exit_status: out.status.code().unwrap_or(-1),
                    attachments: Vec::new(),
                }
            }
        }
    }
}

fn argv_of(args: &serde_json::Value) -> Vec<String> {
    args.get("args")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl Skill for ShellSkill {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "shell".into(),
            description: "Run a program (no shell syntax) in your workspace.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "program": {"type": "string"},
                    "args": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["program"]
            }),
        }
    }

    /// Under `ask`, a program not pre-approved waits for a person's answer, recorded as
    /// `ApprovalRequested` / `ApprovalAnswered`.
    async fn call_in(&self, ctx: &SkillContext<'_>, args: &serde_json::Value) -> SkillOutput {
        let program = args.get("program").and_then(|v| v.as_str()).unwrap_or("");
        if let ShellPolicy::Ask(pre_approved) = &self.policy {
            if !program.is_empty()
                && !program.contains('/')
                && !pre_approved.iter().any(|p| p == program)
            {
                let argv = argv_of(args);
                let action = format!("shell: {program} {}", argv.join(" "));
                let action = action.trim();
                return match ctx.recorder.approve(action).await {
                    Ok(true) => self.run(program, &argv).await,
                    Ok(false) => SkillOutput::err(format!("refused: a person declined `{action}`")),
                    Err(e) => SkillOutput::err(format!("refused: {e}")),
                };
            }
        }
        self.call(args).await
    }

    async fn call(&self, args: &serde_json::Value) -> SkillOutput {
        let Some(program) = args.get("program").and_then(|v| v.as_str()) else {
            return SkillOutput::err("`program` is required");
        };
        if let Err(e) = self.allowed(program) {
            return SkillOutput::err(e);
        }
        self.run(program, &argv_of(args)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(policy: ShellPolicy) -> (tempfile::TempDir, ShellSkill) {
        let dir = tempfile::tempdir().unwrap();
        let s = ShellSkill::new(
            dir.path().to_path_buf(),
            policy,
            Duration::from_millis(500),
            64,
        );
        (dir, s)
    }

    #[tokio::test]
    async fn deny_refuses_everything() {
        let (_d, s) = skill(ShellPolicy::Deny);
        let r = s.call(&json!({"program": "echo", "args": ["hi"]})).await;
        assert!(r.output.starts_with("refused"), "{r:?}");
    }

    #[tokio::test]
    async fn allowlist_runs_listed_programs_only_with_limits() {
        let (_d, s) = skill(ShellPolicy::Allowlist(vec![
            "echo".into(),
            "sleep".into(),
            "head".into(),
        ]));
        assert_eq!(
            s.call(&json!({"program": "echo", "args": ["hi; rm -rf /"]}))
                .await,
            SkillOutput::ok("hi; rm -rf /\n")
        );
        assert!(s
            .call(&json!({"program": "rm", "args": ["-rf", "x"]}))
            .await
            .output
            .starts_with("refused"));
        assert!(s
            .call(&json!({"program": "/bin/echo"}))
            .await
            .output
            .starts_with("refused"));
        let slow = s.call(&json!({"program": "sleep", "args": ["5"]})).await;
        assert!(slow.output.contains("timed out"), "{slow:?}");
        let big = s
            .call(&json!({"program": "head", "args": ["-c", "1000", "/dev/zero"]}))
            .await;
        assert!(big.output.contains("[output cut: 1000 bytes"), "{big:?}");
    }
}
