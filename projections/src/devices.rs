//! Devices: Control UIs, companion apps and nodes that pair with the Gateway on `/ws`.
//!
//! `DevicePairingRequested` adds a pending request (a newer request of the same device for
//! the same role replaces nothing: each has its own id). `DevicePairingResolved` removes
//! the request; when approved, the device is paired with the request's role and scopes
//! merged into what it already had. `DeviceTokenIssued` records the generation of the
//! token a paired device holds for a role (the token itself is derived, never stored).
//! `DeviceRevoked` unpairs the device and forgets its tokens and pending requests.

use std::collections::{BTreeMap, BTreeSet};

use clawos_events::{EventPayload, RecordedEvent};

use crate::changes::Changes;
use crate::fold::Projection;
use crate::value::{Row, Table};
use crate::{row, MemoryTables, ProjectionError, Value};

/// `device_requests(request_id, device_id, public_key, role, scopes, client, platform,
/// display_name, remote, requested_seq)`: requests waiting for an answer.
pub const DEVICE_REQUESTS: Table = Table {
    name: "device_requests",
    columns: &[
        "request_id",
        "device_id",
        "public_key",
        "role",
        "scopes",
        "client",
        "platform",
        "display_name",
        "remote",
        "requested_seq",
    ],
    key_len: 1,
};

/// `devices(device_id, public_key, roles, scopes, client, platform, display_name,
/// paired_seq)`: paired devices; `roles` and `scopes` are sorted, comma-separated.
pub const DEVICES: Table = Table {
    name: "devices",
    columns: &[
        "device_id",
        "public_key",
        "roles",
        "scopes",
        "client",
        "platform",
        "display_name",
        "paired_seq",
    ],
    key_len: 1,
};

/// `device_tokens(device_id, role, scopes, generation, issued_seq)`: the live token
/// generation of each paired device and role.
pub const DEVICE_TOKENS: Table = Table {
    name: "device_tokens",
    columns: &["device_id", "role", "scopes", "generation", "issued_seq"],
    key_len: 2,
};

/// `device_setup_codes(code_hash, expires_at_ms, issued_seq, device_id)`: one-time codes;
/// `device_id` is the device that used it (NULL while unused).
pub const DEVICE_SETUP_CODES: Table = Table {
    name: "device_setup_codes",
    columns: &["code_hash", "expires_at_ms", "issued_seq", "device_id"],
    key_len: 1,
};

/// The devices projection; its state is exactly its four tables.
#[derive(Default)]
pub struct Devices {
    requests: BTreeMap<String, Row>,
    devices: BTreeMap<String, Row>,
    tokens: BTreeMap<(String, String), Row>,
    codes: BTreeMap<String, Row>,
}

