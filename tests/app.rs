//! The companion app at `/app` in a phone-sized headless Chromium against a real Gateway:
//! pair with a one-time code from `clawos devices pair`, chat with a streamed reply, send a
//! photo, see what the agent presents on the canvas (a `node.invoke` to the app's node),
//! and reconnect after the Gateway restarts; then the admin UI's device, node,
//! configuration and chat panes. Then the same on the LAN: a Gateway with a TLS listener
//! on every interface, reached at this machine's own LAN address, its self-signed
//! certificate pinned from what `clawos devices pair` prints. Screenshots land in
//! `target/app-screens/`.

#[path = "browser_common/mod.rs"]
mod browser;
#[path = "gateway_common/mod.rs"]
mod common;
#[path = "ws_common/mod.rs"]
mod ws_common;

use std::time::Duration;

use browser::*;
use clawos_events::EventPayload;
use common::*;
use fantoccini::Locator;
use serde_json::json;

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

async fn send_text(b: &Browser, text: &str) {
    let field = b
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#composer-text"))
        .await
        .expect("#composer-text");
    field.send_keys(text).await.expect("type");
    click(&b.client, "#send").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_pairs_chats_sends_a_photo_shows_the_canvas_and_reconnects() {
    let mut h = Harness::new(&echo_config("normal"));
    h.start("127.0.0.1:0").await;
    let addr = h.addr();
    let out = h.cli(&["devices", "pair", "--url", &h.url("/app")]).await;
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let link = printed
        .lines()
        .find_map(|l| l.strip_prefix("open "))
        .unwrap_or_else(|| panic!("no link in {printed}"))
        .to_string();

    let b = Browser::start((390, 844), "app-screens").await;
    b.client.goto(&link).await.expect("open the app");
    wait_text(&b.client, "#status", "online").await;
    b.screenshot("01-paired").await;

    // Chat: the streamed reply ends final.
    send_text(&b, "hello from the phone").await;
    wait_text(
        &b.client,
        "#messages .msg.assistant[data-state=final]",
        "hello from the phone",
    )
    .await;
    b.screenshot("02-chat").await;

    // A photo from the gallery goes to the media store with the message.
    let photo = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    std::fs::write(photo.path(), PNG).unwrap();
    let input = b.client.find(Locator::Css("#photo")).await.expect("#photo");
    input
        .send_keys(photo.path().to_str().unwrap())
        .await
        .expect("choose the photo");
    send_text(&b, "look at this").await;
    let log = h
        .wait_log("a message with the photo", Duration::from_secs(20), |log| {
            log.iter().any(|e| matches!(&e.payload, EventPayload::MessageReceived(m) if !m.attachments.is_empty()))
        })
        .await;
    let photo_sent = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::MessageReceived(m) if !m.attachments.is_empty() => {
                Some(m.attachments[0].clone())
            }
            _ => None,
        })
        .unwrap();
    assert!(
        photo_sent
            .mime
            .as_deref()
            .is_some_and(|m| m.starts_with("image/")),
        "{photo_sent:?}"
    );
    assert!(
        h.dir().join("media").exists(),
        "the photo is in the media store"
    );
    b.screenshot("03-photo").await;

    // The agent side presents on the app's canvas through its node.
    let token = h.admin_token();
    let url = h.url("/ws").replace("http://", "ws://");
    let (mut op, hello) = ws_common::connect(
        &url,
        &ws_common::Opts::operator(token.trim(), &["operator.read", "operator.write"]),
    )
    .await;
    assert_eq!(hello["ok"], true, "{hello}");
    let nodes = op.call("node.list", json!({})).await;
    let node = nodes["payload"]["nodes"][0]["nodeId"]
        .as_str()
        .unwrap_or_else(|| panic!("the app's node is not connected: {nodes}"))
        .to_string();
    let r = op
        .call(
            "node.invoke",
            json!({"nodeId": node, "command": "canvas.present", "idempotencyKey": "c1",
                   "params": {"kind": "markdown", "content": "# Hello canvas\n\nfrom **Pi**"}}),
        )
        .await;
    assert_eq!(r["ok"], true, "{r}");
    wait_text(&b.client, "#canvas-body", "Hello canvas").await;
    b.screenshot("04-canvas").await;
    click(&b.client, "#canvas-close").await;
    op.close().await;

    // The Gateway restarts: the app reconnects with its device token and chats on.
    h.stop().await;
    h.start(&addr.to_string()).await;
    wait_text(&b.client, "#status", "online").await;
    send_text(&b, "still there?").await;
    wait_text(
        &b.client,
        "#messages .msg.assistant[data-state=final]:last-of-type",
        "still there?",
    )
    .await;
    b.screenshot("05-reconnected").await;

    let log = h.log().await;
    assert!(log.iter().any(
        |e| matches!(&e.payload, EventPayload::DevicePairingResolved(r) if r.by == "setup-code")
    ));

    // The admin UI lists the app's device and node, shows the configuration, and chats in
    // the same session.
    b.client
        .goto(&h.url("/admin"))
        .await
        .expect("open the admin UI");
    let field = b
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#token"))
        .await
        .expect("#token");
    field.send_keys(token.trim()).await.expect("type the token");
    click(&b.client, "#login button").await;
    wait_text(&b.client, "#live", "live").await;
    click(&b.client, "#tabs button[data-view=devices]").await;
    wait_text(&b.client, "#devices tbody", "yes").await;
    wait_text(&b.client, "#nodes tbody", "camera.snap").await;
    wait_text(&b.client, "#config", "echo").await;
    b.screenshot("06-admin-devices").await;
    click(&b.client, "#tabs button[data-view=chat]").await;
    wait_text(&b.client, "#chat-log", "still there?").await;
    let field = b
        .client
        .find(Locator::Css("#chat-text"))
        .await
        .expect("#chat-text");
    field.send_keys("from the admin").await.expect("type");
    click(&b.client, "#chat-form button[type=submit]").await;
    wait_text(
        &b.client,
        "#chat-log li[data-state=final]",
        "from the admin",
    )
    .await;
    b.screenshot("07-admin-chat").await;
    b.close().await;
    h.stop().await;
}

