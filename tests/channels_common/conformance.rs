//! The channel conformance suite: what "a channel works" means, run by every adapter
//! against its real server (or, for hosted services, its strict stand-in).
//!
//! Each check drives the real `clawos` Gateway with the echo agent and a person on the
//! service, and asserts on what the person hears and on the log.

use std::time::Duration;

use clawos_events::EventPayload;

use crate::gateway_common::{echo_config, signal, summary, Ev, Harness};

/// A message the person heard from the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    /// The group it was said in, `None` for a direct message.
    pub group: Option<String>,
    /// The text (empty for a file alone).
    pub text: String,
    /// A file: its name and bytes.
    pub file: Option<(String, Vec<u8>)>,
}

/// A person on the service.
#[allow(async_fn_in_trait)]
pub trait Person {
    /// Their clawos address (`irc:alice@net`).
    fn address(&self) -> String;
    /// Join a group and wait until the bot is in it.
    async fn join(&mut self, group: &str, bot: &str);
    /// Say something in a group, or to the bot directly.
    async fn say(&mut self, group: Option<&str>, bot: &str, text: &str);
    /// The next thing the bot says to them (or in a group they are in), if any in time.
    async fn hear(&mut self, bot: &str, within: Duration) -> Option<Heard>;
    /// Wait until the bot is reachable again (after a restart).
    async fn wait_for_bot(&mut self, group: Option<&str>, bot: &str, within: Duration);
    /// Send the bot a file in a direct message (only called when the peer says
    /// [`Peer::attachments`]).
    async fn send_file(&mut self, bot: &str, name: &str, mime: &str, bytes: &[u8]);
}

/// A service with a running server.
#[allow(async_fn_in_trait)]
pub trait Peer {
    /// Its people.
    type P: Person;
    /// The channel kind.
    fn kind(&self) -> &'static str;
    /// `[channels.NAME]` for the bot, in these groups, open to every sender.
    fn channel_section(&self, name: &str, groups: &[&str]) -> String;
    /// The bot's name on the service.
    fn bot(&self) -> &str;
    /// The adapter's declared maximum message length.
    fn max_len(&self) -> usize;
    /// A new person.
    async fn person(&self, name: &str) -> Self::P;
    /// Stop the server.
    fn stop_server(&mut self);
    /// Start it again (same address, same data).
    fn start_server(&mut self);
    /// Files go both ways on this service.
    fn attachments(&self) -> bool;
    /// The service keeps what was said while the channel was away, and the channel
    /// catches it up (Matrix sync token, IMAP UID, XMPP archive); IRC cannot.
    fn catches_up(&self) -> bool;
    /// The service has group chats (email has none: every mail is a direct message).
    fn groups(&self) -> bool {
        true
    }
}

/// The group the suite talks in.
pub const GROUP: &str = "#clawos-suite";
/// The channel instance name in the suite's configuration.
pub const NAME: &str = "chan";
const WITHIN: Duration = Duration::from_secs(30);

fn link_events(log: &[Ev], channel: &str) -> Vec<(u64, bool, String)> {
    log.iter()
        .filter_map(|e| match &e.payload {
            EventPayload::ChannelLinkChanged(l) if l.channel == channel => {
                Some((e.seq, l.up, l.detail.clone()))
            }
            _ => None,
        })
        .collect()
}

/// How often `channel`'s process was started, by the log.
pub fn starts(log: &[Ev], channel: &str) -> usize {
    log.iter()
        .filter(|e| matches!(&e.payload, EventPayload::ChannelStarted(s) if s.channel == channel))
        .count()
}

fn received<'a>(log: &'a [Ev], text: &str) -> Vec<&'a Ev> {
    log.iter()
        .filter(|e| matches!(&e.payload, EventPayload::MessageReceived(m) if m.text == text))
        .collect()
}

