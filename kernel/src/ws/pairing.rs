//! Device pairing on `/ws`: whether a device that proved its key may connect with the role
//! and scopes it asks for, the request it leaves when not, and the operator methods that
//! answer requests and rotate or revoke tokens. Every change is an event in the `devices`
//! stream; the `devices` read model answers every question.

use std::net::SocketAddr;

use clawos_events::{
    stream, DevicePairingRequested, DevicePairingResolved, DeviceRevoked, DeviceSetupCodeUsed,
    DeviceTokenIssued, ExpectedVersion, NewEvent,
};
use clawos_projections::views::{self, DevicesView};
use serde_json::{json, Value};
use uuid::Uuid;

use super::frames::{error, ok, Request, INVALID_REQUEST, UNAVAILABLE};
use super::scopes::Role;
use crate::gateway::Gateway;
use crate::KernelError;

/// The outcome of a device's connect.
pub enum Pairing {
    /// Paired for this role and these scopes; its token (and generation) for `hello-ok`.
    Paired(Option<(String, u32)>),
    /// Waiting for a person: the request id, the reason code and the words for it.
    Pending {
        /// Request id.
        request_id: String,
        /// `not-paired`, `role-upgrade` or `scope-upgrade`.
        reason: &'static str,
        /// What is missing, in words.
        message: &'static str,
    },
    /// The log refused the write.
    Failed(KernelError),
}

/// The devices read model with every event in the file folded in, including what
/// `clawos devices` appended from another process.
pub async fn devices_now(gw: &Gateway) -> Result<DevicesView, KernelError> {
    gw.projected_through(gw.log().last_seq().await?).await;
    Ok(views::devices(gw.read_models()).await?)
}

async fn append(gw: &Gateway, events: Vec<NewEvent>) -> Result<u64, KernelError> {
    let a = gw
        .log()
        .append(stream::DEVICES, ExpectedVersion::Any, events)
        .await?;
    gw.projected_through(a.last_seq).await;
    Ok(a.last_seq)
}

/// What a device that proved its key asks for.
pub struct Asking<'a> {
    /// Role.
    pub role: Role,
    /// Scopes.
    pub scopes: &'a [String],
    /// The client it announced.
    pub client: &'a crate::presence::ClientInfo,
    /// Whether it holds the shared (admin) token.
    pub shared_token: bool,
    /// The hash of the live setup code it presented, if any.
    pub setup_code: Option<String>,
}

/// The scopes the device token `presented` grants `device` as `role` in the devices
/// read model `v`, if it is live.
pub fn token_scopes(
    gw: &Gateway,
    v: &DevicesView,
    device: &str,
    role: Role,
    presented: &str,
) -> Option<Vec<String>> {
    let t = v.token(device, role.as_str())?;
    gw.token_mint()
        .opens(presented, device, role.as_str(), t.generation)
        .then(|| t.scopes.clone())
}

/// Whether `device` may connect as `a.role` with `a.scopes`: yes when paired for them
/// (issuing its first token for the role if needed); yes after recording an automatic
/// approval for a loopback client holding the shared token (when the configuration
/// allows); otherwise a pending request.
pub async fn admit(
    gw: &Gateway,
    v: &DevicesView,
    a: &Asking<'_>,
    device: &str,
    key: &[u8; 32],
    remote: SocketAddr,
) -> Pairing {
    match admit_inner(gw, v, a, device, key, remote).await {
        Ok(p) => p,
        Err(e) => Pairing::Failed(e),
    }
}

