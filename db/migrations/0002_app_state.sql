-- Small process-wide facts that must survive restarts (e.g. when the synthetic market began,
-- so its listings stay the same across restarts).
CREATE TABLE app_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
