//! Splitting a long reply into messages a service accepts.
//!
//! The text is cut into atoms that should stay whole: a fenced code block, else a
//! sentence (with the whitespace after it), else a word, else as many characters as fit.
//! Atoms are packed greedily into parts no longer than the limit. A code block too long
//! for one part is cut between lines and each piece is fenced again, so every part renders
//! on its own.

use super::LengthUnit;

/// Split `text` into parts of at most `max` (in `unit`), in order. Empty input gives no
/// parts; `max` below 16 is raised to 16 so that a fence always fits.
pub fn split(text: &str, max: usize, unit: LengthUnit) -> Vec<String> {
    let max = max.max(16);
    let trimmed = text.trim();
    if measure(trimmed, unit) <= max {
        return if trimmed.is_empty() {
            Vec::new()
        } else {
            vec![trimmed.to_string()]
        };
    }
    let mut atoms = Vec::new();
    for block in blocks(text) {
        match block {
            Block::Prose(p) => prose_atoms(p, max, unit, &mut atoms),
            Block::Code { fence, body } => code_atoms(fence, &body, max, unit, &mut atoms),
        }
    }
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    for atom in atoms {
        let together = measure(current.trim_start(), unit) + measure(atom.trim_end(), unit);
        if !current.trim().is_empty() && together > max {
            push_part(&mut parts, &current);
            current.clear();
        }
        current.push_str(&atom);
    }
    push_part(&mut parts, &current);
    parts
}

/// The length of `s` as the service counts it.
pub fn measure(s: &str, unit: LengthUnit) -> usize {
    match unit {
        LengthUnit::Bytes => s.len(),
        LengthUnit::Chars => s.chars().count(),
    }
}

fn push_part(parts: &mut Vec<String>, part: &str) {
    let p = part.trim();
    if !p.is_empty() {
        parts.push(p.to_string());
    }
}

enum Block<'a> {
    Prose(&'a str),
    Code { fence: &'a str, body: Vec<&'a str> },
}

/// Cut the text into prose and fenced code blocks (a fence is a line starting with three
/// backticks; an unclosed fence runs to the end).
fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut prose_start = 0;
    let mut offset = 0;
    let mut code: Option<(&str, Vec<&str>)> = None;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_fence = bare.trim_start().starts_with("```");
        match (&mut code, is_fence) {
            (None, true) => {
                if offset > prose_start {
                    out.push(Block::Prose(&text[prose_start..offset]));
                }
                code = Some((bare.trim_start(), Vec::new()));
            }
            (Some(_), true) => {
                if let Some((fence, body)) = code.take() {
                    out.push(Block::Code { fence, body });
                }
                prose_start = offset + line.len();
            }
            (Some((_, body)), false) => body.push(bare),
            (None, false) => {}
        }
        offset += line.len();
    }
    match code {
        Some((fence, body)) => out.push(Block::Code { fence, body }),
        None if prose_start < text.len() => out.push(Block::Prose(&text[prose_start..])),
        None => {}
    }
    out
}

/// Sentences (each with the whitespace after it), cut smaller when one does not fit.
fn prose_atoms(prose: &str, max: usize, unit: LengthUnit, atoms: &mut Vec<String>) {
    for sentence in sentences(prose) {
        if measure(sentence.trim(), unit) <= max {
            atoms.push(sentence.to_string());
            continue;
        }
        for word in sentence.split_inclusive(char::is_whitespace) {
            if measure(word.trim(), unit) <= max {
                atoms.push(word.to_string());
            } else {
                hard_cut(word, max, unit, atoms);
            }
        }
    }
}

