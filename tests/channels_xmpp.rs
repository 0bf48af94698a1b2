//! The XMPP channel against a real server: Prosody 0.12 (Debian package), started on
//! loopback by `tests/peers/xmpp/start.sh`, once for this test binary (c2s with STARTTLS
//! required, its self-signed certificate the only trusted root; MUC, XEP-0363 upload over
//! HTTP, MAM). The conformance suite, then what is particular to XMPP: room senders,
//! private messages through a room, a room caught up after the channel was away, and a
//! refused password.

mod channels_common;
mod gateway_common;

use std::time::{Duration, Instant};

use channels_common::conformance::{self, Person};
use channels_common::xmpp_peer::{XmppPeer, XmppPerson, DOMAIN, ROOMS};
use clawos_channels::xmpp::parsers::jid::{BareJid, Jid};
use clawos_channels::xmpp::parsers::message::{Lang, Message};
use clawos_events::EventPayload;
use gateway_common::*;

const WITHIN: Duration = Duration::from_secs(30);

/// The suite, then rooms and a refused login on the same server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_against_prosody() {
    let mut peer = XmppPeer::start();
    eprintln!("xmpp: start.sh took {:?}", peer.server.started_in);
    let t0 = Instant::now();
    conformance::run(&mut peer).await;
    eprintln!("xmpp: the conformance suite took {:?}", t0.elapsed());
    rooms_private_messages_and_catch_up(&peer).await;
    refused_password(&peer).await;
    channels_add_then_doctor(&peer).await;
}

