-- Scheduled reports: the local time (HH:MM, in the trader's timezone) at which a trader gets
-- yesterday's report (and on Mondays last week's); NULL: no scheduled reports. The report
-- job asks once a minute for every (timezone, local time) pair that is now, through this index.
ALTER TABLE strategy_settings ADD COLUMN report_time TEXT;
CREATE INDEX ix_strategy_report_time ON strategy_settings (timezone, report_time)
    WHERE report_time IS NOT NULL;
