-- Pairing and approvals read models (folded from the `pairing` and `approvals` streams).

-- The latest code of each sender not yet approved: one row per (channel, address). An
-- approval deletes it. Expiry is a stored value the reader compares with its clock.
CREATE TABLE pairing_requests (
    channel       TEXT    NOT NULL,
    address       TEXT    NOT NULL,
    code_hash     TEXT    NOT NULL,  -- blake3 hex of the code (the code itself is never logged)
    expires_at_ms INTEGER NOT NULL,
    requested_seq INTEGER NOT NULL,
    PRIMARY KEY (channel, address)
);
CREATE INDEX pairing_requests_code ON pairing_requests (code_hash);

-- Senders allowed to talk, by the first PairingApproved for them.
CREATE TABLE paired (
    channel      TEXT    NOT NULL,
    address      TEXT    NOT NULL,
    approved_seq INTEGER NOT NULL,
    PRIMARY KEY (channel, address)
);

-- Actions an agent asked approval for, and the first answer (later answers change nothing).
CREATE TABLE approvals (
    approval_id   TEXT PRIMARY KEY,
    session_id    TEXT    NOT NULL,
    turn_id       TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    requested_seq INTEGER NOT NULL,
    answered_seq  INTEGER,           -- NULL while pending
    approved      INTEGER,           -- 1 approved, 0 refused, NULL while pending
    answered_by   TEXT               -- `cli`, `timeout`, ...
);
CREATE INDEX approvals_pending ON approvals (answered_seq, requested_seq);
