//! `hello-ok`: what a client learns when it is admitted. Every field OpenClaw's schema
//! requires is present, and a v3 client gets only the v3 fields (its schema is closed).

use serde_json::{json, Value};

use super::conn::{Conn, MAX_WS_FRAME, TICK_INTERVAL};
use super::frames::{ok, Request};
use super::scopes::{EVENTS, METHODS};
use crate::gateway::Gateway;

/// Largest amount of data queued for a slow client.
const MAX_BUFFERED: usize = 2 * MAX_WS_FRAME;

/// The `hello-ok` response to `req` for an admitted connection.
pub async fn hello_ok(gw: &Gateway, req: &Request, conn: &Conn) -> Value {
    let a = &conn.admitted;
    let default_agent = &gw.config().gateway.default_agent;
    let mut auth = json!({"role": a.role.as_str(), "scopes": a.scopes});
    if let Some((token, _)) = &a.device_token {
        auth["deviceToken"] = json!(token);
        auth["issuedAtMs"] = json!(crate::clock::now_ms());
    }
    let mut features = json!({
        "methods": METHODS.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
        "events": EVENTS,
    });
    if a.protocol >= 4 {
        auth["method"] = json!(a.auth_method);
        features["capabilities"] = json!([]);
    }
    let presence = gw.presence().version();
    let payload = json!({
        "type": "hello-ok",
        "protocol": a.protocol,
        "server": {"version": env!("CARGO_PKG_VERSION"), "connId": conn.id},
        "features": features,
        "snapshot": {
            "presence": gw.presence().entries(),
            "health": {"ok": true, "ts": crate::clock::now_ms()},
            "stateVersion": {"presence": presence, "health": 1},
            "uptimeMs": gw.uptime().as_millis() as u64,
            "stateDir": gw.home().dir().display().to_string(),
            "sessionDefaults": {
                "defaultAgentId": default_agent,
                "mainKey": crate::session_keys::MAIN,
                "mainSessionKey": crate::session_keys::key_of(default_agent, crate::session_keys::MAIN),
                "scope": "per-sender"
            },
            "authMode": "token"
        },
        "auth": auth,
        "policy": {
            "maxPayload": MAX_WS_FRAME,
            "maxBufferedBytes": MAX_BUFFERED,
            "tickIntervalMs": TICK_INTERVAL.as_millis() as u64
        }
    });
    ok(&req.id, payload)
}
