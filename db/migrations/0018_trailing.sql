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
    entry         REAL NOT NULL,  -- the position's entry when trailing began: a later
                                  -- position on the symbol is not this stop's to close
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (user_id, exchange, account_type, symbol)
);
CREATE INDEX ix_trailing_stops_exchange ON trailing_stops (exchange, symbol);

-- A take-profit ladder: up to three parts as `PCT:SHARE` pairs (2:50,4:30,8:20: half the
-- position 2 % in profit, ...), placed as reduce-only limit orders once the entry fills;
-- NULL: none. With ladder_breakeven the stop loss moves to the entry once the first fills.
ALTER TABLE strategy_settings ADD COLUMN tp_ladder TEXT;
ALTER TABLE strategy_settings ADD COLUMN ladder_breakeven INTEGER NOT NULL DEFAULT 1;

-- Ladders waiting for their first part to fill, to move the stop loss to the entry then.
CREATE TABLE ladder_watches (
    first_order   TEXT PRIMARY KEY,  -- the first part's client order id
    user_id       INTEGER NOT NULL,
    exchange      TEXT NOT NULL,
    account_type  TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    side          TEXT NOT NULL CHECK (side IN ('long','short')),
    entry         TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;
