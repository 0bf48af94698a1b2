//! The Signal channel against a strict stand-in of `signal-cli daemon --http`
//! (`tests/peers/signal/`, written from signal-cli-jsonrpc(5)), started once for this test
//! binary. The conformance suite, then what is particular to Signal: receipts, typing,
//! sync messages and unknown future payloads skipped; malformed and oversize events
//! reported and skipped with a reconnect, no crash loop; replies quoted in groups; a
//! failed send refused once; an account the daemon does not know; `channels add` and
//! `doctor`.

mod channels_common;
mod gateway_common;

use std::time::Duration;

use channels_common::conformance::{self, Peer as _, Person as _};
use channels_common::signal_peer::{SignalPeer, BOT};
use clawos_events::EventPayload;
use gateway_common::*;
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(30);

/// The suite, then the particular checks on the same stand-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_against_the_standin() {
    let mut peer = SignalPeer::start(&[conformance::GROUP]).await;
    conformance::run(&mut peer).await;
    awkward_payloads(&peer).await;
    unknown_account(&peer).await;
    channels_add_then_doctor(&peer).await;
}

fn link_down_with(log: &[Ev], channel: &str, words: &str) -> usize {
    log.iter()
        .filter(|e| {
            matches!(&e.payload, EventPayload::ChannelLinkChanged(l)
                if l.channel == channel && !l.up && l.detail.contains(words))
        })
        .count()
}

fn link_ups(log: &[Ev], channel: &str) -> usize {
    log.iter()
        .filter(|e| {
            matches!(&e.payload, EventPayload::ChannelLinkChanged(l)
                if l.channel == channel && l.up)
        })
        .count()
}

async fn round_trip(p: &mut channels_common::signal_peer::SignalPerson, text: &str) {
    p.say(None, "clawbot", text).await;
    let h = p.hear("clawbot", WITHIN).await;
    assert!(
        h.as_ref()
            .is_some_and(|h| h.text.starts_with(&format!("echo: {text}"))),
        "an answer to `{text}`: {h:?}"
    );
}

