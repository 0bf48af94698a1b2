//! Who is connected on `/ws`: one entry per connection (OpenClaw's `system-presence`), a
//! version that moves on every change (the `presence` event), and a way to close a
//! device's connections when its pairing is revoked or its token rotated.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Value};
use tokio::sync::watch;

/// What a client said about itself in `connect.client`.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// Client id (`cli`, `openclaw-control-ui`, `openclaw-ios`, `node-host`, ...).
    pub id: String,
    /// Mode (`cli`, `ui`, `webchat`, `backend`, `node`, `probe`, ...).
    pub mode: String,
    /// Version.
    pub version: String,
    /// Platform.
    pub platform: String,
    /// Device family (`iPhone`, `Linux`, ...), may be empty.
    pub device_family: String,
    /// Name to show, may be empty.
    pub display_name: String,
    /// Instance id, may be empty.
    pub instance_id: String,
}

/// A connection as presence shows it.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The client.
    pub client: ClientInfo,
    /// Role (`operator` or `node`).
    pub role: &'static str,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Device id, if it proved one.
    pub device: Option<String>,
}

struct Entry {
    admitted: Visitor,
    remote: String,
    since_ms: i64,
    kick: watch::Sender<bool>,
}

/// The live `/ws` connections.
pub struct Presence {
    entries: Mutex<HashMap<String, Entry>>,
    version: watch::Sender<u64>,
}

impl Default for Presence {
    fn default() -> Self {
        Presence {
            entries: Mutex::new(HashMap::new()),
            version: watch::channel(0).0,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Presence {
    /// Record connection `conn` as present; the receiver turns true when it must close.
    pub fn join(&self, conn: &str, admitted: &Visitor, remote: String) -> watch::Receiver<bool> {
        let (kick, kicked) = watch::channel(false);
        lock(&self.entries).insert(
            conn.to_string(),
            Entry {
                admitted: admitted.clone(),
                remote,
                since_ms: crate::clock::now_ms(),
                kick,
            },
        );
        self.version.send_modify(|v| *v += 1);
        kicked
    }

    /// Connection `conn` is gone.
    pub fn leave(&self, conn: &str) {
        if lock(&self.entries).remove(conn).is_some() {
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// Changes of the presence list.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The version of the presence list.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Whether device `id` has a live connection.
    pub fn has_device(&self, id: &str) -> bool {
        lock(&self.entries)
            .values()
            .any(|e| e.admitted.device.as_deref() == Some(id))
    }

    /// Close every connection of device `id`.
    pub fn disconnect_device(&self, id: &str) {
        for e in lock(&self.entries).values() {
            if e.admitted.device.as_deref() == Some(id) {
                let _ = e.kick.send(true);
            }
        }
    }

    /// Close every connection (the Gateway stops).
    pub fn disconnect_all(&self) {
        for e in lock(&self.entries).values() {
            let _ = e.kick.send(true);
        }
    }

    /// The presence entries (OpenClaw `PresenceEntry`): the Gateway itself first, then one
    /// per connection, oldest first.
    pub fn entries(&self) -> Vec<Value> {
        let now = crate::clock::now_ms();
        let mut list = vec![json!({"ts": now, "host": "clawos", "mode": "gateway",
                                   "reason": "self", "version": env!("CARGO_PKG_VERSION")})];
        let entries = lock(&self.entries);
        let mut conns: Vec<&Entry> = entries.values().collect();
        conns.sort_by_key(|e| e.since_ms);
        for e in conns {
            let a = &e.admitted;
            let mut v = json!({"ts": e.since_ms, "ip": e.remote, "mode": a.client.mode,
                               "roles": [a.role], "scopes": a.scopes,
                               "reason": "connect"});
            for (key, value) in [
                ("host", &a.client.display_name),
                ("platform", &a.client.platform),
                ("version", &a.client.version),
                ("deviceFamily", &a.client.device_family),
                ("instanceId", &a.client.instance_id),
            ] {
                if !value.is_empty() {
                    v[key] = json!(value);
                }
            }
            if let Some(d) = &a.device {
                v["deviceId"] = json!(d);
            }
            list.push(v);
        }
        list
    }
}
