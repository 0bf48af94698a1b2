//! The `editor` skill: a code editor for files in the agent's workspace. `view` numbered
//! lines (a range, or the whole file up to a cap), `replace` one exact and unique string,
//! `insert` text after a line, `create` a new file, `patch` with a unified diff, `search`
//! every file (a regex; `.gitignore` honoured) in one walk.
//!
//! Every change is recorded (`WorkspaceFileChanged`) with its diff and the hashes before
//! and after; the first time the log sees a file the agent did not create, the event also
//! carries its whole content, so the log alone rebuilds any file as it was after any
//! event. Paths are confined to the workspace exactly as the `fs` skill confines them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use clawos_events::{EventPayload, WorkspaceFileChanged};
use serde_json::json;

use super::fs::FsSkill;
use super::{cap, Skill, SkillContext, SkillOutput};
use crate::provider::ToolSpec;

/// Largest file the editor changes or shows whole.
pub const MAX_FILE: usize = 1024 * 1024;
/// Largest `view` answer.
pub const MAX_VIEW: usize = 64 * 1024;
/// Most `search` matches returned.
pub const MAX_MATCHES: usize = 200;

/// The `editor` skill over one agent's workspace.
pub struct EditorSkill {
    fs: FsSkill,
    agent: String,
    /// blake3 of each file's content as this process last recorded it: when a file's
    /// content still is that, the log already holds its state and no `base` is needed.
    recorded: Mutex<HashMap<String, String>>,
}

/// A change worked out before it is written and recorded.
struct Change {
    path: String,
    op: String,
    before: Option<String>,
    after: String,
}

