//! The WhatsApp channel against a strict stand-in of the WhatsApp Business Cloud API and
//! of Meta's webhook sender (`tests/peers/whatsapp/standin.py`, written from Meta's public
//! Cloud API documentation), started once for this test binary. The conformance suite,
//! then what is particular to WhatsApp: a refused token, a wrongly signed notification,
//! rate limits waited out, the 24-hour window, threading by `context`, awkward and
//! malformed notifications, `channels add` and `doctor`.

mod channels_common;
mod gateway_common;

use std::time::{Duration, Instant};

use channels_common::conformance::{self, Peer as _, Person as _};
use channels_common::whatsapp_peer::{WhatsappPeer, WhatsappPerson, APP_SECRET, TOKEN};
use clawos_events::EventPayload;
use gateway_common::*;
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(30);

/// The suite, then the particulars on the same stand-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_against_the_standin() {
    let started = Instant::now();
    let mut peer = WhatsappPeer::start().await;
    eprintln!("stand-in started in {:?}", started.elapsed());
    conformance::run(&mut peer).await;
    eprintln!("conformance suite passed in {:?}", started.elapsed());
    particulars(&peer).await;
    refused_token(&peer).await;
    channels_add_then_doctor(&peer).await;
}

fn received(log: &[Ev], text: &str) -> usize {
    log.iter()
        .filter(|e| matches!(&e.payload, EventPayload::MessageReceived(m) if m.text == text))
        .count()
}

async fn hear_echo(p: &mut WhatsappPerson, text: &str) {
    let h = p.hear("", WITHIN).await;
    let h = h.unwrap_or_else(|| panic!("no answer to `{text}`"));
    assert!(h.text.starts_with(&format!("echo: {text}")), "{h:?}");
}

/// One Gateway on its own webhook port.
async fn particulars(peer: &WhatsappPeer) {
    let port = free_port();
    peer.point_webhook(port).await;
    let secret = format!("{TOKEN}:{APP_SECRET}");
    let mut gw = Harness::new(&(echo_config("normal") + &peer.section("wa", port, &secret, "")));
    gw.start("127.0.0.1:0").await;
    gw.wait_log("the link up", WITHIN, |log| {
        log.iter().any(|e| {
            matches!(&e.payload, EventPayload::ChannelLinkChanged(l) if l.channel == "wa" && l.up)
        })
    })
    .await;
    let mut carol = peer.person("carol").await;
    carol.wait_for_bot(None, "", WITHIN).await;

    // The subscription check with a wrong verify token is refused.
    let v = carol
        .control("verify", json!({"verify_token": "not-the-token"}))
        .await;
    assert_eq!(v["status"], 403, "a wrong verify token: {v}");

    // A round trip, timed; the reply is threaded on the question with `context`.
    let t = Instant::now();
    let asked = carol.say_with("hello from carol", None).await;
    hear_echo(&mut carol, "hello from carol").await;
    eprintln!("round trip: {:?}", t.elapsed());
    let last = carol.seen.last().cloned().unwrap_or_default();
    assert_eq!(
        last["context"]["message_id"].as_str(),
        Some(asked.as_str()),
        "threaded: {last}"
    );
    assert_eq!(last["text"]["preview_url"], false, "{last}");

    // A wrongly signed notification: refused with 401, never logged.
    let forged = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp",
         "metadata": {"display_phone_number": "1", "phone_number_id": channels_common::whatsapp_peer::PHONE_NUMBER_ID},
         "messages": [{"from": carol.wa_id, "id": "wamid.forged", "timestamp": "1",
                       "type": "text", "text": {"body": "a forged message"}}]}}]}]});
    let v = peer
        .api
        .control(
            "notify",
            json!({"body": forged, "once": true, "bad_signature": true}),
        )
        .await;
    assert_eq!(v["status"], 401, "a bad signature is refused: {v}");

    // A rate limit (130429, then 80007): waited out, then sent once.
    for code in [130429, 80007] {
        peer.api
            .control("fault", json!({"code": code, "count": 1}))
            .await;
        let t = Instant::now();
        let text = format!("under rate limit {code}");
        carol.say(None, "", &text).await;
        hear_echo(&mut carol, &text).await;
        assert!(
            t.elapsed() >= Duration::from_secs(2),
            "the retry waited: {:?}",
            t.elapsed()
        );
        assert_eq!(
            carol.hear("", Duration::from_secs(1)).await,
            None,
            "sent once"
        );
    }
    let stats = peer.api.control("stats", json!({})).await;
    assert_eq!(stats["served_faults"]["130429"], 1, "{stats}");

    // The 24-hour window closed (131047): the reply is refused, not retried, and the
    // channel goes on.
    peer.api
        .control("fault", json!({"code": 131047, "count": 1}))
        .await;
    carol.say(None, "", "outside the window").await;
    assert_eq!(
        carol.hear("", Duration::from_secs(4)).await,
        None,
        "refused"
    );
    carol.say(None, "", "inside the window again").await;
    hear_echo(&mut carol, "inside the window again").await;

    // Awkward and malformed notifications: statuses only, a reaction, an unknown type,
    // unknown fields, a message without a sender, a signed body that is not JSON: all
    // answered 200 and skipped; an oversize body refused. No crash, no restart.
    let starts = conformance::starts(&gw.log().await, "wa");
    let pnid = channels_common::whatsapp_peer::PHONE_NUMBER_ID;
    let value = |extra: serde_json::Value| {
        let mut v = json!({"messaging_product": "whatsapp",
                           "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid}});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        json!({"object": "whatsapp_business_account",
               "entry": [{"id": "1", "changes": [{"field": "messages", "value": v}]}]})
    };
    let w = carol.wa_id.clone();
    for body in [
        value(
            json!({"statuses": [{"id": asked, "status": "read", "timestamp": "1",
                                   "recipient_id": w}]}),
        ),
        value(
            json!({"messages": [{"from": w, "id": "wamid.r1", "timestamp": "1",
                     "type": "reaction", "reaction": {"message_id": asked, "emoji": "👍"}}]}),
        ),
        value(
            json!({"messages": [{"from": w, "id": "wamid.u1", "timestamp": "1",
                     "type": "unsupported", "errors": [{"code": 131051}]}]}),
        ),
        value(json!({"messages": [{"id": "wamid.n1", "type": "text", "text": {"body": "x"}}]})),
        value(
            json!({"messages": [{"from": w, "id": "wamid.t1", "timestamp": 5,
                     "type": "text", "text": 7}]}),
        ),
        json!({"object": "page", "entry": []}),
        json!({"object": "whatsapp_business_account", "entry": "not a list"}),
        value(
            json!({"future_field": {"x": 1}, "messages": [{"from": w, "id": "wamid.f1",
                     "timestamp": "1", "type": "text", "future": true,
                     "text": {"body": "with future fields", "more": 1}}]}),
        ),
    ] {
        peer.api.control("notify", json!({"body": body})).await;
    }
    peer.api
        .control("notify", json!({"raw": "{not json"}))
        .await;
    hear_echo(&mut carol, "with future fields").await;
    let v = peer.api.control("drained", json!({"wait": 10})).await;
    assert_eq!(v["queued"], 0, "every notification answered 200: {v}");
    let big = "x".repeat(2 << 20);
    let v = peer
        .api
        .control("notify", json!({"raw": big, "once": true}))
        .await;
    assert_eq!(v["status"], 413, "an oversize body is refused: {v}");
    carol.say(None, "", "after the odd ones").await;
    hear_echo(&mut carol, "after the odd ones").await;
    let log = gw.log().await;
    assert_eq!(
        received(&log, "a forged message"),
        0,
        "the forged message is not logged"
    );
    assert_eq!(received(&log, "with future fields"), 1);
    assert_eq!(conformance::starts(&log, "wa"), starts, "no restart");
    let status = gw.cli(&["status"]).await;
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("link up"), "{status}");
    gw.stop().await;
    peer.point_webhook(peer.listen_port).await;
}

