//! The Telegram channel against a strict stand-in of the Bot API
//! (`tests/peers/telegram/standin.py`, written from https://core.telegram.org/bots/api),
//! started once for this test binary. The conformance suite, then what is particular to
//! Telegram: a refused token, a 429 waited out, streaming by edits, threading, mentions
//! by reply, malformed and unknown updates, `channels add` and `doctor`.

mod channels_common;
mod gateway_common;

use std::time::{Duration, Instant};

use channels_common::conformance::{self, Person as _};
use channels_common::telegram_peer::{TelegramPeer, TOKEN};
use clawos_events::EventPayload;
use gateway_common::*;
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(30);

/// The suite, then the particulars on the same stand-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_against_the_standin() {
    let started = Instant::now();
    let mut peer = TelegramPeer::start(&[conformance::GROUP]).await;
    eprintln!("stand-in started in {:?}", started.elapsed());
    conformance::run(&mut peer).await;
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

/// One Gateway: a 429 answered by waiting, a streamed reply, a reply threaded on its
/// question, a reply to the bot in a group, then a malformed answer and odd updates.
async fn particulars(peer: &TelegramPeer) {
    let mut gw = Harness::new(&(echo_config("normal") + &peer.section("tg", TOKEN, "")));
    gw.start("127.0.0.1:0").await;
    gw.wait_log("the link up", WITHIN, |log| {
        log.iter().any(|e| {
            matches!(&e.payload, EventPayload::ChannelLinkChanged(l) if l.channel == "tg" && l.up)
        })
    })
    .await;
    let mut carol = peer_person(peer, "carol").await;
    carol.wait_for_bot(None, "", WITHIN).await;

    // A round trip, timed; the reply is threaded on the question.
    let t = Instant::now();
    let asked = carol.say_with(None, "hello from carol", json!({})).await;
    let h = carol.hear("", WITHIN).await.expect("an answer");
    eprintln!("round trip: {:?}", t.elapsed());
    assert!(h.text.starts_with("echo: hello from carol"), "{h:?}");
    let last = carol.seen.last().cloned().unwrap_or_default();
    assert_eq!(
        last["reply_to_message"]["message_id"].as_i64(),
        Some(asked),
        "the reply is threaded on the question: {last}"
    );

    // 429 with retry_after: waited out, then sent once.
    peer.api
        .control(
            "ratelimit",
            json!({"method": "sendMessage", "count": 1, "retry_after": 2}),
        )
        .await;
    let t = Instant::now();
    carol.say(None, "", "under a rate limit").await;
    let h = carol
        .hear("", WITHIN)
        .await
        .expect("an answer after the 429");
    assert!(h.text.starts_with("echo: under a rate limit"), "{h:?}");
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "the retry waited retry_after: {:?}",
        t.elapsed()
    );
    let stats = peer.api.control("stats", json!({})).await;
    assert_eq!(
        stats["rate"]["sendMessage"][2], 1,
        "one request refused: {stats}"
    );
    assert_eq!(
        carol.hear("", Duration::from_secs(2)).await,
        None,
        "sent once"
    );

    // A streamed reply: one message, then edits to the whole text.
    let words = "one two three four five six seven eight nine ten eleven twelve";
    carol.say(None, "", &format!("slowly: {words}")).await;
    let first = carol
        .hear("", WITHIN)
        .await
        .expect("the start of the reply");
    assert!(
        first.text.starts_with("echo:") && !first.text.contains("twelve"),
        "the first message shows the start: {first:?}"
    );
    let deadline = Instant::now() + WITHIN;
    while !carol.edits.last().is_some_and(|t| t.contains(words)) {
        assert!(Instant::now() < deadline, "the edits: {:#?}", carol.edits);
        let _ = carol.hear("", Duration::from_secs(1)).await;
    }
    assert!(
        carol.edits.len() >= 2,
        "it grew by edits: {:#?}",
        carol.edits
    );
    // Before the first words, the bot was shown typing in carol's chat.
    let actions = peer.api.control("stats", json!({})).await["actions"].clone();
    assert!(
        actions.as_array().is_some_and(|a| a
            .iter()
            .any(|x| x["chat_id"] == json!(carol.id) && x["action"] == "typing")),
        "a typing action in carol's chat: {actions}"
    );

    // In a group: a reply to the bot's message addresses it without a mention.
    carol.join(conformance::GROUP, "").await;
    carol
        .say(Some(conformance::GROUP), "", "@clawos_bot: first")
        .await;
    let _ = carol
        .hear("", WITHIN)
        .await
        .expect("an answer to the mention");
    let bots = carol.seen.last().cloned().unwrap_or_default();
    let bot_msg = bots["message_id"].as_i64().expect("the bot's message id");
    carol
        .say_with(
            Some(conformance::GROUP),
            "a reply to the bot",
            json!({"reply_to": bot_msg}),
        )
        .await;
    let h = carol
        .hear("", WITHIN)
        .await
        .expect("an answer to the reply");
    assert!(h.text.contains("a reply to the bot"), "{h:?}");
    assert_eq!(h.group.as_deref(), Some(conformance::GROUP));

    // A photo (the sizes array): the largest is kept.
    let photo: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&photo)
    };
    peer.api
        .control(
            "say",
            json!({"from": carol.id, "chat": carol.id, "text": "a photo", "photo": {"b64": b64}}),
        )
        .await;
    // The echo agent answers with the text, then the file back.
    while carol
        .hear("", WITHIN)
        .await
        .expect("an answer to the photo")
        .file
        .is_none()
    {}
    let hash = blake3::hash(&photo).to_hex().to_string();
    gw.wait_log("the photo kept", WITHIN, |log| {
        log.iter().any(|e| matches!(&e.payload, EventPayload::MessageReceived(m)
            if m.text == "a photo" && m.attachments.iter().any(|a| a.blake3.as_deref() == Some(hash.as_str()))))
    })
    .await;

    // Unknown update kinds, a malformed message and future fields: skipped, no error.
    for update in [
        json!({"message_reaction": {"chat": {"id": carol.id}, "new_reaction": []}}),
        json!({"message": {"chat": "not an object", "text": 5}}),
        json!({"message": "not even an object"}),
        json!({"message": {"message_id": 999_999, "from": {"id": carol.id, "is_bot": false,
               "first_name": "Carol", "future_field": {"x": 1}}, "chat": {"id": carol.id,
               "type": "private", "future": true}, "date": 1, "text": "with future fields",
               "some_new_thing": [1, 2]}}),
    ] {
        peer.api.control("inject", json!({"update": update})).await;
    }
    let h = carol
        .hear("", WITHIN)
        .await
        .expect("the future-fields message answered");
    assert!(h.text.starts_with("echo: with future fields"), "{h:?}");

    // A getUpdates answer that is not JSON: a clear protocol error, a reconnect in the same
    // process, and the bot answers again.
    let starts = conformance::starts(&gw.log().await, "tg");
    peer.api
        .control("inject", json!({"raw": "<html>bad gateway</html>"}))
        .await;
    carol.say(None, "", "after a bad answer").await;
    let h = carol
        .hear("", WITHIN)
        .await
        .expect("an answer after the bad answer");
    assert!(h.text.starts_with("echo: after a bad answer"), "{h:?}");
    let changes = link_changes(&gw, "tg").await;
    assert!(
        changes
            .iter()
            .any(|(up, d)| !up && d.contains("protocol error: getUpdates: the answer is not JSON")),
        "the bad answer is named: {changes:?}"
    );
    assert_eq!(
        conformance::starts(&gw.log().await, "tg"),
        starts,
        "reconnected in the same process"
    );
    let status = gw.cli(&["status"]).await;
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("link up"), "{status}");
    gw.stop().await;
}

