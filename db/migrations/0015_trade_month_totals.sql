-- /pnl month and /pnl all on a long history: the same running totals as trade_day_totals,
-- per UTC calendar month, so this month so far is one row per symbol and all time one row per
-- symbol and month (a year of 60 symbols: ~700 rows instead of ~8,000 day rows). A period
-- whose first whole UTC day is the 1st of a month reads these; others read the day totals.

CREATE TABLE trade_month_totals (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    month      INTEGER NOT NULL,                          -- year * 12 + month - 1 (UTC)
    symbol     TEXT NOT NULL,
    trades     INTEGER NOT NULL,
    wins       INTEGER NOT NULL,
    losses     INTEGER NOT NULL,
    pnl        REAL NOT NULL,
    fees       REAL NOT NULL,
    gross_win  REAL NOT NULL,
    gross_loss REAL NOT NULL,
    best_pnl   REAL NOT NULL,
    best_id    INTEGER NOT NULL,
    worst_pnl  REAL NOT NULL,
    worst_id   INTEGER NOT NULL,
    PRIMARY KEY (user_id, month, symbol)
) WITHOUT ROWID;

INSERT INTO trade_month_totals (user_id, month, symbol, trades, wins, losses, pnl, fees,
    gross_win, gross_loss, best_pnl, best_id, worst_pnl, worst_id)
SELECT user_id, month, symbol, SUM(trades), SUM(wins), SUM(losses), TOTAL(pnl), TOTAL(fees),
    TOTAL(gross_win), TOTAL(gross_loss), MAX(best_pnl), 0, MIN(worst_pnl), 0
FROM (SELECT *, (CAST(strftime('%Y', day * 86400000 / 1000, 'unixepoch') AS INTEGER) * 12
        + CAST(strftime('%m', day * 86400000 / 1000, 'unixepoch') AS INTEGER) - 1) AS month FROM trade_day_totals)
GROUP BY user_id, month, symbol;
UPDATE trade_month_totals SET
    best_id = (SELECT d.best_id FROM trade_day_totals d
        WHERE d.user_id = trade_month_totals.user_id AND d.symbol = trade_month_totals.symbol
            AND (CAST(strftime('%Y', d.day * 86400000 / 1000, 'unixepoch') AS INTEGER) * 12
        + CAST(strftime('%m', d.day * 86400000 / 1000, 'unixepoch') AS INTEGER) - 1) = trade_month_totals.month
        ORDER BY d.best_pnl DESC, d.best_id LIMIT 1),
    worst_id = (SELECT d.worst_id FROM trade_day_totals d
        WHERE d.user_id = trade_month_totals.user_id AND d.symbol = trade_month_totals.symbol
            AND (CAST(strftime('%Y', d.day * 86400000 / 1000, 'unixepoch') AS INTEGER) * 12
        + CAST(strftime('%m', d.day * 86400000 / 1000, 'unixepoch') AS INTEGER) - 1) = trade_month_totals.month
        ORDER BY d.worst_pnl, d.worst_id LIMIT 1);

CREATE TRIGGER tr_trade_logs_month_totals AFTER INSERT ON trade_logs BEGIN
    INSERT INTO trade_month_totals (user_id, month, symbol, trades, wins, losses, pnl, fees,
        gross_win, gross_loss, best_pnl, best_id, worst_pnl, worst_id)
    VALUES (NEW.user_id, (CAST(strftime('%Y', NEW.exit_ts / 1000, 'unixepoch') AS INTEGER) * 12
        + CAST(strftime('%m', NEW.exit_ts / 1000, 'unixepoch') AS INTEGER) - 1), NEW.symbol, 1, NEW.pnl > 0, NEW.pnl < 0,
        NEW.pnl, NEW.fee, MAX(NEW.pnl, 0), MIN(NEW.pnl, 0), NEW.pnl, NEW.id, NEW.pnl, NEW.id)
    ON CONFLICT (user_id, month, symbol) DO UPDATE SET
        trades = trades + 1, wins = wins + excluded.wins, losses = losses + excluded.losses,
        pnl = pnl + excluded.pnl, fees = fees + excluded.fees,
        gross_win = gross_win + excluded.gross_win, gross_loss = gross_loss + excluded.gross_loss,
        best_id = CASE WHEN excluded.best_pnl > best_pnl THEN excluded.best_id ELSE best_id END,
        best_pnl = MAX(best_pnl, excluded.best_pnl),
        worst_id = CASE WHEN excluded.worst_pnl < worst_pnl THEN excluded.worst_id
            ELSE worst_id END,
        worst_pnl = MIN(worst_pnl, excluded.worst_pnl);
