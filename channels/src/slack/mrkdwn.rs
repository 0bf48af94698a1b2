//! Markdown (what agents write) rendered to Slack's `mrkdwn`: `*bold*`, `_italic_`,
//! `~strike~`, `` `code` ``, ``` fences, `<url|text>` links, `>` quotes, and `&`, `<`, `>`
//! escaped everywhere else as Slack asks.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// `text` with the three characters Slack's formatting reserves escaped.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn newline(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

/// Render `markdown` as Slack `mrkdwn`.
pub fn render(markdown: &str) -> String {
    let mut out = String::new();
    let mut links: Vec<(usize, String)> = Vec::new();
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut quote = 0usize;
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES,
    );
    for event in parser {
        match event {
            Event::Start(tag) => match tag {
                Tag::Heading { .. } => {
                    newline(&mut out);
                    out.push('*');
                }
                Tag::BlockQuote(_) => {
                    newline(&mut out);
                    quote += 1;
                    out.push_str("> ");
                }
                Tag::CodeBlock(kind) => {
                    newline(&mut out);
                    out.push_str("```");
                    if let CodeBlockKind::Fenced(_) = kind {
                        // Slack shows no language name.
                    }
                    out.push('\n');
                }
                Tag::List(start) => {
                    newline(&mut out);
                    lists.push(start);
                }
                Tag::Item => {
                    newline(&mut out);
                    let depth = lists.len().saturating_sub(1);
                    out.push_str(&"    ".repeat(depth));
                    match lists.last_mut() {
                        Some(Some(n)) => {
                            out.push_str(&format!("{n}. "));
                            *n += 1;
                        }
                        _ => out.push_str("• "),
                    }
                }
                Tag::Emphasis => out.push('_'),
                Tag::Strong => out.push('*'),
                Tag::Strikethrough => out.push('~'),
                Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                    links.push((out.len(), dest_url.to_string()))
                }
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Paragraph => out.push_str(if quote > 0 { "\n" } else { "\n\n" }),
                TagEnd::Heading(_) => out.push_str("*\n\n"),
                TagEnd::BlockQuote(_) => {
                    quote = quote.saturating_sub(1);
                    newline(&mut out);
                }
                TagEnd::CodeBlock => {
                    newline(&mut out);
                    out.push_str("```\n\n");
                }
                TagEnd::List(_) => {
                    lists.pop();
                    newline(&mut out);
                    if lists.is_empty() {
                        out.push('\n');
                    }
                }
                TagEnd::Emphasis => out.push('_'),
                TagEnd::Strong => out.push('*'),
                TagEnd::Strikethrough => out.push('~'),
                TagEnd::Link | TagEnd::Image => {
                    if let Some((start, url)) = links.pop() {
                        let label = out.split_off(start.min(out.len()));
                        let url = url.replace(['<', '>', '|'], "");
                        if label.is_empty() || label == url {
                            out.push_str(&format!("<{url}>"));
                        } else {
                            out.push_str(&format!("<{url}|{label}>"));
                        }
                    }
                }
                TagEnd::TableCell => out.push_str(" | "),
                TagEnd::TableRow | TagEnd::TableHead => out.push('\n'),
                _ => {}
            },
            Event::Text(t) => {
                let t = escape(&t);
                if quote > 0 {
                    out.push_str(&t.replace('\n', "\n> "));
                } else {
                    out.push_str(&t);
                }
            }
            Event::Code(c) => {
                out.push('`');
                out.push_str(&escape(&c));
                out.push('`');
            }
            Event::Html(h) | Event::InlineHtml(h) => out.push_str(&escape(&h)),
            Event::SoftBreak | Event::HardBreak => {
                out.push('\n');
                if quote > 0 {
                    out.push_str("> ");
                }
            }
            Event::Rule => {
                newline(&mut out);
                out.push_str("───\n\n");
            }
            Event::TaskListMarker(done) => out.push_str(if done { "☑ " } else { "☐ " }),
            Event::FootnoteReference(f) => out.push_str(&format!("[{f}]")),
            _ => {}
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_mrkdwn() {
        assert_eq!(
            render("**bold** and *it* and ~~no~~"),
            "*bold* and _it_ and ~no~"
        );
        assert_eq!(render("`a<b>` & c"), "`a&lt;b&gt;` &amp; c");
        assert_eq!(
            render("see [the docs](https://x.y/z) now"),
            "see <https://x.y/z|the docs> now"
        );
        assert_eq!(render("```rust\nlet a = 1;\n```"), "```\nlet a = 1;\n```");
        assert_eq!(render("- one\n- two"), "• one\n• two");
        assert_eq!(render("1. one\n2. two"), "1. one\n2. two");
        assert_eq!(render("# Title\n\ntext"), "*Title*\n\ntext");
        assert_eq!(render("> quoted"), "> quoted");
        assert_eq!(render("plain"), "plain");
    }
}
