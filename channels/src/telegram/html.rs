//! Markdown (what agents write) as Telegram's HTML parse mode: only the tags Telegram
//! shows (`b`, `i`, `s`, `code`, `pre`, `a`, `blockquote`), `<`, `>` and `&` escaped,
//! paragraphs, headings and lists as lines of text.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// `s` with `<`, `>`, `&` and `"` escaped for Telegram's HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Render `markdown` as Telegram HTML (always balanced tags, even for a half-written
/// reply that is being streamed).
pub fn render(markdown: &str) -> String {
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES,
    );
    let mut out = String::new();
    let mut lists: Vec<Option<u64>> = Vec::new();
    for event in parser {
        match event {
            Event::Start(tag) => match tag {
                Tag::Heading { .. } | Tag::Strong => out.push_str("<b>"),
                Tag::Emphasis => out.push_str("<i>"),
                Tag::Strikethrough => out.push_str("<s>"),
                Tag::BlockQuote(_) => out.push_str("<blockquote>"),
                Tag::CodeBlock(kind) => match kind {
                    CodeBlockKind::Fenced(lang) if !lang.trim().is_empty() => {
                        let lang = lang.split_whitespace().next().unwrap_or_default();
                        out.push_str(&format!("<pre><code class=\"language-{}\">", escape(lang)))
                    }
                    _ => out.push_str("<pre><code>"),
                },
                Tag::List(start) => {
                    if !out.is_empty() && !out.ends_with('\n') {
                        out.push('\n');
                    }
                    lists.push(start);
                }
                Tag::Item => {
                    out.push_str(&"  ".repeat(lists.len().saturating_sub(1)));
                    match lists.last_mut() {
                        Some(Some(n)) => {
                            out.push_str(&format!("{n}. "));
                            *n += 1;
                        }
                        _ => out.push_str("• "),
                    }
                }
                Tag::Link { dest_url, .. } => {
                    out.push_str(&format!("<a href=\"{}\">", escape(&dest_url)))
                }
                Tag::Image { dest_url, .. } => {
                    out.push_str(&format!("<a href=\"{}\">", escape(&dest_url)))
                }
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Paragraph => out.push_str("\n\n"),
                TagEnd::Heading(_) => out.push_str("</b>\n\n"),
                TagEnd::Strong => out.push_str("</b>"),
                TagEnd::Emphasis => out.push_str("</i>"),
                TagEnd::Strikethrough => out.push_str("</s>"),
                TagEnd::BlockQuote(_) => {
                    let trimmed = out.trim_end().len();
                    out.truncate(trimmed);
                    out.push_str("</blockquote>\n\n");
                }
                TagEnd::CodeBlock => {
                    out.push_str("</code></pre>\n\n");
                }
                TagEnd::List(_) => {
                    lists.pop();
                    if lists.is_empty() {
                        out.push('\n');
                    }
                }
                TagEnd::Item if !out.ends_with('\n') => out.push('\n'),
                TagEnd::Link | TagEnd::Image => out.push_str("</a>"),
                TagEnd::TableRow | TagEnd::TableHead => out.push('\n'),
                TagEnd::TableCell => out.push('\t'),
                _ => {}
            },
            Event::Text(t) => out.push_str(&escape(&t)),
            Event::Code(c) => out.push_str(&format!("<code>{}</code>", escape(&c))),
            Event::Html(h) | Event::InlineHtml(h) => out.push_str(&escape(&h)),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => out.push_str("———\n\n"),
            Event::TaskListMarker(done) => out.push_str(if done { "[x] " } else { "[ ] " }),
            Event::FootnoteReference(f) => out.push_str(&escape(&format!("[{f}]"))),
            _ => {}
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_the_tags_telegram_shows() {
        assert_eq!(render("**a** & <b>"), "<b>a</b> &amp; &lt;b&gt;");
        assert_eq!(render("# Title\n\ntext"), "<b>Title</b>\n\ntext");
        assert_eq!(
            render("```rust\nlet x = 1 < 2;\n```"),
            "<pre><code class=\"language-rust\">let x = 1 &lt; 2;\n</code></pre>"
        );
        assert_eq!(render("- a\n- b"), "• a\n• b");
        assert_eq!(
            render("[x](http://e.org/?a=1&b=2)"),
            "<a href=\"http://e.org/?a=1&amp;b=2\">x</a>"
        );
        assert_eq!(render("echo: hi (3 before)"), "echo: hi (3 before)");
        // A half-written reply still has balanced tags.
        assert_eq!(render("**bold and"), "**bold and");
        assert_eq!(render("```\ncode"), "<pre><code>code</code></pre>");
    }
}
