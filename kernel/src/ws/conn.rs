//! A live `/ws` connection as the methods see it, the events it may receive, and the
//! limits every connection shares.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::handshake::Admitted;
use super::scopes::{self, Role};

/// The channel name under which `/ws` chat messages are recorded.
pub const WS_CHANNEL: &str = crate::gateway::operator::OPERATOR_CHANNEL;
/// Largest text frame accepted after `hello-ok`.
pub const MAX_WS_FRAME: usize = 25 << 20;
/// How often every connection gets a `tick`.
pub const TICK_INTERVAL: Duration = Duration::from_secs(30);

/// An outgoing frame: a response or direct event as is, or a broadcast event that gets
/// the connection's next seq when written.
pub fn broadcast(event: &str, payload: Value) -> Value {
    json!({"type": "event", "event": event, "payload": payload, "seq": Value::Null})
}

/// One live connection after `hello-ok`.
pub struct Conn {
    /// Connection id.
    pub id: String,
    /// What the handshake admitted.
    pub admitted: Admitted,
    /// Frames to the client.
    pub out: mpsc::Sender<Value>,
}

impl Conn {
    /// Whether the connection may receive `event`.
    pub fn receives(&self, event: &str) -> bool {
        match scopes::event_scope(event) {
            None => true,
            Some(scope) => {
                self.admitted.role == Role::Operator
                    && scopes::satisfies(&self.admitted.scopes, scope)
            }
        }
    }

    /// Who this connection is, for the log (`device:<id>` or `token:<client id>`).
    pub fn by(&self) -> String {
        match &self.admitted.device {
            Some(d) => format!("device:{d}"),
            None => format!("token:{}", self.admitted.client.id),
        }
    }
}
