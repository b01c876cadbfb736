-- Telegram updates already handled, by update_id. After a crash Telegram delivers again what
-- the bot had not confirmed; an update whose id is here is dropped before any handler runs.
-- Only a window of the newest ids is kept (redeliveries are always among the newest).
CREATE TABLE processed_updates (
    update_id INTEGER PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