impl EditorSkill {
    /// The editor of `agent`, confined to `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>, agent: impl Into<String>) -> std::io::Result<Self> {
        Ok(EditorSkill {
            fs: FsSkill::new(root)?,
            agent: agent.into(),
            recorded: Mutex::new(HashMap::new()),
        })
    }

    fn read(&self, path: &str) -> Result<Option<String>, String> {
        let p = self.fs.resolve(path).map_err(|e| format!("refused: {e}"))?;
        match std::fs::metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read `{path}`: {e}")),
            Ok(m) if m.len() as usize > MAX_FILE => {
                return Err(format!("`{path}` is larger than {MAX_FILE} bytes"))
            }
            Ok(m) if m.is_dir() => return Err(format!("`{path}` is a folder")),
            Ok(_) => {}
        }
        let bytes = std::fs::read(&p).map_err(|e| format!("cannot read `{path}`: {e}"))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("`{path}` is not UTF-8 text"))
    }

    fn existing(&self, path: &str) -> Result<String, String> {
        self.read(path)?
            .ok_or_else(|| format!("`{path}` does not exist (use `create`)"))
    }

    fn view(&self, path: &str, start: Option<u64>, end: Option<u64>) -> SkillOutput {
        let text = match self.existing(path) {
            Ok(t) => t,
            Err(e) => return SkillOutput::err(e),
        };
        let lines: Vec<&str> = text.lines().collect();
        let from = start.unwrap_or(1).max(1) as usize;
        let to = end
            .map(|e| e as usize)
            .unwrap_or(lines.len())
            .min(lines.len());
        if from > to.max(1) && !lines.is_empty() {
            return SkillOutput::err(format!(
                "lines {from}-{to}: `{path}` has {} lines",
                lines.len()
            ));
        }
        let width = to.to_string().len();
        let shown: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| (from..=to).contains(&(i + 1)))
            .map(|(i, l)| format!("{:>width$} {l}\n", i + 1))
            .collect();
        SkillOutput::ok(cap(shown, MAX_VIEW))
    }

    fn plan(&self, op: &str, args: &serde_json::Value) -> Result<Change, String> {
        let s = |k: &str| args.get(k).and_then(|v| v.as_str());
        let path = s("path").ok_or("`path` is needed")?.to_string();
        let before = self.read(&path)?;
        let after = match op {
            "create" => {
                if before.is_some() {
                    return Err(format!("`{path}` exists; edit it instead"));
                }
                s("content").ok_or("create needs `content`")?.to_string()
            }
            "replace" => {
                let text = before.clone().ok_or(format!("`{path}` does not exist"))?;
                let old = s("old")
                    .filter(|o| !o.is_empty())
                    .ok_or("replace needs a non-empty `old`")?;
                let new = s("new").ok_or("replace needs `new`")?;
                match text.matches(old).count() {
                    1 => text.replacen(old, new, 1),
                    0 => return Err(format!("`old` is not in `{path}`")),
                    n => {
                        return Err(format!(
                            "`old` is in `{path}` {n} times; give more context so it is unique"
                        ))
                    }
                }
            }
            "insert" => {
                let text = before.clone().ok_or(format!("`{path}` does not exist"))?;
                let line =
                    args.get("line")
                        .and_then(|v| v.as_u64())
                        .ok_or("insert needs `line` (0: at the top)")? as usize;
                let new = s("text").ok_or("insert needs `text`")?;
                let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
                if line > lines.len() {
                    return Err(format!("`{path}` has {} lines", lines.len()));
                }
                let mut insert = new.to_string();
                if !insert.ends_with('\n') {
                    insert.push('\n');
                }
                // A last line without a newline gets one before the insert.
                let fixed;
                if line == lines.len() && line > 0 && !lines[line - 1].ends_with('\n') {
                    fixed = format!("{}\n", lines[line - 1]);
                    lines[line - 1] = &fixed;
                }
                lines.insert(line, &insert);
                lines.concat()
            }
            "patch" => {
                let text = before.clone().unwrap_or_default();
                let diff = s("diff").ok_or("patch needs `diff` (a unified diff)")?;
                let patch = diffy::Patch::from_str(diff)
                    .map_err(|e| format!("`diff` is not a unified diff: {e}"))?;
                if patch.hunks().is_empty() {
                    return Err("`diff` has no hunks (`@@ -a,b +c,d @@` lines)".into());
                }
                diffy::apply(&text, &patch)
                    .map_err(|e| format!("the diff does not apply to `{path}`: {e}"))?
            }
            other => return Err(format!("unknown op `{other}`")),
        };
        if after.len() > MAX_FILE {
            return Err(format!("the result would be larger than {MAX_FILE} bytes"));
        }
        Ok(Change {
            path,
            op: op.to_string(),
            before,
            after,
        })
    }

    /// Write a planned change and record it; the diff is the answer.
    async fn apply(&self, ctx: Option<&SkillContext<'_>>, c: Change) -> SkillOutput {
        let target = match self.fs.resolve(&c.path) {
            Ok(p) => p,
            Err(e) => return SkillOutput::err(format!("refused: {e}")),
        };
        let hash = |t: &str| blake3::hash(t.as_bytes()).to_hex().to_string();
        let before_hash = c.before.as_deref().map(hash);
        let after_hash = hash(&c.after);
        let diff = diffy::create_patch(c.before.as_deref().unwrap_or(""), &c.after).to_string();
        let known = {
            let recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
            recorded.get(&c.path) == before_hash.as_ref()
        };
        if let Some(ctx) = ctx {
            let event = WorkspaceFileChanged {
                turn_id: ctx.turn_id,
                agent: self.agent.clone(),
                path: c.path.clone(),
                op: c.op.clone(),
                base: match (&c.before, known) {
                    (Some(before), false) => Some(before.clone()),
                    _ => None,
                },
                before_blake3: before_hash.clone(),
                after_blake3: after_hash.clone(),
                diff: diff.clone(),
            };
            // Recorded before the file changes: a change the log does not hold never
            // happens.
            if let Err(e) = ctx
                .recorder
                .record(EventPayload::WorkspaceFileChanged(event))
                .await
            {
                return SkillOutput::err(format!("cannot record the change: {e}"));
            }
        }
        if let Some(dir) = target.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                return SkillOutput::err(format!("cannot create {}: {e}", dir.display()));
            }
        }
        if let Err(e) = std::fs::write(&target, &c.after) {
            return SkillOutput::err(format!("cannot write `{}`: {e}", c.path));
        }
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(c.path.clone(), after_hash);
        SkillOutput::ok(cap(format!("{} {}:\n{diff}", c.op, c.path), MAX_VIEW))
    }

    fn search(&self, pattern: &str, path: &str) -> SkillOutput {
        let re = match regex::Regex::new(pattern) {
            Ok(r) => r,
            Err(e) => return SkillOutput::err(format!("`pattern` is not a regex: {e}")),
        };
        let root = match self.fs.resolve(path) {
            Ok(p) => p,
            Err(e) => return SkillOutput::err(format!("refused: {e}")),
        };
        let workspace = match self.fs.resolve(".") {
            Ok(p) => p,
            Err(e) => return SkillOutput::err(e),
        };
        let mut out = String::new();
        let mut found = 0;
        for entry in ignore::WalkBuilder::new(&root)
            .follow_links(false)
            .build()
            .flatten()
        {
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            let rel = entry
                .path()
                .strip_prefix(&workspace)
                .unwrap_or(entry.path());
            for (i, line) in text.lines().enumerate() {
                if re.is_match(line) {
                    found += 1;
                    if found <= MAX_MATCHES {
                        out.push_str(&format!("{}:{}: {line}\n", rel.display(), i + 1));
                    }
                }
            }
        }
        if found == 0 {
            return SkillOutput::ok("no match");
        }
        if found > MAX_MATCHES {
            out.push_str(&format!("... {} more matches\n", found - MAX_MATCHES));
        }
        SkillOutput::ok(cap(out, MAX_VIEW))
    }

    async fn run(&self, ctx: Option<&SkillContext<'_>>, args: &serde_json::Value) -> SkillOutput {
        let s = |k: &str| args.get(k).and_then(|v| v.as_str());
        let n = |k: &str| args.get(k).and_then(|v| v.as_u64());
        match s("op") {
            Some("view") => match s("path") {
                Some(p) => self.view(p, n("start"), n("end")),
                None => SkillOutput::err("view needs `path`"),
            },
            Some("search") => match s("pattern") {
                Some(p) if !p.is_empty() => self.search(p, s("path").unwrap_or(".")),
                _ => SkillOutput::err("search needs a non-empty `pattern`"),
            },
            Some(op @ ("create" | "replace" | "insert" | "patch")) => match self.plan(op, args) {
                Ok(change) => self.apply(ctx, change).await,
                Err(e) => SkillOutput::err(e),
            },
            Some(other) => SkillOutput::err(format!(
                "unknown op `{other}`: view, search, create, replace, insert, patch"
            )),
            None => SkillOutput::err("`op` is needed"),
        }
    }
}

