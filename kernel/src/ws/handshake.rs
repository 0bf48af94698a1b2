//! The `connect` request: protocol negotiation, the client's description, authentication
//! (the shared token or a device token), the device's proof of its key, and pairing.
//! The outcome is the connection's role and scopes, or the refusal to send before closing.

use std::net::SocketAddr;

use serde_json::{json, Value};

use super::frames::{error_with, Request, CLOSE_POLICY, CLOSE_PROTOCOL, INVALID_REQUEST};
use super::pairing::{self, Pairing};
use super::scopes::Role;
use crate::devices::{self, SignedFields};
use crate::gateway::Gateway;
pub use crate::presence::ClientInfo;

/// The protocol versions this Gateway speaks (OpenClaw's v3 and v4); it answers with the
/// highest one the client offers.
pub const PROTOCOLS: [u32; 2] = [4, 3];

/// An admitted connection.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// Protocol version agreed.
    pub protocol: u32,
    /// Role.
    pub role: Role,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// The client.
    pub client: ClientInfo,
    /// The device id, when the client proved a device key.
    pub device: Option<String>,
    /// The device token to hand out in `hello-ok`, with its generation.
    pub device_token: Option<(String, u32)>,
    /// How it authenticated: `token` (the shared token) or `device-token`.
    pub auth_method: &'static str,
    /// A node's capability categories.
    pub caps: Vec<String>,
    /// A node's commands.
    pub commands: Vec<String>,
    /// A node's permissions.
    pub permissions: Value,
}

impl Admitted {
    /// The connection as presence shows it.
    pub fn visitor(&self) -> crate::presence::Visitor {
        crate::presence::Visitor {
            client: self.client.clone(),
            role: self.role.as_str(),
            scopes: self.scopes.clone(),
            device: self.device.clone(),
        }
    }
}

/// A refused connect: the response to send, then the close code and reason.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The error response.
    pub frame: Value,
    /// Close code.
    pub close: u16,
    /// Close reason.
    pub reason: String,
}

impl Refusal {
    fn new(req: &Request, code: &str, message: String, details: Value, close: u16) -> Refusal {
        Refusal {
            frame: error_with(&req.id, code, message.clone(), details),
            close,
            reason: message.chars().take(120).collect(),
        }
    }

