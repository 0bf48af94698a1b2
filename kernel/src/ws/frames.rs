//! Frames of the `/ws` protocol (OpenClaw's Gateway protocol): requests, responses,
//! events, and the errors every method answers with.

use serde::Deserialize;
use serde_json::{json, Value};

/// `INVALID_REQUEST`: a malformed frame, bad params, an unknown method, a wrong role.
pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
/// `FORBIDDEN`: a scope the connection does not hold.
pub const FORBIDDEN: &str = "FORBIDDEN";
/// `NOT_PAIRED`: the device must be approved first.
pub const NOT_PAIRED: &str = "NOT_PAIRED";
/// `UNAVAILABLE`: the Gateway could not do it now (a read model, a node, the log).
pub const UNAVAILABLE: &str = "UNAVAILABLE";
/// `APPROVAL_NOT_FOUND`: no approval with that id waits.
pub const APPROVAL_NOT_FOUND: &str = "APPROVAL_NOT_FOUND";

/// Close code for a policy failure (bad handshake, refused auth, pairing required).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code for a protocol version mismatch.
pub const CLOSE_PROTOCOL: u16 = 1002;
/// Close code when the Gateway stops.
pub const CLOSE_RESTART: u16 = 1012;

/// A client's request.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// Must be `req`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its id, echoed in the response (a string in OpenClaw's clients; any JSON here).
    pub id: Value,
    /// Method name.
    pub method: String,
    /// Parameters.
    #[serde(default)]
    pub params: Value,
}

impl Request {
    /// A string parameter, trimmed, if present and not empty.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// A required string parameter, or the error answering its absence.
    pub fn required(&self, name: &str) -> Result<&str, Value> {
        self.str(name).ok_or_else(|| {
            error(
                &self.id,
                INVALID_REQUEST,
                format!("invalid {} params: {name} is required", self.method),
            )
        })
    }
}

/// A successful response.
pub fn ok(id: &Value, payload: Value) -> Value {
    json!({"type": "res", "id": id, "ok": true, "payload": payload})
}

/// A failed response.
pub fn error(id: &Value, code: &str, message: impl Into<String>) -> Value {
    json!({"type": "res", "id": id, "ok": false, "error": {"code": code, "message": message.into()}})
}

/// A failed response with `details`.
pub fn error_with(id: &Value, code: &str, message: impl Into<String>, details: Value) -> Value {
    json!({"type": "res", "id": id, "ok": false,
           "error": {"code": code, "message": message.into(), "details": details}})
}

/// An event sent to one connection (no seq: the challenge, node requests).
pub fn direct_event(event: &str, payload: Value) -> Value {
    json!({"type": "event", "event": event, "payload": payload})
}
