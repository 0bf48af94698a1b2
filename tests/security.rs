//! The security promises of SECURITY.md, end to end with the real binary: secrets
//! never reach a file in clear, a wrong/missing key or a tampered row fails closed, the
//! key file fallback is reported, the real OS keychain (gnome-keyring under
//! dbus-run-session) keeps the key across Gateway restarts, tokens are required and
//! refusals counted, remote listening needs a flag, pairing codes expire and are capped,
//! and the Gateway and its channels connect only to the peers they were configured with.

mod gateway_common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use clawos_events::EventPayload;
use clawos_testkit::fake_llm::{FakeLlm, Step};
use gateway_common::*;

/// Run `clawos --home DIR ARGS` with `input` on stdin.
async fn cli_stdin(dir: &Path, args: &[&str], input: &str) -> std::process::Output {
    cli_with_input(dir, args, Some(input)).await
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Store `value` under `name` through `clawos secrets set` (value on stdin).
async fn set_secret(dir: &Path, name: &str, value: &str) {
    let out = cli_stdin(dir, &["secrets", "set", name], value).await;
    assert!(
        out.status.success(),
        "secrets set {name}: {}",
        text(&out.stderr)
    );
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
    hits
}

fn blake3_of(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap_or_default())
        .to_hex()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_the_provider_and_never_a_file_in_clear() {
    const API_KEY: &str = "sk-live-PLAINTEXT-api-key-0001";
    const LATE: &str = "late-secret-PLAINTEXT-0002";
    let fake = FakeLlm::start(vec![Step::Text("hello from the provider".into())]);
    let port = free_port();
    let config = format!(
        "[agents.pi]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\napi_key_secret = \"openai\"\n\n\
         [channels.hooks]\nkind = \"webhook\"\nlisten = \"127.0.0.1:{port}\"\nsecret_name = \"hooks\"\ndm_policy = \"open\"\n",
        fake.base_url_openai()
    );
    let mut h = Harness::new(&config);
    // A Gateway whose config names a secret the vault lacks refuses to start, saying how.
    let out = h.cli(&["gateway", "--listen", "127.0.0.1:0"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("clawos secrets set openai"),
        "{}",
        text(&out.stderr)
    );

    set_secret(h.dir(), "openai", API_KEY).await;
    set_secret(h.dir(), "hooks", &format!("{SECRET}\n")).await;
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, port, Duration::from_secs(30)).await;

    // The webhook channel got its secret from the vault; the provider got the API key.
    let r = post(&h.http, port, "m1", "alice@example.com", "hi", 20_000)
        .await
        .unwrap();
    assert_eq!(r.reply(), Some("hello from the provider"), "{:?}", r.body);
    let headers = fake.request_headers();
    let auth = headers[0]
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    assert_eq!(auth.as_deref(), Some(format!("Bearer {API_KEY}").as_str()));

    // A secret stored while the Gateway runs (WAL files live).
    set_secret(h.dir(), "late", LATE).await;
    let admin = h.admin_token();
    let list = h.cli(&["secrets", "list"]).await;
    let listed = text(&list.stdout);
    for name in ["openai", "hooks", "late", "clawos.admin-token"] {
        assert!(listed.contains(name), "{listed}");
    }
    assert!(!listed.contains(API_KEY));

    for (what, value) in [
        ("API key", API_KEY),
        ("webhook secret", SECRET),
        ("late secret", LATE),
        ("admin token", admin.as_str()),
    ] {
        let hits = files_containing(h.dir(), value);
        assert!(hits.is_empty(), "the {what} is in clear in {hits:?}");
    }
    // The log names the secrets and their versions, nothing more.
    let stored: Vec<(String, u32)> = h
        .log()
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            EventPayload::SecretStored(s) => Some((s.name, s.version)),
            _ => None,
        })
        .collect();
    for name in ["openai", "hooks", "late", "clawos.admin-token"] {
        assert!(
            stored.iter().any(|(n, v)| n == name && *v == 1),
            "{stored:?}"
        );
    }
    let status = h.stop().await;
    assert!(status.success());
    for value in [API_KEY, SECRET, LATE, admin.as_str()] {
        assert!(files_containing(h.dir(), value).is_empty());
    }
    let mode = |p: &str| {
        std::fs::metadata(h.dir().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("vault.db"), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_missing_key_and_tampered_rows_fail_closed() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    set_secret(dir, "a", "value-of-a-123").await;
    set_secret(dir, "b", "value-of-b-456").await;
    let get = |name: &'static str| async move { cli_in(dir, &["secrets", "get", name]).await };
    assert_eq!(text(&get("a").await.stdout), "value-of-a-123");

    let key_path = dir.join("vault.key");
    let vault = dir.join("vault.db");
    let original_key = std::fs::read_to_string(&key_path).unwrap();
    let before = blake3_of(&vault);

    // A wrong key: nothing decrypted, nothing written, the Gateway does not start.
    std::fs::write(&key_path, "11".repeat(32)).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = get("a").await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("is not the key"),
        "{}",
        text(&out.stderr)
    );
    let out = cli_stdin(dir, &["secrets", "set", "c"], "new").await;
    assert!(!out.status.success());
    let out = cli_in(dir, &["gateway", "--listen", "127.0.0.1:0"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not the key"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(blake3_of(&vault), before, "a wrong key changed the vault");

    // A missing key: the same, and no new key is made up.
    std::fs::remove_file(&key_path).unwrap();
    let out = get("b").await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("sealed with a key that is not in"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !key_path.exists(),
        "a key was made up for a vault that has one"
    );
    assert_eq!(blake3_of(&vault), before);

    // The right key opens it again.
    std::fs::write(&key_path, &original_key).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(text(&get("b").await.stdout), "value-of-b-456");

    // A tampered row: that secret does not open; the others still do.
    {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", vault.display()))
            .await
            .unwrap();
        sqlx::query(
            // The fourth byte always changes (set to 0 it stayed the same one time in 256).
            "UPDATE secrets SET ciphertext = CAST(substr(ciphertext, 1, 3) || \
             CASE WHEN substr(ciphertext, 4, 1) = X'00' THEN X'01' ELSE X'00' END || \
             substr(ciphertext, 5) AS BLOB) WHERE name = 'a'",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let out = get("a").await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("altered"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&get("b").await.stdout), "value-of-b-456");
    // A rotation refuses to re-seal a tampered vault and changes nothing.
    let out = cli_in(dir, &["secrets", "rotate-key"]).await;
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), original_key);
    assert_eq!(text(&get("b").await.stdout), "value-of-b-456");

    // Repaired, the rotation re-seals everything under a new key; the old key no longer
    // opens the vault.
    set_secret(dir, "a", "value-of-a-789").await;
    let out = cli_in(dir, &["secrets", "rotate-key"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("re-encrypted 2 secret(s)"),
        "{}",
        text(&out.stdout)
    );
    let rotated_key = std::fs::read_to_string(&key_path).unwrap();
    assert_ne!(rotated_key, original_key);
    assert!(!dir.join("vault.key.next").exists());
    assert_eq!(text(&get("a").await.stdout), "value-of-a-789");
    assert_eq!(text(&get("b").await.stdout), "value-of-b-456");
    std::fs::write(&key_path, &original_key).unwrap();
    let out = get("b").await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_keychain_the_key_file_is_used_and_said_so() {
    let mut h = Harness::new(&echo_config("normal"));
    let doctor = h.cli(&["doctor"]).await;
    let said = text(&doctor.stdout);
    assert!(
        said.contains("no OS keychain is reachable") && said.contains("vault.key"),
        "{said}"
    );
    h.start("127.0.0.1:0").await;
    let key = h.dir().join("vault.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        h.stderr_tail().contains("no OS keychain is reachable"),
        "{}",
        h.stderr_tail()
    );
    let doctor = h.cli(&["doctor"]).await;
    let said = text(&doctor.stdout);
    assert!(
        said.contains("vault: OK") && said.contains("no OS keychain was reachable"),
        "{said}"
    );
    h.stop().await;
}

/// Needs `dbus-run-session` and `gnome-keyring-daemon` (Debian `dbus`, `gnome-keyring`;
/// tests/run.sh installs them). The key goes into the real Secret Service and nowhere on
/// disk; two Gateway starts in the same session both open the vault with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_os_keychain_keeps_the_key_across_gateway_restarts() {
    for tool in ["dbus-run-session", "gnome-keyring-daemon"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is missing: apt-get install dbus gnome-keyring (tests/run.sh does)"
        );
    }
    let home = tempfile::tempdir().unwrap();
    let xdg = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("clawos.toml"), echo_config("normal")).unwrap();
    let script = r#"
set -u
echo -n test-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
printf 'keychain-secret-PLAINTEXT' | "$CLAWOS" secrets set provider || exit 11
"$CLAWOS" doctor | grep '^vault'
start() {
  rm -f "$CLAWOS_HOME/gateway.json"
  "$CLAWOS" gateway --listen 127.0.0.1:0 2>>"$CLAWOS_HOME/gw.stderr" &
  pid=$!
  i=0; while [ ! -s "$CLAWOS_HOME/gateway.json" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
  [ -s "$CLAWOS_HOME/gateway.json" ] || { echo "gateway did not start"; cat "$CLAWOS_HOME/gw.stderr"; exit 12; }
}
start; echo "token1=$("$CLAWOS" admin token)"; kill $pid; wait $pid
start; "$CLAWOS" status | head -n1; echo "token2=$("$CLAWOS" admin token)"; kill $pid; wait $pid
echo "value=$("$CLAWOS" secrets get provider)"
ls "$CLAWOS_HOME"
"#;
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("dbus-run-session")
            .args(["--", "sh", "-c", script])
            .env("CLAWOS", bin())
            .env("CLAWOS_HOME", &state)
            .env("HOME", xdg.path())
            .env("XDG_DATA_HOME", xdg.path().join("data"))
            .env("XDG_RUNTIME_DIR", xdg.path())
            .env_remove(clawos_kernel::vault::keystore::ENV_KEY_FILE)
            .env_remove(clawos_kernel::vault::keystore::ENV_KEY_STORE)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the keychain script finished within 120s")
    .expect("run dbus-run-session");
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}\n{}", text(&out.stderr));
    assert!(said.contains("key in OS keychain"), "{said}");
    assert!(said.contains("Gateway: running"), "{said}");
    assert!(said.contains("value=keychain-secret-PLAINTEXT"), "{said}");
    let token = |p: &str| {
        said.lines()
            .find_map(|l| l.strip_prefix(p))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(token("token1=").len(), 64, "{said}");
    assert_eq!(token("token1="), token("token2="), "{said}");
    assert!(
        !state.join("vault.key").exists(),
        "the key was written to disk"
    );
    assert!(files_containing(&state, "keychain-secret-PLAINTEXT").is_empty());
}

async fn metric(h: &Harness, name: &str) -> f64 {
    metric_value(&h.metrics_text().await, name).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_needs_its_token_and_refusals_are_counted() {
    let mut h = Harness::new(&echo_config("normal"));
    h.start("127.0.0.1:0").await;
    let token = h.admin_token();
    for path in ["/api/status", "/api/sessions"] {
        for bad in [None, Some("0".repeat(64)), Some(format!("{token}x"))] {
            let mut r = h.http.get(h.url(path));
            if let Some(b) = &bad {
                r = r.bearer_auth(b);
            }
            assert_eq!(
                r.send().await.unwrap().status().as_u16(),
                401,
                "{path} {bad:?}"
            );
        }
    }
    let r = h
        .http
        .post(h.url("/hooks/agent"))
        .json(&serde_json::json!({"text": "run"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        metric(&h, "clawos_auth_refused_total{endpoint=\"http\"}").await,
        7.0
    );

    // /ws: a connect with a wrong token is refused and counted.
    use futures::{SinkExt, StreamExt};
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", h.addr()))
        .await
        .unwrap();
    // The challenge comes first; then a connect with a wrong token.
    let challenge = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        challenge.to_string().contains("connect.challenge"),
        "{challenge}"
    );
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        serde_json::json!({"type": "req", "id": "1", "method": "connect", "params": {
            "minProtocol": 3, "maxProtocol": 4, "role": "operator", "scopes": ["operator.read"],
            "client": {"id": "test", "version": "1", "platform": "linux", "mode": "test"},
            "auth": {"token": "nope"}}})
        .to_string()
        .into(),
    ))
    .await
    .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        answer.to_string().contains("AUTH_TOKEN_MISMATCH"),
        "{answer}"
    );
    assert!(answer.to_string().contains("unauthorized"), "{answer}");
    assert_eq!(
        metric(&h, "clawos_auth_refused_total{endpoint=\"ws\"}").await,
        1.0
    );
    assert!(h.stderr_tail().contains("refused"), "{}", h.stderr_tail());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listening_beyond_loopback_needs_the_flag() {
    let port = free_port();
    let h = Harness::new(&echo_config("normal"));
    let listen = format!("0.0.0.0:{port}");
    let out = h.cli(&["gateway", "--listen", &listen]).await;
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert!(said.contains("--allow-remote"), "{said}");
    assert!(!h.dir().join("gateway.json").exists());

    let mut h = h;
    h.spawn(
        &["gateway", "--listen", &listen, "--allow-remote"],
        Stdio::null(),
        Stdio::null(),
    )
    .await;
    let local = format!("http://127.0.0.1:{port}");
    let health = h.http.get(format!("{local}/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let api = h
        .http
        .get(format!("{local}/api/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 401);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_codes_expire_one_per_sender_and_a_channel_holds_a_bounded_number() {
    let port = free_port();
    let config = format!(
        "[gateway]\ndefault_agent = \"echo\"\ndurability = \"normal\"\npairing_ttl_secs = 3\n\n\
         [agents.echo]\nkind = \"echo\"\n\n\
         [channels.hooks]\nkind = \"webhook\"\nlisten = \"127.0.0.1:{port}\"\nsecret = \"{SECRET}\"\n"
    );
    let mut h = Harness::new(&config);
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, port, Duration::from_secs(30)).await;

    let code_for = |log: &[Ev], to: &str| -> Vec<String> {
        log.iter()
            .filter_map(|e| match &e.payload {
                EventPayload::MessageSent(m) if m.to == to && m.text.contains("pairing code") => m
                    .text
                    .split("pairing code is ")
                    .nth(1)
                    .map(|r| r.chars().take(8).collect()),
                _ => None,
            })
            .collect()
    };
    post(&h.http, port, "e1", "eve@example.com", "hello?", 0)
        .await
        .unwrap();
    let log = h
        .wait_log("a pairing code for eve", Duration::from_secs(20), |l| {
            !code_for(l, "webhook:eve@example.com").is_empty()
        })
        .await;
    let first = code_for(&log, "webhook:eve@example.com")[0].clone();
    // Writing again while the code lives issues no second code.
    post(&h.http, port, "e2", "eve@example.com", "hello??", 0)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(code_for(&h.log().await, "webhook:eve@example.com").len(), 1);

    // Expired: refused.
    let out = h.cli(&["pairing", "approve", &first]).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("expired"),
        "{}",
        text(&out.stderr)
    );
    // A wrong code: refused.
    let out = h.cli(&["pairing", "approve", "AAAAAAAA"]).await;
    assert!(!out.status.success());

    // Writing again gets a fresh code, which works while it lives.
    post(&h.http, port, "e3", "eve@example.com", "me again", 0)
        .await
        .unwrap();
    let log = h
        .wait_log("a second code for eve", Duration::from_secs(20), |l| {
            code_for(l, "webhook:eve@example.com").len() == 2
        })
        .await;
    let second = code_for(&log, "webhook:eve@example.com")[1].clone();
    assert_ne!(first, second);
    let out = h.cli(&["pairing", "approve", &second]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = post(&h.http, port, "e4", "eve@example.com", "now?", 20_000)
        .await
        .unwrap();
    assert!(
        r.reply().is_some_and(|t| t.starts_with("echo: now?")),
        "{:?}",
        r.body
    );

    // A flood of unknown senders: at most 16 live codes on the channel.
    for i in 0..18 {
        post(
            &h.http,
            port,
            &format!("f{i}"),
            &format!("bot{i}@spam.example"),
            "hi",
            0,
        )
        .await
        .unwrap();
    }
    h.wait_log("16 codes for the flood", Duration::from_secs(30), |l| {
        l.iter()
            .filter(|e| matches!(&e.payload, EventPayload::PairingRequested(p) if p.address.starts_with("webhook:bot")))
            .count()
            == 16
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let codes = h
        .log()
        .await
        .iter()
        .filter(|e| matches!(&e.payload, EventPayload::PairingRequested(p) if p.address.starts_with("webhook:bot")))
        .count();
    assert_eq!(codes, 16);
    assert_eq!(
        metric(&h, "clawos_auth_refused_total{endpoint=\"pairing\"}").await,
        2.0
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_and_its_channels_connect_only_to_configured_peers() {
    // The third turn's provider answer stalls mid-stream, so the Gateway's connection to
    // the provider is certainly open while the sockets are read.
    let fake = FakeLlm::start(vec![
        Step::Text("one".into()),
        Step::Text("two".into()),
        Step::HangMidStream,
    ]);
    let port = free_port();
    let config = format!(
        "[agents.pi]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\n\n{}",
        fake.base_url_openai(),
        webhook_section("hooks", port)
    );
    let mut h = Harness::new(&config);
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, port, Duration::from_secs(30)).await;
    for (id, text) in [("a", "first"), ("b", "second")] {
        let r = post(&h.http, port, id, "alice@example.com", text, 20_000)
            .await
            .unwrap();
        assert!(r.reply().is_some(), "{:?}", r.body);
    }
    let stalled = {
        let http = h.http.clone();
        tokio::spawn(
            async move { post(&http, port, "c", "alice@example.com", "third", 60_000).await },
        )
    };
    let gateway_port = h.addr().port();
    let inbound_ports = [gateway_port, port];
    let allowed_peers = [fake.addr().port(), gateway_port];
    let mut pids = vec![("gateway", h.gateway_pid())];
    pids.extend(h.channel_processes().iter().map(|c| ("channel", c.pid)));
    assert_eq!(pids.len(), 2, "{pids:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !sockets_of(h.gateway_pid())
        .iter()
        .any(|s| s.remote.port() == fake.addr().port())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled turn never opened a connection to the provider"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut seen_provider = false;
    for (who, pid) in pids {
        let socks = sockets_of(pid);
        assert!(!socks.is_empty(), "no sockets found for the {who} ({pid})");
        for s in socks {
            assert!(
                s.proto.starts_with("tcp"),
                "the {who} holds a {} socket: {s:?}",
                s.proto
            );
            assert!(
                s.local.ip().is_loopback(),
                "the {who} is bound beyond loopback: {s:?}"
            );
            if s.listening {
                continue;
            }
            assert!(
                s.remote.ip().is_loopback(),
                "the {who} talks to {}: {s:?}",
                s.remote
            );
            let inbound = inbound_ports.contains(&s.local.port());
            assert!(
                inbound || allowed_peers.contains(&s.remote.port()),
                "the {who} holds a connection to an unconfigured peer: {s:?}"
            );
            seen_provider |= s.remote.port() == fake.addr().port();
        }
    }
    // The check sees real connections: the stalled turn's one to the provider.
    assert!(seen_provider, "no connection to the provider was seen");
    stalled.abort();
    h.stop().await;
}
