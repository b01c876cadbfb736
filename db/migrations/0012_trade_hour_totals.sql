-- Period tables (/daily 365 and the like) on a long history: running totals per trader and
-- UTC hour, kept by triggers. A local day, week or month in any whole-hour timezone is a
-- range of whole UTC hours (DST changes included); in a half- or quarter-hour zone (India,
-- Nepal) the minutes at either end come from trade_logs through its covering index.
-- Sums only, so a deleted trade is simply taken off its hour.

CREATE TABLE trade_hour_totals (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hour    INTEGER NOT NULL,                             -- exit_ts / 3600000 (UTC hour)
    trades  INTEGER NOT NULL,
    wins    INTEGER NOT NULL,
    losses  INTEGER NOT NULL,
    pnl     REAL NOT NULL,
    fees    REAL NOT NULL,
    PRIMARY KEY (user_id, hour)
) WITHOUT ROWID;

INSERT INTO trade_hour_totals (user_id, hour, trades, wins, losses, pnl, fees)
SELECT user_id, exit_ts / 3600000, COUNT(*), SUM(pnl > 0), SUM(pnl < 0), TOTAL(pnl), TOTAL(fee)
FROM trade_logs GROUP BY 1, 2;

CREATE TRIGGER tr_trade_logs_hour_totals AFTER INSERT ON trade_logs BEGIN
    INSERT INTO trade_hour_totals (user_id, hour, trades, wins, losses, pnl, fees)
    VALUES (NEW.user_id, NEW.exit_ts / 3600000, 1, NEW.pnl > 0, NEW.pnl < 0, NEW.pnl, NEW.fee)
    ON CONFLICT (user_id, hour) DO UPDATE SET
        trades = trades + 1, wins = wins + excluded.wins, losses = losses + excluded.losses,
        pnl = pnl + excluded.pnl, fees = fees + excluded.fees;
END;

CREATE TRIGGER tr_trade_logs_hour_untotalled AFTER DELETE ON trade_logs BEGIN
    UPDATE trade_hour_totals SET trades = trades - 1, wins = wins - (OLD.pnl > 0),
        losses = losses - (OLD.pnl < 0), pnl = pnl - OLD.pnl, fees = fees - OLD.fee
    WHERE user_id = OLD.user_id AND hour = OLD.exit_ts / 3600000;
END;
