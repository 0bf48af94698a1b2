//! The email channel against a real mail system: Dovecot 2.3 (IMAP with STARTTLS, IMAPS,
//! IDLE) and aiosmtpd (submission with STARTTLS or implicit TLS, then AUTH), started on
//! loopback by `tests/peers/email/start.sh`, once for this test binary. The conformance
//! suite, then what is particular to email: threading headers, the sender allowlist, the
//! attachment cap, and a refused password.

mod channels_common;
mod gateway_common;

use std::time::{Duration, Instant};

use channels_common::conformance;
use channels_common::email_peer::{EmailPeer, MailPerson, MailSystem, BOT, BOT_PASSWORD};
use clawos_events::EventPayload;
use gateway_common::*;

const WITHIN: Duration = Duration::from_secs(30);

/// The suite, then threading and the allowlist, then a refused password, on one mail
/// system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_against_dovecot_and_aiosmtpd() {
    let mut peer = EmailPeer {
        mail: MailSystem::start(),
    };
    eprintln!("mail system ready in {:?}", peer.mail.started_in);
    conformance::run(&mut peer).await;
    threads_allowlist_and_cap(&peer.mail).await;
    refused_password(&peer.mail).await;
    polling_without_idle(&peer.mail).await;
    channels_add_then_doctor(&peer.mail).await;
}

async fn link_up(gw: &Harness, channel: &str) {
    gw.wait_log("the link up", WITHIN, |log| {
        log.iter().any(|e| {
            matches!(&e.payload, EventPayload::ChannelLinkChanged(l) if l.channel == channel && l.up)
        })
    })
    .await;
}

/// A new mail gets `Re: <subject>` threaded on it; a reply in the thread keeps the
/// subject (no `Re: Re:`), has its quote trimmed, and the answer's References carry the
/// whole thread. Only allowed senders are answered; a file above the media cap is
/// recorded without its bytes. IMAP with STARTTLS and SMTPS here (the suite used IMAPS
/// and STARTTLS).
async fn threads_allowlist_and_cap(mail: &MailSystem) {
    let section = mail.section(
        "mail",
        true,
        BOT_PASSWORD,
        "dm_policy = \"allowlist\"\nallow = [\"email:carol@clawos.test\"]\n",
    );
    let config = format!(
        "{}[media]\nmax_bytes = 10000\n\n{section}",
        echo_config("normal")
    );
    let mut gw = Harness::new(&config);
    let t = Instant::now();
    gw.start("127.0.0.1:0").await;
    link_up(&gw, "mail").await;
    eprintln!("gateway started and email link up in {:?}", t.elapsed());
    let mut carol = MailPerson::connect(mail, "carol").await;

    let t = Instant::now();
    let first = carol
        .send(BOT, "Trip to Berlin", "Can you book the train?", None, None)
        .await;
    let r1 = carol.next_mail(WITHIN).await.expect("an answer to carol");
    eprintln!(
        "round trip (SMTP in, IDLE, echo, SMTP out, seen by IMAP): {:?}",
        t.elapsed()
    );
    assert_eq!(r1.from, BOT);
    assert_eq!(r1.subject, "Re: Trip to Berlin");
    assert_eq!(r1.in_reply_to, vec![first.clone()]);
    assert_eq!(r1.references, vec![first.clone()]);
    assert_eq!(r1.auto_submitted.as_deref(), Some("auto-replied"));
    assert!(
        r1.text
            .starts_with("echo: Subject: Trip to Berlin\n\nCan you book the train?"),
        "a new thread reaches the agent with its subject: {:?}",
        r1.text
    );

    let quoted = format!(
        "Thanks!\n\nOn Tue, 1 Jul 2025 at 10:00, Claw <{BOT}> wrote:\n> {}\n",
        r1.text.replace('\n', "\n> ")
    );
    let second = carol
        .send(
            BOT,
            &format!("Re: {}", r1.subject),
            &quoted,
            Some(&r1),
            None,
        )
        .await;
    let r2 = carol
        .next_mail(WITHIN)
        .await
        .expect("an answer in the thread");
    assert_eq!(r2.subject, "Re: Trip to Berlin", "no Re: Re:");
    assert_eq!(r2.in_reply_to, vec![second.clone()]);
    assert_eq!(
        r2.references,
        vec![first.clone(), r1.message_id.clone(), second.clone()]
    );
    assert!(
        r2.text.starts_with("echo: Thanks! ("),
        "the quote is trimmed and a reply gets no subject in front: {:?}",
        r2.text
    );
    let log = gw.log().await;
    assert_eq!(
        received(&log, &first).len(),
        1,
        "the Message-ID is the external id"
    );

    // Not on the allowlist: held, never answered.
    let dave = MailPerson::connect(mail, "dave").await;
    dave.send(BOT, "hello?", "is anyone there", None, None)
        .await;
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    carol
        .send(
            BOT,
            "scan",
            "the scan",
            None,
            Some(("scan.pdf", "application/pdf", &big)),
        )
        .await;
    let log = gw
        .wait_log("the large file recorded", WITHIN, |log| {
            log.iter().any(|e| {
                matches!(&e.payload, EventPayload::MessageReceived(m)
                    if m.attachments.iter().any(|a| a.name == "scan.pdf"))
            })
        })
        .await;
    let scan = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::MessageReceived(m) if !m.attachments.is_empty() => Some(m),
            _ => None,
        })
        .expect("the scan's MessageReceived");
    assert_eq!(
        (
            scan.attachments[0].size,
            scan.attachments[0].blake3.as_deref()
        ),
        (20_000, None),
        "above the media cap: its size, no bytes"
    );
    // A mail too large to read whole under this cap (its size over 4/3 of the cap plus
    // 1 MiB): its text and header are read, its attachment listed with its size.
    let huge: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
    carol
        .send(
            BOT,
            "video",
            "the video",
            None,
            Some(("clip.mp4", "video/mp4", &huge)),
        )
        .await;
    let log = gw
        .wait_log("the huge mail recorded", WITHIN, |log| {
            log.iter().any(|e| {
                matches!(&e.payload, EventPayload::MessageReceived(m)
                    if m.attachments.iter().any(|a| a.name == "clip.mp4"))
            })
        })
        .await;
    let clip = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::MessageReceived(m)
                if m.attachments.iter().any(|a| a.name == "clip.mp4") =>
            {
                Some(m)
            }
            _ => None,
        })
        .expect("the clip's MessageReceived");
    let a = &clip.attachments[0];
    assert_eq!(
        (a.mime.as_deref(), a.blake3.as_deref()),
        (Some("video/mp4"), None)
    );
    assert!(
        a.size.abs_diff(1_500_000) < 60_000,
        "the size estimated from the encoded part: {}",
        a.size
    );
    assert!(
        clip.text.starts_with("Subject: video\n\nthe video") && clip.text.contains("not kept"),
        "{:?}",
        clip.text
    );
    let from_dave = log.iter().any(|e| {
        matches!(&e.payload, EventPayload::MessageReceived(m) if m.sender == "email:dave@clawos.test")
    });
    assert!(!from_dave, "a sender off the allowlist is not let in");
    gw.stop().await;
}

