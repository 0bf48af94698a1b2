//! The iMessage channel against a strict stand-in of a BlueBubbles server's REST API
//! (`tests/peers/imessage/`, written from the BlueBubbles server's public REST
//! documentation), started once for this test binary. The conformance suite, then what is
//! particular: tapbacks, group events and empty messages skipped; an answer that is not
//! JSON reported with a reconnect, no crash loop; replies threaded with the Private API
//! and a reply to the bot addressing it in a group; a refused send not sent again; a
//! wrong password; `channels add` and `doctor`.

mod channels_common;
mod gateway_common;

use std::time::Duration;

use channels_common::conformance::{self, Peer as _, Person as _};
use channels_common::imessage_peer::{ImessagePeer, ImessagePerson, PASSWORD};
use clawos_events::EventPayload;
use gateway_common::*;
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(30);

/// The suite, then the particular checks on the same stand-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imessage_against_the_standin() {
    let mut peer = ImessagePeer::start(&[conformance::GROUP]).await;
    conformance::run(&mut peer).await;
    awkward_messages(&peer).await;
    wrong_password(&peer).await;
    channels_add_then_doctor(&peer).await;
}

fn link_ups(log: &[Ev], channel: &str) -> usize {
    log.iter()
        .filter(|e| {
            matches!(&e.payload, EventPayload::ChannelLinkChanged(l)
                if l.channel == channel && l.up)
        })
        .count()
}

async fn round_trip(p: &mut ImessagePerson, text: &str) {
    p.say(None, "clawbot", text).await;
    let h = p.hear("clawbot", WITHIN).await;
    assert!(
        h.as_ref()
            .is_some_and(|h| h.text.starts_with(&format!("echo: {text}"))),
        "an answer to `{text}`: {h:?}"
    );
}

async fn sent(peer: &ImessagePeer) -> Vec<serde_json::Value> {
    let v = peer.standin.control("sent", json!({})).await;
    v.as_array().cloned().unwrap_or_default()
}