    fn invalid(req: &Request, message: String) -> Refusal {
        Refusal::new(req, INVALID_REQUEST, message, json!({}), CLOSE_POLICY)
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The protocol to speak with a client offering `min..=max`.
pub fn negotiate(min: u64, max: u64) -> Option<u32> {
    PROTOCOLS
        .iter()
        .copied()
        .find(|p| min <= u64::from(*p) && u64::from(*p) <= max)
}

/// Check a `connect` request on a connection challenged with `nonce` from `remote`.
pub async fn connect(
    gw: &Gateway,
    req: &Request,
    nonce: &str,
    remote: SocketAddr,
) -> Result<Admitted, Refusal> {
    let p = &req.params;
    let (Some(min), Some(max)) = (
        p.get("minProtocol").and_then(Value::as_u64),
        p.get("maxProtocol").and_then(Value::as_u64),
    ) else {
        return Err(Refusal::invalid(
            req,
            "invalid connect params: minProtocol and maxProtocol are required".into(),
        ));
    };
    let Some(protocol) = negotiate(min, max) else {
        return Err(Refusal::new(
            req,
            INVALID_REQUEST,
            format!("protocol mismatch: this Gateway speaks protocol 3 and 4, the client {min} to {max}"),
            json!({"code": "PROTOCOL_MISMATCH", "clientMinProtocol": min, "clientMaxProtocol": max,
                   "expectedProtocol": 4, "minimumProbeProtocol": 3}),
            CLOSE_PROTOCOL,
        ));
    };
    let Some(c) = p.get("client").filter(|c| c.is_object()) else {
        return Err(Refusal::invalid(
            req,
            "invalid connect params: client is required".into(),
        ));
    };
    let client = ClientInfo {
        id: text(c, "id"),
        mode: text(c, "mode"),
        version: text(c, "version"),
        platform: text(c, "platform"),
        device_family: text(c, "deviceFamily"),
        display_name: text(c, "displayName"),
        instance_id: text(c, "instanceId"),
    };
    if client.id.is_empty() || client.mode.is_empty() {
        return Err(Refusal::invalid(
            req,
            "invalid connect params: client.id and client.mode are required".into(),
        ));
    }
    let role_name = p.get("role").and_then(Value::as_str).unwrap_or("operator");
    let Some(role) = Role::parse(role_name) else {
        return Err(Refusal::invalid(req, format!("invalid role: {role_name}")));
    };
    let requested = strings(p.get("scopes"));
    let auth = p.get("auth").cloned().unwrap_or(Value::Null);
    let token = text(&auth, "token");
    let device_token = text(&auth, "deviceToken");
    let shared = !token.is_empty() && gw.admits_admin(&token);

    // The device's proof of its key, if it sent one.
    let device = match p.get("device").filter(|d| d.is_object()) {
        None => None,
        Some(d) => {
            let signed_with = if !token.is_empty() {
                token.clone()
            } else if !device_token.is_empty() {
                device_token.clone()
            } else {
                text(&auth, "bootstrapToken")
            };
            let id = text(d, "id");
            let fields = SignedFields {
                device_id: &id,
                client_id: &client.id,
                client_mode: &client.mode,
                role: role_name,
                scopes: &requested,
                signed_at_ms: d.get("signedAt").and_then(Value::as_i64).unwrap_or(0),
                token: &signed_with,
                nonce: d.get("nonce").and_then(Value::as_str).unwrap_or(""),
                platform: &client.platform,
                device_family: &client.device_family,
            };
            let key = devices::verify(
                &fields,
                d.get("publicKey").and_then(Value::as_str).unwrap_or(""),
                d.get("signature").and_then(Value::as_str).unwrap_or(""),
                nonce,
                crate::clock::now_ms(),
            )
            .map_err(|e| {
                gw.metrics().auth_refused("ws");
                Refusal::new(
                    req,
                    INVALID_REQUEST,
                    e.message().into(),
                    json!({"code": e.code()}),
                    CLOSE_POLICY,
                )
            })?;
            Some((id.to_ascii_lowercase(), key))
        }
    };

    // Authentication: the shared token, or the device's token for this role.
    let presented = if device_token.is_empty() {
        token.clone()
    } else {
        device_token.clone()
    };
    // One read of the devices read model serves the token check, the setup code and the
    // pairing decision of this connect.
    let devices = match &device {
        Some(_) => Some(pairing::devices_now(gw).await.map_err(|e| {
            Refusal::new(
                req,
                super::frames::UNAVAILABLE,
                format!("the paired devices could not be read: {e}"),
                json!({}),
                CLOSE_POLICY,
            )
        })?),
        None => None,
    };
    let by_device_token = match (&device, &devices) {
        (Some((id, _)), Some(v)) if !shared && !presented.is_empty() => {
            pairing::token_scopes(gw, v, id, role, &presented)
        }
        _ => None,
    };
    // A one-time setup code (`clawos devices pair`) opens the door to pairing, once, for
    // one device, with at most read, write and approvals.
    let bootstrap = text(&auth, "bootstrapToken");
    let setup_code = match (&device, &devices) {
        (Some((id, _)), Some(v))
            if !shared && by_device_token.is_none() && !bootstrap.is_empty() =>
        {
            let hash = crate::tokens::code_hash(&bootstrap);
            v.code_opens(&hash, id, crate::clock::now_ms())
                .then_some(hash)
        }
        _ => None,
    };
    if setup_code.is_some()
        && requested.iter().any(|s| {
            ![
                super::scopes::READ,
                super::scopes::WRITE,
                super::scopes::APPROVALS,
            ]
            .contains(&s.as_str())
        })
    {
        return Err(Refusal::new(
            req,
            INVALID_REQUEST,
            "unauthorized: a setup code grants at most operator.read, operator.write and operator.approvals".into(),
            json!({"code": "AUTH_SCOPE_MISMATCH"}),
            CLOSE_POLICY,
        ));
    }
    if !shared && by_device_token.is_none() && setup_code.is_none() {
        gw.metrics().auth_refused("ws");
        let (code, message) = if !bootstrap.is_empty() {
            ("AUTH_BOOTSTRAP_TOKEN_INVALID", "unauthorized: the setup code is unknown, expired, or was used by another device (`clawos devices pair` makes a new one)")
        } else if token.is_empty() && device_token.is_empty() {
            ("AUTH_TOKEN_MISSING", "unauthorized: a token is required (auth.token: the admin token from `clawos admin token`, or a device token)")
        } else if !device_token.is_empty() {
            ("AUTH_DEVICE_TOKEN_MISMATCH", "unauthorized: device token mismatch (revoked, rotated, or for another role); connect with the shared token to pair again")
        } else {
            (
                "AUTH_TOKEN_MISMATCH",
                "unauthorized: gateway token mismatch",
            )
        };
        tracing::warn!(client = %client.id, %remote, "/ws connect refused: {message}");
        return Err(Refusal::new(
            req,
            INVALID_REQUEST,
            message.into(),
            json!({"code": code}),
            CLOSE_POLICY,
        ));
    }
    let mut admitted = Admitted {
        protocol,
        role,
        scopes: requested.clone(),
        client,
        device: None,
        device_token: None,
        auth_method: if shared {
            "token"
        } else if setup_code.is_some() {
            "bootstrap-token"
        } else {
            "device-token"
        },
        caps: strings(p.get("caps")),
        commands: strings(p.get("commands")),
        permissions: p.get("permissions").cloned().unwrap_or(json!({})),
    };
    if let Some(granted) = by_device_token {
        admitted.scopes.retain(|s| granted.contains(s));
    }
    let (Some((device_id, key)), Some(devices)) = (device, devices) else {
        // No device: only the shared token's holder, with the scopes it asks for.
        return Ok(admitted);
    };
    let asking = pairing::Asking {
        role,
        scopes: &admitted.scopes,
        client: &admitted.client,
        shared_token: shared,
        setup_code: setup_code.clone(),
    };
    match pairing::admit(gw, &devices, &asking, &device_id, &key, remote).await {
        Pairing::Paired(token) => {
            admitted.device = Some(device_id);
            admitted.device_token = token;
            Ok(admitted)
        }
        Pairing::Pending {
            request_id,
            reason,
            message,
        } => Err(Refusal::new(
            req,
            super::frames::NOT_PAIRED,
            format!("pairing required: {message}"),
            json!({"code": "PAIRING_REQUIRED", "reason": reason, "requestId": request_id,
                   "deviceId": device_id, "requestedRole": role.as_str(),
                   "requestedScopes": requested,
                   "remediationHint": "Approve this device: `clawos devices approve <requestId>`, or from the Control UI.",
                   "recommendedNextStep": "wait_then_retry", "retryable": true, "pauseReconnect": false}),
            CLOSE_POLICY,
        )),
        Pairing::Failed(e) => Err(Refusal::new(
            req,
            super::frames::UNAVAILABLE,
            format!("pairing could not be recorded: {e}"),
            json!({}),
            CLOSE_POLICY,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_common_protocol_wins() {
        assert_eq!(negotiate(3, 4), Some(4));
        assert_eq!(negotiate(4, 4), Some(4));
        assert_eq!(negotiate(3, 3), Some(3));
        assert_eq!(negotiate(1, 9), Some(4));
        assert_eq!(negotiate(1, 2), None);
        assert_eq!(negotiate(5, 6), None);
    }
}
