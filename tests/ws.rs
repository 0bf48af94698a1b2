//! `/ws`: OpenClaw's Gateway protocol over a real WebSocket to a real Gateway, driven by a
//! client written from the protocol's documentation (`ws_common`): the handshake, device
//! pairing and tokens, scopes, chat with streaming events, sessions, abort, approvals'
//! and pairing events, nodes and Pi's `nodes` skill.

#[path = "gateway_common/mod.rs"]
mod common;
#[path = "ws_common/mod.rs"]
mod ws_common;

use std::time::Duration;

use clawos_events::EventPayload;
use clawos_testkit::fake_llm::{FakeLlm, Step};
use common::*;
use serde_json::{json, Value};
use ws_common::{connect, Device, Opts, Tamper, POLICY, PROTOCOL};

fn ws_url(h: &Harness) -> String {
    h.url("/ws").replace("http://", "ws://")
}

const ALL: &[&str] = &[
    "operator.read",
    "operator.write",
    "operator.admin",
    "operator.approvals",
    "operator.pairing",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_scopes_pairing_and_device_tokens() {
    let config = echo_config("normal").replace(
        "durability = \"normal\"\n",
        "durability = \"normal\"\npair_loopback_devices = false\n",
    );
    let mut h = Harness::new(&config);
    h.start("127.0.0.1:0").await;
    let url = ws_url(&h);
    let token = h.admin_token();
    let token = token.trim();

    // Anything but connect first is refused and the socket closed (1008).
    let (mut c, _) = ws_common::challenged(&url).await;
    c.send(json!({"type": "req", "id": "1", "method": "health"}))
        .await;
    let res = c.response("1").await;
    assert_eq!(
        res["error"]["message"],
        "invalid handshake: first request must be connect"
    );
    assert_eq!(c.closed().await, Some(POLICY));

    let (mut c, res) = connect(
        &url,
        &Opts {
            protocol: (5, 6),
            ..Opts::operator(token, &[])
        },
    )
    .await;
    assert_eq!(res["ok"], false);
    assert_eq!(
        res["error"]["details"]["code"], "PROTOCOL_MISMATCH",
        "{res}"
    );
    assert_eq!(c.closed().await, Some(PROTOCOL));

    let (mut c, res) = connect(&url, &Opts::operator("wrong-token", &[])).await;
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH",
        "{res}"
    );
    assert_eq!(c.closed().await, Some(POLICY));

    // v3 and v4 hellos, with every field OpenClaw's schema requires.
    let (c3, hello) = connect(
        &url,
        &Opts {
            protocol: (3, 3),
            ..Opts::operator(token, &["operator.read"])
        },
    )
    .await;
    let p = &hello["payload"];
    assert_eq!(
        (p["type"].clone(), p["protocol"].clone()),
        (json!("hello-ok"), json!(3)),
        "{hello}"
    );
    assert!(
        p["auth"].get("method").is_none() && p["features"].get("capabilities").is_none(),
        "v3 hello has v4 keys: {p}"
    );
    c3.close().await;
    let (mut reader, hello) = connect(&url, &Opts::operator(token, &["operator.read"])).await;
    let p = &hello["payload"];
    assert_eq!(p["protocol"], 4);
    for path in [
        "/server/version",
        "/server/connId",
        "/features/methods",
        "/features/events",
        "/snapshot/presence",
        "/snapshot/health",
        "/snapshot/stateVersion/presence",
        "/snapshot/uptimeMs",
        "/auth/role",
        "/auth/scopes",
        "/policy/maxPayload",
        "/policy/maxBufferedBytes",
        "/policy/tickIntervalMs",
        "/snapshot/sessionDefaults/mainSessionKey",
    ] {
        assert!(p.pointer(path).is_some(), "hello-ok lacks {path}: {p}");
    }
    assert_eq!(
        p["snapshot"]["sessionDefaults"]["mainSessionKey"],
        "agent:echo:main"
    );

    // Scopes per method and role; errors are answers, not disconnects.
    let r = reader
        .call(
            "chat.send",
            json!({"sessionKey": "main", "message": "hi", "idempotencyKey": "x"}),
        )
        .await;
    assert_eq!(r["error"]["code"], "FORBIDDEN", "{r}");
    assert_eq!(r["error"]["details"]["missingScope"], "operator.write");
    let r = reader
        .call(
            "node.invoke.result",
            json!({"id": "x", "nodeId": "n", "ok": true}),
        )
        .await;
    assert_eq!(r["error"]["message"], "unauthorized role: operator");
    let r = reader.call("teleport", json!({})).await;
    assert_eq!(r["error"]["message"], "unknown method: teleport");
    reader.send_text("{not json").await;
    assert_eq!(reader.call("health", json!({})).await["ok"], true);
    assert_eq!(reader.call("sessions.list", json!({})).await["ok"], true);
    let r = reader.call("device.pair.list", json!({})).await;
    assert_eq!(r["error"]["details"]["missingScope"], "operator.pairing");

    // An admin watches pairing events.
    let (mut admin, hello) = connect(&url, &Opts::operator(token, ALL)).await;
    assert_eq!(hello["ok"], true, "{hello}");

    // Device proofs: stale, another nonce, a signature over other fields.
    let phone = Device::from_seed(7);
    let want = Opts::operator(token, &["operator.read", "operator.write"]).with_device(&phone);
    for (tamper, code) in [
        (Tamper::Stale, "DEVICE_AUTH_SIGNATURE_EXPIRED"),
        (Tamper::OtherNonce, "DEVICE_AUTH_NONCE_MISMATCH"),
        (Tamper::BadSignature, "DEVICE_AUTH_SIGNATURE_INVALID"),
    ] {
        let (mut c, res) = connect(
            &url,
            &Opts {
                tamper,
                ..want.clone()
            },
        )
        .await;
        assert_eq!(res["error"]["details"]["code"], code, "{res}");
        assert_eq!(c.closed().await, Some(POLICY));
    }

    // An unknown device waits for pairing; asking again reuses the request.
    let (mut c, res) = connect(&url, &want).await;
    assert_eq!(res["error"]["code"], "NOT_PAIRED", "{res}");
    let d = &res["error"]["details"];
    assert_eq!(
        (d["code"].clone(), d["reason"].clone()),
        (json!("PAIRING_REQUIRED"), json!("not-paired"))
    );
    let request = d["requestId"].as_str().unwrap().to_string();
    assert_eq!(c.closed().await, Some(POLICY));
    let (_, again) = connect(&url, &want).await;
    assert_eq!(again["error"]["details"]["requestId"], request.as_str());
    let requested = admin
        .event("device.pair.requested", |e| {
            e["event"] == "device.pair.requested"
        })
        .await;
    assert_eq!(requested["payload"]["deviceId"], phone.id());
    assert!(
        requested["seq"].as_u64().unwrap() >= 1,
        "broadcast events carry a seq"
    );
    let list = admin.call("device.pair.list", json!({})).await;
    assert_eq!(
        list["payload"]["pending"].as_array().unwrap().len(),
        1,
        "{list}"
    );

    // Approved from the Control UI side: the next connect gets a device token.
    let r = admin
        .call("device.pair.approve", json!({"requestId": request}))
        .await;
    assert_eq!(r["payload"]["decision"], "approved", "{r}");
    admin
        .event("device.pair.resolved", |e| {
            e["event"] == "device.pair.resolved"
        })
        .await;
    let (phone_conn, hello) = connect(&url, &want).await;
    assert_eq!(hello["ok"], true, "{hello}");
    let device_token = hello["payload"]["auth"]["deviceToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(hello["payload"]["auth"]["method"], "token");
    phone_conn.close().await;

    // The device token alone opens the door, for the scopes approved.
    let by_token = Opts {
        token: None,
        device_token: Some(device_token.clone()),
        ..want.clone()
    };
    let (mut phone_conn, hello) = connect(&url, &by_token).await;
    assert_eq!(
        hello["payload"]["auth"]["method"], "device-token",
        "{hello}"
    );
    assert_eq!(
        hello["payload"]["auth"]["deviceToken"],
        device_token.as_str()
    );
    assert_eq!(phone_conn.call("health", json!({})).await["ok"], true);

    // More scopes than approved: a new request (scope upgrade).
    let (_, res) = connect(
        &url,
        &Opts {
            scopes: vec!["operator.admin".into()],
            ..want.clone()
        },
    )
    .await;
    assert_eq!(res["error"]["details"]["reason"], "scope-upgrade", "{res}");

    // Rotation: the old token stops working, the live connection is closed.
    let r = admin
        .call(
            "device.token.rotate",
            json!({"deviceId": phone.id(), "role": "operator"}),
        )
        .await;
    let rotated = r["payload"]["token"].as_str().unwrap().to_string();
    assert_ne!(rotated, device_token);
    phone_conn.closed().await;
    let (_, res) = connect(&url, &by_token).await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH",
        "{res}"
    );
    let by_new = Opts {
        device_token: Some(rotated.clone()),
        ..by_token.clone()
    };
    let (mut phone_conn, hello) = connect(&url, &by_new).await;
    assert_eq!(hello["ok"], true, "{hello}");

    // Revocation closes its connections and its token dies; the CLI lists what is left.
    let out = h.cli(&["devices", "revoke", &phone.id()[..12]]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    phone_conn.closed().await;
    let (_, res) = connect(&url, &by_new).await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH",
        "{res}"
    );
    let out = h.cli(&["devices", "list"]).await;
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    // Revoked: not paired, and its scope-upgrade request went with it.
    assert!(
        listed.contains("no device waits") && !listed.contains("paired"),
        "{listed}"
    );

    // It asks again; a CLI approval pairs it again.
    let (_, res) = connect(&url, &want).await;
    let again = res["error"]["details"]["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    let out = h.cli(&["devices", "approve", &again]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, hello) = connect(&url, &want).await;
    assert_eq!(hello["ok"], true, "{hello}");

    // A setup code (`clawos devices pair`) pairs the first device that uses it, for its
    // roles, without asking; never another device, never admin scopes.
    let out = h
        .cli(&["devices", "pair", "--url", "http://phone.test/app"])
        .await;
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && printed.contains("http://phone.test/app#code="),
        "{printed}"
    );
    let code = printed.split("#code=").nth(1).unwrap()[..8].to_string();
    let tablet = Device::from_seed(11);
    let by_code = Opts {
        token: None,
        bootstrap: Some(code.clone()),
        ..Opts::operator("", &["operator.read", "operator.write"]).with_device(&tablet)
    };
    let (_, res) = connect(
        &url,
        &Opts {
            scopes: vec!["operator.admin".into()],
            ..by_code.clone()
        },
    )
    .await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_SCOPE_MISMATCH",
        "{res}"
    );
    let (_, hello) = connect(&url, &by_code).await;
    assert_eq!(
        hello["payload"]["auth"]["method"], "bootstrap-token",
        "{hello}"
    );
    assert!(hello["payload"]["auth"]["deviceToken"].is_string());
    let node_by_code = Opts {
        bootstrap: Some(code.clone()),
        token: None,
        ..Opts::node("", &tablet, &["location.get"])
    };
    let (_, hello) = connect(&url, &node_by_code).await;
    assert_eq!(hello["ok"], true, "the same device's node role: {hello}");
    let (_, res) = connect(
        &url,
        &Opts {
            device: Some(Device::from_seed(12)),
            ..by_code.clone()
        },
    )
    .await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_BOOTSTRAP_TOKEN_INVALID",
        "{res}"
    );

    // Every pairing change is an event; no token ever reaches the log.
    let log = h.log().await;
    let kinds: Vec<&str> = log
        .iter()
        .filter(|e| e.stream == "devices")
        .map(|e| e.kind.as_str())
        .collect();
    for k in [
        "DevicePairingRequested",
        "DevicePairingResolved",
        "DeviceTokenIssued",
        "DeviceRevoked",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
    }
    let bytes = std::fs::read(h.dir().join("clawos.db")).unwrap();
    for secret in [&device_token, &rotated] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a device token is in the log file"
        );
    }
    h.stop().await;
}

