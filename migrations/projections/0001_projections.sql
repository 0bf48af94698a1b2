-- Projection tables: caches folded from the event log, dropped and rebuilt at will
-- (DESIGN.md invariants 1 and 5). Column order here is the order the projections write.

-- One row per projection: the last applied seq and its small in-memory state, written in
-- the same transaction as its rows.
CREATE TABLE projection_checkpoints (
    name  TEXT PRIMARY KEY,
    seq   INTEGER NOT NULL,
    state BLOB    NOT NULL
);

CREATE TABLE identity_addresses (
    address    TEXT PRIMARY KEY,
    identity   TEXT    NOT NULL,
    linked_seq INTEGER NOT NULL
);
CREATE INDEX identity_addresses_identity ON identity_addresses (identity);

CREATE TABLE sessions (
    session_id    TEXT PRIMARY KEY,
    identity      TEXT    NOT NULL,
    agent         TEXT    NOT NULL,
    active_branch TEXT    NOT NULL,
    started_seq   INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL,
    messages      INTEGER NOT NULL
);
CREATE INDEX sessions_identity ON sessions (identity, agent);

CREATE TABLE branches (
    session_id  TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    head_seq    INTEGER,            -- last message on the branch (NULL: empty branch)
    fork_seq    INTEGER,            -- message it was forked at (NULL: root branch)
    created_seq INTEGER NOT NULL,
    PRIMARY KEY (session_id, name)
);

CREATE TABLE messages (
    seq        INTEGER PRIMARY KEY, -- the event's seq is the message id
    session_id TEXT    NOT NULL,
    branch     TEXT    NOT NULL,
    parent_seq INTEGER,             -- previous message on its branch (the tree edge)
    role       TEXT    NOT NULL,    -- 'user' or 'assistant'
    channel    TEXT    NOT NULL,
    address    TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    ts_ms      INTEGER NOT NULL
);
CREATE INDEX messages_session ON messages (session_id, seq);

CREATE TABLE compactions (
    seq            INTEGER PRIMARY KEY,
    session_id     TEXT    NOT NULL,
    branch         TEXT    NOT NULL,
    covers_through INTEGER NOT NULL,
    summary        TEXT    NOT NULL,
    model          TEXT    NOT NULL
);

CREATE TABLE bindings (
    binding_id    TEXT PRIMARY KEY,
    agent         TEXT    NOT NULL,
    identity      TEXT,
    chat          TEXT,
    channel       TEXT,
    sender_domain TEXT,
    body_regex    TEXT,
    priority      INTEGER NOT NULL,
    set_seq       INTEGER NOT NULL
);

CREATE TABLE channels (
    channel     TEXT PRIMARY KEY,
    kind        TEXT    NOT NULL,
    state       TEXT    NOT NULL,   -- 'up' or 'down'
    pid         INTEGER,
    starts      INTEGER NOT NULL,
    exits       INTEGER NOT NULL,
    last_exit   TEXT,
    changed_seq INTEGER NOT NULL
);

CREATE TABLE deliveries (
    delivery_id TEXT PRIMARY KEY,
    channel     TEXT    NOT NULL,
    seq         INTEGER NOT NULL,   -- the MessageSent event
    session_id  TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    chat        TEXT
);
CREATE INDEX deliveries_channel ON deliveries (channel, seq);

CREATE TABLE delivery_acks (
    delivery_id TEXT PRIMARY KEY,
    channel     TEXT    NOT NULL,
    ack_seq     INTEGER NOT NULL
);

CREATE TABLE audit_turns (
    turn_id     TEXT PRIMARY KEY,
    session_id  TEXT    NOT NULL,
    agent       TEXT    NOT NULL,
    branch      TEXT    NOT NULL,
    trigger_seq INTEGER NOT NULL,
    started_seq INTEGER NOT NULL,
    ended_seq   INTEGER,
    status      TEXT    NOT NULL,   -- 'running', 'finished', 'failed'
    detail      TEXT
);
CREATE INDEX audit_turns_session ON audit_turns (session_id, started_seq);
CREATE INDEX audit_turns_trigger ON audit_turns (trigger_seq);

CREATE TABLE audit_steps (
    seq        INTEGER PRIMARY KEY,
    turn_id    TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    detail     TEXT    NOT NULL
);
CREATE INDEX audit_steps_turn ON audit_steps (turn_id, seq);
