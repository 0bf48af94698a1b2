-- Where each outbound hook (by URL and kinds) has got to in the log: the last seq it handled
-- (delivered, or given up on after its retries). Not a read model of the log but a
-- delivery cursor, kept beside the read models so a restart resumes instead of skipping
-- what was appended while the Gateway was down. Losing it (a deleted projection file)
-- starts the hook at the head again, as on its first start.
CREATE TABLE hook_cursors (
    hook TEXT PRIMARY KEY,  -- the hook's URL, a space, its sorted kinds joined by commas
    seq INTEGER NOT NULL
);
