//! WhatsApp as a linked device, where it can be tested here. WhatsApp's servers cannot be
//! reached from the test machine and no stand-in can complete the WhatsApp Web handshake
//! (the client checks the server's certificate chain against WhatsApp's root key), so
//! this tests what is ours around the protocol: a Gateway with a channel that no phone
//! is linked to yet (status and doctor name `clawos channels pair`, the process stays
//! up and waits), `channels add` and `channels pair` refusing a wrong channel, and a
//! linked session whose server drops every connection (a link down in status, retried
//! by the same process, no crash loop).

mod channels_common;
mod gateway_common;

use std::time::Duration;

use channels_common::conformance;
use clawos_channels::whatsapp_web::store::SessionStore;
use clawos_events::EventPayload;
use gateway_common::*;
use whatsapp_rust::wacore::store::traits::DeviceStore;

const WITHIN: Duration = Duration::from_secs(60);

fn section(name: &str, url: &str) -> String {
    format!("\n[channels.{name}]\nkind = \"whatsapp-web\"\nurl = \"{url}\"\ndm_policy = \"open\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_linked_device_around_the_protocol() {
    unlinked().await;
    add_and_pair_refusals().await;
    dropped_connections().await;
}

/// No phone linked: `clawos status` says so and names the command, the process is not
/// restarted in a loop, `clawos doctor` fails naming it too.
async fn unlinked() {
    let config = echo_config("normal") + &section("wa", "ws://127.0.0.1:9/ws/chat");
    let line = conformance::refused_login(&config, "wa").await;
    assert!(
        line.contains("no phone is linked") && line.contains("clawos channels pair wa"),
        "{line}"
    );
    let home = tempfile::tempdir().expect("temp dir");
    std::fs::write(home.path().join("clawos.toml"), &config).expect("config");
    let doctor = cli_in(home.path(), &["doctor"]).await;
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("channel wa (whatsapp-web): cannot reach a linked phone")
            && text.contains("clawos channels pair wa"),
        "{text}"
    );
    assert!(!doctor.status.success(), "an unlinked phone is a problem");
}

/// `channels add whatsapp-web` writes a section and says to pair; `channels pair`
/// refuses an unknown channel and a channel of another kind.
async fn add_and_pair_refusals() {
    let home = tempfile::tempdir().expect("temp dir");
    let add = cli_with_input(
        home.path(),
        &["channels", "add", "whatsapp-web", "--name", "wa"],
        Some("15550001234\nclawbot\n"),
    )
    .await;
    let said = String::from_utf8_lossy(&add.stdout);
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    assert!(said.contains("clawos channels pair wa"), "{said}");
    let toml = std::fs::read_to_string(home.path().join("clawos.toml")).expect("clawos.toml");
    assert!(
        toml.contains("kind = \"whatsapp-web\"") && toml.contains("pair_phone = \"15550001234\""),
        "{toml}"
    );
    for (name, why) in [
        ("nosuch", "no channel named nosuch"),
        ("terminal", "only a `whatsapp-web` channel pairs"),
    ] {
        let out = cli_in(home.path(), &["channels", "pair", name]).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(why), "{name}: {err}");
    }
}

/// A linked session, and a server that accepts the WebSocket and closes it at once: the
/// link is reported down with the reason, retried by the same process.
async fn dropped_connections() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                    let _ = ws.close(None).await;
                }
            });
        }
    });
    let url = format!("ws://127.0.0.1:{port}/ws/chat");
    let mut gw = Harness::new(&(echo_config("normal") + &section("wa", &url)));
    // A linked session in the channel's state folder, as `channels pair` leaves it.
    let store = SessionStore::open(&gw.dir().join("channels").join("wa")).expect("store");
    let mut device = store
        .load()
        .await
        .expect("load")
        .unwrap_or_else(whatsapp_rust::wacore::store::Device::new);
    device.pn = Some("15559990000@s.whatsapp.net".parse().expect("jid"));
    store.save(&device).await.expect("save");
    assert!(store.is_linked());
    drop(store);
    gw.start("127.0.0.1:0").await;
    let downs = |log: &[Ev]| {
        log.iter()
            .filter(|e| {
                matches!(&e.payload, EventPayload::ChannelLinkChanged(l)
                    if l.channel == "wa" && !l.up && l.detail.contains("link down"))
            })
            .count()
    };
    gw.wait_log("the dropped link reported", WITHIN, |log| downs(log) > 0)
        .await;
    assert!(
        accepted.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the channel dialled the configured server"
    );
    let status = gw.cli(&["status"]).await;
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status
            .lines()
            .any(|l| l.contains("wa") && l.contains("link down")),
        "{status}"
    );
    let log = gw.log().await;
    let starts = log
        .iter()
        .filter(|e| matches!(&e.payload, EventPayload::ChannelStarted(c) if c.channel == "wa"))
        .count();
    assert_eq!(starts, 1, "the same process retries:\n{}", summary(&log));
    gw.stop().await;
    server.abort();
}