END;

-- A deleted trade's month is rebuilt from trade_logs (rare: see migration 0009).
CREATE TRIGGER tr_trade_logs_month_untotalled AFTER DELETE ON trade_logs
WHEN EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id) BEGIN
    DELETE FROM trade_month_totals WHERE user_id = OLD.user_id
        AND month = (CAST(strftime('%Y', OLD.exit_ts / 1000, 'unixepoch') AS INTEGER) * 12
        + CAST(strftime('%m', OLD.exit_ts / 1000, 'unixepoch') AS INTEGER) - 1) AND symbol = OLD.symbol;
    INSERT INTO trade_month_totals (user_id, month, symbol, trades, wins, losses, pnl, fees,
        gross_win, gross_loss, best_pnl, best_id, worst_pnl, worst_id)
    SELECT user_id, (CAST(strftime('%Y', OLD.exit_ts / 1000, 'unixepoch') AS INTEGER) * 12
        + CAST(strftime('%m', OLD.exit_ts / 1000, 'unixepoch') AS INTEGER) - 1), symbol, COUNT(*), SUM(pnl > 0), SUM(pnl < 0),
        TOTAL(pnl), TOTAL(fee), TOTAL(MAX(pnl, 0)), TOTAL(MIN(pnl, 0)),
        MAX(pnl), (SELECT b.id FROM trade_logs b
            WHERE b.user_id = OLD.user_id AND b.symbol = OLD.symbol
                AND (CAST(strftime('%Y', b.exit_ts / 1000, 'unixepoch') AS INTEGER) * 12
        + CAST(strftime('%m', b.exit_ts / 1000, 'unixepoch') AS INTEGER) - 1) = (CAST(strftime('%Y', OLD.exit_ts / 1000, 'unixepoch') AS INTEGER) * 12
        + CAST(strftime('%m', OLD.exit_ts / 1000, 'unixepoch') AS INTEGER) - 1)
            ORDER BY b.pnl DESC, b.id LIMIT 1),
        MIN(pnl), (SELECT w.id FROM trade_logs w
            WHERE w.user_id = OLD.user_id AND w.symbol = OLD.symbol
                AND (CAST(strftime('%Y', w.exit_ts / 1000, 'unixepoch') AS INTEGER) * 12
        + CAST(strftime('%m', w.exit_ts / 1000, 'unixepoch') AS INTEGER) - 1) = (CAST(strftime('%Y', OLD.exit_ts / 1000, 'unixepoch') AS INTEGER) * 12
        + CAST(strftime('%m', OLD.exit_ts / 1000, 'unixepoch') AS INTEGER) - 1)
            ORDER BY w.pnl, w.id LIMIT 1)
    FROM trade_logs
    WHERE user_id = OLD.user_id AND symbol = OLD.symbol
        AND (CAST(strftime('%Y', exit_ts / 1000, 'unixepoch') AS INTEGER) * 12
        + CAST(strftime('%m', exit_ts / 1000, 'unixepoch') AS INTEGER) - 1) = (CAST(strftime('%Y', OLD.exit_ts / 1000, 'unixepoch') AS INTEGER) * 12
        + CAST(strftime('%m', OLD.exit_ts / 1000, 'unixepoch') AS INTEGER) - 1)
    GROUP BY user_id, symbol;
END;