fn chat_config(fake: &FakeLlm) -> String {
    format!(
        "[gateway]\ndefault_agent = \"pi\"\ndurability = \"normal\"\n\n[agents.pi]\nkind = \"pi\"\n\
         provider = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\ntimeout_secs = 5\nretries = 0\n\n\
         [agents.echo]\nkind = \"echo\"\n",
        fake.base_url_openai()
    )
}

fn text_of(e: &Value) -> String {
    e["payload"]["message"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_sessions_abort_nodes_and_the_nodes_skill() {
    let phone = Device::from_seed(9);
    let fake = FakeLlm::start(vec![
        Step::Text("hello there from Pi".into()),
        Step::ToolCall {
            name: "nodes".into(),
            arguments: json!({"op": "invoke", "node": phone.id(), "command": "location.get"}),
        },
        Step::Text("You are in Lisbon.".into()),
    ]);
    let mut h = Harness::new(&chat_config(&fake));
    h.start("127.0.0.1:0").await;
    let url = ws_url(&h);
    let token = h.admin_token();
    let token = token.trim();
    let (mut ui, hello) = connect(&url, &Opts::operator(token, ALL)).await;
    assert_eq!(hello["ok"], true, "{hello}");
    let (mut watcher, _) = connect(&url, &Opts::operator(token, &["operator.read"])).await;
    let sub = ui.call("events.subscribe", json!({"fromSeq": 1})).await;
    assert_eq!(sub["ok"], true);

    // chat.send: an ack with the run id, deltas with the text so far, one final.
    let ack = ui
        .call(
            "chat.send",
            json!({"sessionKey": "main", "message": "hi Pi", "idempotencyKey": "run-1"}),
        )
        .await;
    assert_eq!(
        (
            ack["payload"]["runId"].clone(),
            ack["payload"]["status"].clone()
        ),
        (json!("run-1"), json!("started")),
        "{ack}"
    );
    let fin = ui
        .event("final chat", |e| {
            e["event"] == "chat" && e["payload"]["state"] == "final"
        })
        .await;
    assert_eq!(text_of(&fin), "hello there from Pi");
    assert_eq!(fin["payload"]["sessionKey"], "agent:pi:main");
    assert_eq!(fin["payload"]["runId"], "run-1");
    let deltas: Vec<&Value> = ui
        .events
        .iter()
        .filter(|e| e["event"] == "chat" && e["payload"]["state"] == "delta")
        .collect();
    assert!(!deltas.is_empty(), "no deltas");
    let joined: String = deltas
        .iter()
        .map(|d| d["payload"]["deltaText"].as_str().unwrap())
        .collect();
    assert_eq!(joined, "hello there from Pi");
    assert_eq!(text_of(deltas[deltas.len() - 1]), "hello there from Pi");
    // Per-connection seqs increase without gaps.
    let seqs: Vec<u64> = ui.events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    // Another operator sees the same run.
    let seen = watcher
        .event("final chat", |e| {
            e["event"] == "chat" && e["payload"]["state"] == "final"
        })
        .await;
    assert_eq!(seen["payload"]["runId"], "run-1");
    // The log fan-out (our addition) carried the turn.
    ui.event("log", |e| {
        e["event"] == "log" && e["payload"]["kind"] == "AgentTurnFinished"
    })
    .await;

    // The same idempotency key starts nothing new.
    let again = ui
        .call(
            "chat.send",
            json!({"sessionKey": "main", "message": "hi Pi", "idempotencyKey": "run-1"}),
        )
        .await;
    assert_eq!(again["payload"]["status"], "in_flight");

    // One key, one session, in every method.
    let hist = ui
        .call("chat.history", json!({"sessionKey": "agent:pi:main"}))
        .await;
    let texts: Vec<&str> = hist["payload"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hi Pi", "hello there from Pi"]);
    let same = ui.call("chat.history", json!({"sessionKey": "main"})).await;
    assert_eq!(same["payload"]["sessionId"], hist["payload"]["sessionId"]);
    let list = ui.call("sessions.list", json!({})).await;
    assert_eq!(
        list["payload"]["sessions"][0]["key"], "agent:pi:main",
        "{list}"
    );

    // Reset: an empty branch; patch back to main; the history follows.
    assert_eq!(
        ui.call("sessions.reset", json!({"key": "main"})).await["ok"],
        true
    );
    let hist = ui.call("chat.history", json!({"sessionKey": "main"})).await;
    assert_eq!(
        hist["payload"]["messages"].as_array().unwrap().len(),
        0,
        "{hist}"
    );
    let r = ui
        .call("sessions.patch", json!({"key": "main", "branch": "main"}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    let hist = ui.call("chat.history", json!({"sessionKey": "main"})).await;
    assert_eq!(hist["payload"]["messages"].as_array().unwrap().len(), 2);

    // Abort: the echo agent's `later:` takes a second; the run ends `aborted`.
    let r = ui
        .call("chat.send", json!({"sessionKey": "agent:echo:main", "message": "later: too late", "idempotencyKey": "run-2"}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = ui
        .call("chat.abort", json!({"sessionKey": "agent:echo:main"}))
        .await;
    assert_eq!(r["payload"]["aborted"], true, "{r}");
    assert_eq!(r["payload"]["runIds"][0], "run-2");
    let aborted = ui
        .event("aborted chat", |e| {
            e["event"] == "chat" && e["payload"]["state"] == "aborted"
        })
        .await;
    assert_eq!(aborted["payload"]["runId"], "run-2");
    // An unknown agent in a key is a clear error.
    let r = ui
        .call(
            "chat.send",
            json!({"sessionKey": "agent:nobody:main", "message": "x", "idempotencyKey": "r3"}),
        )
        .await;
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown agent nobody"),
        "{r}"
    );

    // Delete: the next message opens a new session.
    let first = ui
        .call("chat.history", json!({"sessionKey": "agent:echo:main"}))
        .await["payload"]["sessionId"]
        .clone();
    assert_eq!(
        ui.call("sessions.delete", json!({"key": "agent:echo:main"}))
            .await["payload"]["deleted"],
        true
    );
    let r = ui
        .call("chat.history", json!({"sessionKey": "agent:echo:main"}))
        .await;
    assert_eq!(r["payload"]["sessionId"], Value::Null);
    ui.call(
        "chat.send",
        json!({"sessionKey": "agent:echo:main", "message": "anew", "idempotencyKey": "run-4"}),
    )
    .await;
    ui.event("final chat", |e| {
        e["event"] == "chat" && e["payload"]["runId"] == "run-4" && e["payload"]["state"] == "final"
    })
    .await;
    let second = ui
        .call("chat.history", json!({"sessionKey": "agent:echo:main"}))
        .await["payload"]["sessionId"]
        .clone();
    assert!(second.is_string() && second != first, "{first} {second}");

    // A node (paired automatically: loopback and the shared token) answers commands.
    let (mut node, hello) = connect(
        &url,
        &Opts::node(token, &phone, &["location.get", "camera.snap"]),
    )
    .await;
    assert_eq!(hello["ok"], true, "{hello}");
    let nodes = ui.call("node.list", json!({})).await;
    assert_eq!(
        nodes["payload"]["nodes"][0]["nodeId"],
        phone.id(),
        "{nodes}"
    );
    assert_eq!(
        nodes["payload"]["nodes"][0]["commands"],
        json!(["location.get", "camera.snap"])
    );
    // A node's own event is recorded and reaches operators.
    let r = node
        .call(
            "node.event",
            json!({"event": "exec.finished", "payloadJSON": "{\"exitCode\":0}"}),
        )
        .await;
    assert_eq!(r["payload"]["handled"], true, "{r}");
    let seen = ui.event("node.event", |e| e["event"] == "node.event").await;
    assert_eq!(seen["payload"]["nodeId"], phone.id());
    assert_eq!(seen["payload"]["payload"]["exitCode"], 0);
    let node_task = tokio::spawn(async move {
        // Answer location.get, fail camera.snap, ignore the third request.
        for answer in 0..3 {
            let req = node
                .event("invoke", |e| e["event"] == "node.invoke.request")
                .await;
            node.events.retain(|e| e != &req);
            assert!(req.get("seq").is_none(), "events to a node carry no seq");
            let id = req["payload"]["id"].as_str().unwrap().to_string();
            let node_id = req["payload"]["nodeId"].as_str().unwrap().to_string();
            let result = match answer {
                0 | 2 => {
                    json!({"id": id, "nodeId": node_id, "ok": true, "payloadJSON": "{\"city\":\"Lisbon\"}"})
                }
                _ => {
                    json!({"id": id, "nodeId": node_id, "ok": false, "error": {"code": "CAMERA_DENIED", "message": "no permission"}})
                }
            };
            let r = node.call("node.invoke.result", result).await;
            assert_eq!(r["ok"], true, "{r}");
        }
        node
    });
    let r = ui.call("node.invoke", json!({"nodeId": phone.id(), "command": "location.get", "params": {}, "idempotencyKey": "i1"})).await;
    assert_eq!(r["payload"]["payload"]["city"], "Lisbon", "{r}");
    let r = ui
        .call(
            "node.invoke",
            json!({"nodeId": phone.id(), "command": "camera.snap", "idempotencyKey": "i2"}),
        )
        .await;
    assert_eq!(
        r["error"]["details"]["nodeError"]["code"], "CAMERA_DENIED",
        "{r}"
    );
    let r = ui
        .call(
            "node.invoke",
            json!({"nodeId": phone.id(), "command": "screen.record", "idempotencyKey": "i3"}),
        )
        .await;
    assert_eq!(r["error"]["code"], "INVALID_REQUEST", "{r}");

    // Pi's nodes skill asks the node; the tool call and the invocation are events.
    ui.call(
        "chat.send",
        json!({"sessionKey": "main", "message": "where am I?", "idempotencyKey": "run-5"}),
    )
    .await;
    let fin = ui
        .event("final chat", |e| {
            e["event"] == "chat"
                && e["payload"]["runId"] == "run-5"
                && e["payload"]["state"] == "final"
        })
        .await;
    assert_eq!(text_of(&fin), "You are in Lisbon.");
    let node = node_task.await.unwrap();
    let log = h.log().await;
    let invoked = log.iter().filter(|e| e.kind == "NodeInvoked").count();
    let finished: Vec<bool> = log
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::NodeInvokeFinished(f) => Some(f.ok),
            _ => None,
        })
        .collect();
    assert_eq!(invoked, 3, "the refused command is not sent");
    assert_eq!(finished, [true, false, true]);
    assert!(log.iter().any(
        |e| matches!(&e.payload, EventPayload::ToolReturned(t) if t.output.contains("Lisbon"))
    ));

    // A node that goes away leaves the list.
    node.close().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = ui.call("node.list", json!({})).await;
        if n["payload"]["nodes"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node still listed: {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let presence = ui.call("system-presence", json!({})).await;
    assert!(
        presence["payload"].as_array().unwrap().len() >= 2,
        "{presence}"
    );
    h.stop().await;
}
