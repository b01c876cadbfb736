-- The candle store for backtests: 5-minute and 1-hour candles of the scanner's market.
-- A series is one (market source, symbol, timeframe); candles are keyed by (series, ts), so
-- the primary key is the index on (symbol, timeframe, time) — per source, which keeps a
-- switch of TRADEWIND_MARKET_SOURCE from mixing two venues' prices — and a row costs a small
-- integer instead of two strings (30 days of 530 symbols is 4.6 M rows).

CREATE TABLE candle_series (
    id        INTEGER PRIMARY KEY,
    source    TEXT NOT NULL,
    symbol    TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    UNIQUE (source, symbol, timeframe)
);

CREATE TABLE candles (
    series INTEGER NOT NULL REFERENCES candle_series(id) ON DELETE CASCADE,
    ts     INTEGER NOT NULL,                                  -- bar open, unix ms
    open   REAL NOT NULL,
    high   REAL NOT NULL,
    low    REAL NOT NULL,
    close  REAL NOT NULL,
    volume REAL NOT NULL,
    PRIMARY KEY (series, ts)
) WITHOUT ROWID;