/// A wrong password: `clawos status` says the login was refused, and the process is not
/// restarted in a loop.
async fn refused_password(mail: &MailSystem) {
    let config = echo_config("normal") + &mail.section("mailbad", false, "not-the-password", "");
    let line = conformance::refused_login(&config, "mailbad").await;
    assert!(
        line.contains("bot@clawos.test"),
        "the refusal names the login: {line}"
    );
}

/// A server without IDLE is polled (`poll_secs`), and mail is still answered.
async fn polling_without_idle(mail: &MailSystem) {
    mail.without_idle().await;
    let section = mail.section(
        "polled",
        false,
        BOT_PASSWORD,
        "poll_secs = 5\ndm_policy = \"open\"\n",
    );
    let mut gw = Harness::new(&(echo_config("normal") + &section));
    gw.start("127.0.0.1:0").await;
    link_up(&gw, "polled").await;
    let mut bob = MailPerson::connect(mail, "bob").await;
    let t = Instant::now();
    bob.send(BOT, "polled", "are you polling?", None, None)
        .await;
    let reply = bob
        .next_mail(WITHIN)
        .await
        .expect("an answer from a polling channel");
    assert!(
        reply.text.starts_with("echo: Subject: polled"),
        "{:?}",
        reply.text
    );
    eprintln!("round trip when polling every 5 s: {:?}", t.elapsed());
    gw.stop().await;
}

/// A server that answers with garbage: the adapter says the answer cannot be read, and
/// reconnects in the same process.
#[tokio::test]
async fn email_a_misbehaving_server_gets_a_clear_error_and_a_reconnect() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        for connections in 1.. {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let _ = sock.write_all(b"\x00\x01\x02 not imap at all\r\n").await;
            if connections == 2 {
                return connections;
            }
        }
        0
    });
    let config = format!(
        "{}[channels.odd]\nkind = \"email\"\naddress = \"{BOT}\"\n\
         imap_server = \"127.0.0.1:{port}\"\nimap_tls = \"starttls\"\n\
         smtp_server = \"127.0.0.1:1\"\nsecret = \"x\"\n\n",
        echo_config("normal")
    );
    let mut gw = Harness::new(&config);
    gw.start("127.0.0.1:0").await;
    let log = gw
        .wait_log("the garbage reported", WITHIN, |log| {
            log.iter().any(|e| {
                matches!(&e.payload, EventPayload::ChannelLinkChanged(l)
                    if l.channel == "odd" && !l.up && l.detail.contains("protocol error")
                        && l.detail.contains("cannot be read"))
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

/// `clawos channels add email` with answers on stdin: a valid section (allowlist by
/// default), the password in the vault only; `clawos doctor` reaches the IMAP server over
/// TLS, and names one that is not there.
async fn channels_add_then_doctor(mail: &MailSystem) {
    let home = tempfile::tempdir().expect("temp dir");
    let ca = mail.ca_file().display().to_string();
    for (name, port) in [("madded", mail.imaps), ("mgone", free_port())] {
        let answers = format!(
            "addbot@clawos.test\n127.0.0.1:{port}\ntls\n127.0.0.1:{}\nstarttls\n{ca}\nsecret-pass-123\n",
            mail.smtp
        );
        let args = ["channels", "add", "email", "--name", name];
        let out = cli_with_input(home.path(), &args, Some(&answers)).await;
        assert!(
            out.status.success(),
            "channels add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let toml = std::fs::read_to_string(home.path().join("clawos.toml")).expect("clawos.toml");
    assert!(
        toml.contains("[channels.madded]") && toml.contains("dm_policy = \"allowlist\""),
        "{toml}"
    );
    assert!(
        !toml.contains("secret-pass-123"),
        "the password stays out of clawos.toml"
    );
    let secret = cli_in(home.path(), &["secrets", "get", "madded"]).await;
    assert_eq!(
        String::from_utf8_lossy(&secret.stdout).trim(),
        "secret-pass-123"
    );
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("channel madded (email): reaches IMAP"),
        "{text}"
    );
    assert!(
        text.contains("channel mgone (email): cannot reach"),
        "{text}"
    );
    assert!(
        !doctor.status.success(),
        "an unreachable server is a problem"
    );
}
