-- Limit orders: a trader may ask that their limits only ever rest (post-only, maker), and
-- that auto-trade enter at the signal's price with a limit instead of at market. An order's
-- intent keeps its post-only flag so a resend after an unknown outcome sends the same order.
ALTER TABLE strategy_settings ADD COLUMN post_only INTEGER NOT NULL DEFAULT 0;
ALTER TABLE strategy_settings ADD COLUMN autotrade_entry TEXT NOT NULL DEFAULT 'market'
    CHECK (autotrade_entry IN ('market','limit'));
ALTER TABLE order_intents ADD COLUMN post_only INTEGER NOT NULL DEFAULT 0;
