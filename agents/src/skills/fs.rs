//! The `fs` skill: read, write, list and search files inside the agent's workspace.
//! Paths are relative to the workspace; `..`, absolute paths and symlinks that lead out
//! are refused.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use serde_json::json;

use super::{cap, Skill, SkillOutput};
use crate::provider::ToolSpec;

/// Largest file content returned by `read`.
pub const MAX_READ: usize = 64 * 1024;
/// Most entries or matches returned by `list` and `search`.
pub const MAX_ENTRIES: usize = 200;

/// The `fs` skill over one workspace folder.
pub struct FsSkill {
    root: PathBuf,
}

impl FsSkill {
    /// A skill confined to `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(FsSkill {
            root: root.canonicalize()?,
        })
    }

    /// Resolve a workspace-relative path, refusing anything that leads outside.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, String> {
        let p = Path::new(rel);
        if p.is_absolute() {
            return Err(format!(
                "`{rel}`: absolute paths are not allowed; use a path inside the workspace"
            ));
        }
        let mut out = self.root.clone();
        for c in p.components() {
            match c {
                Component::Normal(part) => out.push(part),
                Component::CurDir => {}
                _ => return Err(format!("`{rel}`: `..` and prefixes are not allowed")),
            }
        }
        // Follow symlinks of the deepest existing ancestor: it must stay inside.
        let mut existing = out.as_path();
        while !existing.exists() {
            match existing.parent() {
                Some(parent) => existing = parent,
                None => break,
            }
        }
        let real = existing
            .canonicalize()
            .map_err(|e| format!("`{rel}`: {e}"))?;
        if !real.starts_with(&self.root) {
            return Err(format!(
                "`{rel}` leads outside the workspace (through a symlink)"
            ));
        }
        Ok(out)
    }

    fn read(&self, path: &str) -> SkillOutput {
        let p = match self.resolve(path) {
            Ok(p) => p,
            Err(e) => return SkillOutput::err(format!("refused: {e}")),
        };
        match std::fs::read(&p) {
            Ok(bytes) => {
                SkillOutput::ok(cap(String::from_utf8_lossy(&bytes).into_owned(), MAX_READ))
            }
            Err(e) => SkillOutput::err(format!("cannot read `{path}`: {e}")),
        }
    }

    fn write(&self, path: &str, content: &str) -> SkillOutput {
        let p = match self.resolve(path) {
            Ok(p) => p,
            Err(e) => return SkillOutput::err(format!("refused: {e}")),
        };
        if p.is_symlink() {
            return SkillOutput::err(format!("refused: `{path}` is a symlink"));
        }
        if let Some(parent) = p.parent() {
            if let Err(e) = std::fs::create_dir_all(parent) {
                return SkillOutput::err(format!("cannot create folders for `{path}`: {e}"));
            }
        }
        match std::fs::write(&p, content) {
            Ok(()) => SkillOutput::ok(format!("wrote {} bytes to {path}", content.len())),
            Err(e) => SkillOutput::err(format!("cannot write `{path}`: {e}")),
        }
    }

    fn list(&self, path: &str) -> SkillOutput {
        let p = match self.resolve(path) {
            Ok(p) => p,
            Err(e) => return SkillOutput::err(format!("refused: {e}")),
        };
        let entries = match std::fs::read_dir(&p) {
            Ok(e) => e,
            Err(e) => return SkillOutput::err(format!("cannot list `{path}`: {e}")),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| {
                let dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                format!(
                    "{}{}",
                    e.file_name().to_string_lossy(),
                    if dir { "/" } else { "" }
                )
            })
            .collect();
        names.sort();
        names.truncate(MAX_ENTRIES);
        SkillOutput::ok(names.join("\n"))
    }

    fn search(&self, path: &str, pattern: &str) -> SkillOutput {
        let p = match self.resolve(path) {
            Ok(p) => p,
            Err(e) => return SkillOutput::err(format!("refused: {e}")),
        };
        let mut hits = Vec::new();
        let mut stack = vec![p];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.filter_map(|e| e.ok()) {
                let path = e.path();
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_symlink() {
                    continue;
                }
                if ft.is_dir() {
                    stack.push(path);
                } else if let Ok(text) = std::fs::read_to_string(&path) {
                    for (i, line) in text.lines().enumerate() {
                        if line.contains(pattern) {
                            let rel = path.strip_prefix(&self.root).unwrap_or(&path);
                            hits.push(format!("{}:{}: {}", rel.display(), i + 1, line.trim()));
                            if hits.len() >= MAX_ENTRIES {
                                return SkillOutput::ok(hits.join("\n"));
                            }
                        }
                    }
                }
            }
        }
        SkillOutput::ok(if hits.is_empty() {
            "no matches".into()
        } else {
            hits.join("\n")
        })
    }
}

#[async_trait]
impl Skill for FsSkill {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "fs".into(),
            description: "Files in your workspace: read, write, list, search (text).".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "op": {"enum": ["read", "write", "list", "search"]},
                    "path": {"type": "string", "description": "relative to the workspace"},
                    "content": {"type": "string"},
                    "pattern": {"type": "string"}
                },
                "required": ["op"]
            }),
        }
    }

    async fn call(&self, args: &serde_json::Value) -> SkillOutput {
        let s = |k: &str| args.get(k).and_then(|v| v.as_str());
        let path = s("path").unwrap_or(".");
        match s("op") {
            Some("read") => self.read(path),
            Some("write") => match s("content") {
                Some(c) => self.write(path, c),
                None => SkillOutput::err("write needs `content`"),
            },
            Some("list") => self.list(path),
            Some("search") => match s("pattern") {
                Some(p) if !p.is_empty() => self.search(path, p),
                _ => SkillOutput::err("search needs a non-empty `pattern`"),
            },
            other => SkillOutput::err(format!(
                "unknown op {other:?}; use read, write, list or search"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn escapes_are_refused_and_inside_works() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
        let fs = FsSkill::new(dir.path().join("ws")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("ws/link")).unwrap();

        let w = fs
            .call(&json!({"op": "write", "path": "notes/a.txt", "content": "hello"}))
            .await;
        assert_eq!(w.exit_status, 0, "{w:?}");
        let r = fs.call(&json!({"op": "read", "path": "notes/a.txt"})).await;
        assert_eq!(r, SkillOutput::ok("hello"));
        let s = fs
            .call(&json!({"op": "search", "path": ".", "pattern": "hell"}))
            .await;
        assert!(s.output.contains("notes/a.txt:1: hello"), "{s:?}");

        for bad in ["../x", "/etc/passwd", "link/secret.txt", "notes/../../x"] {
            let r = fs.call(&json!({"op": "read", "path": bad})).await;
            assert_ne!(r.exit_status, 0, "{bad} was allowed: {r:?}");
            assert!(r.output.starts_with("refused"), "{bad}: {r:?}");
            assert!(!r.output.contains("top secret"));
        }
        let w = fs
            .call(&json!({"op": "write", "path": "link/new.txt", "content": "x"}))
            .await;
        assert!(w.output.starts_with("refused"), "{w:?}");
        assert!(!outside.path().join("new.txt").exists());
    }
}
