-- Auto-trading and position sync: the sync job finds the accounts that traded in the last
-- hour by the time their orders were recorded, instead of scanning every intent ever made.
CREATE INDEX ix_order_intents_created ON order_intents (created_at);
