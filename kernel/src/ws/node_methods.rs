//! `node.list`, `node.describe`, `node.invoke` (operators), `node.invoke.result` and
//! `node.event` (nodes). The registry and the recording are [`crate::nodes`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use super::conn::Conn;
use super::frames::{error, error_with, ok, Request, INVALID_REQUEST, UNAVAILABLE};
use crate::gateway::Gateway;
use crate::nodes::{NodeError, NodeInfo, DEFAULT_INVOKE_TIMEOUT};

/// Register a node connection; returns its node id (its device id, else its client id).
pub fn attach(gw: &Gateway, conn: &Conn, remote: SocketAddr) -> String {
    let a = &conn.admitted;
    let id = node_id(conn);
    let info = NodeInfo {
        node_id: id.clone(),
        display_name: if a.client.display_name.is_empty() {
            a.client.id.clone()
        } else {
            a.client.display_name.clone()
        },
        platform: a.client.platform.clone(),
        version: a.client.version.clone(),
        client_id: a.client.id.clone(),
        client_mode: a.client.mode.clone(),
        device_family: a.client.device_family.clone(),
        remote_ip: remote.ip().to_string(),
        caps: a.caps.clone(),
        commands: a.commands.clone(),
        permissions: a.permissions.clone(),
        connected_at_ms: crate::clock::now_ms(),
    };
    tracing::info!(node = %id, commands = ?a.commands, "node connected");
    gw.nodes().attach(info, &conn.id, conn.out.clone());
    id
}

fn known(n: &NodeInfo) -> Value {
    let mut v = serde_json::to_value(n).unwrap_or(json!({}));
    v["paired"] = json!(true);
    v["connected"] = json!(true);
    v["approvalState"] = json!("approved");
    v
}

/// `node.list` and `node.describe {nodeId}`.
pub fn describe(gw: &Gateway, req: &Request) -> Value {
    let ts = crate::clock::now_ms();
    if req.method == "node.list" {
        let nodes: Vec<Value> = gw.nodes().list().iter().map(known).collect();
        return ok(&req.id, json!({"ts": ts, "nodes": nodes}));
    }
    let id = match req.required("nodeId") {
        Ok(id) => id,
        Err(e) => return e,
    };
    match gw.nodes().get(id) {
        Some(n) => {
            let mut v = known(&n);
            v["ts"] = json!(ts);
            ok(&req.id, v)
        }
        None => error(&req.id, INVALID_REQUEST, "unknown nodeId"),
    }
}

/// `node.invoke {nodeId, command, params?, timeoutMs?}`: answered when the node answers,
/// fails, goes away, or the time is up; other requests are served meanwhile.
pub fn invoke(gw: Arc<Gateway>, conn: Arc<Conn>, req: Request) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let reply = invoke_now(&gw, &conn, &req).await;
        let _ = conn.out.send(reply).await;
    })
}

async fn invoke_now(gw: &Gateway, conn: &Conn, req: &Request) -> Value {
    let (node, command) = match (req.required("nodeId"), req.required("command")) {
        (Ok(n), Ok(c)) => (n.to_string(), c.to_string()),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let timeout = req
        .params
        .get("timeoutMs")
        .and_then(Value::as_u64)
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_INVOKE_TIMEOUT);
    let params = req.params.get("params").cloned().unwrap_or(Value::Null);
    match gw
        .nodes()
        .invoke(gw.log(), &node, &command, params, timeout, &conn.by())
        .await
    {
        Ok(payload) => ok(
            &req.id,
            json!({"ok": true, "nodeId": node, "command": command,
                   "payloadJSON": payload.to_string(), "payload": payload}),
        ),
        Err(NodeError::NotOffered { .. }) | Err(NodeError::NotConnected(_))
            if gw.nodes().get(&node).is_none() =>
        {
            error(&req.id, UNAVAILABLE, "node not connected")
        }
        Err(e @ NodeError::NotOffered { .. }) => error(&req.id, INVALID_REQUEST, e.to_string()),
        Err(NodeError::Failed { code, message }) => error_with(
            &req.id,
            UNAVAILABLE,
            format!("{code}: {message}"),
            json!({"nodeError": {"code": code, "message": message}, "nodeCommandDispatched": true}),
        ),
        Err(e) => error(&req.id, UNAVAILABLE, e.to_string()),
    }
}

/// `node.invoke.result {id, nodeId, ok, payload?|payloadJSON?, error?}` from a node.
pub fn result(gw: &Gateway, conn: &Conn, req: &Request) -> Value {
    let node = match req.required("nodeId") {
        Ok(n) => n.to_string(),
        Err(e) => return e,
    };
    if node != node_id(conn) {
        return error(&req.id, INVALID_REQUEST, "nodeId mismatch");
    }
    let Some(id) = req.str("id").and_then(|i| i.parse::<Uuid>().ok()) else {
        return ok(&req.id, json!({"ok": true, "ignored": true}));
    };
    let p = &req.params;
    let answer = if p.get("ok").and_then(Value::as_bool).unwrap_or(false) {
        let payload = match p.get("payloadJSON").and_then(Value::as_str) {
            Some(s) => serde_json::from_str(s).unwrap_or_else(|_| json!(s)),
            None => p.get("payload").cloned().unwrap_or(Value::Null),
        };
        Ok(payload)
    } else {
        let e = p.get("error").cloned().unwrap_or(Value::Null);
        Err((
            e.get("code")
                .and_then(Value::as_str)
                .unwrap_or("NODE_ERROR")
                .to_string(),
            e.get("message")
                .and_then(Value::as_str)
                .unwrap_or("the node reported an error")
                .to_string(),
        ))
    };
    if gw.nodes().answer(&node, id, answer) {
        ok(&req.id, json!({"ok": true}))
    } else {
        ok(&req.id, json!({"ok": true, "ignored": true}))
    }
}

/// The node id of a node connection: its device id, else its instance or client id.
fn node_id(conn: &Conn) -> String {
    let a = &conn.admitted;
    a.device.clone().unwrap_or_else(|| {
        if a.client.instance_id.is_empty() {
            a.client.id.clone()
        } else {
            a.client.instance_id.clone()
        }
    })
}

/// `node.event {event, payload?|payloadJSON?}`: recorded (`NodeEventReported`), and from
/// the log sent to operators as `node.event`.
pub async fn event(gw: &Gateway, conn: &Conn, req: &Request) -> Value {
    let event = match req.required("event") {
        Ok(e) => e.to_string(),
        Err(e) => return e,
    };
    let payload = match req.params.get("payloadJSON").and_then(Value::as_str) {
        Some(s) => serde_json::from_str(s).unwrap_or_else(|_| json!(s)),
        None => req.params.get("payload").cloned().unwrap_or(Value::Null),
    };
    let reported = clawos_events::NewEvent::new(clawos_events::NodeEventReported {
        node_id: node_id(conn),
        event: event.clone(),
        payload: payload.to_string(),
    });
    match gw
        .log()
        .append(
            clawos_events::stream::NODES,
            clawos_events::ExpectedVersion::Any,
            vec![reported],
        )
        .await
    {
        Ok(_) => ok(
            &req.id,
            json!({"ok": true, "event": event, "handled": true}),
        ),
        Err(e) => error(&req.id, UNAVAILABLE, e.to_string()),
    }
}
