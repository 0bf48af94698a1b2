//! The Matrix channel against a real homeserver: Synapse (PyPI `matrix-synapse`, SQLite),
//! started on loopback by `tests/peers/matrix/start.sh`, once for this test binary.
//! The conformance suite, then what is particular to Matrix: invites by policy and a
//! refused password.

mod channels_common;
mod gateway_common;

use std::time::Duration;

use channels_common::conformance;
use channels_common::matrix_peer::{MatrixPeer, MatrixPerson, SERVER};
use gateway_common::*;
use serde_json::json;

/// The suite, then invites and a refused login on the same homeserver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_against_synapse() {
    let mut peer = MatrixPeer::start(&[conformance::GROUP]).await;
    conformance::run(&mut peer).await;
    invites_by_policy(&peer).await;
    refused_password(&peer).await;
    channels_add_then_doctor(&peer).await;
    not_a_homeserver(&peer).await;
}

/// A server that answers every request with something that is not JSON: a clear
/// protocol error in `clawos status` and reconnects in the same process, no crash loop.
async fn not_a_homeserver(peer: &MatrixPeer) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot json!")
                    .await;
            });
        }
    });
    let section = peer
        .section("mxodd", &[], "")
        .replace(&peer.hs.url(), &format!("http://127.0.0.1:{port}"));
    let mut gw = Harness::new(&(echo_config("normal") + &section));
    gw.start("127.0.0.1:0").await;
    let log = gw
        .wait_log("the bad answer reported", Duration::from_secs(60), |log| {
            log.iter().any(|e| {
                matches!(&e.payload,
                clawos_events::EventPayload::ChannelLinkChanged(l)
                    if !l.up && l.detail.contains("protocol error: login: the answer is not JSON"))
            })
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        conformance::starts(&gw.log().await, "mxodd"),
        conformance::starts(&log, "mxodd"),
        "a bad server is retried in the same process, not by restarts"
    );
    gw.stop().await;
}

/// `clawos channels add matrix` with answers on stdin: a valid section, the password in
/// the vault only; `clawos doctor` reaches the homeserver, and names one that is not there.
async fn channels_add_then_doctor(peer: &MatrixPeer) {
    let home = tempfile::tempdir().expect("temp dir");
    let add = |name: &'static str, url: String| {
        let dir = home.path().to_path_buf();
        async move {
            let answers = format!("{url}\n@clawbot:{SERVER}\n\nall\nsecret-pass-123\n");
            let out = cli_with_input(
                &dir,
                &["channels", "add", "matrix", "--name", name],
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
    add("mxadded", peer.hs.url()).await;
    let toml = std::fs::read_to_string(home.path().join("clawos.toml")).expect("clawos.toml");
    assert!(
        toml.contains("[channels.mxadded]") && toml.contains("kind = \"matrix\""),
        "{toml}"
    );
    assert!(
        !toml.contains("secret-pass-123"),
        "the password stays out of clawos.toml"
    );
    let secret = cli_in(home.path(), &["secrets", "get", "mxadded"]).await;
    assert_eq!(
        String::from_utf8_lossy(&secret.stdout).trim(),
        "secret-pass-123"
    );
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(text.contains("channel mxadded (matrix): reaches"), "{text}");

    add("mxgone", format!("http://127.0.0.1:{}", free_port())).await;
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        !doctor.status.success(),
        "an unreachable homeserver is a problem"
    );
    assert!(
        text.contains("channel mxgone (matrix): cannot reach"),
        "{text}"
    );
}

/// `invites = "listed"`: an invite from a listed user is accepted, one from anyone else
/// is declined (the bot never joins). Then a streamed reply: it appears as one message
/// that grows by edits (`m.replace`) to the final text.
async fn invites_by_policy(peer: &MatrixPeer) {
    let extra = format!("invites = \"listed\"\ninvite_from = [\"@carol:{SERVER}\"]\n");
    let config = echo_config("normal") + &peer.section("mx", &[], &extra);
    let mut gw = Harness::new(&config);
    gw.start("127.0.0.1:0").await;
    gw.wait_log("the link up", Duration::from_secs(60), |log| {
        log.iter().any(|e| {
            matches!(&e.payload,
            clawos_events::EventPayload::ChannelLinkChanged(l) if l.up)
        })
    })
    .await;
    let mut carol = MatrixPerson::new(&peer.hs, "carol").await;
    let mut dave = MatrixPerson::new(&peer.hs, "dave").await;
    let bot = format!("@clawbot:{SERVER}");
    let room_of = |v: serde_json::Value| v["room_id"].as_str().unwrap_or_default().to_string();
    let create = json!({"preset": "private_chat", "invite": [bot]});
    let daves = room_of(
        dave.call("POST", "/_matrix/client/v3/createRoom", create)
            .await,
    );
    use conformance::Person as _;
    carol.say(None, "clawbot", "hello from carol").await;
    let heard = carol.hear("clawbot", Duration::from_secs(30)).await;
    assert!(
        heard.is_some_and(|h| h.text.starts_with("echo: hello from carol")),
        "a listed user's invite is accepted and answered"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let path = format!(
        "/_matrix/client/v3/rooms/{}/joined_members",
        daves.replace('!', "%21").replace(':', "%3A")
    );
    let members = dave.call("GET", &path, serde_json::Value::Null).await;
    assert!(
        members["joined"].get(&bot).is_none(),
        "an unlisted user's invite is declined: {members}"
    );

    let words = "one two three four five six seven eight nine ten eleven twelve";
    carol
        .say(None, "clawbot", &format!("slowly: {words}"))
        .await;
    let mut heard = Vec::new();
    while let Some(h) = carol.hear("clawbot", Duration::from_secs(15)).await {
        let done = h.text.starts_with("* echo: slowly:") && h.text.contains("twelve (");
        heard.push(h.text);
        if done {
            break;
        }
    }
    let new: Vec<&String> = heard.iter().filter(|t| !t.starts_with("* ")).collect();
    let edits = heard.len() - new.len();
    assert_eq!(new.len(), 1, "one message, then edits: {heard:#?}");
    assert!(
        new[0].starts_with("echo:") && !new[0].contains("twelve"),
        "the first message shows the start of the reply: {heard:#?}"
    );
    assert!(edits >= 2, "the reply grows by edits: {heard:#?}");
    assert!(
        carol.saw_bot_typing,
        "the bot was shown typing before its first words"
    );
    assert!(
        heard.last().is_some_and(|t| t.contains(words)),
        "the last edit is the whole reply: {heard:#?}"
    );
    gw.stop().await;
}

/// A wrong password: refused, reported, retried slowly (conformance::refused_login).
async fn refused_password(peer: &MatrixPeer) {
    let section = peer.section("mxbad", &[], "").replace(
        channels_common::matrix_peer::BOT_PASSWORD,
        "not-the-password",
    );
    conformance::refused_login(&(echo_config("normal") + &section), "mxbad").await;
}