async fn admit_inner(
    gw: &Gateway,
    v: &DevicesView,
    a: &Asking<'_>,
    device: &str,
    key: &[u8; 32],
    remote: SocketAddr,
) -> Result<Pairing, KernelError> {
    let role = a.role.as_str();
    let paired = v.device(device);
    let missing = match paired {
        None => Some(("not-paired", "device is not approved yet")),
        Some(d) if !d.roles.iter().any(|r| r == role) => Some((
            "role-upgrade",
            "device is asking for a role it was not approved for",
        )),
        Some(d) if a.scopes.iter().any(|s| !d.scopes.contains(s)) => Some((
            "scope-upgrade",
            "device is asking for more scopes than approved",
        )),
        Some(_) => None,
    };
    let Some((reason, message)) = missing else {
        return Ok(Pairing::Paired(Some(issue(gw, v, device, a).await?)));
    };
    let automatic = pairs_automatically(
        a.setup_code.is_some(),
        a.shared_token,
        remote.ip(),
        gw.config().gateway.pair_loopback_devices,
    );
    // A request already waiting for the same device, role and scopes is reused.
    let waiting = v
        .requests
        .iter()
        .find(|r| r.device_id == device && r.role == role && r.scopes.as_slice() == a.scopes);
    let request_id = match (waiting, automatic) {
        (Some(r), false) => return Ok(pending(r.request_id.clone(), reason, message)),
        (Some(r), true) => r.request_id.parse().unwrap_or_else(|_| Uuid::now_v7()),
        (None, _) => Uuid::now_v7(),
    };
    let mut events = Vec::new();
    if waiting.is_none() {
        events.push(NewEvent::new(DevicePairingRequested {
            request_id,
            device_id: device.to_string(),
            public_key: crate::devices::public_key_wire(key),
            role: role.to_string(),
            scopes: a.scopes.to_vec(),
            client: format!("{}/{}", a.client.id, a.client.mode),
            platform: a.client.platform.clone(),
            display_name: display_name(a),
            remote: remote.ip().to_string(),
        }));
    }
    if !automatic {
        append(gw, events).await?;
        tracing::info!(%device, %role, %request_id, "device waits for pairing: clawos devices approve {request_id}");
        return Ok(pending(request_id.to_string(), reason, message));
    }
    let by = match &a.setup_code {
        Some(hash) => {
            if !v
                .setup_codes
                .iter()
                .any(|c| &c.code_hash == hash && c.device_id.is_some())
            {
                events.push(NewEvent::new(DeviceSetupCodeUsed {
                    code_hash: hash.clone(),
                    device_id: device.to_string(),
                }));
            }
            "setup-code"
        }
        None => "loopback",
    };
    events.push(NewEvent::new(DevicePairingResolved {
        request_id,
        device_id: device.to_string(),
        approved: true,
        by: by.into(),
    }));
    append(gw, events).await?;
    let v = devices_now(gw).await?;
    Ok(Pairing::Paired(Some(issue(gw, &v, device, a).await?)))
}

/// Whether a device is paired without asking: a setup code is a person's approval given
/// in advance; the loopback rule (when on) trusts whoever holds the admin token on this
/// host. An IPv4 address mapped into IPv6 counts as what it maps.
pub fn pairs_automatically(
    setup_code: bool,
    shared_token: bool,
    remote: std::net::IpAddr,
    loopback_rule: bool,
) -> bool {
    setup_code || (shared_token && loopback_rule && remote.to_canonical().is_loopback())
}

fn pending(request_id: String, reason: &'static str, message: &'static str) -> Pairing {
    Pairing::Pending {
        request_id,
        reason,
        message,
    }
}

fn display_name(a: &Asking<'_>) -> String {
    if a.client.display_name.is_empty() {
        format!("{} on {}", a.client.id, a.client.platform)
    } else {
        a.client.display_name.clone()
    }
}

/// The device's token for its role: the live one, or the first one (recorded now).
async fn issue(
    gw: &Gateway,
    v: &DevicesView,
    device: &str,
    a: &Asking<'_>,
) -> Result<(String, u32), KernelError> {
    let role = a.role.as_str();
    let generation = match v.token(device, role) {
        Some(t) => t.generation,
        None => {
            let granted = v
                .device(device)
                .map(|d| d.scopes.clone())
                .unwrap_or_default();
            append(
                gw,
                vec![NewEvent::new(DeviceTokenIssued {
                    device_id: device.to_string(),
                    role: role.to_string(),
                    scopes: granted,
                    generation: 1,
                })],
            )
            .await?;
            1
        }
    };
    Ok((gw.token_mint().token(device, role, generation), generation))
}