/// base64 of the SHA-256 of the certificate's public key (SPKI), Chromium's pin format.
fn spki_pin(cert: &std::path::Path) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -pubkey -noout -in '{}' | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | base64",
            cert.display()
        ))
        .output()
        .expect("openssl (Debian package `openssl`, installed by tests/run.sh)");
    assert!(out.status.success(), "openssl: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_lan_the_app_is_served_over_tls_pinned_at_pairing() {
    let tls_port = free_port();
    let config = format!(
        "{}[gateway.tls]\nlisten = \"0.0.0.0:{tls_port}\"\n",
        echo_config("normal")
    );
    let mut h = Harness::new(&config);
    h.start("127.0.0.1:0").await;
    let token = h.admin_token();
    let token = token.trim();

    // `clawos devices pair` finds the LAN address and hands out the certificate's pin.
    let out = h.cli(&["devices", "pair"]).await;
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |prefix: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {printed}"))
            .to_string()
    };
    let link = line("open ");
    let url = reqwest::Url::parse(&link).expect("the link is a URL");
    assert_eq!(url.scheme(), "https", "{link}");
    assert_eq!(url.port(), Some(tls_port), "{link}");
    let host: std::net::IpAddr = url.host_str().unwrap().parse().expect("an IP address");
    assert!(
        !host.is_loopback(),
        "the link names the LAN address, not the loopback: {link}"
    );
    let code = link.split("#code=").nth(1).expect("the code").to_string();
    let fingerprint = line("certificate SHA-256: ")
        .split_whitespace()
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    let running: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(h.dir().join("gateway.json")).unwrap())
            .unwrap();
    assert_eq!(
        running["tls_fingerprint"],
        fingerprint.as_str(),
        "{running}"
    );
    use base64::Engine;
    let setup: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(line("setup code for OpenClaw's apps: "))
            .expect("base64url"),
    )
    .expect("JSON");
    assert_eq!(
        setup["url"],
        format!("wss://{host}:{tls_port}/ws"),
        "{setup}"
    );
    assert_eq!(setup["bootstrapToken"], code.as_str());
    assert_eq!(setup["tlsFingerprint"], fingerprint.as_str());

    // Only the pinned certificate is trusted; nothing is served in clear on that port.
    let base = format!("https://{host}:{tls_port}");
    let pinned = reqwest::Client::builder()
        .use_preconfigured_tls((*ws_common::pinned(&fingerprint)).clone())
        .build()
        .unwrap();
    let app = pinned
        .get(format!("{base}/app"))
        .send()
        .await
        .expect("GET /app over TLS");
    assert!(app.status().is_success(), "{}", app.status());
    assert!(app.text().await.unwrap().contains("<html"));
    let wrong_pin = reqwest::Client::builder()
        .use_preconfigured_tls((*ws_common::pinned(&"00".repeat(32))).clone())
        .build()
        .unwrap();
    assert!(
        wrong_pin
            .get(format!("{base}/health"))
            .send()
            .await
            .is_err(),
        "another certificate is refused"
    );
    assert!(
        h.http
            .get(format!("http://{host}:{tls_port}/health"))
            .send()
            .await
            .is_err(),
        "no plain HTTP on the TLS port"
    );

    // The admin API over the LAN still refuses tokens it does not know.
    let unknown = pinned
        .get(format!("{base}/api/status"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let ok = pinned
        .get(format!("{base}/api/status"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    // From the LAN even the admin token does not pair a new device by itself: it waits
    // for an answer, then connects with its device token.
    let wss = format!("wss://{host}:{tls_port}/ws");
    let tls = Some(ws_common::pinned(&fingerprint));
    let node = ws_common::Device::from_seed(41);
    let opts = ws_common::Opts::node(token, &node, &["system.notify"]);
    let (_, refused) = ws_common::connect_via(&wss, &opts, tls.clone()).await;
    assert_eq!(refused["error"]["code"], "NOT_PAIRED", "{refused}");
    let request = refused["error"]["details"]["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    let approved = h.cli(&["devices", "approve", &request]).await;
    assert!(approved.status.success(), "{approved:?}");
    let (c, hello) = ws_common::connect_via(&wss, &opts, tls.clone()).await;
    assert_eq!(hello["ok"], true, "{hello}");
    assert!(
        hello["payload"]["auth"]["deviceToken"].is_string(),
        "{hello}"
    );
    c.close().await;

    // A phone's browser that pins the certificate: a secure context, so the app keeps its
    // device key, pairs with the code and chats.
    let pin = spki_pin(&h.dir().join("tls/gateway.crt"));
    let b = Browser::start_with(
        (390, 844),
        "app-screens",
        &[format!("--ignore-certificate-errors-spki-list={pin}")],
    )
    .await;
    b.client.goto(&link).await.expect("open the app over TLS");
    wait_text(&b.client, "#status", "online").await;
    let secure = b
        .client
        .execute("return window.isSecureContext;", vec![])
        .await
        .expect("isSecureContext");
    assert_eq!(secure, json!(true));
    send_text(&b, "hello over the LAN").await;
    wait_text(
        &b.client,
        "#messages .msg.assistant[data-state=final]",
        "hello over the LAN",
    )
    .await;
    b.screenshot("08-lan-tls").await;
    b.close().await;
    let log = h.log().await;
    assert!(log.iter().any(
        |e| matches!(&e.payload, EventPayload::DevicePairingResolved(r) if r.by == "setup-code")
    ));
    h.stop().await;
}
