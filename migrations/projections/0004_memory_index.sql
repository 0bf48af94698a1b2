-- The memory vector index (issue "memory"): a disposable follower of the log with its own
-- checkpoint. Its tables come in generations (memory_rows_N, memory_vec_N: sqlite-vec
-- vec0, memory_fts_N: FTS5), created by the index code; `clawos memory rebuild` builds
-- generation N+1 while N serves, then swaps this one row.
CREATE TABLE memory_index_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL,
    model      TEXT    NOT NULL,  -- model id of every vector of this generation
    dims       INTEGER NOT NULL,
    seq        INTEGER NOT NULL   -- last log seq applied to this generation
);

-- Embeddings by (model id, blake3 of the text): a rebuild with the same model calls nothing.
CREATE TABLE memory_embeddings (
    model     TEXT NOT NULL,
    text_hash BLOB NOT NULL,
    vector    BLOB NOT NULL,      -- little-endian f32
    PRIMARY KEY (model, text_hash)
) WITHOUT ROWID;