/// Close the connections of devices whose pairing is revoked or whose token is rotated,
/// whoever recorded it (a `/ws` operator or `clawos devices`), until the Gateway stops.
pub async fn close_revoked(gw: std::sync::Arc<Gateway>) {
    let mut sub = gw.log().subscribe(gw.log().head() + 1);
    let mut stop = gw.shutdown_signal();
    loop {
        let e = tokio::select! {
            e = sub.next() => e,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok(e) = e else { return };
        match e.decode() {
            Ok(clawos_events::EventPayload::DeviceRevoked(r)) => {
                gw.presence().disconnect_device(&r.device_id)
            }
            Ok(clawos_events::EventPayload::DeviceTokenIssued(t)) if t.generation > 1 => {
                gw.presence().disconnect_device(&t.device_id)
            }
            _ => {}
        }
    }
}

/// `device.pair.list`.
pub async fn list(gw: &Gateway, req: &Request) -> Value {
    match devices_now(gw).await {
        Ok(v) => {
            let pending: Vec<Value> = v
                .requests
                .iter()
                .map(|r| {
                    json!({"requestId": r.request_id, "deviceId": r.device_id,
                           "publicKey": r.public_key, "displayName": r.display_name,
                           "platform": r.platform, "clientId": r.client, "role": r.role,
                           "scopes": r.scopes, "remoteIp": r.remote,
                           "ts": r.requested_seq})
                })
                .collect();
            let paired: Vec<Value> = v
                .devices
                .iter()
                .map(|d| {
                    json!({"deviceId": d.device_id, "displayName": d.display_name,
                           "platform": d.platform, "clientId": d.client, "roles": d.roles,
                           "scopes": d.scopes, "connected": gw.presence().has_device(&d.device_id)})
                })
                .collect();
            ok(&req.id, json!({"pending": pending, "paired": paired}))
        }
        Err(e) => error(&req.id, UNAVAILABLE, e.to_string()),
    }
}

/// `device.pair.approve` / `device.pair.reject`.
pub async fn answer(gw: &Gateway, req: &Request, by: &str, approved: bool) -> Value {
    let id = match req.required("requestId") {
        Ok(id) => id,
        Err(e) => return e,
    };
    let v = match devices_now(gw).await {
        Ok(v) => v,
        Err(e) => return error(&req.id, UNAVAILABLE, e.to_string()),
    };
    let Some(r) = v.requests.iter().find(|r| r.request_id == id) else {
        return error(&req.id, INVALID_REQUEST, "unknown requestId");
    };
    let Ok(request_id) = r.request_id.parse::<Uuid>() else {
        return error(&req.id, INVALID_REQUEST, "unknown requestId");
    };
    let resolved = NewEvent::new(DevicePairingResolved {
        request_id,
        device_id: r.device_id.clone(),
        approved,
        by: by.to_string(),
    });
    match append(gw, vec![resolved]).await {
        Ok(_) => ok(
            &req.id,
            json!({"requestId": id, "deviceId": r.device_id,
                   "decision": if approved { "approved" } else { "rejected" }}),
        ),
        Err(e) => error(&req.id, UNAVAILABLE, e.to_string()),
    }
}

/// `device.pair.remove` and `device.token.revoke`: the device must pair again.
pub async fn revoke(gw: &Gateway, req: &Request, by: &str) -> Value {
    let device = match req.required("deviceId") {
        Ok(d) => d.to_string(),
        Err(e) => return e,
    };
    match devices_now(gw).await {
        Ok(v) if v.device(&device).is_none() => {
            return error(&req.id, INVALID_REQUEST, "unknown deviceId")
        }
        Err(e) => return error(&req.id, UNAVAILABLE, e.to_string()),
        Ok(_) => {}
    }
    let revoked = NewEvent::new(DeviceRevoked {
        device_id: device.clone(),
        by: by.to_string(),
    });
    match append(gw, vec![revoked]).await {
        // Its connections close when the revocation comes back from the log.
        Ok(_) => ok(
            &req.id,
            json!({"deviceId": device, "revokedAtMs": crate::clock::now_ms()}),
        ),
        Err(e) => error(&req.id, UNAVAILABLE, e.to_string()),
    }
}

/// `device.token.rotate`: the next generation; the old token stops working and the
/// device's connections with that role are closed.
pub async fn rotate(gw: &Gateway, req: &Request) -> Value {
    let (device, role) = match (req.required("deviceId"), req.required("role")) {
        (Ok(d), Ok(r)) => (d.to_string(), r.to_string()),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let v = match devices_now(gw).await {
        Ok(v) => v,
        Err(e) => return error(&req.id, UNAVAILABLE, e.to_string()),
    };
    let Some(t) = v.token(&device, &role) else {
        return error(
            &req.id,
            INVALID_REQUEST,
            "no token for that deviceId and role",
        );
    };
    let generation = t.generation + 1;
    let issued = NewEvent::new(DeviceTokenIssued {
        device_id: device.clone(),
        role: role.clone(),
        scopes: t.scopes.clone(),
        generation,
    });
    match append(gw, vec![issued]).await {
        Ok(_) => ok(
            &req.id,
            json!({"deviceId": device, "role": role, "scopes": t.scopes,
                   "token": gw.token_mint().token(&device, &role, generation),
                   "rotatedAtMs": crate::clock::now_ms(), "tokenDelivery": "in-band"}),
        ),
        Err(e) => error(&req.id, UNAVAILABLE, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::pairs_automatically;
    use std::net::IpAddr;

    #[test]
    fn only_a_setup_code_or_the_admin_token_on_loopback_pairs_without_asking() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(pairs_automatically(false, true, ip("127.0.0.1"), true));
        assert!(pairs_automatically(false, true, ip("::1"), true));
        assert!(pairs_automatically(
            false,
            true,
            ip("::ffff:127.0.0.1"),
            true
        ));
        // From the LAN, the admin token alone does not pair a device.
        assert!(!pairs_automatically(false, true, ip("192.0.2.7"), true));
        assert!(!pairs_automatically(
            false,
            true,
            ip("::ffff:192.0.2.7"),
            true
        ));
        assert!(!pairs_automatically(false, true, ip("fd00::2"), true));
        // The rule can be turned off; no token, no rule.
        assert!(!pairs_automatically(false, true, ip("127.0.0.1"), false));
        assert!(!pairs_automatically(false, false, ip("127.0.0.1"), true));
        // A setup code pairs from anywhere.
        assert!(pairs_automatically(true, false, ip("192.0.2.7"), false));
    }
}
