//! The Discord channel against a strict local stand-in of Discord's REST API v10 and
//! Gateway (`tests/peers/discord/`, written from Discord's developer documentation), started
//! once for this test binary. The conformance suite, then what is particular to Discord:
//! a refused token, a 429 answered by waiting `retry_after`, unknown and malformed Gateway
//! payloads, streamed replies as edits, and `channels add` + `doctor`.

mod channels_common;
mod gateway_common;

use std::time::Duration;

use channels_common::conformance::{self, Person as _};
use channels_common::discord_peer::{DiscordPeer, TOKEN};
use clawos_events::EventPayload;
use gateway_common::*;
use serde_json::{json, Value};

const WITHIN: Duration = Duration::from_secs(30);

/// The suite, then the rest on the same stand-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_against_the_standin() {
    let mut peer = DiscordPeer::start(&[conformance::GROUP]).await;
    conformance::run(&mut peer).await;
    refused_token(&peer).await;
    particular(&peer).await;
    channels_add_then_doctor(&peer).await;
}

/// A wrong token: refused, reported, retried slowly (conformance::refused_login).
async fn refused_token(peer: &DiscordPeer) {
    let section = peer.section("dcbad", "").replace(TOKEN, "not-the-token");
    let line = conformance::refused_login(&(echo_config("normal") + &section), "dcbad").await;
    assert!(line.contains("bot token"), "{line}");
}

async fn link_up_after(gw: &Harness, name: &str, after: u64) {
    gw.wait_log("the link up", WITHIN, |log| {
        log.iter().any(|e| {
            e.seq > after
                && matches!(&e.payload, EventPayload::ChannelLinkChanged(l) if l.up && l.channel == name)
        })
    })
    .await;
}

