//! Guards for the repository's structure, read from the source files only (nothing is
//! built, run or opened but text files):
//!
//! - no module import cycle inside a crate ([`no_module_cycles`]);
//! - raw SQL on projection tables only in `projections/` ([`projection_sql_stays_in_projections`]);
//! - no product source file longer than [`MAX_LINES`] lines ([`no_long_source_files`]).
//!
//! Each guard prints what it finds and fails with a message naming the offending files and
//! modules. Unit-test blocks (`#[cfg(test)] mod NAME { ... }`) are not product code and
//! are left out of the first two guards; comments never count.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The crates whose module graphs must be acyclic: name, source folder, root file.
const CRATES: &[(&str, &str, &str)] = &[
    ("clawos-events", "events/src", "lib.rs"),
    ("clawos-projections", "projections/src", "lib.rs"),
    ("clawos-agents", "agents/src", "lib.rs"),
    ("clawos-channels", "channels/src", "lib.rs"),
    ("clawos-kernel", "kernel/src", "lib.rs"),
    ("clawos-replay", "replay/src", "lib.rs"),
    ("clawos (binary)", "src", "main.rs"),
    ("clawos-testkit", "tests/testkit/src", "lib.rs"),
];

/// Product source outside `projections/`: where projection tables must not be named in SQL.
const NOT_PROJECTIONS: &[&str] = &[
    "events/src",
    "agents/src",
    "channels/src",
    "kernel/src",
    "replay/src",
    "src",
];

/// All product source: the files whose length is bounded.
const PRODUCT: &[&str] = &[
    "events/src",
    "projections/src",
    "agents/src",
    "channels/src",
    "kernel/src",
    "replay/src",
    "src",
];

/// Where the projection tables are created.
const PROJECTION_MIGRATIONS: &str = "migrations/projections";

/// The longest a product source file may be.
const MAX_LINES: usize = 800;

/// Raw SQL on a table of `migrations/projections` that may live outside `projections/`:
/// file, table, and why. Empty: every such table, the hooks' `hook_cursors` included, is
/// read and written through the projections crate.
const SQL_ALLOWED: &[(&str, &str, &str)] = &[];

/// SQL keywords that name the table they act on next.
const SQL_TABLE_KEYWORDS: &[&str] = &["from", "join", "into", "update"];

// ---------------------------------------------------------------------------------------
// The guards.

