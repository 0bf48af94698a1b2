//! The life of one `/ws` connection: the challenge, the handshake, then requests
//! dispatched by role and scope, with ticks, presence and the event feed alongside.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::conn::{broadcast, Conn, MAX_WS_FRAME, TICK_INTERVAL};
use super::frames::{self, direct_event, error, error_with, Request, FORBIDDEN, INVALID_REQUEST};
use super::scopes::{self, Need, Role};
use super::{chat, feed, handshake, hello, node_methods, operator, pairing, sessions};
use crate::gateway::Gateway;

/// How long a client has to send `connect` after the challenge.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Upgrade `/ws` requests.
pub async fn ws_handler(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(MAX_WS_FRAME)
        .on_upgrade(move |socket| connection(gw, socket, remote))
}

async fn connection(gw: Arc<Gateway>, socket: WebSocket, remote: SocketAddr) {
    let (mut sink, mut source) = socket.split();
    let (out, mut out_rx) = mpsc::channel::<Value>(1024);
    let (close_tx, mut close_rx) = mpsc::channel::<(u16, String)>(1);
    let writer = tokio::spawn(async move {
        let mut seq: u64 = 0;
        loop {
            tokio::select! {
                v = out_rx.recv() => {
                    let Some(mut v) = v else {
                        // Every sender is gone; a close asked for meanwhile still goes out.
                        let close = close_rx.try_recv().ok().map(|(code, reason)| CloseFrame { code, reason: reason.into() });
                        let _ = sink.send(Message::Close(close)).await;
                        return;
                    };
                    if v.get("seq") == Some(&Value::Null) {
                        seq += 1;
                        v["seq"] = json!(seq);
                    }
                    if sink.send(Message::Text(v.to_string().into())).await.is_err() {
                        return;
                    }
                }
                c = close_rx.recv() => {
                    // Whatever was queued before the close goes out first.
                    while let Ok(v) = out_rx.try_recv() {
                        let _ = sink.send(Message::Text(v.to_string().into())).await;
                    }
                    let (code, reason) = c.unwrap_or((1000, String::new()));
                    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                    return;
                }
            }
        }
    });
    let nonce = uuid::Uuid::new_v4().to_string();
    let _ = out
        .send(direct_event(
            "connect.challenge",
            json!({"nonce": nonce, "ts": crate::clock::now_ms()}),
        ))
        .await;
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake_frame(&mut source)).await {
        Ok(Some(text)) => admit(&gw, &text, &nonce, remote, &out, &close_tx).await,
        Ok(None) => None,
        Err(_) => {
            let _ = close_tx
                .send((frames::CLOSE_POLICY, "connect timeout".into()))
                .await;
            None
        }
    };
    if let Some(conn) = conn {
        serve(&gw, conn, &mut source, remote).await;
    }
    drop(out);
    drop(close_tx);
    let _ = writer.await;
}

/// The first text frame, or `None` when the socket closes first.
async fn handshake_frame(source: &mut futures::stream::SplitStream<WebSocket>) -> Option<String> {
    while let Some(Ok(msg)) = source.next().await {
        match msg {
            Message::Text(t) => return Some(t.to_string()),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
    None
}

async fn admit(
    gw: &Arc<Gateway>,
    text: &str,
    nonce: &str,
    remote: SocketAddr,
    out: &mpsc::Sender<Value>,
    close: &mpsc::Sender<(u16, String)>,
) -> Option<Conn> {
    let refuse = |frame: Value, code: u16, reason: String| async move {
        let _ = out.send(frame).await;
        let _ = close.send((code, reason)).await;
    };
    let req: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let m = format!("invalid request frame: {e}");
            refuse(
                error(&Value::Null, INVALID_REQUEST, m.clone()),
                frames::CLOSE_POLICY,
                m,
            )
            .await;
            return None;
        }
    };
    if req.kind != "req" || req.method != "connect" {
        let m = "invalid handshake: first request must be connect".to_string();
        refuse(
            error(&req.id, INVALID_REQUEST, m.clone()),
            frames::CLOSE_POLICY,
            m,
        )
        .await;
        return None;
    }
    match handshake::connect(gw, &req, nonce, remote).await {
        Err(r) => {
            refuse(r.frame, r.close, r.reason).await;
            None
        }
        Ok(admitted) => {
            let conn = Conn {
                id: uuid::Uuid::now_v7().to_string(),
                admitted,
                out: out.clone(),
            };
            let _ = out.send(hello::hello_ok(gw, &req, &conn).await).await;
            Some(conn)
        }
    }
}

