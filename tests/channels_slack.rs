//! The Slack channel against a strict stand-in of the Web API and Socket Mode
//! (`tests/peers/slack/standin.py`, written from https://docs.slack.dev), started once for
//! this test binary. The conformance suite, then what is particular to Slack: a refused
//! token, a 429 waited out, streaming by `chat.update`, threads in channels, awkward and
//! unknown events, a refresh-requested disconnect, a malformed frame, `channels add` and
//! `doctor`.

mod channels_common;
mod gateway_common;

use std::time::{Duration, Instant};

use channels_common::conformance::{self, Person as _};
use channels_common::slack_peer::{secret, SlackPeer, SlackPerson, APP_TOKEN, BOT_USER};
use clawos_events::EventPayload;
use gateway_common::*;
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(30);

/// The suite, then the particulars on the same stand-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_against_the_standin() {
    let started = Instant::now();
    let mut peer = SlackPeer::start(&[conformance::GROUP]).await;
    eprintln!("stand-in started in {:?}", started.elapsed());
    conformance::run(&mut peer).await;
    eprintln!("conformance passed in {:?}", started.elapsed());
    particulars(&peer).await;
    refused_token(&peer).await;
    channels_add_then_doctor(&peer).await;
}

async fn link_changes(gw: &Harness, channel: &str) -> Vec<(bool, String)> {
    gw.log()
        .await
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::ChannelLinkChanged(l) if l.channel == channel => {
                Some((l.up, l.detail.clone()))
            }
            _ => None,
        })
        .collect()
}

async fn person(peer: &SlackPeer, name: &str) -> SlackPerson {
    use conformance::Peer as _;
    peer.person(name).await
}

