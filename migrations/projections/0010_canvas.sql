-- Canvas read model: what each session's canvas shows now (folded from CanvasPresented
-- and CanvasCleared; a cleared canvas has no row).
CREATE TABLE canvas (
    session_id TEXT PRIMARY KEY,
    agent      TEXT    NOT NULL,
    kind       TEXT    NOT NULL,  -- markdown | html | image
    title      TEXT,
    content    TEXT    NOT NULL,
    seq        INTEGER NOT NULL   -- the CanvasPresented event
);