/// A token the Graph API does not take: 190, refused, reported, retried slowly.
async fn refused_token(peer: &WhatsappPeer) {
    let section = peer.section(
        "wabad",
        free_port(),
        &format!("EAAexpired:{APP_SECRET}"),
        "",
    );
    let line = conformance::refused_login(&(echo_config("normal") + &section), "wabad").await;
    assert!(
        line.contains("190") && line.contains("permanent token"),
        "the status says what to do: {line}"
    );
}

/// `clawos channels add whatsapp`: the secret in the vault only; `clawos doctor` checks
/// it with `GET /{phone_number_id}`, and names a refused one.
async fn channels_add_then_doctor(peer: &WhatsappPeer) {
    let home = tempfile::tempdir().expect("temp dir");
    let add = |name: &'static str, secret: String| {
        let dir = home.path().to_path_buf();
        let url = peer.api.url();
        async move {
            let answers = format!(
                "{url}\n{}\n127.0.0.1:{}\nverify-me\n{secret}\n",
                channels_common::whatsapp_peer::PHONE_NUMBER_ID,
                free_port()
            );
            let out = cli_with_input(
                &dir,
                &["channels", "add", "whatsapp", "--name", name],
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
    add("waadded", format!("{TOKEN}:{APP_SECRET}")).await;
    let toml = std::fs::read_to_string(home.path().join("clawos.toml")).expect("clawos.toml");
    assert!(
        toml.contains("[channels.waadded]") && toml.contains("kind = \"whatsapp\""),
        "{toml}"
    );
    assert!(!toml.contains(TOKEN), "the token stays out of clawos.toml");
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("channel waadded (whatsapp): reaches") && text.contains("Clawos Test"),
        "{text}"
    );
    add("wawrong", format!("EAAwrong:{APP_SECRET}")).await;
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(!doctor.status.success(), "a refused token is a problem");
    assert!(
        text.contains("channel wawrong (whatsapp): cannot reach")
            && text.contains("authentication refused"),
        "{text}"
    );
}