/// Receipts, typing, sync messages, reactions, an unknown event and an envelope with
/// unknown fields are skipped without a word; a malformed and an oversize event are each
/// reported in `clawos status` as a protocol error, skipped, and the channel reconnects in
/// the same process. Group replies quote the message they answer; a send the daemon
/// refuses is reported and not sent again.
async fn awkward_payloads(peer: &SignalPeer) {
    let name = "sg";
    let config = echo_config("normal") + &peer.section(name, "group_policy = \"mention\"\n");
    let mut gw = Harness::new(&config);
    gw.start("127.0.0.1:0").await;
    gw.wait_log("the link up", WITHIN, |log| link_ups(log, name) > 0)
        .await;
    let mut carol = peer.person("carol").await;
    carol.wait_for_bot(None, "clawbot", WITHIN).await;

    carol.control_noise().await;
    round_trip(&mut carol, "after the noise").await;
    // A reply that takes a while: the daemon is asked to show the bot typing first.
    round_trip(&mut carol, "slowly: one two three").await;
    let typing = peer.standin.control("typing", json!({})).await["typing"].clone();
    assert!(
        typing
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x["recipient"] == json!([carol.number]))),
        "sendTyping to carol before the slow reply: {typing}"
    );
    let log = gw.log().await;
    assert_eq!(
        link_ups(&log, name),
        1,
        "the noise did not drop the link:\n{}",
        summary(&log)
    );
    let received = log
        .iter()
        .filter(|e| matches!(&e.payload, EventPayload::MessageReceived(_)))
        .count();
    assert_eq!(
        received,
        2,
        "only the messages are logged:\n{}",
        summary(&log)
    );

    // Malformed JSON, then an event above the size cap.
    for (what, body, words) in [
        (
            "raw",
            json!({"data": "{\"envelope\": not json"}),
            "protocol error: events: an event that is not JSON",
        ),
        (
            "big",
            json!({"bytes": 3 * 1024 * 1024}),
            "protocol error: events: an event larger than",
        ),
    ] {
        let ups = link_ups(&gw.log().await, name);
        peer.standin.control(what, body).await;
        gw.wait_log("the bad event reported", WITHIN, |log| {
            link_down_with(log, name, words) > 0
        })
        .await;
        gw.wait_log("the link up again", WITHIN, |log| link_ups(log, name) > ups)
            .await;
        let status = gw.cli(&["status"]).await;
        let status = String::from_utf8_lossy(&status.stdout).to_string();
        assert!(
            status.contains("link up: connected"),
            "status after the reconnect:\n{status}"
        );
        round_trip(&mut carol, &format!("after the {what} event")).await;
        let log = gw.log().await;
        assert_eq!(
            link_down_with(&log, name, words),
            1,
            "the bad event is skipped, not read again on reconnect"
        );
        assert_eq!(conformance::starts(&log, name), 1, "no restart");
    }

    // A mention in the group is answered with a quote of it.
    carol.join(conformance::GROUP, "clawbot").await;
    let before = peer.standin.get("/_standin/sent").await;
    let n = before.as_array().map(Vec::len).unwrap_or(0);
    let ts = carol
        .say_with(Some(conformance::GROUP), "clawbot, what is new", json!({}))
        .await;
    let h = carol.hear("clawbot", WITHIN).await.expect("a group answer");
    assert_eq!(h.group.as_deref(), Some(conformance::GROUP));
    let sent = peer.standin.get("/_standin/sent").await;
    let reply = &sent[n];
    assert_eq!(reply["quoteTimestamp"], json!(ts), "{reply}");
    assert_eq!(reply["quoteAuthor"], json!(carol.number), "{reply}");

    // A send the daemon refuses (-1): reported, not sent again; the next goes through.
    peer.standin
        .control(
            "fail",
            json!({"method": "send", "code": -1, "message": "Failed to send message"}),
        )
        .await;
    carol.say(None, "clawbot", "this answer is refused").await;
    round_trip(&mut carol, "and this one is not").await;
    let sent = peer.standin.get("/_standin/sent").await;
    assert!(
        !sent
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["message"].as_str().unwrap_or("").contains("is refused")),
        "the refused answer is not sent again"
    );
    assert_eq!(conformance::starts(&gw.log().await, name), 1);
    gw.stop().await;
}

/// A daemon that does not know the account (it answers "Specified account does not
/// exist"): an authentication refusal in `clawos status`, retried slowly, no crash loop.
async fn unknown_account(peer: &SignalPeer) {
    let section = peer.section("sgnone", "").replace(BOT, "+15559999999");
    let line = conformance::refused_login(&(echo_config("normal") + &section), "sgnone").await;
    assert!(
        line.contains("does not know the account +15559999999")
            && line.contains("register or link it"),
        "{line}"
    );
}

/// `clawos channels add signal` with answers on stdin; `clawos doctor` reaches the
/// daemon (its `version`), and names one that is not there.
async fn channels_add_then_doctor(peer: &SignalPeer) {
    let home = tempfile::tempdir().expect("temp dir");
    let add = |name: &'static str, url: String| {
        let dir = home.path().to_path_buf();
        async move {
            let answers = format!("{url}\n{BOT}\n\nclawbot\n");
            let out = cli_with_input(
                &dir,
                &["channels", "add", "signal", "--name", name],
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
    add("sgadded", peer.standin.url()).await;
    let toml = std::fs::read_to_string(home.path().join("clawos.toml")).expect("clawos.toml");
    assert!(
        toml.contains("[channels.sgadded]")
            && toml.contains("kind = \"signal\"")
            && toml.contains(BOT),
        "{toml}"
    );
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(text.contains("channel sgadded (signal): reaches"), "{text}");

    add("sggone", format!("http://127.0.0.1:{}", free_port())).await;
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        !doctor.status.success(),
        "an unreachable daemon is a problem"
    );
    assert!(
        text.contains("channel sggone (signal): cannot reach"),
        "{text}"
    );
}