/// A comma-separated list of the union of `a` (already comma-separated) and `b`.
fn merged(a: &str, b: &[String]) -> String {
    let set: BTreeSet<&str> = a
        .split(',')
        .filter(|s| !s.is_empty())
        .chain(b.iter().map(String::as_str))
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn cell(r: &Row, i: usize) -> String {
    match r.get(i) {
        Some(Value::Text(s)) => s.clone(),
        _ => String::new(),
    }
}

impl Devices {
    fn approve(&mut self, event: &RecordedEvent, request: &Row, out: &mut Changes) {
        let device = cell(request, 1);
        let scopes: Vec<String> = cell(request, 4).split(',').map(String::from).collect();
        let role = vec![cell(request, 3)];
        let (roles, scopes, paired_seq) = match self.devices.get(&device) {
            Some(old) => (
                merged(&cell(old, 2), &role),
                merged(&cell(old, 3), &scopes),
                old.get(7).cloned().unwrap_or(Value::Null),
            ),
            None => (
                merged("", &role),
                merged("", &scopes),
                Value::from(event.seq),
            ),
        };
        let row = vec![
            device.clone().into(),
            cell(request, 2).into(),
            roles.into(),
            scopes.into(),
            cell(request, 5).into(),
            cell(request, 6).into(),
            cell(request, 7).into(),
            paired_seq,
        ];
        out.upsert(&DEVICES, row.clone());
        self.devices.insert(device, row);
    }

    fn revoke(&mut self, device: &str, out: &mut Changes) {
        if self.devices.remove(device).is_some() {
            out.delete(&DEVICES, row![device]);
        }
        let roles: Vec<(String, String)> = self
            .tokens
            .keys()
            .filter(|(d, _)| d == device)
            .cloned()
            .collect();
        for key in roles {
            out.delete(&DEVICE_TOKENS, row![&key.0, &key.1]);
            self.tokens.remove(&key);
        }
        let requests: Vec<String> = self
            .requests
            .iter()
            .filter(|(_, r)| cell(r, 1) == device)
            .map(|(id, _)| id.clone())
            .collect();
        for id in requests {
            out.delete(&DEVICE_REQUESTS, row![&id]);
            self.requests.remove(&id);
        }
    }
}

impl Projection for Devices {
    fn name(&self) -> &'static str {
        "devices"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[
            &DEVICE_REQUESTS,
            &DEVICES,
            &DEVICE_TOKENS,
            &DEVICE_SETUP_CODES,
        ]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(
            kind,
            "DevicePairingRequested"
                | "DevicePairingResolved"
                | "DeviceTokenIssued"
                | "DeviceRevoked"
                | "DeviceSetupCodeIssued"
                | "DeviceSetupCodeUsed"
        )
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        match payload {
            EventPayload::DevicePairingRequested(r) => {
                let id = r.request_id.to_string();
                if self.requests.contains_key(&id) {
                    return;
                }
                let row = row![
                    &id,
                    &r.device_id,
                    &r.public_key,
                    &r.role,
                    r.scopes.join(","),
                    &r.client,
                    &r.platform,
                    &r.display_name,
                    &r.remote,
                    event.seq
                ];
                out.upsert(&DEVICE_REQUESTS, row.clone());
                self.requests.insert(id, row);
            }
            EventPayload::DevicePairingResolved(r) => {
                let id = r.request_id.to_string();
                // The first answer is the only one.
                let Some(request) = self.requests.remove(&id) else {
                    return;
                };
                out.delete(&DEVICE_REQUESTS, row![&id]);
                if r.approved {
                    self.approve(event, &request, out);
                }
            }
            EventPayload::DeviceTokenIssued(t) => {
                if !self.devices.contains_key(&t.device_id) {
                    return;
                }
                let key = (t.device_id.clone(), t.role.clone());
                let row = row![
                    &t.device_id,
                    &t.role,
                    t.scopes.join(","),
                    i64::from(t.generation),
                    event.seq
                ];
                out.upsert(&DEVICE_TOKENS, row.clone());
                self.tokens.insert(key, row);
            }
            EventPayload::DeviceRevoked(r) => self.revoke(&r.device_id, out),
            EventPayload::DeviceSetupCodeIssued(c) => {
                if self.codes.contains_key(&c.code_hash) {
                    return;
                }
                let row = row![
                    &c.code_hash,
                    c.expires_at_ms,
                    event.seq,
                    Option::<String>::None
                ];
                out.upsert(&DEVICE_SETUP_CODES, row.clone());
                self.codes.insert(c.code_hash.clone(), row);
            }
            // The first device to use a code keeps it.
            EventPayload::DeviceSetupCodeUsed(u) => {
                let Some(old) = self.codes.get(&u.code_hash) else {
                    return;
                };
                if old.get(3) != Some(&Value::Null) {
                    return;
                }
                let mut row = old.clone();
                row[3] = Value::from(&u.device_id);
                out.upsert(&DEVICE_SETUP_CODES, row.clone());
                self.codes.insert(u.code_hash.clone(), row);
            }
            _ => {}
        }
    }
    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }
    fn load_state(&mut self, _: &[u8]) -> Result<(), ProjectionError> {
        *self = Devices::default();
        Ok(())
    }
    fn state_tables(&self) -> &'static [&'static Table] {
        &[
            &DEVICE_REQUESTS,
            &DEVICES,
            &DEVICE_TOKENS,
            &DEVICE_SETUP_CODES,
        ]
    }
    fn restore(&mut self, rows: &MemoryTables) -> Result<(), ProjectionError> {
        *self = Devices::default();
        for r in rows.rows(DEVICE_REQUESTS.name) {
            self.requests.insert(cell(&r, 0), r);
        }
        for r in rows.rows(DEVICES.name) {
            self.devices.insert(cell(&r, 0), r);
        }
        for r in rows.rows(DEVICE_TOKENS.name) {
            self.tokens.insert((cell(&r, 0), cell(&r, 1)), r);
        }
        for r in rows.rows(DEVICE_SETUP_CODES.name) {
            self.codes.insert(cell(&r, 0), r);
        }
        Ok(())
    }
}
