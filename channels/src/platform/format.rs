//! Markdown (what agents write) rendered to a service's text format.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::TextFormat;

/// mIRC control code: bold.
pub const IRC_BOLD: char = '\u{02}';
/// mIRC control code: italics.
pub const IRC_ITALIC: char = '\u{1d}';
/// mIRC control code: strikethrough.
pub const IRC_STRIKE: char = '\u{1e}';
/// mIRC control code: monospace.
pub const IRC_MONO: char = '\u{11}';

/// Render `markdown` for a service that shows `format`.
pub fn render(markdown: &str, format: TextFormat) -> String {
    match format {
        TextFormat::Markdown => markdown.to_string(),
        TextFormat::Html => {
            let mut html = String::new();
            pulldown_cmark::html::push_html(&mut html, parser(markdown));
            html.trim_end().to_string()
        }
        TextFormat::Plain => text(markdown, false),
        TextFormat::Irc => text(markdown, true),
    }
}

fn parser(markdown: &str) -> Parser<'_> {
    Parser::new_ext(
        markdown,
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES,
    )
}

/// Markdown reduced to text, with mIRC codes for emphasis when `irc`.
fn text(markdown: &str, irc: bool) -> String {
    let mut out = String::new();
    let mut links: Vec<String> = Vec::new();
    let mut lists: Vec<Option<u64>> = Vec::new();
    let code = |out: &mut String| {
        if irc {
            out.push(IRC_MONO)
        }
    };
    for event in parser(markdown) {
        match event {
            Event::Start(tag) => match tag {
                Tag::Paragraph => {}
                // A heading is a line of its own; bold on IRC.
                Tag::Heading { .. } if irc => out.push(IRC_BOLD),
                Tag::BlockQuote(_) => out.push_str("> "),
                Tag::CodeBlock(_) if !out.is_empty() && !out.ends_with('\n') => out.push('\n'),
                Tag::List(start) => {
                    if !out.is_empty() && !out.ends_with('\n') {
                        out.push('\n');
                    }
                    lists.push(start);
                }
                Tag::Item => {
                    let depth = lists.len().saturating_sub(1);
                    out.push_str(&"  ".repeat(depth));
                    match lists.last_mut() {
                        Some(Some(n)) => {
                            out.push_str(&format!("{n}. "));
                            *n += 1;
                        }
                        _ => out.push_str("- "),
                    }
                }
                Tag::Emphasis if irc => out.push(IRC_ITALIC),
                Tag::Strong if irc => out.push(IRC_BOLD),
                Tag::Strikethrough if irc => out.push(IRC_STRIKE),
                Tag::Link { dest_url, .. } => links.push(dest_url.to_string()),
                Tag::Image { dest_url, .. } => links.push(dest_url.to_string()),
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Paragraph => out.push_str("\n\n"),
                TagEnd::Heading(_) => {
                    if irc {
                        out.push(IRC_BOLD);
                    }
                    out.push_str("\n\n");
                }
                TagEnd::CodeBlock => {
                    if !out.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push('\n');
                }
                TagEnd::List(_) => {
                    lists.pop();
                    if lists.is_empty() {
                        out.push('\n');
                    }
                }
                TagEnd::Item if !out.ends_with('\n') => out.push('\n'),
                TagEnd::Emphasis if irc => out.push(IRC_ITALIC),
                TagEnd::Strong if irc => out.push(IRC_BOLD),
                TagEnd::Strikethrough if irc => out.push(IRC_STRIKE),
                TagEnd::Link | TagEnd::Image => {
                    if let Some(url) = links.pop() {
                        if !out.ends_with(url.as_str()) {
                            out.push_str(&format!(" <{url}>"));
                        }
                    }
                }
                TagEnd::TableRow | TagEnd::TableHead => out.push('\n'),
                TagEnd::TableCell => out.push('\t'),
                _ => {}
            },
            Event::Text(t) => out.push_str(&t),
            Event::Code(c) => {
                code(&mut out);
                out.push_str(&c);
                code(&mut out);
            }
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => out.push_str("---\n\n"),
            Event::Html(h) | Event::InlineHtml(h) => out.push_str(&h),
            Event::TaskListMarker(done) => out.push_str(if done { "[x] " } else { "[ ] " }),
            Event::FootnoteReference(r) => out.push_str(&format!("[{r}]")),
            _ => {}
        }
    }
    // Collapse the blank lines blocks leave behind.
    let mut tidy = String::with_capacity(out.len());
    let mut blank_run = 0;
    for line in out.trim().split('\n') {
        let line = line.trim_end_matches([' ', '\t']);
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        tidy.push_str(line);
        tidy.push('\n');
    }
    tidy.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Plan\n\nDo **this** and *that*, see [docs](https://x.test/d).\n\n- one\n- `two`\n\n```sh\nls -l\n```\n";

    #[test]
    fn plain_keeps_the_text_and_drops_the_markup() {
        assert_eq!(
            render(SAMPLE, TextFormat::Plain),
            "Plan\n\nDo this and that, see docs <https://x.test/d>.\n\n- one\n- two\n\nls -l"
        );
    }

    #[test]
    fn irc_uses_control_codes() {
        let irc = render(SAMPLE, TextFormat::Irc);
        assert!(irc.starts_with("\u{2}Plan\u{2}\n"), "{irc:?}");
        assert!(
            irc.contains("Do \u{2}this\u{2} and \u{1d}that\u{1d}"),
            "{irc:?}"
        );
        assert!(irc.contains("- \u{11}two\u{11}"), "{irc:?}");
    }

    #[test]
    fn html_and_markdown() {
        let html = render(SAMPLE, TextFormat::Html);
        assert!(html.contains("<strong>this</strong>"), "{html}");
        assert!(
            html.contains("<a href=\"https://x.test/d\">docs</a>"),
            "{html}"
        );
        assert_eq!(render(SAMPLE, TextFormat::Markdown), SAMPLE);
    }

    #[test]
    fn a_bare_link_is_not_repeated_and_numbered_lists_count() {
        assert_eq!(
            render("<https://a.test>", TextFormat::Plain),
            "https://a.test"
        );
        assert_eq!(render("1. a\n2. b", TextFormat::Plain), "1. a\n2. b");
    }

    #[test]
    fn plain_text_passes_through() {
        assert_eq!(render("hello there", TextFormat::Irc), "hello there");
        assert_eq!(render("", TextFormat::Plain), "");
    }
}