async fn serve(
    gw: &Arc<Gateway>,
    conn: Conn,
    source: &mut futures::stream::SplitStream<WebSocket>,
    remote: SocketAddr,
) {
    let conn = Arc::new(conn);
    let mut kicked =
        gw.presence()
            .join(&conn.id, &conn.admitted.visitor(), remote.ip().to_string());
    let node_id =
        (conn.admitted.role == Role::Node).then(|| node_methods::attach(gw, &conn, remote));
    let mut tasks = vec![tokio::spawn(background(gw.clone(), conn.clone()))];
    if conn.admitted.role == Role::Operator && conn.receives("chat") {
        tasks.push(tokio::spawn(feed::follow(gw.clone(), conn.clone())));
    }
    let mut shutdown = gw.shutdown_signal();
    loop {
        let msg = tokio::select! {
            m = source.next() => m,
            _ = async { let _ = kicked.wait_for(|k| *k).await; } => break,
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                let _ = conn.out.send(broadcast("shutdown", json!({"reason": "gateway stopping"}))).await;
                break;
            }
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        };
        let reply = match serde_json::from_str::<Request>(&text) {
            Err(e) => Some(error(
                &Value::Null,
                INVALID_REQUEST,
                format!("invalid request frame: {e}"),
            )),
            Ok(req) if req.kind != "req" => Some(error(
                &req.id,
                INVALID_REQUEST,
                "invalid request frame: type must be \"req\"",
            )),
            Ok(req) => dispatch(gw, &conn, req, &mut tasks).await,
        };
        if let Some(reply) = reply {
            if conn.out.send(reply).await.is_err() {
                break;
            }
        }
    }
    for t in tasks {
        t.abort();
    }
    if let Some(id) = node_id {
        gw.nodes().detach(&id, &conn.id);
    }
    gw.presence().leave(&conn.id);
}

/// Ticks and presence changes for one connection.
async fn background(gw: Arc<Gateway>, conn: Arc<Conn>) {
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.tick().await;
    let mut presence = gw.presence().subscribe();
    presence.mark_unchanged();
    loop {
        let frame = tokio::select! {
            _ = tick.tick() => broadcast("tick", json!({"ts": crate::clock::now_ms()})),
            changed = presence.changed() => {
                if changed.is_err() {
                    return;
                }
                if !conn.receives("presence") {
                    continue;
                }
                let v = gw.presence().version();
                let mut f = broadcast("presence", json!({"presence": gw.presence().entries()}));
                f["stateVersion"] = json!({"presence": v, "health": 1});
                f
            }
        };
        if conn.out.send(frame).await.is_err() {
            return;
        }
    }
}

/// Check role and scope, then run the method. `None` when the method answers later on
/// its own.
async fn dispatch(
    gw: &Arc<Gateway>,
    conn: &Arc<Conn>,
    req: Request,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Option<Value> {
    let role = conn.admitted.role;
    match scopes::need_of(&req.method) {
        None if req.method == "connect" => {
            return Some(error(&req.id, INVALID_REQUEST, "already connected"))
        }
        None => {
            return Some(error(
                &req.id,
                INVALID_REQUEST,
                format!("unknown method: {}", req.method),
            ))
        }
        Some(Need::Anyone) => {}
        Some(Need::Node) if role == Role::Node => {}
        Some(Need::Operator(scope)) if role == Role::Operator => {
            if !scopes::satisfies(&conn.admitted.scopes, scope) {
                return Some(error_with(
                    &req.id,
                    FORBIDDEN,
                    format!("missing scope: {scope}"),
                    json!({"code": "MISSING_SCOPE", "missingScope": scope, "requiredScopes": [scope]}),
                ));
            }
        }
        Some(_) => {
            return Some(error(
                &req.id,
                INVALID_REQUEST,
                format!("unauthorized role: {}", role.as_str()),
            ))
        }
    }
    let m = req.method.as_str();
    Some(match m {
        "chat.send" => chat::send(gw, conn, &req).await,
        "chat.history" => chat::history(gw, &req).await,
        "chat.abort" => chat::abort(gw, conn, &req).await,
        "agent" => {
            // Answered twice (accepted, then the reply) by its own task.
            tasks.push(chat::agent(gw.clone(), conn.clone(), req));
            return None;
        }
        "sessions.list" | "sessions.patch" | "sessions.reset" | "sessions.delete" => {
            sessions::call(gw, conn, &req).await
        }
        "device.pair.list" => pairing::list(gw, &req).await,
        "device.pair.approve" => pairing::answer(gw, &req, &conn.by(), true).await,
        "device.pair.reject" => pairing::answer(gw, &req, &conn.by(), false).await,
        "device.pair.remove" | "device.token.revoke" => pairing::revoke(gw, &req, &conn.by()).await,
        "device.token.rotate" => pairing::rotate(gw, &req).await,
        "node.list" | "node.describe" => node_methods::describe(gw, &req),
        "node.invoke" => {
            // The answer waits for the node; other requests go on meanwhile.
            tasks.push(node_methods::invoke(gw.clone(), conn.clone(), req));
            return None;
        }
        "node.invoke.result" => node_methods::result(gw, conn, &req),
        "node.event" => node_methods::event(gw, conn, &req).await,
        "events.subscribe" => {
            let from = req
                .params
                .get("fromSeq")
                .and_then(Value::as_u64)
                .unwrap_or(gw.log().head() + 1);
            tasks.push(tokio::spawn(feed::log_events(
                gw.clone(),
                from,
                conn.out.clone(),
            )));
            frames::ok(&req.id, json!({"fromSeq": from}))
        }
        _ => operator::call(gw, conn, &req).await,
    })
}