/// Sentence boundaries: after `.`, `!`, `?` followed by whitespace, or after a line break.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_some_and(|(_, n)| n.is_whitespace());
        if c == '\n' || (matches!(c, '.' | '!' | '?') && next_is_space) {
            // The run of whitespace after the boundary goes with the sentence.
            let mut end = i + c.len_utf8();
            while let Some((j, n)) = chars.peek().copied() {
                if !n.is_whitespace() {
                    break;
                }
                end = j + n.len_utf8();
                chars.next();
            }
            out.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Cut a word with no room for it into pieces of at most `max`.
fn hard_cut(word: &str, max: usize, unit: LengthUnit, atoms: &mut Vec<String>) {
    let mut piece = String::new();
    for c in word.trim().chars() {
        let grown = measure(&piece, unit) + measure(c.encode_utf8(&mut [0; 4]), unit);
        if grown > max && !piece.is_empty() {
            atoms.push(std::mem::take(&mut piece));
        }
        piece.push(c);
    }
    if !piece.is_empty() {
        piece.push(' ');
        atoms.push(piece);
    }
}

/// A code block whole when it fits, else pieces of whole lines, each fenced again.
fn code_atoms(fence: &str, body: &[&str], max: usize, unit: LengthUnit, atoms: &mut Vec<String>) {
    const CLOSE: &str = "```";
    let wrap = |lines: &[String]| format!("\n{fence}\n{}\n{CLOSE}\n", lines.join("\n"));
    let all: Vec<String> = body.iter().map(|l| l.to_string()).collect();
    let whole = wrap(&all);
    if measure(whole.trim(), unit) <= max {
        atoms.push(whole);
        return;
    }
    // Room for code in one part, after the fences and their two line breaks.
    let overhead = measure(fence, unit) + measure(CLOSE, unit) + 2;
    let room = max.saturating_sub(overhead).max(1);
    let mut lines = Vec::new();
    for line in body {
        if measure(line, unit) <= room {
            lines.push(line.to_string());
        } else {
            let mut cut = Vec::new();
            hard_cut(line, room, unit, &mut cut);
            lines.extend(cut.into_iter().map(|c| c.trim_end().to_string()));
        }
    }
    let mut piece: Vec<String> = Vec::new();
    let mut used = 0;
    for line in lines {
        let len = measure(&line, unit) + usize::from(!piece.is_empty());
        if used + len > room && !piece.is_empty() {
            atoms.push(wrap(&piece));
            piece.clear();
            used = 0;
        }
        used += measure(&line, unit) + usize::from(!piece.is_empty());
        piece.push(line);
    }
    if !piece.is_empty() {
        atoms.push(wrap(&piece));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn squash(s: &str) -> String {
        s.split_whitespace().collect()
    }

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split("  hello  ", 100, LengthUnit::Bytes), vec!["hello"]);
        assert!(split("   ", 100, LengthUnit::Bytes).is_empty());
    }

    #[test]
    fn long_prose_splits_at_sentences() {
        let text = "The first sentence is here. The second one follows it. And a third ends.";
        let parts = split(text, 40, LengthUnit::Bytes);
        assert_eq!(
            parts,
            vec![
                "The first sentence is here.",
                "The second one follows it.",
                "And a third ends."
            ]
        );
    }

    #[test]
    fn a_code_block_stays_whole_when_it_fits_and_is_fenced_again_when_cut() {
        let text = "Look:\n```rust\nfn a() {}\nfn b() {}\n```\nDone.";
        // The block is 31 bytes: it fits alone, not with the text around it.
        let parts = split(text, 31, LengthUnit::Bytes);
        assert_eq!(
            parts,
            vec!["Look:", "```rust\nfn a() {}\nfn b() {}\n```", "Done."]
        );
        let long = format!("```\n{}```", "let x = 1;\n".repeat(10));
        let parts = split(&long, 40, LengthUnit::Bytes);
        assert!(parts.len() > 1);
        for p in &parts {
            assert!(p.starts_with("```\n") && p.ends_with("\n```"), "{p:?}");
            assert!(p.len() <= 40);
        }
        let lines: usize = parts.iter().map(|p| p.matches("let x = 1;").count()).sum();
        assert_eq!(lines, 10);
    }

    #[test]
    fn characters_count_for_char_services() {
        let text = "é".repeat(30);
        assert_eq!(split(&text, 30, LengthUnit::Chars).len(), 1);
        let by_bytes = split(&text, 30, LengthUnit::Bytes);
        assert_eq!(by_bytes.len(), 2);
        assert!(by_bytes.iter().all(|p| p.len() <= 30));
    }

    proptest! {
        // Every part fits, none is empty, and prose keeps every character in order.
        #[test]
        fn prose_parts_fit_and_keep_every_word(text in "([a-zA-Zé]{1,40}[ .!?\n]{1,3}){0,60}", max in 16usize..200) {
            for unit in [LengthUnit::Bytes, LengthUnit::Chars] {
                let parts = split(&text, max, unit);
                for p in &parts {
                    prop_assert!(measure(p, unit) <= max, "{p:?} over {max}");
                    prop_assert!(!p.trim().is_empty());
                }
                prop_assert_eq!(squash(&parts.concat()), squash(&text));
            }
        }

        // With code blocks too, every part fits and every code character survives.
        #[test]
        fn code_parts_fit_and_keep_every_line(lines in proptest::collection::vec("[a-z =;(){}]{0,50}", 0..30), max in 24usize..120) {
            let text = format!("Intro text.\n```sh\n{}\n```\nOutro.", lines.join("\n"));
            let parts = split(&text, max, LengthUnit::Bytes);
            for p in &parts {
                prop_assert!(p.len() <= max, "{p:?} over {max}");
            }
            let joined = squash(&parts.concat().replace("```sh", "").replace("```", ""));
            prop_assert_eq!(joined, squash(&format!("Intro text.{}Outro.", lines.concat())));
        }
    }
}
