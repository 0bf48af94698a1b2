-- Usage read model: one row per LLM call with the tokens the provider reported, the
-- turn's agent and session, the provider and model, and the time. `clawos usage`, the
-- admin UI and budgets read it; cost is computed at read time from the price table.
CREATE TABLE usage_calls (
    seq               INTEGER PRIMARY KEY,  -- the LlmResponded event
    ts_ms             INTEGER NOT NULL,
    turn_id           TEXT    NOT NULL,
    session_id        TEXT    NOT NULL,
    agent             TEXT    NOT NULL,
    provider          TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL
);
CREATE INDEX usage_calls_by_time ON usage_calls (ts_ms);
CREATE INDEX usage_calls_by_agent ON usage_calls (agent, ts_ms);
CREATE INDEX usage_calls_by_session ON usage_calls (session_id, ts_ms);