/// A 429, streamed edits, a reply threaded on its message, unknown and malformed
/// Gateway payloads.
async fn particular(peer: &DiscordPeer) {
    let mut gw = Harness::new(&(echo_config("normal") + &peer.section("dc", "")));
    gw.start("127.0.0.1:0").await;
    link_up_after(&gw, "dc", 0).await;
    let mut carol = conformance::Peer::person(peer, "carol").await;
    carol.wait_for_bot(None, "clawbot", WITHIN).await;

    // A 429 with retry_after: the bot waits it out and sends again.
    let before = peer.control("GET", "stats", Value::Null).await;
    peer.control("POST", "ratelimit", json!({"count": 2, "retry_after": 0.6}))
        .await;
    let said = carol.say_raw(None, "rate me", json!({})).await;
    let heard = carol
        .hear("clawbot", WITHIN)
        .await
        .expect("an answer after a 429");
    assert!(heard.text.starts_with("echo: rate me"), "{heard:?}");
    let after = peer.control("GET", "stats", Value::Null).await;
    assert_eq!(
        after["rate_limited"].as_u64().unwrap_or(0) - before["rate_limited"].as_u64().unwrap_or(0),
        2,
        "two 429s were served"
    );
    assert_eq!(
        after["early_retries"], before["early_retries"],
        "no retry came before retry_after"
    );
    let feed = peer.control("GET", "feed?after=0", Value::Null).await;
    let reply = feed["feed"]
        .as_array()
        .and_then(|f| {
            f.iter().rev().find(|e| {
                e["message"]["content"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("echo: rate me"))
            })
        })
        .expect("the reply in the feed")
        .clone();
    assert_eq!(
        reply["message"]["message_reference"]["message_id"], said["id"],
        "the reply is threaded on the message it answers"
    );

    // A streamed reply: one message, then edits (PATCH) to the whole text.
    let words = "one two three four five six seven eight nine ten eleven twelve";
    carol
        .say(None, "clawbot", &format!("slowly: {words}"))
        .await;
    let mut heard = Vec::new();
    while let Some(h) = carol.hear("clawbot", Duration::from_secs(15)).await {
        let done = h.text.contains("twelve (");
        heard.push(h.text);
        if done {
            break;
        }
    }
    let new: Vec<&String> = heard.iter().filter(|t| !t.starts_with("* ")).collect();
    assert_eq!(new.len(), 1, "one message, then edits: {heard:#?}");
    assert!(heard.len() >= 3, "the reply grows by edits: {heard:#?}");
    let typing = peer.control("GET", "stats", Value::Null).await["typing"].clone();
    assert!(
        typing
            .as_array()
            .is_some_and(|t| t.contains(&Value::from(carol.dm.clone()))),
        "the bot typed in carol's DM before its reply: {typing}"
    );
    assert!(
        heard.last().is_some_and(|t| t.contains(words)),
        "{heard:#?}"
    );

    // An unknown future dispatch and an unknown opcode are ignored; a payload that is not
    // JSON is a protocol error in `clawos status`, and the same process resumes.
    let log = gw.log().await;
    let head = log.last().map(|e| e.seq).unwrap_or(0);
    let starts = conformance::starts(&log, "dc");
    let odd = json!({"t": "SOME_FUTURE_EVENT", "d": {"what": [1, {"x": null}]}});
    peer.control("POST", "dispatch", odd).await;
    peer.control("POST", "inject", json!({"raw": "{\"op\": 99, \"d\": {}}"}))
        .await;
    carol.say(None, "clawbot", "still there").await;
    let heard = carol.hear("clawbot", WITHIN).await.expect("an answer");
    assert!(heard.text.starts_with("echo: still there"), "{heard:?}");
    let log = gw.log().await;
    assert!(
        !log.iter()
            .any(|e| e.seq > head
                && matches!(&e.payload, EventPayload::ChannelLinkChanged(l) if !l.up)),
        "unknown payloads do not drop the link"
    );
    peer.control("POST", "inject", json!({"raw": "this is not json {"}))
        .await;
    let log = gw
        .wait_log("the malformed payload reported", WITHIN, |log| {
            log.iter().any(|e| {
                matches!(&e.payload, EventPayload::ChannelLinkChanged(l)
                    if !l.up && l.detail.contains("protocol error: gateway: a payload that is not JSON"))
            })
        })
        .await;
    let down = log.last().map(|e| e.seq).unwrap_or(0);
    link_up_after(&gw, "dc", down).await;
    carol.say(None, "clawbot", "after the bad payload").await;
    let heard = carol.hear("clawbot", WITHIN).await.expect("an answer");
    assert!(
        heard.text.starts_with("echo: after the bad payload"),
        "{heard:?}"
    );
    let log = gw.log().await;
    assert_eq!(
        conformance::starts(&log, "dc"),
        starts,
        "no process restart"
    );

    // Heartbeats no longer acknowledged (a zombied connection): the bot reconnects and
    // resumes its session.
    let log = gw.log().await;
    let head = log.last().map(|e| e.seq).unwrap_or(0);
    peer.control("POST", "acks", json!({"on": false})).await;
    let log = gw
        .wait_log("the missing ack reported", WITHIN, |log| {
            log.iter().any(|e| {
                e.seq > head
                    && matches!(&e.payload, EventPayload::ChannelLinkChanged(l)
                    if !l.up && l.detail.contains("no HEARTBEAT_ACK"))
            })
        })
        .await;
    peer.control("POST", "acks", json!({"on": true})).await;
    link_up_after(&gw, "dc", log.last().map(|e| e.seq).unwrap_or(0)).await;
    carol.say(None, "clawbot", "after the zombie").await;
    let heard = carol.hear("clawbot", WITHIN).await.expect("an answer");
    assert!(
        heard.text.starts_with("echo: after the zombie"),
        "{heard:?}"
    );
    let stats = peer.control("GET", "stats", Value::Null).await;
    assert!(
        stats["resumes"].as_u64().unwrap_or(0) >= 1,
        "the session was resumed: {stats}"
    );
    gw.stop().await;
}

/// `clawos channels add discord` with answers on stdin: a valid section, the token in the
/// vault only; `clawos doctor` reaches the API, and names one that is not there.
async fn channels_add_then_doctor(peer: &DiscordPeer) {
    let home = tempfile::tempdir().expect("temp dir");
    let add = |name: &'static str, url: String| {
        let dir = home.path().to_path_buf();
        async move {
            let answers = format!("{url}\n{TOKEN}\n");
            let out = cli_with_input(
                &dir,
                &["channels", "add", "discord", "--name", name],
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
    add("dcadded", peer.api_url()).await;
    let toml = std::fs::read_to_string(home.path().join("clawos.toml")).expect("clawos.toml");
    assert!(
        toml.contains("[channels.dcadded]") && toml.contains("kind = \"discord\""),
        "{toml}"
    );
    assert!(!toml.contains(TOKEN), "the token stays out of clawos.toml");
    let secret = cli_in(home.path(), &["secrets", "get", "dcadded"]).await;
    assert_eq!(String::from_utf8_lossy(&secret.stdout).trim(), TOKEN);
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("channel dcadded (discord): reaches"),
        "{text}"
    );

    add(
        "dcgone",
        format!("http://127.0.0.1:{}/api/v10", free_port()),
    )
    .await;
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(!doctor.status.success(), "an unreachable API is a problem");
    assert!(
        text.contains("channel dcgone (discord): cannot reach"),
        "{text}"
    );
}
