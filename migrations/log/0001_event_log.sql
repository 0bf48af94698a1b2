-- The append-only event log: the only source of truth (DESIGN.md invariants 1-3, 6, 7).
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY,          -- assigned by the single writer, gapless
    id             BLOB    NOT NULL UNIQUE,      -- uuid v7
    stream         TEXT    NOT NULL,
    stream_version INTEGER NOT NULL,
    ts_ms          INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    causation_id   BLOB,
    correlation_id BLOB,
    dedupe_key     TEXT,                         -- e.g. inbound 'channel\x1fexternal id'
    payload        BLOB    NOT NULL,             -- bincode of the kind's payload struct
    hash           BLOB    NOT NULL,             -- blake3(prev hash || canonical envelope)
    UNIQUE (stream, stream_version)
);

CREATE UNIQUE INDEX events_dedupe_key ON events (dedupe_key) WHERE dedupe_key IS NOT NULL;

CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'clawos: the event log is append-only; UPDATE refused');
END;

CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'clawos: the event log is append-only; DELETE refused');
END;