fn replies_to(log: &[Ev], seq: u64) -> usize {
    log.iter()
        .filter(
            |e| matches!(&e.payload, EventPayload::MessageSent(s) if s.in_reply_to == Some(seq)),
        )
        .count()
}

async fn link_up_after(gw: &Harness, channel: &str, after: u64) -> u64 {
    let log = gw
        .wait_log("the channel's link to come up", WITHIN, |log| {
            link_events(log, channel)
                .iter()
                .any(|(s, up, _)| *up && *s > after)
        })
        .await;
    log.last().map(|e| e.seq).unwrap_or(0)
}

async fn round_trip<P: Person>(person: &mut P, group: Option<&str>, bot: &str, text: &str) {
    person.say(group, bot, text).await;
    let heard = person
        .hear(bot, WITHIN)
        .await
        .unwrap_or_else(|| panic!("no answer to `{text}` within {WITHIN:?}"));
    assert!(
        heard.text.starts_with(&format!("echo: {text}")),
        "answer to `{text}`: {heard:?}"
    );
    assert_eq!(heard.group.as_deref(), group, "answered in the wrong place");
}

/// Run the whole suite against `peer`. Each step says what it checks when it fails.
pub async fn run<S: Peer>(peer: &mut S) {
    let bot = peer.bot().to_string();
    let config = format!(
        "{}{}",
        echo_config("normal"),
        peer.channel_section(NAME, &[GROUP])
    );
    let mut gw = Harness::new(&config);
    gw.start("127.0.0.1:0").await;
    link_up_after(&gw, NAME, 0).await;

    // 1. A direct message, there and back.
    let mut alice = peer.person("alice").await;
    alice.wait_for_bot(None, &bot, WITHIN).await;
    round_trip(&mut alice, None, &bot, "hello from alice").await;
    let log = gw.log().await;
    let m = received(&log, "hello from alice");
    assert_eq!(m.len(), 1, "the message is logged once:\n{}", summary(&log));
    match &m[0].payload {
        EventPayload::MessageReceived(r) => {
            assert_eq!(r.sender, alice.address());
            assert_eq!(r.chat, None);
        }
        _ => unreachable!(),
    }

    // 2. A group: unaddressed messages are kept as context, a mention gets an answer.
    if peer.groups() {
        alice.join(GROUP, &bot).await;
        alice
            .say(Some(GROUP), &bot, "just chatting among ourselves")
            .await;
        assert_eq!(
            alice.hear(&bot, Duration::from_secs(3)).await,
            None,
            "the bot answered an unaddressed group message"
        );
        let mention = format!("{bot}: are you there");
        alice.say(Some(GROUP), &bot, &mention).await;
        let heard = alice
            .hear(&bot, WITHIN)
            .await
            .expect("an answer to the mention");
        assert_eq!(heard.group.as_deref(), Some(GROUP));
        assert!(heard.text.contains("are you there"), "{heard:?}");
        let log = gw.log().await;
        let context = received(&log, "just chatting among ourselves");
        assert_eq!(
            context.len(),
            1,
            "the unaddressed message is logged as context"
        );
        assert_eq!(replies_to(&log, context[0].seq), 0, "and not answered");
    } else {
        eprintln!(
            "{}: no group chats; the group step does not apply",
            peer.kind()
        );
    }

    // 3. A reply longer than the service's limit arrives split, in order, each part
    //    within the limit.
    let max = peer.max_len();
    let sentence = "This sentence is part of a long reply that must be split.";
    let times = max * 3 / sentence.len() + 1;
    let long = vec![sentence; times].join(" ");
    alice
        .say(None, &bot, &format!("repeat {times}: {sentence}"))
        .await;
    let mut parts = Vec::new();
    let mut got = String::new();
    while !got.contains("before)") {
        let h = alice
            .hear(&bot, WITHIN)
            .await
            .unwrap_or_else(|| panic!("the long reply stopped after {} parts: {got}", parts.len()));
        assert!(
            h.text.len() <= max,
            "a part over {max} bytes: {}",
            h.text.len()
        );
        got.push_str(&h.text);
        got.push(' ');
        parts.push(h.text);
    }
    assert!(
        parts.len() >= 3,
        "expected at least 3 parts, got {}",
        parts.len()
    );
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    assert!(
        squash(&got).starts_with(&squash(&format!("echo: {long}"))),
        "the parts, joined, are the reply in order"
    );

    // 4. The channel process SIGKILLed mid-conversation: restarted, and the reply pending
    //    at the kill is delivered exactly once.
    let log = gw.log().await;
    let head = log.last().map(|e| e.seq).unwrap_or(0);
    let starts_before = starts(&log, NAME);
    let pid = gw
        .channel_processes()
        .into_iter()
        .find(|c| c.name == NAME)
        .expect("the channel process")
        .pid;
    // The agent takes a second (`later:`), so the kill lands before the reply is
    // written: no send can race the kill, and the reply must come from the Gateway's
    // delivery to the new process, once.
    alice
        .say(None, &bot, "later: said just before the kill")
        .await;
    gw.wait_log("the message before the kill", WITHIN, |log| {
        !received(log, "later: said just before the kill").is_empty()
    })
    .await;
    assert!(signal(pid, "KILL"), "kill -9 the channel process");
    gw.wait_log("the channel restarted", WITHIN, |log| {
        starts(log, NAME) > starts_before
    })
    .await;
    link_up_after(&gw, NAME, head).await;
    alice.wait_for_bot(None, &bot, WITHIN).await;
    let mut answers = 0;
    while let Some(h) = alice.hear(&bot, Duration::from_secs(5)).await {
        if h.text.starts_with("echo: later: said just before the kill") {
            answers += 1;
        }
    }
    assert_eq!(
        answers, 1,
        "the reply pending at the kill is delivered exactly once"
    );
    round_trip(&mut alice, None, &bot, "after the kill").await;

    // 5. The server restarted: the same process reconnects with backoff.
    let log = gw.log().await;
    let head = log.last().map(|e| e.seq).unwrap_or(0);
    let starts_before = starts(&log, NAME);
    drop(alice);
    peer.stop_server();
    gw.wait_log("the link reported down", WITHIN, |log| {
        link_events(log, NAME)
            .iter()
            .any(|(s, up, _)| !*up && *s > head)
    })
    .await;
    peer.start_server();
    link_up_after(&gw, NAME, head).await;
    let mut bob = peer.person("bob").await;
    bob.wait_for_bot(None, &bot, WITHIN).await;
    round_trip(&mut bob, None, &bot, "after the server restart").await;
    let log = gw.log().await;
    assert_eq!(
        starts(&log, NAME),
        starts_before,
        "the channel reconnected in its own process, not by a restart"
    );
    let status = gw.cli(&["status"]).await;
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("link up: connected"),
        "clawos status shows the link:\n{status}"
    );

    // 6. An image in and an image out: equal bytes, the hash in the log both ways.
    if peer.attachments() {
        files(&gw, &mut bob, &bot).await;
    } else {
        eprintln!(
            "{}: files do not go over this service; the image step does not apply",
            peer.kind()
        );
    }

    // 7. Catch-up: what is said while the channel process is down is answered once it is
    //    back (the process frozen, a message said, the process killed and restarted).
    if peer.catches_up() {
        catch_up(&gw, &mut bob, &bot).await;
    } else {
        eprintln!(
            "{}: the service keeps no history for the channel; no catch-up",
            peer.kind()
        );
    }
}

