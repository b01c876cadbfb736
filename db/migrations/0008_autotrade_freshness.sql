-- Auto-trade trades a signal only for traders who had auto-trade on when it was published,
-- and only while its price and age are within the trader's limits. A trader already
-- auto-trading is counted from their last settings change: the safe side of an unknown time.
ALTER TABLE strategy_settings ADD COLUMN auto_trade_since INTEGER;
ALTER TABLE strategy_settings ADD COLUMN max_drift_pct TEXT NOT NULL DEFAULT '0.3';
ALTER TABLE strategy_settings ADD COLUMN max_signal_age_s INTEGER NOT NULL DEFAULT 120;
UPDATE strategy_settings SET auto_trade_since = updated_at WHERE auto_trade = 1;
