-- /pnl on a long history: running totals per trader, UTC day and symbol, kept by triggers,
-- so a period reads one row per traded symbol and day instead of every trade; the hours of a
-- period that do not fill a whole UTC day (a trader's local midnight) come from trade_logs
-- through a covering index, which also serves the per-period tables (/daily, /weekly, ...).
--
-- best_id/worst_id name the trade behind best_pnl/worst_pnl so /pnl shows the best and the
-- worst trade without reading the period's trades. trade_logs rows are never updated; a
-- deleted one has its day recomputed (rare: only a trader's own removal deletes trades, and
-- then the cascade on users removes the totals as well).

CREATE TABLE trade_day_totals (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day        INTEGER NOT NULL,                          -- exit_ts / 86400000 (UTC day)
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
    PRIMARY KEY (user_id, day, symbol)
) WITHOUT ROWID;

CREATE INDEX ix_trade_logs_user_exit_totals ON trade_logs (user_id, exit_ts, pnl, fee, symbol);

INSERT INTO trade_day_totals (user_id, day, symbol, trades, wins, losses, pnl, fees,
    gross_win, gross_loss, best_pnl, best_id, worst_pnl, worst_id)
SELECT user_id, exit_ts / 86400000, symbol, COUNT(*), SUM(pnl > 0), SUM(pnl < 0), TOTAL(pnl),
    TOTAL(fee), TOTAL(MAX(pnl, 0)), TOTAL(MIN(pnl, 0)), MAX(pnl), 0, MIN(pnl), 0
FROM trade_logs GROUP BY 1, 2, 3;
UPDATE trade_day_totals SET
    best_id = (SELECT id FROM trade_logs t WHERE t.user_id = trade_day_totals.user_id
        AND t.exit_ts >= trade_day_totals.day * 86400000
        AND t.exit_ts < (trade_day_totals.day + 1) * 86400000
        AND t.symbol = trade_day_totals.symbol ORDER BY t.pnl DESC, t.id LIMIT 1),
    worst_id = (SELECT id FROM trade_logs t WHERE t.user_id = trade_day_totals.user_id
        AND t.exit_ts >= trade_day_totals.day * 86400000
        AND t.exit_ts < (trade_day_totals.day + 1) * 86400000
        AND t.symbol = trade_day_totals.symbol ORDER BY t.pnl, t.id LIMIT 1);

CREATE TRIGGER tr_trade_logs_day_totals AFTER INSERT ON trade_logs BEGIN
    INSERT INTO trade_day_totals (user_id, day, symbol, trades, wins, losses, pnl, fees,
        gross_win, gross_loss, best_pnl, best_id, worst_pnl, worst_id)
    VALUES (NEW.user_id, NEW.exit_ts / 86400000, NEW.symbol, 1, NEW.pnl > 0, NEW.pnl < 0,
        NEW.pnl, NEW.fee, MAX(NEW.pnl, 0), MIN(NEW.pnl, 0), NEW.pnl, NEW.id, NEW.pnl, NEW.id)
    ON CONFLICT (user_id, day, symbol) DO UPDATE SET
        trades = trades + 1, wins = wins + excluded.wins, losses = losses + excluded.losses,
        pnl = pnl + excluded.pnl, fees = fees + excluded.fees,
        gross_win = gross_win + excluded.gross_win, gross_loss = gross_loss + excluded.gross_loss,
        best_id = CASE WHEN excluded.best_pnl > best_pnl THEN excluded.best_id ELSE best_id END,
        best_pnl = MAX(best_pnl, excluded.best_pnl),
        worst_id = CASE WHEN excluded.worst_pnl < worst_pnl THEN excluded.worst_id
            ELSE worst_id END,
        worst_pnl = MIN(worst_pnl, excluded.worst_pnl);
END;

CREATE TRIGGER tr_trade_logs_day_untotalled AFTER DELETE ON trade_logs
WHEN EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id) BEGIN
    DELETE FROM trade_day_totals
    WHERE user_id = OLD.user_id AND day = OLD.exit_ts / 86400000 AND symbol = OLD.symbol;
    INSERT INTO trade_day_totals (user_id, day, symbol, trades, wins, losses, pnl, fees,
        gross_win, gross_loss, best_pnl, best_id, worst_pnl, worst_id)
    SELECT user_id, exit_ts / 86400000, symbol, COUNT(*), SUM(pnl > 0), SUM(pnl < 0),
        TOTAL(pnl), TOTAL(fee), TOTAL(MAX(pnl, 0)), TOTAL(MIN(pnl, 0)), MAX(pnl),
        (SELECT id FROM trade_logs b WHERE b.user_id = OLD.user_id AND b.symbol = OLD.symbol
            AND b.exit_ts / 86400000 = OLD.exit_ts / 86400000 ORDER BY b.pnl DESC, b.id LIMIT 1),
        MIN(pnl),
        (SELECT id FROM trade_logs w WHERE w.user_id = OLD.user_id AND w.symbol = OLD.symbol
            AND w.exit_ts / 86400000 = OLD.exit_ts / 86400000 ORDER BY w.pnl, w.id LIMIT 1)
    FROM trade_logs
    WHERE user_id = OLD.user_id AND symbol = OLD.symbol
        AND exit_ts >= OLD.exit_ts / 86400000 * 86400000
        AND exit_ts < (OLD.exit_ts / 86400000 + 1) * 86400000
    GROUP BY user_id, exit_ts / 86400000, symbol;
END;
