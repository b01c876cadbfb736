-- Admin analytics: running totals kept by triggers, so /admin and /stats read a handful of
-- rows instead of aggregating a million trade logs, plus the indexes behind the rest.
--
-- Writers must insert into users, active_positions, trade_logs and payments with plain INSERT
-- or INSERT ... ON CONFLICT DO UPDATE (an upsert that updates fires no insert trigger), never
-- INSERT OR REPLACE: its implicit delete fires no delete trigger and would skew the totals.

CREATE TABLE admin_counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO admin_counters (name, value) SELECT 'users', COUNT(*) FROM users;
INSERT INTO admin_counters (name, value) SELECT 'open_positions', COUNT(*) FROM active_positions;

CREATE TRIGGER tr_users_counted AFTER INSERT ON users BEGIN
    UPDATE admin_counters SET value = value + 1 WHERE name = 'users';
END;
CREATE TRIGGER tr_users_uncounted AFTER DELETE ON users BEGIN
    UPDATE admin_counters SET value = value - 1 WHERE name = 'users';
END;
CREATE TRIGGER tr_positions_counted AFTER INSERT ON active_positions BEGIN
    UPDATE admin_counters SET value = value + 1 WHERE name = 'open_positions';
END;
CREATE TRIGGER tr_positions_uncounted AFTER DELETE ON active_positions BEGIN
    UPDATE admin_counters SET value = value - 1 WHERE name = 'open_positions';
END;

-- Realised trades per user and per symbol, all time.
CREATE TABLE trade_user_totals (
    user_id INTEGER PRIMARY KEY,
    trades  INTEGER NOT NULL,
    wins    INTEGER NOT NULL,
    pnl     REAL NOT NULL,
    volume  REAL NOT NULL
);
CREATE INDEX ix_trade_user_totals_pnl ON trade_user_totals (pnl);
CREATE INDEX ix_trade_user_totals_volume ON trade_user_totals (volume);

CREATE TABLE trade_symbol_totals (
    symbol TEXT PRIMARY KEY,
    trades INTEGER NOT NULL,
    wins   INTEGER NOT NULL,
    pnl    REAL NOT NULL,
    volume REAL NOT NULL,
    fees   REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX ix_trade_symbol_totals_pnl ON trade_symbol_totals (pnl);

INSERT INTO trade_user_totals (user_id, trades, wins, pnl, volume)
SELECT user_id, COUNT(*), SUM(pnl > 0), TOTAL(pnl), TOTAL(notional) FROM trade_logs
GROUP BY user_id;
INSERT INTO trade_symbol_totals (symbol, trades, wins, pnl, volume, fees)
SELECT symbol, COUNT(*), SUM(pnl > 0), TOTAL(pnl), TOTAL(notional), TOTAL(fee) FROM trade_logs
GROUP BY symbol;

CREATE TRIGGER tr_trade_logs_totals AFTER INSERT ON trade_logs BEGIN
    INSERT INTO trade_user_totals (user_id, trades, wins, pnl, volume)
    VALUES (NEW.user_id, 1, NEW.pnl > 0, NEW.pnl, NEW.notional)
    ON CONFLICT (user_id) DO UPDATE SET
        trades = trades + 1, wins = wins + excluded.wins,
        pnl = pnl + excluded.pnl, volume = volume + excluded.volume;
    INSERT INTO trade_symbol_totals (symbol, trades, wins, pnl, volume, fees)
    VALUES (NEW.symbol, 1, NEW.pnl > 0, NEW.pnl, NEW.notional, NEW.fee)
    ON CONFLICT (symbol) DO UPDATE SET
        trades = trades + 1, wins = wins + excluded.wins, pnl = pnl + excluded.pnl,
        volume = volume + excluded.volume, fees = fees + excluded.fees;
END;
CREATE TRIGGER tr_trade_logs_untotalled AFTER DELETE ON trade_logs BEGIN
    UPDATE trade_user_totals SET trades = trades - 1, wins = wins - (OLD.pnl > 0),
        pnl = pnl - OLD.pnl, volume = volume - OLD.notional
    WHERE user_id = OLD.user_id;
    UPDATE trade_symbol_totals SET trades = trades - 1, wins = wins - (OLD.pnl > 0),
        pnl = pnl - OLD.pnl, volume = volume - OLD.notional, fees = fees - OLD.fee
    WHERE symbol = OLD.symbol;
END;

-- Revenue per calendar month (UTC), currency and plan.
CREATE TABLE revenue_monthly (
    month    TEXT NOT NULL,                              -- 2026-01
    currency TEXT NOT NULL,
    plan     TEXT NOT NULL,
    amount   INTEGER NOT NULL,
    payments INTEGER NOT NULL,
    PRIMARY KEY (month, currency, plan)
) WITHOUT ROWID;
INSERT INTO revenue_monthly (month, currency, plan, amount, payments)
SELECT strftime('%Y-%m', created_at / 1000, 'unixepoch'), currency, plan, SUM(amount), COUNT(*)
FROM payments GROUP BY 1, 2, 3;

CREATE TRIGGER tr_payments_revenue AFTER INSERT ON payments BEGIN
    INSERT INTO revenue_monthly (month, currency, plan, amount, payments)
    VALUES (strftime('%Y-%m', NEW.created_at / 1000, 'unixepoch'), NEW.currency, NEW.plan,
            NEW.amount, 1)
    ON CONFLICT (month, currency, plan) DO UPDATE SET
        amount = amount + excluded.amount, payments = payments + 1;
END;

-- New users per UTC day (growth chart), blocked users (checked on every update), licences
-- by source, and promo codes by use.
CREATE INDEX ix_users_created_day ON users (created_at / 86400000);
CREATE INDEX ix_users_blocked ON users (id) WHERE is_blocked = 1;
CREATE INDEX ix_user_licenses_source ON user_licenses (source, end_at) WHERE active = 1;
CREATE INDEX ix_promo_codes_uses ON promo_codes (uses);
CREATE INDEX ix_executions_at_status ON executions (at, status);

-- Broadcasts still being delivered: the progress job looks for them every few seconds.
CREATE INDEX ix_broadcasts_sending ON broadcasts (id) WHERE status = 'sending';