/// Tapbacks, a group event and an empty message are skipped; an answer that is not JSON
/// is a protocol error in `clawos status`, then the channel reconnects in the same
/// process. Replies are threaded on what they answer; in a group, a reply to the bot's
/// message addresses it; a send the server refuses (400) is not sent again.
async fn awkward_messages(peer: &ImessagePeer) {
    let name = "im";
    let config = echo_config("normal") + &peer.section(name, "group_policy = \"mention\"\n");
    let mut gw = Harness::new(&config);
    gw.start("127.0.0.1:0").await;
    gw.wait_log("the link up", WITHIN, |log| link_ups(log, name) > 0)
        .await;
    let mut dan = peer.person("dan").await;
    dan.wait_for_bot(None, "clawbot", WITHIN).await;

    let first = dan.say_with(None, "threaded hello", json!({})).await;
    let h = dan.hear("clawbot", WITHIN).await.expect("an answer");
    assert!(h.text.starts_with("echo: threaded hello"), "{h:?}");
    let replies = sent(peer).await;
    let reply = replies.last().expect("a reply");
    assert_eq!(reply["replyTo"], json!(first), "threaded: {reply}");

    dan.say_with(None, "", json!({"assocType": 2000, "assocGuid": first}))
        .await;
    dan.say_with(
        None,
        "Loved “threaded hello”",
        json!({"assocType": "love", "assocGuid": first}),
    )
    .await;
    dan.say_with(None, "", json!({"itemType": 2})).await;
    dan.say_with(None, "", json!({})).await;
    round_trip(&mut dan, "after the tapbacks").await;
    // A reply that takes a while: the bot is shown typing in dan's chat first.
    round_trip(&mut dan, "slowly: one two three").await;
    let typing = peer.standin.control("typing", json!({})).await;
    assert!(
        typing.as_array().is_some_and(|t| t
            .iter()
            .any(|g| g.as_str() == Some(&format!("iMessage;-;{}", dan.number)))),
        "typing shown in dan's chat: {typing}"
    );
    let log = gw.log().await;
    let received = log
        .iter()
        .filter(|e| matches!(&e.payload, EventPayload::MessageReceived(_)))
        .count();
    assert_eq!(
        received,
        3,
        "only the messages are logged:\n{}",
        summary(&log)
    );

    // An answer that is not JSON.
    let ups = link_ups(&log, name);
    peer.standin
        .control("broken", json!({"body": "<html>502 Bad Gateway</html>"}))
        .await;
    gw.wait_log("the bad answer reported", WITHIN, |log| {
        log.iter().any(|e| {
            matches!(&e.payload, EventPayload::ChannelLinkChanged(l)
                if l.channel == name && !l.up
                    && l.detail.contains("protocol error: message/query: the answer is not JSON"))
        })
    })
    .await;
    gw.wait_log("the link up again", WITHIN, |log| link_ups(log, name) > ups)
        .await;
    round_trip(&mut dan, "after the bad answer").await;
    let status = gw.cli(&["status"]).await;
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.contains("link up: connected"), "{status}");
    assert_eq!(conformance::starts(&gw.log().await, name), 1, "no restart");

    // In a group: unaddressed is context; a reply to the bot's message addresses it.
    dan.join(conformance::GROUP, "clawbot").await;
    dan.say_with(
        Some(conformance::GROUP),
        "clawbot: start a thread",
        json!({}),
    )
    .await;
    let h = dan.hear("clawbot", WITHIN).await.expect("a group answer");
    assert_eq!(h.group.as_deref(), Some(conformance::GROUP));
    let bots = sent(peer).await.last().expect("the bot's message")["guid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    dan.say_with(
        Some(conformance::GROUP),
        "and a reply to you",
        json!({"replyTo": bots}),
    )
    .await;
    let h = dan
        .hear("clawbot", WITHIN)
        .await
        .expect("an answer to the reply");
    assert!(h.text.contains("and a reply to you"), "{h:?}");

    // A send the server refuses: reported, not sent again; the next goes through.
    peer.standin
        .control(
            "fail",
            json!({"route": "POST /api/v1/message/text", "status": 400, "message": "Chat does not exist!"}),
        )
        .await;
    dan.say(None, "clawbot", "this answer is refused").await;
    round_trip(&mut dan, "and this one is not").await;
    assert!(
        !sent(peer)
            .await
            .iter()
            .any(|m| m["text"].as_str().unwrap_or("").contains("is refused")),
        "the refused answer is not sent again"
    );
    assert_eq!(conformance::starts(&gw.log().await, name), 1);
    gw.stop().await;
}

/// A wrong server password: refused, reported, retried slowly (conformance::refused_login).
async fn wrong_password(peer: &ImessagePeer) {
    let section = peer
        .section("imbad", "")
        .replace(PASSWORD, "not-the-password");
    let line = conformance::refused_login(&(echo_config("normal") + &section), "imbad").await;
    assert!(line.contains("refused the password"), "{line}");
    assert!(
        !line.contains("not-the-password"),
        "the password is not shown: {line}"
    );
}

/// `clawos channels add imessage` with answers on stdin: the password in the vault only;
/// `clawos doctor` reaches the server (`ping`), and names one that is not there.
async fn channels_add_then_doctor(peer: &ImessagePeer) {
    let home = tempfile::tempdir().expect("temp dir");
    let add = |name: &'static str, url: String| {
        let dir = home.path().to_path_buf();
        async move {
            let answers = format!("{url}\nclawbot\nyes\n{PASSWORD}\n");
            let out = cli_with_input(
                &dir,
                &["channels", "add", "imessage", "--name", name],
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
    add("imadded", peer.standin.url()).await;
    let toml = std::fs::read_to_string(home.path().join("clawos.toml")).expect("clawos.toml");
    assert!(
        toml.contains("[channels.imadded]") && toml.contains("kind = \"imessage\""),
        "{toml}"
    );
    assert!(
        !toml.contains(PASSWORD),
        "the password stays out of clawos.toml"
    );
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("channel imadded (imessage): reaches"),
        "{text}"
    );

    add("imgone", format!("http://127.0.0.1:{}", free_port())).await;
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        !doctor.status.success(),
        "an unreachable server is a problem"
    );
    assert!(
        text.contains("channel imgone (imessage): cannot reach"),
        "{text}"
    );
}
