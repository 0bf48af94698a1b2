-- Channel status also shows the link to the outside service (ChannelLinkChanged).
-- The read model is disposable: drop it and its checkpoint, and it is folded again from
-- the log with the new column.
DROP TABLE channels;
CREATE TABLE channels (
    channel     TEXT PRIMARY KEY,
    kind        TEXT    NOT NULL,
    state       TEXT    NOT NULL,   -- 'up' or 'down' (the process)
    pid         INTEGER,
    starts      INTEGER NOT NULL,
    exits       INTEGER NOT NULL,
    last_exit   TEXT,
    changed_seq INTEGER NOT NULL,
    link        TEXT                -- 'up: connected', 'down: authentication refused: ...'
);
DELETE FROM projection_checkpoints WHERE name = 'channels';
