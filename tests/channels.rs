//! The channel adapters against real servers: the conformance suite, then what is
//! particular to each (log-in methods, refused credentials, a server that misbehaves).
//!
//! IRC runs against InspIRCd 3 with Anope 2 services (NickServ, SASL), both Debian
//! packages started on loopback by `tests/peers/irc/start.sh`; one network per test.

mod channels_common;
mod gateway_common;

use std::time::Duration;

use channels_common::conformance;
use channels_common::irc_peer::{IrcNetwork, IrcPeer, IrcPerson};
use clawos_events::EventPayload;
use gateway_common::*;

const BOT: &str = "clawbot";

/// The suite, then logging in with SASL and NickServ, then a refused password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irc_against_inspircd_and_anope() {
    let mut peer = IrcPeer {
        net: IrcNetwork::start(),
        bot: BOT.into(),
    };
    conformance::run(&mut peer).await;
    logins(&peer.net).await;
    two_groups_two_agents(&peer.net).await;
    channels_add_then_doctor(&peer.net).await;
}

/// `clawos channels add irc` with answers on stdin: a valid section in clawos.toml, the
/// password in the vault (not in the file), and `clawos doctor` reaching the server; a
/// server that is not there is a problem doctor names.
async fn channels_add_then_doctor(net: &IrcNetwork) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let home = tempfile::tempdir().expect("temp dir");
    let add = |name: &str, server: String| {
        let mut child = Command::new(bin())
            .arg("--home")
            .arg(home.path())
            .args(["channels", "add", "irc", "--name", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn clawos channels add");
        let answers = format!("{server}\nno\naddbot\n#added\nsasl\nsecret-pass-123\n");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(answers.as_bytes())
            .expect("answers");
        let out = child.wait_with_output().expect("channels add");
        assert!(
            out.status.success(),
            "channels add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    add("added", format!("127.0.0.1:{}", net.plain_port));
    let toml = std::fs::read_to_string(home.path().join("clawos.toml")).expect("clawos.toml");
    assert!(
        toml.contains("[channels.added]") && toml.contains("secret_name = \"added\""),
        "{toml}"
    );
    assert!(
        !toml.contains("secret-pass-123"),
        "the password stays out of clawos.toml"
    );
    let secret = cli_in(home.path(), &["secrets", "get", "added"]).await;
    assert_eq!(
        String::from_utf8_lossy(&secret.stdout).trim(),
        "secret-pass-123"
    );
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(text.contains("channel added (irc): reaches"), "{text}");

    add("gone", format!("127.0.0.1:{}", free_port()));
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        !doctor.status.success(),
        "an unreachable server is a problem"
    );
    assert!(text.contains("channel gone (irc): cannot reach"), "{text}");
}

/// Bindings by group: `#alpha` goes to agent `ada`, `#beta` to `bob`, each group with its
/// own session, and every message answered (`group_policy = "always"`).
async fn two_groups_two_agents(net: &IrcNetwork) {
    use channels_common::conformance::Person;
    let config = format!(
        "{}[agents.ada]\nkind = \"echo\"\n\n[agents.bob]\nkind = \"echo\"\n\n\
         [channels.groups]\nkind = \"irc\"\nserver = \"127.0.0.1:{}\"\ntls = false\n\
         nick = \"groupbot\"\nchannels = [\"#alpha\", \"#beta\"]\nnetwork = \"clawostest\"\n\
         dm_policy = \"open\"\ngroup_policy = \"always\"\n\n",
        echo_config("normal"),
        net.plain_port
    );
    let mut gw = Harness::new(&config);
    for (agent, chat) in [("ada", "#alpha"), ("bob", "#beta")] {
        let out = gw
            .cli(&["bind", "add", "--agent", agent, "--chat", chat])
            .await;
        assert!(
            out.status.success(),
            "bind: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    gw.start("127.0.0.1:0").await;
    let mut dana = IrcPerson::connect(net.plain_port, "dana").await;
    Person::join(&mut dana, "#alpha", "groupbot").await;
    Person::join(&mut dana, "#beta", "groupbot").await;
    for chat in ["#alpha", "#beta"] {
        dana.say(Some(chat), "groupbot", &format!("hello {chat}"))
            .await;
        let heard = dana
            .hear("groupbot", Duration::from_secs(30))
            .await
            .expect("an answer");
        assert_eq!(heard.group.as_deref(), Some(chat));
        assert!(heard.text.contains(&format!("hello {chat}")), "{heard:?}");
    }
    let log = gw.log().await;
    let agent_in = |chat: &str| -> Vec<String> {
        log.iter()
            .filter_map(|e| match &e.payload {
                EventPayload::MessageSent(m) if m.chat.as_deref() == Some(chat) => {
                    Some(m.agent.clone())
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(agent_in("#alpha"), vec!["ada".to_string()]);
    assert_eq!(agent_in("#beta"), vec!["bob".to_string()]);
    let owners: Vec<String> = log
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::SessionStarted(s) => Some(s.identity.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        owners,
        vec![
            "group:groups/#alpha".to_string(),
            "group:groups/#beta".to_string()
        ]
    );
}

fn irc_section(net: &IrcNetwork, name: &str, nick: &str, auth: &str, password: &str) -> String {
    format!(
        "[channels.{name}]\nkind = \"irc\"\nserver = \"127.0.0.1:{}\"\ntls = true\n\
         tls_ca_file = \"{}\"\nnick = \"{nick}\"\nauth = \"{auth}\"\nsecret = \"{password}\"\n\
         dm_policy = \"open\"\n\n",
        net.tls_port,
        net.ca_file().display(),
    )
}

/// Whether `nick` is logged in to an account, from WHOIS (330 RPL_WHOISACCOUNT).
async fn logged_in(person: &mut IrcPerson, nick: &str, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        person.send(&format!("WHOIS {nick}")).await;
        let step = std::time::Instant::now() + Duration::from_millis(500);
        while let Some(line) = person.line(step).await {
            if line.contains(" 330 ") && line.contains(nick) {
                return true;
            }
        }
    }
    false
}

async fn logins(net: &IrcNetwork) {
    net.register("saslbot", "sasl-password-1").await;
    net.register("nsbot", "nickserv-password-1").await;
    let config = format!(
        "{}{}{}{}",
        echo_config("normal"),
        irc_section(net, "viasasl", "saslbot", "sasl", "sasl-password-1"),
        irc_section(net, "vians", "nsbot", "nickserv", "nickserv-password-1"),
        irc_section(net, "refused", "badbot", "sasl", "not-the-password"),
    );
    net.register("badbot", "the-real-password").await;
    let mut gw = Harness::new(&config);
    gw.start("127.0.0.1:0").await;
    let mut carol = IrcPerson::connect(net.plain_port, "carol").await;
    assert!(
        logged_in(&mut carol, "saslbot", Duration::from_secs(30)).await,
        "saslbot logged in with SASL"
    );
    assert!(
        logged_in(&mut carol, "nsbot", Duration::from_secs(30)).await,
        "nsbot identified to NickServ"
    );

    // A refused password: reported in the log and by `clawos status`, retried slowly in
    // the same process (no crash loop).
    let log = gw
        .wait_log(
            "the refused login reported",
            Duration::from_secs(30),
            |log| {
                log.iter().any(|e| {
                    matches!(&e.payload, EventPayload::ChannelLinkChanged(l)
                if l.channel == "refused" && !l.up && l.detail.contains("authentication refused"))
                })
            },
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log_after = gw.log().await;
    assert_eq!(conformance::starts(&log, "refused"), 1);
    assert_eq!(
        conformance::starts(&log_after, "refused"),
        1,
        "the refused channel was not restarted in a loop"
    );
    let status = gw.cli(&["status"]).await;
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status
            .lines()
            .any(|l| l.contains("refused") && l.contains("link down: authentication refused")),
        "clawos status names the refused login:\n{status}"
    );
}

/// A server that sends garbage, then a line far over the limit: the adapter says so,
/// and reconnects in the same process.
#[tokio::test]
async fn irc_a_misbehaving_server_gets_a_clear_error_and_a_reconnect() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let mut connections = 0;
        loop {
            let (sock, _) = listener.accept().await.expect("accept");
            connections += 1;
            let (r, mut w) = sock.into_split();
            let mut lines = BufReader::new(r).lines();
            // Wait for NICK, then answer with garbage, a welcome, and an oversize line.
            while let Ok(Some(l)) = lines.next_line().await {
                if l.starts_with("USER") {
                    break;
                }
            }
            let _ = w
                .write_all(b"\x00\x01\x02 not irc at all\r\n:: ::\r\n")
                .await;
            let _ = w.write_all(b":fake 001 clawbot :welcome\r\n").await;
            let _ = w.write_all(&vec![b'x'; 20_000]).await;
            let _ = w.write_all(b"\r\n").await;
            if connections == 2 {
                return connections;
            }
        }
    });
    let config = format!(
        "{}[channels.odd]\nkind = \"irc\"\nserver = \"127.0.0.1:{port}\"\ntls = false\nnick = \"clawbot\"\n\n",
        echo_config("normal")
    );
    let mut gw = Harness::new(&config);
    gw.start("127.0.0.1:0").await;
    let log = gw
        .wait_log(
            "the oversize line reported",
            Duration::from_secs(30),
            |log| {
                log.iter().any(|e| {
                    matches!(&e.payload, EventPayload::ChannelLinkChanged(l)
                if l.channel == "odd" && !l.up && l.detail.contains("over 8703 bytes"))
                })
            },
        )
        .await;
    let connections = tokio::time::timeout(Duration::from_secs(30), server)
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
