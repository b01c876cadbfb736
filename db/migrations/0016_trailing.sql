-- Trade management. A strategy's default trailing stop: its distance in percent of the price
-- (NULL: none) and the profit in percent at which it starts trailing (NULL: at once).
ALTER TABLE strategy_settings ADD COLUMN trail_pct TEXT;
ALTER TABLE strategy_settings ADD COLUMN trail_activation_pct TEXT;

-- A paper position's trailing stop: the distance its stop loss keeps behind the best price
-- since activation (trail_peak; NULL until the price reaches trail_activation).
ALTER TABLE paper_positions ADD COLUMN trail_distance TEXT;
ALTER TABLE paper_positions ADD COLUMN trail_activation TEXT;
ALTER TABLE paper_positions ADD COLUMN trail_peak TEXT;

-- Trailing stops the bot keeps for venues without a native one: one per account and symbol,
-- loaded once into an in-memory index; `peak` is written back when a pass moves it, so a
-- restart resumes from the best price seen.
CREATE TABLE trailing_stops (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL,
    exchange      TEXT NOT NULL,
    account_type  TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    side          TEXT NOT NULL CHECK (side IN ('long','short')),
    distance      REAL NOT NULL CHECK (distance > 0),
    activation    REAL,
    peak          REAL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (user_id, exchange, account_type, symbol)
);
CREATE INDEX ix_trailing_stops_exchange ON trailing_stops (exchange, symbol);
