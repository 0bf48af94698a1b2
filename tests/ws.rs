//! `/ws`: the JSON protocol for UI clients, over a real WebSocket to a real Gateway.

#[path = "gateway_common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use clawos_testkit::fake_llm::{FakeLlm, Step};
use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(h: &Harness) -> Ws {
    let url = h.url("/ws").replace("http://", "ws://");
    tokio_tungstenite::connect_async(url)
        .await
        .expect("connect /ws")
        .0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON frame, or `None` when the socket closes; panics after 10 s.
async fn next(ws: &mut Ws) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next())
            .await
            .expect("no frame within 10 s")
        {
            Some(Ok(Message::Text(t))) => {
                return Some(serde_json::from_str(&t).expect("JSON frame"))
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Frames until the response to request `id`, collecting events on the way.
async fn response(ws: &mut Ws, id: &str, events: &mut Vec<Value>) -> Value {
    loop {
        let f = next(ws).await.expect("socket closed before the response");
        if f["type"] == "res" && f["id"] == id {
            return f;
        }
        events.push(f);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_connect_chat_history_and_live_events() {
    let fake = FakeLlm::start(vec![Step::Text("hello there from Pi".into())]);
    let config = format!(
        "[gateway]\ndefault_agent = \"pi\"\ndurability = \"normal\"\n\n[agents.pi]\nkind = \"pi\"\n\
         provider = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\ntimeout_secs = 5\nretries = 0\n",
        fake.base_url_openai()
    );
    let mut h = Harness::new(&config);
    h.start("127.0.0.1:0").await;
    let token = h.admin_token();

    // The first request must be connect; anything else is refused and the socket closed.
    let mut ws = open(&h).await;
    send(
        &mut ws,
        json!({"type": "req", "id": "1", "method": "health"}),
    )
    .await;
    let f = next(&mut ws).await.unwrap();
    assert_eq!(
        (f["ok"].clone(), f["error"]["code"].clone()),
        (json!(false), json!("unauthorized"))
    );
    assert!(next(&mut ws).await.is_none(), "socket must close");

    // A wrong token is refused.
    let mut ws = open(&h).await;
    send(
        &mut ws,
        json!({"type": "req", "id": "1", "method": "connect", "params": {"token": "nope"}}),
    )
    .await;
    assert_eq!(
        next(&mut ws).await.unwrap()["error"]["code"],
        "unauthorized"
    );
    assert!(next(&mut ws).await.is_none());

    // The right token: hello-ok with the methods.
    let mut ws = open(&h).await;
    send(
        &mut ws,
        json!({"type": "req", "id": "c", "method": "connect", "params": {"token": token.trim()}}),
    )
    .await;
    let hello = next(&mut ws).await.unwrap();
    assert_eq!(hello["ok"], true, "{hello}");
    assert_eq!(hello["payload"]["type"], "hello-ok");
    let methods: Vec<&str> = hello["payload"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for m in [
        "health",
        "status",
        "chat.send",
        "chat.history",
        "sessions.list",
        "events.subscribe",
    ] {
        assert!(methods.contains(&m), "{m} missing from {methods:?}");
    }

    // Live log fan-out from the start.
    let mut events = Vec::new();
    send(
        &mut ws,
        json!({"type": "req", "id": "s", "method": "events.subscribe", "params": {"fromSeq": 1}}),
    )
    .await;
    assert_eq!(response(&mut ws, "s", &mut events).await["ok"], true);

    // chat.send: acked with a run id, then delta events and one final with the whole text.
    send(
        &mut ws,
        json!({"type": "req", "id": "m", "method": "chat.send",
        "params": {"sessionKey": "main", "message": "hi Pi", "idempotencyKey": "run-1"}}),
    )
    .await;
    let ack = response(&mut ws, "m", &mut events).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["payload"]["runId"], "run-1");
    let deadline = Instant::now() + Duration::from_secs(10);
    // The chat events and the log fan-out are independent streams: wait for both.
    while !(events
        .iter()
        .any(|e| e["event"] == "chat" && e["payload"]["state"] == "final")
        && events
            .iter()
            .any(|e| e["event"] == "log" && e["payload"]["kind"] == "AgentTurnFinished"))
    {
        assert!(
            Instant::now() < deadline,
            "no final chat event: {events:#?}"
        );
        events.push(next(&mut ws).await.expect("socket closed"));
    }
    let chat: Vec<&Value> = events.iter().filter(|e| e["event"] == "chat").collect();
    let deltas: String = chat
        .iter()
        .filter(|e| e["payload"]["state"] == "delta")
        .map(|e| e["payload"]["message"]["text"].as_str().unwrap())
        .collect();
    let fin = chat
        .iter()
        .find(|e| e["payload"]["state"] == "final")
        .unwrap();
    assert_eq!(fin["payload"]["message"]["text"], "hello there from Pi");
    assert_eq!(deltas, "hello there from Pi", "deltas: {chat:#?}");
    assert!(chat.iter().all(|e| e["payload"]["runId"] == "run-1"));

    // The log fan-out carried the whole turn.
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "log")
        .map(|e| e["payload"]["kind"].as_str().unwrap())
        .collect();
    for k in [
        "SessionStarted",
        "MessageReceived",
        "AgentTurnStarted",
        "LlmRequested",
        "LlmResponded",
        "MessageSent",
    ] {
        assert!(kinds.contains(&k), "{k} not fanned out: {kinds:?}");
    }

    // sessions.list and chat.history.
    send(
        &mut ws,
        json!({"type": "req", "id": "l", "method": "sessions.list"}),
    )
    .await;
    let list = response(&mut ws, "l", &mut events).await;
    let sessions = list["payload"]["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 1, "{list}");
    assert_eq!(sessions[0]["identity"], "webchat:main@local");
    let id = sessions[0]["session_id"].as_str().unwrap();
    send(
        &mut ws,
        json!({"type": "req", "id": "h", "method": "chat.history", "params": {"sessionKey": id}}),
    )
    .await;
    let hist = response(&mut ws, "h", &mut events).await;
    let texts: Vec<&str> = hist["payload"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hi Pi", "hello there from Pi"]);

    // Unknown methods and bad frames are errors, not disconnects.
    send(
        &mut ws,
        json!({"type": "req", "id": "u", "method": "teleport"}),
    )
    .await;
    assert_eq!(
        response(&mut ws, "u", &mut events).await["error"]["code"],
        "unknown_method"
    );
    ws.send(Message::Text("{not json".into())).await.unwrap();
    send(
        &mut ws,
        json!({"type": "req", "id": "z", "method": "health"}),
    )
    .await;
    assert_eq!(response(&mut ws, "z", &mut events).await["ok"], true);
    h.stop().await;
}