async fn files<P: Person>(gw: &Harness, person: &mut P, bot: &str) {
    let image: Vec<u8> = (0..30_000u32).map(|i| (i * 13 % 253) as u8).collect();
    let hash = blake3::hash(&image).to_hex().to_string();
    person.send_file(bot, "cat.png", "image/png", &image).await;
    let back = loop {
        let h = person
            .hear(bot, WITHIN)
            .await
            .expect("the image sent back within time");
        if let Some(file) = h.file {
            break file;
        }
    };
    assert_eq!(
        back.1.len(),
        image.len(),
        "the image that came back has the same size"
    );
    assert!(
        back.1 == image,
        "the image that came back has the same bytes"
    );
    let log = gw
        .wait_log(
            "the image in the log both ways, its delivery acked",
            WITHIN,
            |log| {
                // Acked too: the next step freezes the process, and a delivery not yet acked
                // would (rightly) be sent again after the restart.
                log.iter().any(|e| {
                    matches!(&e.payload, EventPayload::MessageSent(s)
                if s.attachments.iter().any(|a| a.blake3.as_deref() == Some(hash.as_str()))
                    && log.iter().any(|a| matches!(&a.payload,
                        EventPayload::DeliveryAcked(d) if d.delivery_id == s.delivery_id)))
                })
            },
        )
        .await;
    let inbound = log.iter().find_map(|e| match &e.payload {
        EventPayload::MessageReceived(m) if !m.attachments.is_empty() => Some(m),
        _ => None,
    });
    let inbound = inbound.expect("the image's MessageReceived");
    assert_eq!(
        inbound.attachments[0].blake3.as_deref(),
        Some(hash.as_str())
    );
    assert_eq!(inbound.attachments[0].size, image.len() as u64);
}

