//! Devices: paired devices, requests waiting for an answer, and token generations.

use serde::Serialize;
use sqlx::SqlitePool;

use super::rows::{int, load_tables, opt_text, signed, text};
use crate::changes::MemoryTables;
use crate::devices::{DEVICES, DEVICE_REQUESTS, DEVICE_SETUP_CODES, DEVICE_TOKENS};
use crate::ProjectionError;

/// A device's request to pair, waiting for an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRequestView {
    /// Request id.
    pub request_id: String,
    /// Device id (SHA-256 of the public key, hex).
    pub device_id: String,
    /// Ed25519 public key, base64url.
    pub public_key: String,
    /// Role asked for.
    pub role: String,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// Client id and mode it announced.
    pub client: String,
    /// Platform it announced.
    pub platform: String,
    /// Name to show.
    pub display_name: String,
    /// Address it connected from.
    pub remote: String,
    /// Seq of its `DevicePairingRequested`.
    pub requested_seq: u64,
}

/// A paired device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceView {
    /// Device id.
    pub device_id: String,
    /// Ed25519 public key, base64url.
    pub public_key: String,
    /// Roles it may connect as.
    pub roles: Vec<String>,
    /// Scopes it was granted.
    pub scopes: Vec<String>,
    /// Client it announced when it paired.
    pub client: String,
    /// Platform.
    pub platform: String,
    /// Name to show.
    pub display_name: String,
    /// Seq of the approval that first paired it.
    pub paired_seq: u64,
}

/// The live token generation of a device for a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceTokenView {
    /// Device id.
    pub device_id: String,
    /// Role.
    pub role: String,
    /// Scopes the token grants.
    pub scopes: Vec<String>,
    /// Generation (a rotation issues the next).
    pub generation: u32,
    /// Seq of the `DeviceTokenIssued`.
    pub issued_seq: u64,
}

/// A one-time setup code (by its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetupCodeView {
    /// blake3 of the code.
    pub code_hash: String,
    /// When it stops working (unix ms).
    pub expires_at_ms: i64,
    /// The device that used it.
    pub device_id: Option<String>,
}

fn list(r: &crate::Row, i: usize) -> Vec<String> {
    text(r, i)
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Paired devices, pending requests (in request order) and tokens in `t`.
pub fn devices_in(
    t: &MemoryTables,
) -> (
    Vec<DeviceView>,
    Vec<DeviceRequestView>,
    Vec<DeviceTokenView>,
) {
    let devices = t
        .rows(DEVICES.name)
        .iter()
        .map(|r| DeviceView {
            device_id: text(r, 0),
            public_key: text(r, 1),
            roles: list(r, 2),
            scopes: list(r, 3),
            client: text(r, 4),
            platform: text(r, 5),
            display_name: text(r, 6),
            paired_seq: int(r, 7).unwrap_or(0),
        })
        .collect();
    let mut requests: Vec<DeviceRequestView> = t
        .rows(DEVICE_REQUESTS.name)
        .iter()
        .map(|r| DeviceRequestView {
            request_id: text(r, 0),
            device_id: text(r, 1),
            public_key: text(r, 2),
            role: text(r, 3),
            scopes: list(r, 4),
            client: text(r, 5),
            platform: text(r, 6),
            display_name: text(r, 7),
            remote: text(r, 8),
            requested_seq: int(r, 9).unwrap_or(0),
        })
        .collect();
    requests.sort_by_key(|r| r.requested_seq);
    let tokens = t
        .rows(DEVICE_TOKENS.name)
        .iter()
        .map(|r| DeviceTokenView {
            device_id: text(r, 0),
            role: text(r, 1),
            scopes: list(r, 2),
            generation: int(r, 3).unwrap_or(0) as u32,
            issued_seq: int(r, 4).unwrap_or(0),
        })
        .collect();
    (devices, requests, tokens)
}

/// The setup codes in `t`.
pub fn setup_codes_in(t: &MemoryTables) -> Vec<SetupCodeView> {
    t.rows(DEVICE_SETUP_CODES.name)
        .iter()
        .map(|r| SetupCodeView {
            code_hash: text(r, 0),
            expires_at_ms: signed(r, 1).unwrap_or(0),
            device_id: opt_text(r, 3),
        })
        .collect()
}

/// Everything the devices read model holds, from the live tables.
pub async fn devices(pool: &SqlitePool) -> Result<DevicesView, ProjectionError> {
    let t = load_tables(
        pool,
        &[
            &DEVICES,
            &DEVICE_REQUESTS,
            &DEVICE_TOKENS,
            &DEVICE_SETUP_CODES,
        ],
    )
    .await?;
    let (devices, requests, tokens) = devices_in(&t);
    Ok(DevicesView {
        devices,
        requests,
        tokens,
        setup_codes: setup_codes_in(&t),
    })
}

/// The devices read model at one point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DevicesView {
    /// Paired devices.
    pub devices: Vec<DeviceView>,
    /// Requests waiting for an answer, oldest first.
    pub requests: Vec<DeviceRequestView>,
    /// Live token generations.
    pub tokens: Vec<DeviceTokenView>,
    /// One-time setup codes.
    #[serde(skip)]
    pub setup_codes: Vec<SetupCodeView>,
}

impl DevicesView {
    /// The paired device `id`.
    pub fn device(&self, id: &str) -> Option<&DeviceView> {
        self.devices.iter().find(|d| d.device_id == id)
    }

    /// Whether the setup code with hash `hash` may pair `device` at `now_ms`: it exists,
    /// has not expired, and is unused or was used by this device.
    pub fn code_opens(&self, hash: &str, device: &str, now_ms: i64) -> bool {
        self.setup_codes.iter().any(|c| {
            c.code_hash == hash
                && now_ms < c.expires_at_ms
                && c.device_id.as_deref().is_none_or(|d| d == device)
        })
    }

    /// The live token of device `id` for `role`.
    pub fn token(&self, id: &str, role: &str) -> Option<&DeviceTokenView> {
        self.tokens
            .iter()
            .find(|t| t.device_id == id && t.role == role)
    }

    /// The pending request whose id starts with `prefix` (a full id or at least 6
    /// characters of one), or of the device whose id starts with it.
    pub fn request(&self, prefix: &str) -> Option<&DeviceRequestView> {
        if prefix.len() < 6 {
            return None;
        }
        self.requests
            .iter()
            .find(|r| r.request_id.starts_with(prefix) || r.device_id.starts_with(prefix))
    }
}
