-- Devices read model (folded from the `devices` stream): Control UIs, companion apps and
-- nodes pairing on /ws. No token is stored: tokens are derived from the Gateway's key and
-- the generation recorded here.

-- Pairing requests waiting for an answer.
CREATE TABLE device_requests (
    request_id    TEXT PRIMARY KEY,
    device_id     TEXT    NOT NULL,   -- SHA-256 of the public key, hex
    public_key    TEXT    NOT NULL,   -- Ed25519, base64url
    role          TEXT    NOT NULL,   -- operator | node
    scopes        TEXT    NOT NULL,   -- comma-separated
    client        TEXT    NOT NULL,
    platform      TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    remote        TEXT    NOT NULL,
    requested_seq INTEGER NOT NULL
);

-- Paired devices.
CREATE TABLE devices (
    device_id    TEXT PRIMARY KEY,
    public_key   TEXT    NOT NULL,
    roles        TEXT    NOT NULL,    -- comma-separated, sorted
    scopes       TEXT    NOT NULL,    -- comma-separated, sorted
    client       TEXT    NOT NULL,
    platform     TEXT    NOT NULL,
    display_name TEXT    NOT NULL,
    paired_seq   INTEGER NOT NULL
);

-- The live token generation per device and role.
CREATE TABLE device_tokens (
    device_id  TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    generation INTEGER NOT NULL,
    issued_seq INTEGER NOT NULL,
    PRIMARY KEY (device_id, role)
);

-- One-time setup codes (`clawos devices pair`); only the hash of a code is kept.
CREATE TABLE device_setup_codes (
    code_hash     TEXT PRIMARY KEY,
    expires_at_ms INTEGER NOT NULL,
    issued_seq    INTEGER NOT NULL,
    device_id     TEXT               -- the device that used it; NULL while unused
);
