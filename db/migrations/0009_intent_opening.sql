-- "Which order of ours opened this position?" (a close's trade log, a position found by
-- position sync): the newest intents of one user on one symbol, without walking every
-- intent the user ever recorded.
CREATE INDEX ix_order_intents_opening ON order_intents (user_id, symbol, created_at);