/// `clawos channels add xmpp` with answers on stdin: a valid section, the password in the
/// vault only; `clawos doctor` reaches the server, and names one that is not there.
async fn channels_add_then_doctor(peer: &XmppPeer) {
    let home = tempfile::tempdir().expect("temp dir");
    for (name, port) in [("xadded", peer.server.c2s_port), ("xgone", free_port())] {
        let answers = format!("addbot@{DOMAIN}\n127.0.0.1:{port}\n\nsecret-pass-123\n");
        let args = ["channels", "add", "xmpp", "--name", name];
        let out = cli_with_input(home.path(), &args, Some(&answers)).await;
        assert!(
            out.status.success(),
            "channels add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let toml = std::fs::read_to_string(home.path().join("clawos.toml")).expect("clawos.toml");
    assert!(
        toml.contains("[channels.xadded]") && toml.contains("kind = \"xmpp\""),
        "{toml}"
    );
    assert!(
        !toml.contains("secret-pass-123"),
        "the password stays out of clawos.toml"
    );
    let secret = cli_in(home.path(), &["secrets", "get", "xadded"]).await;
    assert_eq!(
        String::from_utf8_lossy(&secret.stdout).trim(),
        "secret-pass-123"
    );
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(text.contains("channel xadded (xmpp): reaches"), "{text}");
    assert!(
        text.contains("channel xgone (xmpp): cannot reach"),
        "{text}"
    );
    assert!(
        !doctor.status.success(),
        "an unreachable server is a problem"
    );
}

fn received_texts(log: &[Ev]) -> Vec<(String, String, Option<String>)> {
    log.iter()
        .filter_map(|e| match &e.payload {
            EventPayload::MessageReceived(m) => {
                Some((m.text.clone(), m.sender.clone(), m.chat.clone()))
            }
            _ => None,
        })
        .collect()
}

/// In a room the sender is the occupant's real JID, the bot's own echo is not taken for
/// a message, a private message through the room is answered to the person, and what
/// was said in the room while the channel was away is answered once it is back.
async fn rooms_private_messages_and_catch_up(peer: &XmppPeer) {
    let room = format!("team@{ROOMS}");
    let config = echo_config("normal")
        + &peer.server.section(
            "rooms",
            "roombot",
            "roombot-pass",
            std::slice::from_ref(&room),
        );
    peer.server.register("roombot", "roombot-pass");
    let mut gw = Harness::new(&config);
    gw.start("127.0.0.1:0").await;
    let mut carol = XmppPerson::connect(&peer.server, "carol").await;
    carol.wait_for_bot(None, "roombot", WITHIN).await;

    // Round trips of a direct message, for the record (5: the pacing's burst).
    let mut times = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        carol.say(None, "roombot", &format!("ping {i}")).await;
        let heard = carol.hear("roombot", WITHIN).await.expect("an answer");
        assert!(
            heard.text.starts_with(&format!("echo: ping {i}")),
            "{heard:?}"
        );
        times.push(t.elapsed());
    }
    times.sort();
    eprintln!(
        "xmpp: direct message round trip: median {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );

    carol.join("#team", "roombot").await;
    carol
        .say(Some("#team"), "roombot", "roombot, who am I")
        .await;
    let heard = carol.hear("roombot", WITHIN).await.expect("an answer");
    assert_eq!(heard.group.as_deref(), Some("#team"));
    assert!(heard.text.contains("who am I"), "{heard:?}");

    // A private message through the room goes back to the person's own address.
    let occupant = BareJid::new(&room)
        .expect("room")
        .with_resource_str("roombot")
        .expect("occupant");
    let pm =
        Message::chat(Jid::from(occupant)).with_body(Lang::default(), "a private word".to_string());
    carol.send(pm.into()).await;
    let heard = carol.hear("roombot", WITHIN).await.expect("an answer");
    assert_eq!(heard.group, None);
    assert!(heard.text.starts_with("echo: a private word"), "{heard:?}");

    let log = gw.log().await;
    let texts = received_texts(&log);
    let carol_jid = format!("xmpp:carol@{DOMAIN}");
    assert!(
        texts.contains(&("who am I".into(), carol_jid.clone(), Some(room.clone()))),
        "the room message's sender is carol's real JID: {texts:?}"
    );
    assert!(
        texts.contains(&("a private word".into(), carol_jid.clone(), None)),
        "{texts:?}"
    );
    assert!(
        texts.iter().all(|(t, _, _)| !t.starts_with("echo:")),
        "the bot's own room messages are not taken for a person's: {texts:?}"
    );

    // Said in the room while the channel was frozen, then killed: answered once back.
    let pid = gw
        .channel_processes()
        .into_iter()
        .find(|c| c.name == "rooms")
        .expect("the channel process")
        .pid;
    let starts_before = conformance::starts(&log, "rooms");
    assert!(signal(pid, "STOP"), "freeze the channel process");
    let away = "roombot: said while you were away";
    carol.say(Some("#team"), "roombot", away).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(signal(pid, "KILL"), "kill the frozen channel process");
    gw.wait_log("the channel restarted", WITHIN, |log| {
        conformance::starts(log, "rooms") > starts_before
    })
    .await;
    let heard = carol
        .hear("roombot", WITHIN)
        .await
        .expect("the room caught up");
    assert_eq!(heard.group.as_deref(), Some("#team"));
    assert!(heard.text.contains("said while you were away"), "{heard:?}");
    let log = gw.log().await;
    let n = received_texts(&log)
        .iter()
        .filter(|(t, _, _)| t == "said while you were away")
        .count();
    assert_eq!(n, 1, "caught up once:\n{}", summary(&log));
}

/// A refused password: reported in the log and by `clawos status`, retried slowly in
/// the same process (no crash loop).
async fn refused_password(peer: &XmppPeer) {
    peer.server.register("badbot", "the-real-password");
    let config = echo_config("normal")
        + &peer
            .server
            .section("refused", "badbot", "not-the-password", &[]);
    conformance::refused_login(&config, "refused").await;
}

/// A server that answers the stream header with malformed XML: the adapter says it is a
/// protocol error and reconnects in the same process (with backoff, not the slow retry of
/// a refused password).
#[tokio::test]
async fn xmpp_a_misbehaving_server_gets_a_clear_error_and_a_reconnect() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let mut connections = 0;
        loop {
            let (mut sock, _) = listener.accept().await.expect("accept");
            connections += 1;
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(
                    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                      xmlns:stream='http://etherx.jabber.org/streams' id='s1' \
                      from='clawos.test' version='1.0'><stream:features><<>>&&",
                )
                .await;
            if connections == 2 {
                return connections;
            }
        }
    });
    let config = format!(
        "{}[channels.odd]\nkind = \"xmpp\"\njid = \"clawbot@clawos.test\"\n\
         server = \"127.0.0.1:{port}\"\nsecret = \"whatever\"\n\n",
        echo_config("normal")
    );
    let mut gw = Harness::new(&config);
    gw.start("127.0.0.1:0").await;
    let log = gw
        .wait_log("the malformed XML reported", WITHIN, |log| {
            log.iter().any(|e| {
                matches!(&e.payload, EventPayload::ChannelLinkChanged(l)
                    if l.channel == "odd" && !l.up && l.detail.starts_with("protocol error"))
            })
        })
        .await;
    let connections = tokio::time::timeout(WITHIN, server)
        .await
        .expect("the adapter reconnected")
        .expect("server task");
    assert_eq!(connections, 2);
    assert_eq!(
        conformance::starts(&log, "odd"),
        1,
        "no process restart: the adapter reconnects by itself"
    );
}