async fn catch_up<P: Person>(gw: &Harness, person: &mut P, bot: &str) {
    let log = gw.log().await;
    let head = log.last().map(|e| e.seq).unwrap_or(0);
    let starts_before = starts(&log, NAME);
    let pid = gw
        .channel_processes()
        .into_iter()
        .find(|c| c.name == NAME)
        .expect("the channel process")
        .pid;
    assert!(signal(pid, "STOP"), "freeze the channel process");
    let text = "said while the channel was down";
    person.say(None, bot, text).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(signal(pid, "KILL"), "kill the frozen channel process");
    gw.wait_log("the channel restarted", WITHIN, |log| {
        starts(log, NAME) > starts_before
    })
    .await;
    link_up_after(gw, NAME, head).await;
    let heard = person
        .hear(bot, WITHIN)
        .await
        .expect("the message said while the channel was down is answered");
    assert!(
        heard.text.starts_with(&format!("echo: {text}")),
        "{heard:?}"
    );
    let log = gw.log().await;
    assert_eq!(
        received(&log, text).len(),
        1,
        "caught up once:\n{}",
        summary(&log)
    );
}

/// A refused login (ARCHITECTURE.md I16): a Gateway with `config` runs `channel`, whose
/// password is wrong. The refusal is in the log and in `clawos status`, and it is retried
/// slowly in the same process: one start, one attempt in the seconds that follow, no
/// crash loop. Returns `clawos status`'s line for the channel, for checks of its wording.
pub async fn refused_login(config: &str, channel: &str) -> String {
    let mut gw = Harness::new(config);
    gw.start("127.0.0.1:0").await;
    let refused = |log: &[Ev]| {
        log.iter()
            .filter(|e| {
                matches!(&e.payload, EventPayload::ChannelLinkChanged(l)
                if l.channel == channel && !l.up && l.detail.contains("authentication refused"))
            })
            .count()
    };
    gw.wait_log("the refused login reported", WITHIN, |log| refused(log) > 0)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = gw.log().await;
    assert_eq!(
        starts(&log, channel),
        1,
        "the refused channel was not restarted in a loop"
    );
    assert_eq!(refused(&log), 1, "a refused password is retried slowly");
    let status = gw.cli(&["status"]).await;
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    let line = status
        .lines()
        .find(|l| l.contains(channel) && l.contains("link down: authentication refused"))
        .unwrap_or_else(|| panic!("clawos status names the refused login:\n{status}"))
        .to_string();
    gw.stop().await;
    line
}
