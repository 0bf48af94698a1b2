//! Nodes: devices connected on `/ws` with the `node` role that run commands for the
//! Gateway (`canvas.present`, `camera.snap`, `location.get`, `system.notify`, ...). The
//! registry knows which nodes are connected and what they declared; an invocation is
//! recorded (`NodeInvoked`), sent to the node as a `node.invoke.request` event, and its
//! answer, error or timeout recorded too (`NodeInvokeFinished`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use clawos_events::{stream, ExpectedVersion, LogStore, NewEvent, NodeInvokeFinished, NodeInvoked};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// The default time a node has to answer.
pub const DEFAULT_INVOKE_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest time a caller may give a node.
pub const MAX_INVOKE_TIMEOUT: Duration = Duration::from_secs(600);

/// What a node declared when it connected.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// Node id: its device id (or its client id without a device).
    pub node_id: String,
    /// Name to show.
    pub display_name: String,
    /// Platform.
    pub platform: String,
    /// Version.
    pub version: String,
    /// Client id.
    pub client_id: String,
    /// Client mode.
    pub client_mode: String,
    /// Device family.
    pub device_family: String,
    /// Address it connected from.
    pub remote_ip: String,
    /// Capability categories (`camera`, `canvas`, `location`, ...).
    pub caps: Vec<String>,
    /// Commands it answers.
    pub commands: Vec<String>,
    /// Permissions it reported.
    pub permissions: Value,
    /// When it connected (unix ms).
    pub connected_at_ms: i64,
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No such node is connected.
    #[error("node not connected: {0}")]
    NotConnected(String),
    /// The node did not declare the command.
    #[error("node {node} does not offer {command} (it offers: {offered})")]
    NotOffered {
        /// The node.
        node: String,
        /// The command asked for.
        command: String,
        /// What it offers.
        offered: String,
    },
    /// No answer in time.
    #[error("node {0} did not answer within {1:?}")]
    Timeout(String, Duration),
    /// The node answered with an error.
    #[error("{code}: {message}")]
    Failed {
        /// Its error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The node went away before answering.
    #[error("node {0} disconnected before answering")]
    Gone(String),
    /// The log refused the record.
    #[error("the invocation could not be recorded: {0}")]
    Log(#[from] clawos_events::LogError),
}

/// A node's answer: the result, or its error code and message.
pub type NodeAnswer = Result<Value, (String, String)>;

struct Link {
    info: NodeInfo,
    conn: String,
    out: mpsc::Sender<Value>,
}

/// The connected nodes and the invocations waiting for them.
#[derive(Default)]
pub struct Nodes {
    live: Mutex<HashMap<String, Link>>,
    waiting: Mutex<HashMap<Uuid, (String, oneshot::Sender<NodeAnswer>)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Nodes {
    /// Node `info.node_id` is connected on connection `conn`, reachable through `out` (a
    /// reconnect replaces the earlier link).
    pub fn attach(&self, info: NodeInfo, conn: &str, out: mpsc::Sender<Value>) {
        lock(&self.live).insert(
            info.node_id.clone(),
            Link {
                info,
                conn: conn.to_string(),
                out,
            },
        );
    }

    /// Connection `conn` of node `id` closed: its waiting invocations fail at once.
    pub fn detach(&self, id: &str, conn: &str) {
        let mut live = lock(&self.live);
        if live.get(id).is_some_and(|l| l.conn == conn) {
            live.remove(id);
            drop(live);
            let gone: Vec<Uuid> = lock(&self.waiting)
                .iter()
                .filter(|(_, (n, _))| n == id)
                .map(|(k, _)| *k)
                .collect();
            for k in gone {
                if let Some((_, tx)) = lock(&self.waiting).remove(&k) {
                    let _ = tx.send(Err(("NODE_GONE".into(), "disconnected".into())));
                }
            }
        }
    }

    /// The connected nodes, by id.
    pub fn list(&self) -> Vec<NodeInfo> {
        let mut v: Vec<NodeInfo> = lock(&self.live).values().map(|l| l.info.clone()).collect();
        v.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        v
    }

    /// Node `id`, if connected.
    pub fn get(&self, id: &str) -> Option<NodeInfo> {
        lock(&self.live).get(id).map(|l| l.info.clone())
    }

    /// Node `node`'s answer to invocation `id`; false when nothing waits for it (late,
    /// unknown, or from another node).
    pub fn answer(&self, node: &str, id: Uuid, answer: NodeAnswer) -> bool {
        let mut waiting = lock(&self.waiting);
        if waiting.get(&id).is_none_or(|(n, _)| n != node) {
            return false;
        }
        match waiting.remove(&id) {
            Some((_, tx)) => tx.send(answer).is_ok(),
            None => false,
        }
    }

    /// Run `command` on node `node` and wait for its answer, recording the invocation and
    /// its outcome in the `nodes` stream.
    pub async fn invoke(
        &self,
        log: &LogStore,
        node: &str,
        command: &str,
        params: Value,
        timeout: Duration,
        by: &str,
    ) -> Result<Value, NodeError> {
        let (out, info) = {
            let live = lock(&self.live);
            let link = live
                .get(node)
                .ok_or_else(|| NodeError::NotConnected(node.to_string()))?;
            (link.out.clone(), link.info.clone())
        };
        if !info.commands.iter().any(|c| c == command) {
            return Err(NodeError::NotOffered {
                node: node.to_string(),
                command: command.to_string(),
                offered: info.commands.join(", "),
            });
        }
        let timeout = timeout.min(MAX_INVOKE_TIMEOUT);
        let id = Uuid::now_v7();
        let params_json = if params.is_null() {
            Value::Null
        } else {
            Value::String(params.to_string())
        };
        log.append(
            stream::NODES,
            ExpectedVersion::Any,
            vec![NewEvent::new(NodeInvoked {
                invoke_id: id,
                node_id: node.to_string(),
                command: command.to_string(),
                params: params.to_string(),
                by: by.to_string(),
            })],
        )
        .await?;
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(id, (node.to_string(), tx));
        // An event straight to the node: no seq.
        let request = json!({"type": "event", "event": "node.invoke.request",
            "payload": {"id": id.to_string(), "nodeId": node, "command": command,
                        "paramsJSON": params_json, "timeoutMs": timeout.as_millis() as u64,
                        "idempotencyKey": id.to_string()}});
        let outcome = if out.send(request).await.is_err() {
            Err(NodeError::Gone(node.to_string()))
        } else {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(Ok(v))) => Ok(v),
                Ok(Ok(Err((code, _)))) if code == "NODE_GONE" => {
                    Err(NodeError::Gone(node.to_string()))
                }
                Ok(Ok(Err((code, message)))) => Err(NodeError::Failed { code, message }),
                Ok(Err(_)) => Err(NodeError::Gone(node.to_string())),
                Err(_) => Err(NodeError::Timeout(node.to_string(), timeout)),
            }
        };
        lock(&self.waiting).remove(&id);
        let (ok, result) = match &outcome {
            Ok(v) => (true, v.to_string()),
            Err(e) => (false, e.to_string()),
        };
        log.append(
            stream::NODES,
            ExpectedVersion::Any,
            vec![NewEvent::new(NodeInvokeFinished {
                invoke_id: id,
                ok,
                result,
            })],
        )
        .await?;
        outcome
    }
}
