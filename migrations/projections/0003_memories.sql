-- Long-term memories folded from MemoryWritten / MemoryForgotten (a forgotten memory's row
-- is deleted, so it never comes back, also after a rebuild). The vector index of issue
-- "memory" sits beside this table.
CREATE TABLE memories (
    memory_id   TEXT PRIMARY KEY,
    identity    TEXT,
    agent       TEXT,
    text        TEXT    NOT NULL,
    tags        TEXT    NOT NULL,  -- JSON array
    source_seq  INTEGER,
    written_seq INTEGER NOT NULL
);
CREATE INDEX memories_identity ON memories (identity);
