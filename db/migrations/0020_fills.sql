-- The fill ledger: every execution an exchange reports, once per account and execution id
-- (a pushed fill and the same fill read again by a REST catch-up are one row). Trade logs
-- are derived from it: a trade names the closing order it came from, so deriving it again
-- (more fills of that order, the venue's closed PnL arriving later) replaces it instead of
-- adding a second one. A close seen in a position snapshot before its fills were read is
-- logged as an estimate (`estimated` = 1) and replaced when they arrive.

CREATE TABLE fills (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    exchange        TEXT NOT NULL,
    account_type    TEXT NOT NULL,
    fill_id         TEXT NOT NULL,                       -- the venue's execution id
    order_id        TEXT NOT NULL,
    client_order_id TEXT,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL CHECK (side IN ('buy','sell')),
    price           TEXT NOT NULL,
    qty             TEXT NOT NULL,
    fee             TEXT NOT NULL,
    fee_currency    TEXT NOT NULL,
    realised_pnl    TEXT,                                -- the venue's, before fees; NULL: none
    reduce_only     INTEGER,
    trigger         TEXT,                                -- take_profit, stop_loss, liquidation
    ts              INTEGER NOT NULL,
    UNIQUE (user_id, exchange, account_type, fill_id)
);
CREATE INDEX ix_fills_account_symbol_ts ON fills (user_id, exchange, account_type, symbol, ts);
CREATE INDEX ix_fills_order ON fills (user_id, exchange, account_type, order_id);

-- The venue's own closed-PnL records (Bybit closed-pnl, OKX positions-history), net of fees.
CREATE TABLE closed_pnl (
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    exchange     TEXT NOT NULL,
    account_type TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    ts           INTEGER NOT NULL,
    symbol       TEXT NOT NULL,
    side         TEXT NOT NULL CHECK (side IN ('long','short')),
    qty          TEXT NOT NULL,
    entry_price  TEXT NOT NULL,
    exit_price   TEXT NOT NULL,
    closed_pnl   TEXT NOT NULL,
    open_fee     TEXT,
    close_fee    TEXT,
    PRIMARY KEY (user_id, exchange, account_type, order_id, ts)
) WITHOUT ROWID;

-- Where each account's catch-up starts: the latest execution recorded (or, for an account
-- without any, when the ledger first looked at it: nothing older is imported).
CREATE TABLE fill_cursors (
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    exchange     TEXT NOT NULL,
    account_type TEXT NOT NULL,
    since        INTEGER NOT NULL,
    PRIMARY KEY (user_id, exchange, account_type)
) WITHOUT ROWID;

ALTER TABLE trade_logs ADD COLUMN order_id TEXT;             -- the closing order, from fills
ALTER TABLE trade_logs ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX ux_trade_logs_close_order
    ON trade_logs (user_id, exchange, account_type, order_id) WHERE order_id IS NOT NULL;
CREATE INDEX ix_trade_logs_estimated ON trade_logs (user_id, symbol) WHERE estimated = 1;
