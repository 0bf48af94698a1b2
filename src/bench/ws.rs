//! `clawos bench ws`: `chat.send` → final `chat` event over `/ws`, sequential turns, with
//! the echo agent and with Pi against a fake OpenAI-compatible server answering "pong";
//! the webhook round trip of the same Gateway, in the same run, is the baseline.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::response::IntoResponse;
use clawos_events::Durability;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::common::{free_port, start, write_config};
use super::gateway::{pct, post, wait_webhook};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A fake OpenAI-compatible server: every chat completion streams "pong".
async fn fake_llm() -> Result<SocketAddr> {
    async fn complete() -> impl IntoResponse {
        let chunk = json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "pong"}, "finish_reason": null}]});
        let end = json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}});
        (
            [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
            format!("data: {chunk}\n\ndata: {end}\n\ndata: [DONE]\n\n"),
        )
    }
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(complete));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

async fn frame(ws: &mut Socket) -> Result<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Ok(serde_json::from_str(&t)?),
            Ok(Some(Ok(_))) => continue,
            _ => bail!("the /ws connection closed or went silent"),
        }
    }
}

async fn connect(addr: SocketAddr, token: &str) -> Result<Socket> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
    frame(&mut ws).await?; // the challenge
    let connect = json!({"type": "req", "id": "c", "method": "connect", "params": {
        "minProtocol": 4, "maxProtocol": 4, "role": "operator",
        "scopes": ["operator.read", "operator.write"], "auth": {"token": token},
        "client": {"id": "bench", "version": "1", "platform": "linux", "mode": "backend"}}});
    ws.send(Message::Text(connect.to_string().into())).await?;
    let hello = frame(&mut ws).await?;
    if hello["ok"] != true {
        bail!("connect refused: {hello}");
    }
    Ok(ws)
}

/// One `chat.send`, timed until its final `chat` event.
async fn turn(ws: &mut Socket, key: &str, n: usize) -> Result<Duration> {
    let run = format!("bench-{key}-{n}");
    let t = Instant::now();
    let req = json!({"type": "req", "id": run, "method": "chat.send",
                     "params": {"sessionKey": key, "message": format!("ping {n}"), "idempotencyKey": run}});
    ws.send(Message::Text(req.to_string().into())).await?;
    loop {
        let f = frame(ws).await?;
        if f["type"] == "res" && f["id"] == run.as_str() && f["ok"] != true {
            bail!("chat.send refused: {f}");
        }
        let p = &f["payload"];
        if f["event"] == "chat" && p["runId"] == run.as_str() {
            match p["state"].as_str() {
                Some("final") => return Ok(t.elapsed()),
                Some("error" | "aborted") => bail!("turn {n} failed: {p}"),
                _ => {}
            }
        }
    }
}

fn line(name: &str, mut d: Vec<Duration>, base: Duration) -> String {
    d.sort();
    let p50 = pct(&d, 0.5);
    format!(
        "| {name} | {:.2} ms | {:.2} ms | {:.2}× |",
        p50.as_secs_f64() * 1e3,
        pct(&d, 0.99).as_secs_f64() * 1e3,
        p50.as_secs_f64() / base.as_secs_f64().max(1e-9)
    )
}

/// Run the benchmark: `turns` sequential turns per line.
pub async fn bench_ws(turns: usize, durability: Durability) -> Result<()> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("state");
    let hook: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    write_config(&home, durability, Some(hook))?;
    let llm = fake_llm().await?;
    let mut cfg = std::fs::read_to_string(home.join("clawos.toml"))?;
    cfg.push_str(&format!(
        "\n[agents.pi]\nkind = \"pi\"\nprovider = \"openai\"\nbase_url = \"http://{llm}/v1\"\nmodel = \"m\"\nretries = 0\n"
    ));
    std::fs::write(home.join("clawos.toml"), cfg)?;
    let (gw, _) = start(&exe, &home, Some(hook))?;
    let token = super::admin::admin_token(&exe, &home)?;
    let client = reqwest::Client::new();
    wait_webhook(&client, hook).await?;
    let mut ws = connect(gw.addr, &token).await.context("connect to /ws")?;
    // Warm up every path once.
    turn(&mut ws, "agent:echo:bench", 0).await?;
    turn(&mut ws, "agent:pi:bench", 0).await?;

    let mut webhook = Vec::with_capacity(turns);
    let mut echo = Vec::with_capacity(turns);
    let mut pi = Vec::with_capacity(turns);
    // Interleaved, so a slow moment of the machine falls on all three alike.
    for n in 1..=turns {
        webhook.push(post(&client, hook, n as u64).await?);
        echo.push(turn(&mut ws, "agent:echo:bench", n).await?);
        pi.push(turn(&mut ws, "agent:pi:bench", n).await?);
    }
    let mut sorted = webhook.clone();
    sorted.sort();
    let base = pct(&sorted, 0.5);
    println!("clawos bench ws: {turns} sequential turns each, durability {durability:?}, same Gateway and run\n");
    println!("| path | p50 | p99 | p50 / webhook p50 |");
    println!("|---|---:|---:|---:|");
    println!(
        "{}",
        line(
            "webhook channel → echo agent → reply (baseline)",
            webhook,
            base
        )
    );
    println!(
        "{}",
        line("/ws chat.send → final chat event, echo agent", echo, base)
    );
    println!(
        "{}",
        line("/ws chat.send → final chat event, Pi + fake LLM", pi, base)
    );
    drop(gw);
    Ok(())
}