async fn peer_person(
    peer: &TelegramPeer,
    name: &str,
) -> channels_common::telegram_peer::TelegramPerson {
    use conformance::Peer as _;
    peer.person(name).await
}

/// A token Telegram does not know: 401, refused, reported, retried slowly.
async fn refused_token(peer: &TelegramPeer) {
    let section = peer.section("tgbad", "7000000001:AAHnot-the-right-token", "");
    let line = conformance::refused_login(&(echo_config("normal") + &section), "tgbad").await;
    assert!(
        line.contains("@BotFather"),
        "the status says what to do: {line}"
    );
}

/// `clawos channels add telegram`: the token in the vault only; `clawos doctor` checks
/// it with getMe, and names a refused one.
async fn channels_add_then_doctor(peer: &TelegramPeer) {
    let home = tempfile::tempdir().expect("temp dir");
    let add = |name: &'static str, token: &'static str| {
        let dir = home.path().to_path_buf();
        let url = peer.api.url();
        async move {
            let answers = format!("{url}\n{token}\n");
            let out = cli_with_input(
                &dir,
                &["channels", "add", "telegram", "--name", name],
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
    add("tgadded", TOKEN).await;
    let toml = std::fs::read_to_string(home.path().join("clawos.toml")).expect("clawos.toml");
    assert!(
        toml.contains("[channels.tgadded]") && toml.contains("kind = \"telegram\""),
        "{toml}"
    );
    assert!(!toml.contains(TOKEN), "the token stays out of clawos.toml");
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("channel tgadded (telegram): reaches") && text.contains("@clawos_bot"),
        "{text}"
    );
    add("tgwrong", "7000000001:AAHwrong").await;
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(!doctor.status.success(), "a refused token is a problem");
    assert!(
        text.contains("channel tgwrong (telegram): cannot reach")
            && text.contains("authentication refused"),
        "{text}"
    );
}
