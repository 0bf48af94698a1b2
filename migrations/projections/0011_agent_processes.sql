-- Agent process status (AgentStarted, AgentExited): agents with isolation = "process"
-- or kind = "process", like channel processes.
CREATE TABLE agent_processes (
    agent       TEXT PRIMARY KEY,
    state       TEXT    NOT NULL,   -- 'up' or 'down'
    pid         INTEGER,
    encoding    TEXT,               -- 'json' or 'bincode', from its hello
    starts      INTEGER NOT NULL,
    exits       INTEGER NOT NULL,
    last_exit   TEXT,
    changed_seq INTEGER NOT NULL
);
