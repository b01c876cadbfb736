-- Balance snapshots: the latest equity seen for each trader's account, one row per account
-- and UTC hour (the same hour buckets as trade_hour_totals). Hours, not the trader's local
-- days: a /set tz change keeps the history true, and a local day in any whole-hour timezone is
-- a range of whole UTC hours, so "the close of a day" is the last hour before local midnight
-- (in a half-hour zone, up to 30 minutes earlier). The flush job upserts every account seen
-- since its last run in one statement; a later value of the same hour replaces the earlier.
--
-- No foreign key to users: a snapshot is a figure kept for charts and reports, and a batch of
-- them must never fail as a whole on one row.

CREATE TABLE equity_snapshots (
    user_id      INTEGER NOT NULL,
    hour         INTEGER NOT NULL,                       -- observed_at / 3600000 (UTC hour)
    exchange     TEXT NOT NULL,
    account_type TEXT NOT NULL,
    equity       TEXT NOT NULL,                          -- USDT, exact decimal
    observed_at  INTEGER NOT NULL,                       -- unix ms of the balance read
    -- The key is the index of /equity and the daily report: one trader's hours in order.
    PRIMARY KEY (user_id, hour, exchange, account_type)
) WITHOUT ROWID;

-- Retention deletes the oldest hours of everyone at once.
CREATE INDEX ix_equity_snapshots_hour ON equity_snapshots(hour);
