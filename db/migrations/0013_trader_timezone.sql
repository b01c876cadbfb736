-- The trader's timezone (an IANA name): where their days, weeks and months begin in /pnl,
-- /daily, /weekly, /monthly and the scheduled reports, and how report times are shown.
ALTER TABLE strategy_settings ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
