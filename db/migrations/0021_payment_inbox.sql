-- Stars payments as Telegram delivered them, written down before the next getUpdates confirms
-- the batch and removed in the transaction that credits them. A crash in between (Telegram
-- never sends a confirmed update again) leaves the row, and the next start credits it.
CREATE TABLE payment_inbox (
    telegram_payment_charge_id TEXT PRIMARY KEY,
    user_id                    INTEGER NOT NULL,
    currency                   TEXT NOT NULL,
    amount                     INTEGER NOT NULL,
    payload                    TEXT NOT NULL,
    provider_payment_charge_id TEXT,
    received_at                INTEGER NOT NULL
) WITHOUT ROWID;