#[async_trait]
impl Skill for EditorSkill {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "editor".into(),
            description: "Edit workspace files: view (numbered lines), replace (unique exact \
                          string), insert (after line N), create, patch (unified diff), \
                          search (regex)."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "op": {"enum": ["view", "replace", "insert", "create", "patch", "search"]},
                    "path": {"type": "string"},
                    "start": {"type": "integer"}, "end": {"type": "integer"},
                    "old": {"type": "string"}, "new": {"type": "string"},
                    "line": {"type": "integer"}, "text": {"type": "string"},
                    "content": {"type": "string"}, "diff": {"type": "string"},
                    "pattern": {"type": "string"}
                },
                "required": ["op"]
            }),
        }
    }

    async fn call(&self, args: &serde_json::Value) -> SkillOutput {
        self.run(None, args).await
    }

    async fn call_in(&self, ctx: &SkillContext<'_>, args: &serde_json::Value) -> SkillOutput {
        self.run(Some(ctx), args).await
    }
}

/// The content of `path` in `agent`'s workspace as it was after the events `changes` (in
/// log order, already limited to a seq): the last `base`, then every diff after it.
/// `None` when no change of that file is among them.
pub fn file_at(
    changes: &[WorkspaceFileChanged],
    agent: &str,
    path: &str,
) -> Result<Option<String>, String> {
    let mut content: Option<String> = None;
    for c in changes
        .iter()
        .filter(|c| c.agent == agent && c.path == path)
    {
        let mut text = match (&c.base, content.take()) {
            (Some(base), _) => base.clone(),
            (None, Some(t)) => t,
            (None, None) => String::new(),
        };
        let patch = diffy::Patch::from_str(&c.diff)
            .map_err(|e| format!("a recorded diff does not parse: {e}"))?;
        text = diffy::apply(&text, &patch)
            .map_err(|e| format!("a recorded diff does not apply: {e}"))?;
        if blake3::hash(text.as_bytes()).to_hex().as_str() != c.after_blake3 {
            return Err(format!(
                "`{path}` rebuilt from the log does not match its recorded hash"
            ));
        }
        content = Some(text);
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentError, TurnRecorder};

    /// Keeps every recorded event, as the log would.
    #[derive(Default)]
    struct Kept(Mutex<Vec<WorkspaceFileChanged>>);

    #[async_trait]
    impl TurnRecorder for Kept {
        async fn record(&self, payload: EventPayload) -> Result<u64, AgentError> {
            let mut kept = self.0.lock().unwrap();
            if let EventPayload::WorkspaceFileChanged(c) = payload {
                kept.push(c);
            }
            Ok(kept.len() as u64)
        }
    }

    async fn edit(e: &EditorSkill, kept: &Kept, args: serde_json::Value) -> SkillOutput {
        let ctx = SkillContext {
            session_id: "s",
            turn_id: uuid::Uuid::nil(),
            recorder: kept,
        };
        e.call_in(&ctx, &args).await
    }

    #[tokio::test]
    async fn edits_are_exact_recorded_and_rebuild_the_file_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.md"), "one\ntwo\ntwo\n").unwrap();
        let e = EditorSkill::new(dir.path(), "pi").unwrap();
        let kept = Kept::default();

        // A string that is not unique, or absent, is refused and changes nothing.
        let r = edit(
            &e,
            &kept,
            json!({"op": "replace", "path": "notes.md", "old": "two", "new": "2"}),
        )
        .await;
        assert_eq!(r.exit_status, 1, "{}", r.output);
        assert!(r.output.contains("2 times"), "{}", r.output);
        let r = edit(
            &e,
            &kept,
            json!({"op": "replace", "path": "notes.md", "old": "zzz", "new": "2"}),
        )
        .await;
        assert!(r.output.contains("not in"), "{}", r.output);
        assert!(kept.0.lock().unwrap().is_empty());

        let r = edit(
            &e,
            &kept,
            json!({"op": "replace", "path": "notes.md", "old": "one\n", "new": "1\n"}),
        )
        .await;
        assert_eq!(r.exit_status, 0, "{}", r.output);
        assert!(
            r.output.contains("-one\n+1"),
            "the answer is the diff: {}",
            r.output
        );
        let r = edit(
            &e,
            &kept,
            json!({"op": "insert", "path": "notes.md", "line": 0, "text": "# Notes"}),
        )
        .await;
        assert_eq!(r.exit_status, 0, "{}", r.output);
        let r = edit(
            &e,
            &kept,
            json!({"op": "create", "path": "src/new.rs", "content": "fn main() {}\n"}),
        )
        .await;
        assert_eq!(r.exit_status, 0, "{}", r.output);
        let r = edit(
            &e,
            &kept,
            json!({"op": "create", "path": "src/new.rs", "content": "again"}),
        )
        .await;
        assert!(r.output.contains("exists"), "{}", r.output);
        let diff = diffy::create_patch("fn main() {}\n", "fn main() {\n    println!(\"hi\");\n}\n")
            .to_string();
        let r = edit(
            &e,
            &kept,
            json!({"op": "patch", "path": "src/new.rs", "diff": diff}),
        )
        .await;
        assert_eq!(r.exit_status, 0, "{}", r.output);
        let r = edit(
            &e,
            &kept,
            json!({"op": "patch", "path": "src/new.rs", "diff": "not a diff"}),
        )
        .await;
        assert_eq!(r.exit_status, 1);
        let r = edit(
            &e,
            &kept,
            json!({"op": "replace", "path": "../escape", "old": "a", "new": "b"}),
        )
        .await;
        assert!(r.output.contains("refused"), "{}", r.output);

        let now = std::fs::read_to_string(dir.path().join("notes.md")).unwrap();
        assert_eq!(now, "# Notes\n1\ntwo\ntwo\n");
        let view = edit(
            &e,
            &kept,
            json!({"op": "view", "path": "notes.md", "start": 2, "end": 3}),
        )
        .await;
        assert_eq!(view.output, "2 1\n3 two\n");
        let found = edit(
            &e,
            &kept,
            json!({"op": "search", "pattern": "println|^two$"}),
        )
        .await;
        assert!(
            found.output.contains("notes.md:3: two") && found.output.contains("src/new.rs:2:"),
            "{}",
            found.output
        );

        // The log alone gives every version: the first change of a file it had never seen
        // carries its content, later ones only diffs.
        let changes = kept.0.lock().unwrap().clone();
        assert_eq!(changes.len(), 4);
        assert_eq!(changes[0].base.as_deref(), Some("one\ntwo\ntwo\n"));
        assert!(changes[1].base.is_none() && changes[2].base.is_none());
        assert_eq!(
            file_at(&changes[..1], "pi", "notes.md").unwrap().as_deref(),
            Some("1\ntwo\ntwo\n")
        );
        assert_eq!(
            file_at(&changes, "pi", "notes.md").unwrap().as_deref(),
            Some(now.as_str())
        );
        assert_eq!(
            file_at(&changes, "pi", "src/new.rs").unwrap().as_deref(),
            Some("fn main() {\n    println!(\"hi\");\n}\n")
        );
        assert_eq!(file_at(&changes[..2], "pi", "src/new.rs").unwrap(), None);
        assert_eq!(file_at(&changes, "other", "notes.md").unwrap(), None);
        let mut forged = changes.clone();
        forged[1].after_blake3 = "0".repeat(64);
        assert!(
            file_at(&forged, "pi", "notes.md").is_err(),
            "a diff that does not give the recorded hash is an error"
        );
    }
}
