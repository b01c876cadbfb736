-- Confirmation cards nobody pressed: the expiry job finds them by this index instead of
-- scanning every intent ever recorded.
CREATE INDEX ix_order_intents_draft_expiry ON order_intents (expires_at) WHERE status = 'draft';
