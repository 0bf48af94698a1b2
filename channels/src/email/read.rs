//! One mail read into an inbound message: sender, text (quoted reply and signature
//! trimmed, the subject in front when it starts a thread), attachments into the media
//! store, and what a reply needs to thread on it. Mail sent by machines (auto-replies,
//! bounces, lists) and the bot's own mail are skipped, so two robots never answer each
//! other in a loop.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders};

use crate::media::{MediaError, MediaStore};
use crate::platform::AdapterError;
use crate::protocol::Inbound;

/// What a reply to a mail needs: its subject and the thread's Message-IDs (its own last).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Thread {
    /// The mail's subject.
    pub subject: String,
    /// References of the mail, then its own Message-ID (without angle brackets).
    pub references: Vec<String>,
}

/// A mail, read.
#[derive(Debug)]
pub enum Read {
    /// A message for the Gateway, and its thread (its References end with its own
    /// Message-ID, when it has one).
    Message(Box<Inbound>, Thread),
    /// Not for the agent (the reason is logged).
    Skip(String),
}

/// A reply keeps this many Message-IDs in References (the first and the latest ones).
const MAX_REFERENCES: usize = 20;
/// The longest text passed on, in bytes (the bus carries frames of up to 256 KiB; an
/// agent needs no more of one mail). The rest is cut, and the text says so.
pub const MAX_TEXT_BYTES: usize = 100 * 1024;
/// The most attachments kept of one mail.
pub const MAX_ATTACHMENTS: usize = 50;

/// `text` within [`MAX_TEXT_BYTES`], cut at a character boundary with a note.
fn capped(mut text: String) -> String {
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let mut cut = MAX_TEXT_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let rest = text.len() - cut;
    text.truncate(cut);
    text.push_str(&format!(
        "\n\n(the rest of this mail, {rest} more bytes, was cut)"
    ));
    text
}

/// The Message-IDs of a header (`In-Reply-To`, `References`), without angle brackets.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .map(|id| id.trim().trim_matches(['<', '>']).to_string())
    .filter(|id| !id.is_empty() && !id.contains(char::is_whitespace))
    .collect()
}

/// Why a mail was sent by a machine rather than a person (RFC 3834 and common practice),
/// if it was.
fn automatic(mail: &mail_parser::Message<'_>) -> Option<String> {
    let header = |name: &str| mail.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    if let Some(v) = header("Auto-Submitted").filter(|v| !v.starts_with("no")) {
        return Some(format!("Auto-Submitted: {v}"));
    }
    if let Some(v) = header("Precedence").filter(|v| ["bulk", "junk", "list"].contains(&v.as_str()))
    {
        return Some(format!("Precedence: {v}"));
    }
    for name in [
        "List-Id",
        "X-Autoreply",
        "X-Autorespond",
        "X-Auto-Response-Suppress",
    ] {
        if header(name).is_some_and(|v| name != "X-Auto-Response-Suppress" || v.contains("all")) {
            return Some(format!("it has a {name} header"));
        }
    }
    if header("Return-Path").is_some_and(|v| v == "<>") {
        return Some("a bounce (empty Return-Path)".into());
    }
    None
}

/// `Re: ` and its cousins taken off the front of a subject.
pub fn bare_subject(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let cut = ["re:", "aw:", "sv:", "antw:"]
            .iter()
            .find(|p| lower.starts_with(*p))
            .map(|p| p.len());
        match cut {
            Some(n) => s = s[n..].trim_start(),
            None => return s,
        }
    }
}

/// Whether `line` introduces a quote (`On Mon, Alice <a@b> wrote:`).
fn attribution(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    l.ends_with(':')
        && [
            "wrote",
            "schrieb",
            "écrit",
            "escribió",
            "scritto",
            "skrev",
            "schreef",
        ]
        .iter()
        .any(|w| l.contains(w))
}