/// No crate has a cycle among its modules. An edge `a -> b` is a `use` of, or a path
/// through, module `b` in module `a` (`crate::b::..`, `super::..`, `self::..`, or a
/// child module's name); a parent declaring its child (`mod b;`) is no edge, and the
/// crate root (`lib.rs`, `main.rs`) is no node. A node is a file: an inline module other
/// than a unit-test block counts as part of its file's module.
#[test]
fn no_module_cycles() {
    let root = repo_root();
    let mut report = String::new();
    let mut cycles = 0;
    for (name, dir, root_file) in CRATES {
        let graph = ModuleGraph::read(&root, dir, root_file);
        for scc in graph.cycles() {
            cycles += 1;
            let _ = writeln!(
                report,
                "{name}: import cycle among {} modules: {}",
                scc.len(),
                scc.iter()
                    .map(display_module)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for ((from, to), at) in &graph.edges {
                if scc.contains(from) && scc.contains(to) {
                    let _ = writeln!(
                        report,
                        "    {} -> {}  ({}:{} `{}`)",
                        display_module(from),
                        display_module(to),
                        at.file,
                        at.line,
                        at.path
                    );
                }
            }
        }
    }
    println!(
        "{}",
        if report.is_empty() {
            "no module cycles"
        } else {
            &report
        }
    );
    assert!(
        cycles == 0,
        "{cycles} module import cycle(s); each module of a cycle is listed with the edges \
         (file:line and path) that close it:\n{report}"
    );
}

/// Only `projections/` names projection tables in SQL: no string literal in other product
/// code reads or writes a table created in `migrations/projections/` (`FROM t`, `JOIN t`,
/// `INTO t`, `UPDATE t`, `DELETE FROM t`; case-insensitive, whole words), except the
/// pairs in [`SQL_ALLOWED`].
#[test]
fn projection_sql_stays_in_projections() {
    let root = repo_root();
    let tables = projection_tables(&root);
    assert!(
        !tables.is_empty(),
        "no CREATE TABLE found in {PROJECTION_MIGRATIONS}"
    );
    let mut report = String::new();
    let mut found = 0;
    let mut allowed_used = BTreeSet::new();
    for dir in NOT_PROJECTIONS {
        for file in rust_files(&root, dir) {
            let rel = relative(&root, &file);
            let lexed = Lexed::new(&read(&file));
            for literal in lexed.product_strings() {
                let mut named: Vec<String> = Vec::new();
                for (keyword, table) in sql_table_refs(&literal.text, &tables) {
                    if let Some(allowed) = SQL_ALLOWED
                        .iter()
                        .find(|(f, t, _)| *f == rel && *t == table)
                    {
                        allowed_used.insert((allowed.0, allowed.1));
                        continue;
                    }
                    let named_as = format!("{} {table}", keyword.to_uppercase());
                    if !named.contains(&named_as) {
                        named.push(named_as);
                    }
                }
                if !named.is_empty() {
                    found += 1;
                    let _ = writeln!(
                        report,
                        "{rel}:{}: {}: {}",
                        literal.line,
                        named.join(", "),
                        excerpt(&literal.text)
                    );
                }
            }
        }
    }
    let stale: Vec<String> = SQL_ALLOWED
        .iter()
        .filter(|(f, t, _)| !allowed_used.contains(&(*f, *t)))
        .map(|(f, t, _)| format!("{f} ({t})"))
        .collect();
    println!(
        "projection tables: {}",
        tables.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    println!(
        "{}",
        if report.is_empty() {
            "no projection SQL outside projections/"
        } else {
            &report
        }
    );
    assert!(
        found == 0,
        "{found} SQL statement(s) on projection tables outside projections/ (read them \
         through the projections crate, or add a reasoned exception to SQL_ALLOWED):\n{report}"
    );
    assert!(
        stale.is_empty(),
        "SQL_ALLOWED names SQL that no longer exists, remove: {}",
        stale.join(", ")
    );
}

/// No product source file (outside `tests/`) is longer than [`MAX_LINES`] lines.
#[test]
fn no_long_source_files() {
    let root = repo_root();
    let mut long = Vec::new();
    for dir in PRODUCT {
        for file in rust_files(&root, dir) {
            let lines = read(&file).lines().count();
            if lines > MAX_LINES {
                long.push(format!("{}: {lines} lines", relative(&root, &file)));
            }
        }
    }
    let report = long.join("\n");
    println!(
        "{}",
        if long.is_empty() {
            "no source file over the limit"
        } else {
            &report
        }
    );
    assert!(
        long.is_empty(),
        "{} product source file(s) longer than {MAX_LINES} lines; split them by concern:\n{report}",
        long.len()
    );
}

// ---------------------------------------------------------------------------------------
// Files.

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every `.rs` file under `root/dir`, sorted.
fn rust_files(root: &Path, dir: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.join(dir)];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `path` relative to `root`, `/`-separated.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

// ---------------------------------------------------------------------------------------
// Lexing: comments and literals out of the code.

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A string literal of a source file.
struct Literal {
    /// Char offset of its first char in the file.
    offset: usize,
    /// 1-based line it starts on.
    line: usize,
    /// Its value (escapes resolved).
    text: String,
}

/// A source file with comments and the insides of string and char literals blanked
/// (newlines kept, so offsets and lines still match), and its string literals.
struct Lexed {
    code: Vec<char>,
    strings: Vec<Literal>,
    /// Char ranges of `#[cfg(test)] mod NAME { ... }` blocks.
    test_blocks: Vec<(usize, usize)>,
    /// Names of `#[cfg(test)] mod NAME;` declarations (their files are test code).
    test_files: Vec<String>,
    line_starts: Vec<usize>,
}

impl Lexed {
    fn new(src: &str) -> Lexed {
        let s: Vec<char> = src.chars().collect();
        let n = s.len();
        let mut code = s.clone();
        let mut spans = Vec::new();
        let at = |i: usize| s.get(i).copied().unwrap_or('\0');
        let mut i = 0;
        while i < n {
            let c = s[i];
            let prev = if i == 0 { ' ' } else { s[i - 1] };
            if c == '/' && at(i + 1) == '/' {
                let end = (i..n).find(|&j| s[j] == '\n').unwrap_or(n);
                blank(&mut code, i, end);
                i = end;
            } else if c == '/' && at(i + 1) == '*' {
                let (mut j, mut depth) = (i + 2, 1);
                while j < n && depth > 0 {
                    if s[j] == '/' && at(j + 1) == '*' {
                        depth += 1;
                        j += 2;
                    } else if s[j] == '*' && at(j + 1) == '/' {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                blank(&mut code, i, j);
                i = j;
            } else if !is_ident(prev) && raw_string_start(&s, i).is_some() {
                let (quote, hashes) = raw_string_start(&s, i).unwrap_or((i, 0));
                let start = quote + 1;
                let mut j = start;
                while j < n && !(s[j] == '"' && (1..=hashes).all(|h| at(j + h) == '#')) {
                    j += 1;
                }
                spans.push((start, s[start..j.min(n)].iter().collect::<String>()));
                let end = (j + 1 + hashes).min(n);
                blank(&mut code, start, j.min(n));
                i = end;
            } else if c == '"' {
                let mut j = i + 1;
                while j < n && s[j] != '"' {
                    j += if s[j] == '\\' { 2 } else { 1 };
                }
                let j = j.min(n);
                spans.push((i + 1, unescape(&s[i + 1..j])));
                blank(&mut code, i + 1, j);
                i = j + 1;
            } else if c == '\'' && at(i + 1) == '\\' {
                let end = (i + 3..n).find(|&j| s[j] == '\'').unwrap_or(n);
                blank(&mut code, i + 1, end);
                i = end + 1;
            } else if c == '\'' && at(i + 2) == '\'' {
                blank(&mut code, i + 1, i + 2);
                i += 3;
            } else {
                i += 1;
            }
        }
        let mut line_starts = vec![0];
        line_starts.extend((0..n).filter(|&j| s[j] == '\n').map(|j| j + 1));
        let mut lexed = Lexed {
            code,
            strings: Vec::new(),
            test_blocks: Vec::new(),
            test_files: Vec::new(),
            line_starts,
        };
        lexed.strings = spans
            .into_iter()
            .map(|(offset, text)| Literal {
                offset,
                line: lexed.line(offset),
                text,
            })
            .collect();
        lexed.find_test_blocks();
        lexed
    }

    /// 1-based line of char offset `offset`.
    fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    /// The string literals outside unit-test blocks.
    fn product_strings(&self) -> impl Iterator<Item = &Literal> {
        self.strings.iter().filter(|l| !self.in_test(l.offset))
    }

    fn in_test(&self, offset: usize) -> bool {
        self.test_blocks
            .iter()
            .any(|&(a, b)| offset >= a && offset < b)
    }

    /// Record `#[cfg(test)] mod NAME { ... }` blocks and blank them; record
    /// `#[cfg(test)] mod NAME;` names.
    fn find_test_blocks(&mut self) {
        let pattern: Vec<char> = "#[cfg(test)]".chars().collect();
        let mut i = 0;
        while let Some(start) = find_from(&self.code, &pattern, i) {
            i = start + pattern.len();
            let toks = tokens(&self.code, i, 64);
            // Skip further attributes (`#[...]`) and a visibility, then `mod NAME` and `{`/`;`.
            let mut m = 0;
            while m < toks.len() {
                match toks[m].text.as_str() {
                    "#" if toks.get(m + 1).is_some_and(|t| t.text == "[") => {
                        let mut depth = 0usize;
                        while m < toks.len() {
                            match toks[m].text.as_str() {
                                "[" => depth += 1,
                                "]" => depth = depth.saturating_sub(1),
                                _ => {}
                            }
                            m += 1;
                            if depth == 0 && toks[m - 1].text == "]" {
                                break;
                            }
                        }
                    }
                    "pub" | "(" | ")" | "crate" | "super" | "in" => m += 1,
                    _ => break,
                }
            }
            if toks.get(m).is_none_or(|t| t.text != "mod") {
                continue;
            }
            let (Some(name), Some(next)) = (toks.get(m + 1), toks.get(m + 2)) else {
                continue;
            };
            match next.text.as_str() {
                ";" => self.test_files.push(name.text.clone()),
                "{" => {
                    let end = matching_brace(&self.code, next.start).unwrap_or(self.code.len());
                    self.test_blocks.push((start, end));
                    blank(&mut self.code, start, end);
                    i = end;
                }
                _ => {}
            }
        }
    }
}

/// Blank `code[from..to]`, keeping newlines.
fn blank(code: &mut [char], from: usize, to: usize) {
    for c in code.iter_mut().take(to).skip(from) {
        if *c != '\n' {
            *c = ' ';
        }
    }
}

/// When a raw string (`r"`, `r#"`, `br"`, `cr#"`...) starts at `i`: the offset of its
/// opening quote and its number of `#`.
fn raw_string_start(s: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if matches!(s.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if s.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = s[j..].iter().take_while(|&&c| c == '#').count();
    (s.get(j + hashes) == Some(&'"')).then_some((j + hashes, hashes))
}

/// The value of a (non-raw) string literal's inside.
fn unescape(s: &[char]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] != '\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        match s.get(i + 1) {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some(&c @ ('\\' | '"' | '\'')) => out.push(c),
            Some('\n') => {
                // A line continuation: the newline and the next line's indentation go.
                i += 2;
                while i < s.len() && s[i].is_whitespace() {
                    i += 1;
                }
                continue;
            }
            _ => out.push(' '),
        }
        i += 2;
    }
    out
}

fn find_from(hay: &[char], needle: &[char], from: usize) -> Option<usize> {
    (from..hay.len().saturating_sub(needle.len() - 1)).find(|&i| hay[i..].starts_with(needle))
}

/// Offset just past the `}` matching the `{` at `open`.
fn matching_brace(code: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, &c) in code.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// A token of lexed code: an identifier (`$crate` included), `::`, or one other char.
#[derive(Debug, Clone)]
struct Token {
    text: String,
    start: usize,
}

/// Up to `max` tokens of `code` from `from` (`usize::MAX`: all of them).
fn tokens(code: &[char], from: usize, max: usize) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = from;
    while i < code.len() && out.len() < max {
        let c = code[i];
        if c.is_whitespace() {
            i += 1;
        } else if is_ident(c) || (c == '$' && code.get(i + 1).is_some_and(|&d| is_ident(d))) {
            let start = i;
            i += 1;
            while i < code.len() && is_ident(code[i]) {
                i += 1;
            }
            out.push(Token {
                text: code[start..i].iter().collect(),
                start,
            });
        } else if c == ':' && code.get(i + 1) == Some(&':') {
            out.push(Token {
                text: "::".into(),
                start: i,
            });
            i += 2;
        } else {
            out.push(Token {
                text: c.to_string(),
                start: i,
            });
            i += 1;
        }
    }
    out
}

fn is_ident_token(t: &str) -> bool {
    t.chars().next().is_some_and(|c| is_ident(c) || c == '$')
}

// ---------------------------------------------------------------------------------------
// The module graph of one crate.

/// A module path inside its crate (empty: the crate root).
type ModPath = Vec<String>;

fn display_module(m: &ModPath) -> String {
    m.join("::")
}

/// Where an edge was seen first.
#[derive(Debug, Clone)]
struct Evidence {
    file: String,
    line: usize,
    path: String,
}

struct ModuleGraph {
    modules: BTreeSet<ModPath>,
    edges: BTreeMap<(ModPath, ModPath), Evidence>,
}

impl ModuleGraph {
    /// The graph of the crate whose sources are under `root/dir`, rooted at `root_file`.
    fn read(root: &Path, dir: &str, root_file: &str) -> ModuleGraph {
        let base = root.join(dir);
        let mut files = BTreeMap::new();
        for file in rust_files(root, dir) {
            files.insert(module_path(&base, &file, root_file), file);
        }
        let lexed: BTreeMap<ModPath, Lexed> = files
            .iter()
            .map(|(m, f)| (m.clone(), Lexed::new(&read(f))))
            .collect();
        let test_files: BTreeSet<ModPath> = lexed
            .iter()
            .flat_map(|(m, l)| {
                l.test_files.iter().map(move |name| {
                    let mut child = m.clone();
                    child.push(name.clone());
                    child
                })
            })
            .collect();
        let modules: BTreeSet<ModPath> = files
            .keys()
            .filter(|m| !test_files.iter().any(|t| m.starts_with(t)))
            .cloned()
            .collect();
        let mut graph = ModuleGraph {
            modules,
            edges: BTreeMap::new(),
        };
        for (module, lexed) in &lexed {
            if module.is_empty() || !graph.modules.contains(module) {
                continue;
            }
            let rel = relative(root, &files[module]);
            graph.add_edges(module, &rel, lexed);
        }
        graph
    }

    /// The edges of `module`, whose lexed source is `lexed`.
    fn add_edges(&mut self, module: &ModPath, file: &str, lexed: &Lexed) {
        let toks = tokens(&lexed.code, 0, usize::MAX);
        let mut i = 0;
        while i < toks.len() {
            let prev = if i == 0 {
                ""
            } else {
                toks[i - 1].text.as_str()
            };
            if toks[i].text == "use" && prev != "::" {
                // A `use` item: its whole tree, up to `;`.
                let end = (i..toks.len())
                    .find(|&j| toks[j].text == ";")
                    .unwrap_or(toks.len());
                let line = lexed.line(toks[i].start);
                for path in expand_use(&toks[i + 1..end]) {
                    self.add_path(module, &path, file, line);
                }
                i = end + 1;
                continue;
            }
            if is_ident_token(&toks[i].text) && prev != "::" {
                // A path in code: ident (:: ident)*.
                let mut path = vec![toks[i].text.clone()];
                let mut j = i + 1;
                while j + 1 < toks.len()
                    && toks[j].text == "::"
                    && is_ident_token(&toks[j + 1].text)
                {
                    path.push(toks[j + 1].text.clone());
                    j += 2;
                }
                if path.len() > 1 {
                    self.add_path(module, &path, file, lexed.line(toks[i].start));
                }
                i = j;
                continue;
            }
            i += 1;
        }
    }

    /// Add the edge `module -> (the module path names)`, if it names one.
    fn add_path(&mut self, module: &ModPath, path: &[String], file: &str, line: usize) {
        let Some(target) = self.resolve(module, path) else {
            return;
        };
        if target.is_empty() || &target == module {
            return;
        }
        self.edges
            .entry((module.clone(), target))
            .or_insert_with(|| Evidence {
                file: file.to_string(),
                line,
                path: path.join("::"),
            });
    }

    /// The module of this crate that `path`, written in `module`, goes through last;
    /// `None` for paths into other crates.
    fn resolve(&self, module: &ModPath, path: &[String]) -> Option<ModPath> {
        let first = path.first()?;
        let (mut abs, rest) = match first.as_str() {
            "crate" | "$crate" => (Vec::new(), &path[1..]),
            "self" => (module.clone(), &path[1..]),
            "super" => {
                let supers = path.iter().take_while(|s| *s == "super").count();
                let keep = module.len().checked_sub(supers)?;
                (module[..keep].to_vec(), &path[supers..])
            }
            _ => {
                let mut child = module.clone();
                child.push(first.clone());
                if !self.modules.contains(&child) {
                    return None;
                }
                (module.clone(), path)
            }
        };
        let mut target = abs.clone();
        for segment in rest {
            abs.push(segment.clone());
            if self.modules.contains(&abs) {
                target = abs.clone();
            } else {
                break;
            }
        }
        Some(target)
    }

    /// Every strongly connected component with more than one module (Tarjan).
    fn cycles(&self) -> Vec<Vec<ModPath>> {
        let nodes: Vec<&ModPath> = self.modules.iter().filter(|m| !m.is_empty()).collect();
        let index_of: BTreeMap<&ModPath, usize> =
            nodes.iter().enumerate().map(|(i, m)| (*m, i)).collect();
        let mut adjacency = vec![Vec::new(); nodes.len()];
        for (from, to) in self.edges.keys() {
            if let (Some(&a), Some(&b)) = (index_of.get(from), index_of.get(to)) {
                adjacency[a].push(b);
            }
        }
        let mut tarjan = Tarjan {
            adjacency: &adjacency,
            index: vec![None; nodes.len()],
            low: vec![0; nodes.len()],
            on_stack: vec![false; nodes.len()],
            stack: Vec::new(),
            next: 0,
            components: Vec::new(),
        };
        for v in 0..nodes.len() {
            if tarjan.index[v].is_none() {
                tarjan.visit(v);
            }
        }
        let mut out: Vec<Vec<ModPath>> = tarjan
            .components
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| {
                let mut c: Vec<ModPath> = c.into_iter().map(|i| nodes[i].clone()).collect();
                c.sort();
                c
            })
            .collect();
        out.sort();
        out
    }
}

