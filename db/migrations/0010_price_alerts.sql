-- Price alerts: a trader's "tell me when BTC is above 70,000". An active alert has no
-- fired_at; firing sets it in the same transaction that queues the notice, so an alert
-- fires once, restarts included. Thresholds are REAL: they are compared, never traded.
CREATE TABLE price_alerts (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    source      TEXT NOT NULL,                       -- the market the scanner reads: paper, bybit…
    symbol      TEXT NOT NULL,
    direction   TEXT NOT NULL CHECK (direction IN ('above', 'below')),
    threshold   REAL NOT NULL CHECK (threshold > 0),
    created_at  INTEGER NOT NULL,
    created_price REAL NOT NULL,                     -- the price when it was set, for the notice
    fired_at    INTEGER,
    fired_price REAL
);
-- The active alerts of one market, in the order the evaluator keeps them (loaded at start
-- in index order, so its sorted arrays need no sort).
CREATE INDEX ix_price_alerts_active
    ON price_alerts (source, symbol, direction, threshold) WHERE fired_at IS NULL;
-- One trader's active alerts: /alerts, the per-trader cap, the Remove button's owner check.
CREATE INDEX ix_price_alerts_user ON price_alerts (user_id, id) WHERE fired_at IS NULL;