/// One Gateway: a round trip, a 429 answered by waiting, a streamed reply, a threaded reply
/// in a channel, awkward events, a refresh, then a malformed frame.
async fn particulars(peer: &SlackPeer) {
    let mut gw = Harness::new(&(echo_config("normal") + &peer.section("sl", &secret(), "")));
    gw.start("127.0.0.1:0").await;
    gw.wait_log("the link up", WITHIN, |log| {
        log.iter().any(|e| {
            matches!(&e.payload, EventPayload::ChannelLinkChanged(l) if l.channel == "sl" && l.up)
        })
    })
    .await;
    let mut carol = person(peer, "carol").await;
    carol.wait_for_bot(None, "", WITHIN).await;

    // A round trip, timed; in a direct message the reply is not threaded, and Markdown
    // arrives as mrkdwn.
    let t = Instant::now();
    carol.say(None, "", "hello from carol").await;
    let h = carol.hear("", WITHIN).await.expect("an answer");
    eprintln!("round trip: {:?}", t.elapsed());
    assert!(h.text.starts_with("echo: hello from carol"), "{h:?}");
    let last = carol.seen.last().cloned().unwrap_or_default();
    assert!(last["thread_ts"].is_null(), "not threaded in a DM: {last}");
    carol.say(None, "", "**bold** and `code` & 1 < 2").await;
    let h = carol.hear("", WITHIN).await.expect("an answer");
    assert!(
        h.text.contains("*bold* and `code` &amp; 1 &lt; 2"),
        "rendered as mrkdwn: {h:?}"
    );

    // 429 with Retry-After: waited out, then sent once.
    peer.api
        .control(
            "ratelimit",
            json!({"method": "chat.postMessage", "count": 1, "retry_after": 2}),
        )
        .await;
    let t = Instant::now();
    carol.say(None, "", "under a rate limit").await;
    let h = carol
        .hear("", WITHIN)
        .await
        .expect("an answer after the 429");
    assert!(h.text.starts_with("echo: under a rate limit"), "{h:?}");
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    let stats = peer.api.control("stats", json!({})).await;
    assert_eq!(stats["rate"]["chat.postMessage"][1], 1, "{stats}");
    assert_eq!(
        carol.hear("", Duration::from_secs(2)).await,
        None,
        "sent once"
    );

    // A streamed reply: one message, then chat.update to the whole text.
    let words = "one two three four five six seven eight nine ten eleven twelve";
    carol.say(None, "", &format!("slowly: {words}")).await;
    let first = carol
        .hear("", WITHIN)
        .await
        .expect("the start of the reply");
    assert!(
        first.text.starts_with("echo:") && !first.text.contains("twelve"),
        "{first:?}"
    );
    let deadline = Instant::now() + WITHIN;
    while !carol.edits.last().is_some_and(|t| t.contains(words)) {
        assert!(Instant::now() < deadline, "the edits: {:#?}", carol.edits);
        let _ = carol.hear("", Duration::from_secs(1)).await;
    }
    assert!(carol.edits.len() >= 2, "grew by edits: {:#?}", carol.edits);

    // In a channel: the answer to a mention is threaded on it.
    carol.join(conformance::GROUP, "").await;
    let asked = carol
        .say_with(Some(conformance::GROUP), "@clawos what time", json!({}))
        .await;
    let h = carol
        .hear("", WITHIN)
        .await
        .expect("an answer to the mention");
    assert!(h.text.contains("what time"), "{h:?}");
    assert_eq!(h.group.as_deref(), Some(conformance::GROUP));
    let last = carol.seen.last().cloned().unwrap_or_default();
    assert_eq!(last["thread_ts"].as_str(), Some(asked.as_str()), "{last}");

    // Awkward and unknown events: skipped without an error; then one with future fields.
    let dm = carol.dm.clone();
    let id = carol.id.clone();
    for event in [
        json!({"type": "message", "subtype": "message_deleted", "hidden": true, "channel": dm,
               "ts": "1.000001", "deleted_ts": "1.0", "channel_type": "im"}),
        json!({"type": "message", "subtype": "channel_join", "user": id, "channel": dm,
               "ts": "1.000002", "text": "joined", "channel_type": "im"}),
        json!({"type": "message", "bot_id": "B999", "channel": dm, "ts": "1.000003",
               "text": "from another bot", "channel_type": "im"}),
        json!({"type": "message", "user": BOT_USER, "channel": dm, "ts": "1.000004",
               "text": "my own words", "channel_type": "im"}),
        json!({"type": "reaction_added", "user": id, "reaction": "tada"}),
        json!({"type": "message", "channel": 5, "text": ["not", "text"]}),
        json!("not even an object"),
        json!({"type": "message", "user": id, "channel": dm, "ts": "1.000005",
               "text": "with future fields", "channel_type": "im",
               "some_new_thing": {"x": [1, 2]}}),
    ] {
        peer.api.control("inject", json!({"event": event})).await;
    }
    peer.api
        .control(
            "inject",
            json!({"message": {"type": "slash_commands",
            "envelope_id": "e-unknown", "payload": {}}}),
        )
        .await;
    let h = carol
        .hear("", WITHIN)
        .await
        .expect("the future-fields message");
    assert!(h.text.starts_with("echo: with future fields"), "{h:?}");
    assert_eq!(
        carol.hear("", Duration::from_secs(2)).await,
        None,
        "nothing else"
    );

    // Slack asks for a fresh connection: reconnected without a link down.
    let downs = link_changes(&gw, "sl")
        .await
        .iter()
        .filter(|(u, _)| !u)
        .count();
    peer.api
        .control(
            "drop",
            json!({"reason": "refresh_requested", "close": false}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    carol.say(None, "", "after a refresh").await;
    let h = carol
        .hear("", WITHIN)
        .await
        .expect("an answer after the refresh");
    assert!(h.text.starts_with("echo: after a refresh"), "{h:?}");
    let after = link_changes(&gw, "sl")
        .await
        .iter()
        .filter(|(u, _)| !u)
        .count();
    assert_eq!(after, downs, "a refresh is not a link down");

    // A frame that is not JSON: a clear protocol error, a reconnect in the same process.
    let starts = conformance::starts(&gw.log().await, "sl");
    peer.api
        .control("inject", json!({"raw": "<html>bad gateway</html>"}))
        .await;
    carol.say(None, "", "after a bad frame").await;
    let h = carol
        .hear("", WITHIN)
        .await
        .expect("an answer after the bad frame");
    assert!(h.text.starts_with("echo: after a bad frame"), "{h:?}");
    let changes = link_changes(&gw, "sl").await;
    assert!(
        changes
            .iter()
            .any(|(up, d)| !up
                && d.contains("protocol error: Socket Mode: a message that is not JSON")),
        "the bad frame is named: {changes:?}"
    );
    assert_eq!(
        conformance::starts(&gw.log().await, "sl"),
        starts,
        "same process"
    );
    let status = gw.cli(&["status"]).await;
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("link up"), "{status}");
    let stats = peer.api.control("stats", json!({})).await;
    eprintln!("stand-in stats: {stats}");
    assert_eq!(
        stats["late_acks"], 0,
        "every envelope acked within 3 s: {stats}"
    );
    assert_eq!(
        stats["bad_frames"], 0,
        "every frame sent was an ack: {stats}"
    );
    gw.stop().await;
}

/// A bot token Slack does not know: `invalid_auth`, refused, reported, retried slowly.
async fn refused_token(peer: &SlackPeer) {
    let section = peer.section("slbad", &format!("{APP_TOKEN}:xoxb-revoked"), "");
    let line = conformance::refused_login(&(echo_config("normal") + &section), "slbad").await;
    assert!(line.contains("Slack says invalid_auth"), "{line}");
}

/// `clawos channels add slack`: the tokens in the vault only; `clawos doctor` checks the
/// bot token with auth.test, and names a refused one.
async fn channels_add_then_doctor(peer: &SlackPeer) {
    let home = tempfile::tempdir().expect("temp dir");
    let add = |name: &'static str, bot: &'static str| {
        let dir = home.path().to_path_buf();
        let url = peer.api.url();
        async move {
            let answers = format!("{url}\n{APP_TOKEN}\n{bot}\n");
            let out = cli_with_input(
                &dir,
                &["channels", "add", "slack", "--name", name],
                Some(&answers),
            )
            .await;
            assert!(
                out.status.success(),
                "channels add: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    add("sladded", channels_common::slack_peer::BOT_TOKEN).await;
    let toml = std::fs::read_to_string(home.path().join("clawos.toml")).expect("clawos.toml");
    assert!(
        toml.contains("[channels.sladded]") && toml.contains("kind = \"slack\""),
        "{toml}"
    );
    assert!(
        !toml.contains("xoxb-"),
        "the tokens stay out of clawos.toml"
    );
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("channel sladded (slack): reaches") && text.contains("@clawos"),
        "{text}"
    );
    add("slwrong", "xoxb-wrong").await;
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(!doctor.status.success(), "a refused token is a problem");
    assert!(
        text.contains("channel slwrong (slack): cannot reach") && text.contains("invalid_auth"),
        "{text}"
    );
}