/// The module path of `file` under `base` (`a/b.rs`, `a/b/mod.rs`: `a::b`; the root file: empty).
fn module_path(base: &Path, file: &Path, root_file: &str) -> ModPath {
    let rel = file.strip_prefix(base).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    if parts.is_empty() && last == root_file {
        return Vec::new();
    }
    if last != "mod.rs" {
        parts.push(last.trim_end_matches(".rs").to_string());
    }
    parts
}

/// The full paths a `use` tree imports (`a::{b, c::d as e, self, *}`: `a::b`, `a::c::d`,
/// `a`, `a::*`). Paths starting with `::` (other crates) are left out.
fn expand_use(toks: &[Token]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    if toks.first().is_some_and(|t| t.text == "::") {
        return out;
    }
    use_tree(toks, &mut i, &[], &mut out);
    out
}

fn use_tree(toks: &[Token], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    while *i < toks.len() {
        let t = toks[*i].text.as_str();
        match t {
            "::" => *i += 1,
            "{" => {
                *i += 1;
                while *i < toks.len() && toks[*i].text != "}" {
                    use_tree(toks, i, &path, out);
                    if *i < toks.len() && toks[*i].text == "," {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "*" => {
                *i += 1;
                path.push("*".to_string());
                out.push(path);
                return;
            }
            "self" if !path.is_empty() => {
                *i += 1;
                out.push(path);
                return;
            }
            "as" => {
                *i += 2;
                out.push(path);
                return;
            }
            "," | "}" => {
                out.push(path);
                return;
            }
            _ if is_ident_token(t) => {
                path.push(t.to_string());
                *i += 1;
            }
            _ => *i += 1,
        }
    }
    out.push(path);
}

struct Tarjan<'a> {
    adjacency: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &self.adjacency[v] {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

// ---------------------------------------------------------------------------------------
// SQL.

/// The tables `CREATE TABLE` / `CREATE VIRTUAL TABLE` make in the projection migrations.
fn projection_tables(root: &Path) -> BTreeSet<String> {
    let dir = root.join(PROJECTION_MIGRATIONS);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let mut tables = BTreeSet::new();
    for file in files {
        let sql: String = read(&file)
            .lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
            .to_lowercase()
            .replace(['(', ';', ','], " ");
        let words: Vec<&str> = sql.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if *w != "create" {
                continue;
            }
            let mut j = i + 1;
            while matches!(words.get(j), Some(&("virtual" | "temp" | "temporary"))) {
                j += 1;
            }
            if words.get(j) != Some(&"table") {
                continue;
            }
            j += 1;
            if words.get(j..j + 3) == Some(&["if", "not", "exists"]) {
                j += 3;
            }
            if let Some(name) = words.get(j) {
                tables.insert(name.trim_matches(['"', '`', '[', ']']).to_string());
            }
        }
    }
    tables
}

/// The (keyword, table) pairs of `text` where a keyword of [`SQL_TABLE_KEYWORDS`] is
/// followed by one of `tables`, both whole words, case-insensitively.
fn sql_table_refs(text: &str, tables: &BTreeSet<String>) -> Vec<(&'static str, String)> {
    let lower: Vec<char> = text.to_lowercase().chars().collect();
    let word_at = |i: usize, w: &str| -> bool {
        let w: Vec<char> = w.chars().collect();
        lower[i..].starts_with(&w)
            && (i == 0 || !is_ident(lower[i - 1]))
            && lower.get(i + w.len()).is_none_or(|&c| !is_ident(c))
    };
    let mut found = Vec::new();
    for i in 0..lower.len() {
        for keyword in SQL_TABLE_KEYWORDS {
            if !word_at(i, keyword) {
                continue;
            }
            let mut j = i + keyword.chars().count();
            let spaces = lower[j..].iter().take_while(|c| c.is_whitespace()).count();
            if spaces == 0 {
                continue;
            }
            j += spaces;
            if matches!(lower.get(j), Some('"' | '`' | '[')) {
                j += 1;
            }
            if let Some(table) = tables.iter().find(|t| word_at(j, t)) {
                found.push((*keyword, table.clone()));
            }
        }
    }
    found
}

/// One line of `text`, whitespace folded, at most 100 chars.
fn excerpt(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= 100 {
        format!("\"{folded}\"")
    } else {
        format!("\"{}...\"", folded.chars().take(100).collect::<String>())
    }
}

// ---------------------------------------------------------------------------------------
// The guards' own parsing, on small inputs.

#[test]
fn lexing_blanks_comments_and_literals() {
    let src = "// crate::a\nlet s = r#\"FROM \"x\" t\"#; let c = '\"'; /* crate::b /* nested */ */\n\
               fn f<'a>(x: &'a str) { \"line\\\n    FROM t\" }\n#[cfg(test)]\n#[allow(unused)]\nmod tests { use crate::c; }\n";
    let lexed = Lexed::new(src);
    let code: String = lexed.code.iter().collect();
    assert!(!code.contains("crate"), "{code}");
    assert!(code.contains("fn f<'a>(x: &'a str)"), "{code}");
    let texts: Vec<&str> = lexed.strings.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, vec!["FROM \"x\" t", "lineFROM t"]);
    assert_eq!(lexed.strings[1].line, 3);
}

#[test]
fn use_trees_expand() {
    let toks = tokens(
        &"{crate::{a::{self, B as C}, b::*, c::d::E}, super::f}"
            .chars()
            .collect::<Vec<_>>(),
        0,
        usize::MAX,
    );
    let paths: Vec<String> = expand_use(&toks).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        paths,
        vec![
            "crate::a",
            "crate::a::B",
            "crate::b::*",
            "crate::c::d::E",
            "super::f"
        ]
    );
}

#[test]
fn paths_resolve_to_modules() {
    let modules: BTreeSet<ModPath> = [vec![], vec!["a"], vec!["a", "b"], vec!["c"]]
        .into_iter()
        .map(|m| m.into_iter().map(String::from).collect())
        .collect();
    let graph = ModuleGraph {
        modules,
        edges: BTreeMap::new(),
    };
    let p = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    let ab = p("a::b");
    assert_eq!(graph.resolve(&ab, &p("super::X")), Some(p("a")));
    assert_eq!(graph.resolve(&ab, &p("super::super::c::Y")), Some(p("c")));
    assert_eq!(graph.resolve(&ab, &p("crate::a::b::Z")), Some(p("a::b")));
    assert_eq!(graph.resolve(&ab, &p("crate::Root")), Some(vec![]));
    assert_eq!(graph.resolve(&p("a"), &p("b::f")), Some(p("a::b")));
    assert_eq!(graph.resolve(&p("a"), &p("serde::Serialize")), None);
}

#[test]
fn sql_matches_whole_words() {
    let tables: BTreeSet<String> = ["sessions".to_string()].into();
    assert_eq!(
        sql_table_refs("select 1 from\n  \"sessions\" s", &tables),
        vec![("from", "sessions".to_string())]
    );
    assert!(sql_table_refs("SELECT 1 FROM sessions_old", &tables).is_empty());
    assert!(sql_table_refs("SELECT 1 FROMsessions", &tables).is_empty());
    assert!(sql_table_refs("came_from sessions", &tables).is_empty());
}