/// The text a person wrote: the signature (after `-- `), a forwarded or quoted original
/// at the end (`-----Original Message-----`, `> …` lines and their `… wrote:` line) taken
/// off. Quotes between answers (an interleaved reply) stay. A mail that is nothing but
/// quote keeps its text.
pub fn trim_reply(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(i) = lines.iter().enumerate().position(|(i, l)| {
        let t = l.trim();
        (i > 0 && l.trim_end() == "--")
            || t.starts_with("-----Original Message-----")
            || t.starts_with("----- Original Message -----")
            || (t.starts_with("________________")
                && lines
                    .get(i + 1)
                    .is_some_and(|n| n.trim_start().starts_with("From:")))
    }) {
        lines.truncate(i);
    }
    // The quote at the end, then its attribution (maybe wrapped over two lines).
    let mut end = lines.len();
    let mut quoted = false;
    while end > 0 {
        let l = lines[end - 1].trim_start();
        if l.starts_with('>') {
            quoted = true;
        } else if !l.trim().is_empty() {
            break;
        }
        end -= 1;
    }
    if quoted {
        if end > 0 && attribution(lines[end - 1]) {
            end -= 1;
            if end > 0 && lines[end].trim().len() < 12 && !lines[end - 1].trim().is_empty() {
                end -= 1;
            }
        }
        lines.truncate(end);
    }
    let trimmed = lines.join("\n").trim().to_string();
    if trimmed.is_empty() {
        text.trim().to_string()
    } else {
        trimmed
    }
}

/// Whether `body` starts with `subject` (case and spacing aside): a person who typed the
/// subject as the first line, or a phone that made the first line the subject.
fn starts_with_subject(body: &str, subject: &str) -> bool {
    let squash = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let subject = squash(subject.trim_end_matches("..").trim_end_matches('…'));
    squash(body).starts_with(&subject)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Read one raw mail. `fallback_id` is its external id when it has no Message-ID;
/// `bot` the bot's own address (lowercase). Attachments go into `media` (above its cap,
/// or without a store, they are recorded with their size and no hash); a store that
/// cannot be written is an error, so the mail is read again later rather than lost.
pub fn read(
    raw: &[u8],
    fallback_id: &str,
    bot: &str,
    media: Option<&MediaStore>,
) -> Result<Read, AdapterError> {
    let Some(mail) = MessageParser::default().parse(raw) else {
        return Ok(Read::Skip("not a mail (no header could be read)".into()));
    };
    let Some(from) = mail
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_lowercase())
        .filter(|a| super::settings::is_address(a))
    else {
        return Ok(Read::Skip("no usable From address".into()));
    };
    if from == bot {
        return Ok(Read::Skip("sent by the bot itself".into()));
    }
    if let Some(why) = automatic(&mail) {
        return Ok(Read::Skip(format!("sent by a machine: {why}")));
    }
    let message_id = mail
        .message_id()
        .map(|id| id.trim().trim_matches(['<', '>']).to_string())
        .filter(|id| !id.is_empty() && !id.contains(char::is_whitespace));
    let mut references = ids(mail.references());
    let in_reply_to = ids(mail.in_reply_to());
    let new_thread = references.is_empty() && in_reply_to.is_empty();
    for id in in_reply_to {
        if !references.contains(&id) {
            references.push(id);
        }
    }
    let subject = mail.subject().unwrap_or_default().trim().to_string();

    let bodies: Vec<String> = (0..mail.text_body_count())
        .filter_map(|i| mail.body_text(i))
        .map(|t| t.into_owned())
        .collect();
    let body = trim_reply(&bodies.join("\n"));
    let text = if !new_thread || subject.is_empty() || starts_with_subject(&body, &subject) {
        body
    } else if body.is_empty() {
        subject.clone()
    } else {
        format!("Subject: {subject}\n\n{body}")
    };

    let mut text = capped(text);
    let mut attachments = Vec::new();
    let more = mail.attachment_count().saturating_sub(MAX_ATTACHMENTS);
    if more > 0 {
        text.push_str(&format!("\n\n({more} more attachments were not kept)"));
    }
    for (n, part) in mail.attachments().take(MAX_ATTACHMENTS).enumerate() {
        let name = part
            .attachment_name()
            .map(|s| s.replace(['/', '\\', '\0'], "_"))
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| format!("attachment-{}", n + 1));
        let mime = part.content_type().map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_lowercase(),
            None => ct.ctype().to_lowercase(),
        });
        let bytes = part.contents();
        let unkept = || clawos_events::Attachment {
            name: name.clone(),
            mime: mime.clone(),
            size: bytes.len() as u64,
            blake3: None,
            location: None,
        };
        attachments.push(match media {
            None => unkept(),
            Some(store) => match store.put(&name, mime.as_deref(), bytes) {
                Ok(a) => a,
                Err(MediaError::TooLarge { .. }) => unkept(),
                Err(e) => return Err(AdapterError::Config(format!("keeping {name}: {e}"))),
            },
        });
    }
    if text.is_empty() && attachments.is_empty() {
        return Ok(Read::Skip("an empty mail".into()));
    }
    let sent_at_ms = mail
        .date()
        .map(|d| d.to_timestamp().saturating_mul(1000))
        .filter(|ms| *ms > 0)
        .unwrap_or_else(now_ms);
    let mut refs = references;
    refs.extend(message_id.clone());
    if refs.len() > MAX_REFERENCES {
        refs.drain(1..refs.len() - (MAX_REFERENCES - 1));
    }
    let thread = Thread {
        subject,
        references: refs,
    };
    let inbound = Inbound {
        external_id: message_id.unwrap_or_else(|| fallback_id.to_string()),
        sender: format!("email:{from}"),
        chat: None,
        text,
        attachments,
        sent_at_ms,
        mentioned: true,
    };
    Ok(Read::Message(Box::new(inbound), thread))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = "bot@clawos.test";

    fn mail(headers: &str, body: &str) -> Vec<u8> {
        format!("From: Alice <Alice@Clawos.Test>\r\nTo: bot@clawos.test\r\n{headers}\r\n\r\n{body}")
            .into_bytes()
    }

    fn message(raw: &[u8], media: Option<&MediaStore>) -> (Inbound, Thread) {
        match read(raw, "uid:1:7", BOT, media).unwrap() {
            Read::Message(m, t) => (*m, t),
            Read::Skip(why) => panic!("skipped: {why}"),
        }
    }

    #[test]
    fn a_new_thread_gets_its_subject_in_front_and_a_reply_does_not() {
        let (m, t) = message(
            &mail(
                "Subject: Trip to Berlin\r\nMessage-ID: <a1@clawos.test>\r\nDate: Tue, 1 Jul 2025 10:00:00 +0000",
                "Can you book it?\r\n",
            ),
            None,
        );
        assert_eq!(m.external_id, "a1@clawos.test");
        assert_eq!(m.sender, "email:alice@clawos.test");
        assert_eq!(m.text, "Subject: Trip to Berlin\n\nCan you book it?");
        assert_eq!((m.chat, m.mentioned), (None, true));
        assert_eq!(m.sent_at_ms, 1_751_364_000_000);
        assert_eq!(
            t,
            Thread {
                subject: "Trip to Berlin".into(),
                references: vec!["a1@clawos.test".into()]
            }
        );
        let (m, t) = message(
            &mail(
                "Subject: Re: Trip to Berlin\r\nMessage-ID: <a2@x>\r\nIn-Reply-To: <b1@x>\r\nReferences: <a1@clawos.test> <b1@x>",
                "Thanks!\r\n\r\nOn Tue, 1 Jul 2025, bot@clawos.test wrote:\r\n> echo: Can you book it?\r\n> \r\n",
            ),
            None,
        );
        assert_eq!(m.text, "Thanks!");
        assert_eq!(t.references, vec!["a1@clawos.test", "b1@x", "a2@x"]);
        // The subject typed again as the first line is not doubled; no Message-ID: the
        // fallback id.
        let (m, t) = message(&mail("Subject: hello there", "Hello there, bot"), None);
        assert_eq!(
            (m.text.as_str(), m.external_id.as_str()),
            ("Hello there, bot", "uid:1:7")
        );
        assert_eq!(
            t.references,
            Vec::<String>::new(),
            "a thread with no Message-ID"
        );
        assert_eq!(t.subject, "hello there");
    }

    #[test]
    fn quotes_at_the_end_and_signatures_are_trimmed_but_interleaved_ones_stay() {
        assert_eq!(
            trim_reply("Yes please.\n\nOn Mon, 30 Jun 2025 at 09:12, Claw <bot@x>\nwrote:\n> Shall I?\n>\n"),
            "Yes please."
        );
        assert_eq!(trim_reply("Sure\n-- \nAlice\nACME"), "Sure");
        assert_eq!(
            trim_reply("Fine\n\n-----Original Message-----\nFrom: bot\nSent: today\n\nold"),
            "Fine"
        );
        assert_eq!(
            trim_reply("> first question\nanswer one\n> second\nanswer two"),
            "> first question\nanswer one\n> second\nanswer two"
        );
        assert_eq!(
            trim_reply("> only a quote\n> here"),
            "> only a quote\n> here"
        );
        assert_eq!(
            trim_reply("Am 1. Juli schrieb Bob:\n> hallo"),
            "Am 1. Juli schrieb Bob:\n> hallo"
        );
        assert_eq!(bare_subject("Re: RE: aw: Trip"), "Trip");
    }

    #[test]
    fn a_long_mail_is_cut_with_a_note() {
        let body = "é".repeat(MAX_TEXT_BYTES);
        let (m, _) = message(
            &mail(
                "Subject: long\r\nContent-Type: text/plain; charset=utf-8",
                &body,
            ),
            None,
        );
        assert!(m.text.len() < MAX_TEXT_BYTES + 100, "{}", m.text.len());
        // 15 bytes of "Subject: long\n\n", then 2-byte characters cut at a boundary.
        assert!(m
            .text
            .ends_with("é\n\n(the rest of this mail, 102416 more bytes, was cut)"));
    }

    #[test]
    fn html_alone_becomes_text() {
        let (m, _) = message(
            &mail(
                "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8",
                "<html><body><p>Hello <b>there</b> &amp; bye</p></body></html>",
            ),
            None,
        );
        assert!(m.text.contains("Hello there & bye"), "{:?}", m.text);
    }

    #[test]
    fn machines_and_the_bot_itself_are_not_answered() {
        for h in [
            "Auto-Submitted: auto-replied",
            "Precedence: bulk",
            "List-Id: <news.example.com>",
            "Return-Path: <>",
        ] {
            let raw = mail(&format!("Subject: s\r\n{h}"), "out of office");
            assert!(
                matches!(read(&raw, "u", BOT, None).unwrap(), Read::Skip(_)),
                "{h}"
            );
        }
        let own = b"From: bot@clawos.test\r\nSubject: s\r\n\r\nhi".to_vec();
        assert!(matches!(read(&own, "u", BOT, None).unwrap(), Read::Skip(_)));
        let nobody = b"Subject: s\r\n\r\nhi".to_vec();
        assert!(matches!(
            read(&nobody, "u", BOT, None).unwrap(),
            Read::Skip(_)
        ));
        assert!(matches!(
            read(b"\xff\xfe garbage", "u", BOT, None).unwrap(),
            Read::Skip(_)
        ));
        let ok = mail("Subject: s\r\nAuto-Submitted: no", "a person");
        assert!(matches!(
            read(&ok, "u", BOT, None).unwrap(),
            Read::Message(..)
        ));
    }

    #[test]
    fn attachments_go_to_the_media_store_within_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path(), 10);
        let raw = mail(
            "Subject: files\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"",
            "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
             --b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"small.png\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n\
             --b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"../big.pdf\"\r\n\r\n\
             0123456789abcdef\r\n--b--\r\n",
        );
        let (m, _) = message(&raw, Some(&store));
        assert_eq!(m.text, "Subject: files\n\nsee attached");
        let small = &m.attachments[0];
        assert_eq!(
            (small.name.as_str(), small.mime.as_deref(), small.size),
            ("small.png", Some("image/png"), 4)
        );
        let hash = small.blake3.clone().unwrap();
        assert_eq!(
            std::fs::read(store.path_of(&hash).unwrap()).unwrap(),
            vec![0, 1, 2, 3]
        );
        let big = &m.attachments[1];
        assert_eq!(
            (big.name.as_str(), big.size, big.blake3.as_deref()),
            (".._big.pdf", 16, None)
        );
    }
}
