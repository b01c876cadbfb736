-- Tradewind schema, version 1: every table of the data model and the index behind each
-- hot query. Times are INTEGER unix milliseconds (UTC). Prices, quantities and balances
-- that reach an exchange or a ledger are TEXT holding a Decimal; analytic columns
-- (pnl, fee, notional of closed trades) are REAL so aggregates stay fast.

CREATE TABLE users (
    id                   INTEGER PRIMARY KEY,           -- Telegram user id
    chat_id              INTEGER NOT NULL,
    username             TEXT,
    first_name           TEXT NOT NULL DEFAULT '',
    last_name            TEXT,
    language_code        TEXT,
    is_active            INTEGER NOT NULL DEFAULT 1,    -- 0 once the user blocked the bot
    is_blocked           INTEGER NOT NULL DEFAULT 0,    -- blocked by an admin
    active_credential_id INTEGER REFERENCES api_credentials(id) ON DELETE SET NULL,
    signals_subscribed   INTEGER NOT NULL DEFAULT 0,
    signals_min_score    REAL NOT NULL DEFAULT 0.6,
    notify_signals       TEXT NOT NULL DEFAULT 'on' CHECK (notify_signals IN ('on','off','silent')),
    notify_fills         TEXT NOT NULL DEFAULT 'on' CHECK (notify_fills IN ('on','off','silent')),
    notify_reports       TEXT NOT NULL DEFAULT 'on' CHECK (notify_reports IN ('on','off','silent')),
    created_at           INTEGER NOT NULL,
    last_seen_at         INTEGER NOT NULL
);
CREATE INDEX ix_users_last_seen ON users (last_seen_at);
CREATE INDEX ix_users_created ON users (created_at);
CREATE INDEX ix_users_username ON users (username COLLATE NOCASE);
CREATE INDEX ix_users_subscribed ON users (signals_min_score)
    WHERE signals_subscribed = 1 AND is_active = 1 AND is_blocked = 0;

CREATE TABLE api_credentials (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    exchange       TEXT NOT NULL,
    account_type   TEXT NOT NULL CHECK (account_type IN ('live','demo','testnet','paper')),
    api_key_enc    TEXT NOT NULL,
    api_secret_enc TEXT NOT NULL,
    passphrase_enc TEXT,
    key_hint       TEXT NOT NULL DEFAULT '',               -- last four characters of the key
    created_at     INTEGER NOT NULL,
    verified_at    INTEGER,
    UNIQUE (user_id, exchange, account_type)
);

CREATE TABLE strategy_settings (
    user_id             INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    size_usdt           TEXT,                            -- fixed notional, or NULL when risk_pct is used
    risk_pct            TEXT,
    leverage            INTEGER NOT NULL DEFAULT 5,
    tp_pct              TEXT NOT NULL DEFAULT '3',
    sl_pct              TEXT NOT NULL DEFAULT '1.5',
    max_positions       INTEGER NOT NULL DEFAULT 5,
    auto_trade          INTEGER NOT NULL DEFAULT 0,
    min_score           REAL NOT NULL DEFAULT 0.7,
    allow_symbols       TEXT NOT NULL DEFAULT '[]',      -- JSON array of unified symbols
    deny_symbols        TEXT NOT NULL DEFAULT '[]',
    limit_order_ttl_min INTEGER NOT NULL DEFAULT 60,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX ix_strategy_auto_trade ON strategy_settings (min_score) WHERE auto_trade = 1;

CREATE TABLE user_licenses (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    plan          TEXT NOT NULL,
    start_at      INTEGER NOT NULL,
    end_at        INTEGER NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    source        TEXT NOT NULL,                         -- grant, promo, payment, trial
    granted_by    INTEGER,
    reminded_3d   INTEGER NOT NULL DEFAULT 0,
    reminded_1d   INTEGER NOT NULL DEFAULT 0,
    revoked_at    INTEGER,
    revoke_reason TEXT,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX ix_user_licenses_end ON user_licenses (end_at) WHERE active = 1;

CREATE TABLE promo_codes (
    code        TEXT PRIMARY KEY COLLATE NOCASE,
    plan        TEXT NOT NULL,
    days        INTEGER NOT NULL CHECK (days > 0),
    max_uses    INTEGER NOT NULL CHECK (max_uses > 0),
    uses        INTEGER NOT NULL DEFAULT 0,
    valid_until INTEGER,
    active      INTEGER NOT NULL DEFAULT 1,
    created_by  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    CHECK (uses <= max_uses)
);
CREATE INDEX ix_promo_codes_active ON promo_codes (active, valid_until);

CREATE TABLE promo_redemptions (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL COLLATE NOCASE REFERENCES promo_codes(code),
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redeemed_at INTEGER NOT NULL,
    UNIQUE (code, user_id)
);
CREATE INDEX ix_promo_redemptions_user ON promo_redemptions (user_id);
CREATE INDEX ix_promo_redemptions_at ON promo_redemptions (redeemed_at);

CREATE TABLE payments (
    id                         INTEGER PRIMARY KEY,
    user_id                    INTEGER NOT NULL REFERENCES users(id),
    plan                       TEXT NOT NULL,
    days                       INTEGER NOT NULL,
    currency                   TEXT NOT NULL,
    amount                     INTEGER NOT NULL,
    telegram_payment_charge_id TEXT NOT NULL UNIQUE,
    provider_payment_charge_id TEXT,
    payload                    TEXT NOT NULL,
    created_at                 INTEGER NOT NULL
);
CREATE INDEX ix_payments_created ON payments (created_at);
CREATE INDEX ix_payments_user ON payments (user_id);

CREATE TABLE markets (
    source         TEXT NOT NULL,                        -- paper, bybit, binance, okx
    symbol         TEXT NOT NULL,                        -- unified: BTC/USDT:USDT
    base           TEXT NOT NULL,
    quote          TEXT NOT NULL,
    settle         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('trading','halted','delisted')),
    is_new         INTEGER NOT NULL DEFAULT 0,
    listed_at      INTEGER NOT NULL,
    delisted_at    INTEGER,
    tick_size      TEXT NOT NULL,
    lot_size       TEXT NOT NULL,
    min_qty        TEXT NOT NULL,
    min_notional   TEXT NOT NULL,
    max_leverage   INTEGER NOT NULL,
    last_price     REAL,
    volume_24h     REAL,
    change_24h_pct REAL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (source, symbol)
) WITHOUT ROWID;
CREATE INDEX ix_markets_status ON markets (source, status);
CREATE INDEX ix_markets_new ON markets (source, listed_at) WHERE is_new = 1;

CREATE TABLE market_history (
    id         INTEGER PRIMARY KEY,
    source     TEXT NOT NULL,
    symbol     TEXT NOT NULL,
    event      TEXT NOT NULL CHECK (event IN ('listed','delisted','status')),
    old_status TEXT,
    new_status TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX ix_market_history_symbol ON market_history (symbol, at);
CREATE INDEX ix_market_history_at ON market_history (at);

CREATE TABLE signals (
    id         INTEGER PRIMARY KEY,
    source     TEXT NOT NULL,
    symbol     TEXT NOT NULL,
    side       TEXT NOT NULL CHECK (side IN ('long','short')),
    score      REAL NOT NULL,
    price      TEXT NOT NULL,
    leverage   INTEGER NOT NULL,
    tp_pct     TEXT NOT NULL,
    sl_pct     TEXT NOT NULL,
    reasons    TEXT NOT NULL,                            -- JSON array of human reasons
    created_at INTEGER NOT NULL
);
CREATE INDEX ix_signals_symbol_side_ts ON signals (symbol, side, created_at DESC);
CREATE INDEX ix_signals_created ON signals (created_at);

CREATE TABLE order_intents (
    client_order_id   TEXT PRIMARY KEY,
    user_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    exchange          TEXT NOT NULL,
    account_type      TEXT NOT NULL,
    symbol            TEXT NOT NULL,
    side              TEXT NOT NULL CHECK (side IN ('buy','sell')),
    order_type        TEXT NOT NULL CHECK (order_type IN ('market','limit')),
    qty               TEXT NOT NULL,
    price             TEXT,
    reduce_only       INTEGER NOT NULL DEFAULT 0,
    leverage          INTEGER,
    take_profit       TEXT,
    stop_loss         TEXT,
    origin            TEXT NOT NULL,                     -- manual, auto, close, expiry
    signal_id         INTEGER REFERENCES signals(id),
    -- draft (awaiting Confirm) → pending (recorded, not yet sent) → sent → open | filled |
    -- cancelled | rejected; unknown while an outcome is being resolved; expired drafts
    status            TEXT NOT NULL,
    exchange_order_id TEXT,
    filled_qty        TEXT,
    avg_price         TEXT,
    fee               TEXT,
    error             TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    expires_at        INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ix_order_intents_user ON order_intents (user_id, created_at);
CREATE INDEX ix_order_intents_unresolved ON order_intents (updated_at)
    WHERE status IN ('pending','sent','unknown');
CREATE INDEX ix_order_intents_signal ON order_intents (signal_id) WHERE signal_id IS NOT NULL;

CREATE TABLE executions (
    id              INTEGER PRIMARY KEY,
    signal_id       INTEGER NOT NULL REFERENCES signals(id),
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status          TEXT NOT NULL CHECK (status IN ('filled','placed','skipped','failed')),
    reason          TEXT,
    client_order_id TEXT,
    signal_price    TEXT,
    fill_price      TEXT,
    latency_ms      REAL,
    at              INTEGER NOT NULL,
    UNIQUE (signal_id, user_id)
);
CREATE INDEX ix_executions_at ON executions (at);

CREATE TABLE pending_limit_orders (
    id                INTEGER PRIMARY KEY,
    user_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    exchange          TEXT NOT NULL,
    account_type      TEXT NOT NULL,
    symbol            TEXT NOT NULL,
    side              TEXT NOT NULL,
    strategy          TEXT NOT NULL DEFAULT 'manual',
    client_order_id   TEXT NOT NULL UNIQUE,
    exchange_order_id TEXT,
    price             TEXT NOT NULL,
    qty               TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'open',
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL
);
CREATE INDEX ix_pending_limit_symbol ON pending_limit_orders (symbol);
CREATE INDEX ix_pending_limit_user_strategy ON pending_limit_orders (user_id, strategy);
CREATE INDEX ix_pending_limit_expiry ON pending_limit_orders (expires_at) WHERE status = 'open';

CREATE TABLE active_positions (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    exchange     TEXT NOT NULL,
    account_type TEXT NOT NULL,
    symbol       TEXT NOT NULL,
    side         TEXT NOT NULL CHECK (side IN ('long','short')),
    qty          TEXT NOT NULL,
    entry_price  TEXT NOT NULL,
    leverage     INTEGER NOT NULL,
    take_profit  TEXT,
    stop_loss    TEXT,
    liq_price    TEXT,
    origin       TEXT NOT NULL DEFAULT 'manual',
    signal_id    INTEGER REFERENCES signals(id),
    opened_at    INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (user_id, exchange, account_type, symbol)
);
CREATE INDEX ix_active_positions_symbol ON active_positions (symbol);
CREATE INDEX ix_active_positions_user ON active_positions (user_id, account_type);

CREATE TABLE trade_logs (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    exchange     TEXT NOT NULL,
    account_type TEXT NOT NULL,
    symbol       TEXT NOT NULL,
    side         TEXT NOT NULL CHECK (side IN ('long','short')),
    qty          TEXT NOT NULL,
    entry_price  TEXT NOT NULL,
    exit_price   TEXT NOT NULL,
    notional     REAL NOT NULL,
    pnl          REAL NOT NULL,                          -- realised, net of fees
    fee          REAL NOT NULL DEFAULT 0,
    leverage     INTEGER,
    origin       TEXT NOT NULL DEFAULT 'manual',
    signal_id    INTEGER REFERENCES signals(id),
    close_reason TEXT,
    entry_ts     INTEGER NOT NULL,
    exit_ts      INTEGER NOT NULL
);
CREATE INDEX ix_trade_logs_user_symbol ON trade_logs (user_id, symbol);
CREATE INDEX ix_trade_logs_entry_ts ON trade_logs (entry_ts);
CREATE INDEX ix_trade_logs_user_exit ON trade_logs (user_id, exit_ts);
CREATE INDEX ix_trade_logs_exit ON trade_logs (exit_ts);

CREATE TABLE broadcasts (
    id                  INTEGER PRIMARY KEY,
    admin_id            INTEGER NOT NULL,
    text                TEXT NOT NULL,
    status              TEXT NOT NULL DEFAULT 'queued',  -- draft, queued, sending, done, cancelled
    total               INTEGER NOT NULL DEFAULT 0,
    progress_chat_id    INTEGER,
    progress_message_id INTEGER,
    created_at          INTEGER NOT NULL,
    finished_at         INTEGER
);

CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY,
    dedup_key       TEXT NOT NULL UNIQUE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    chat_id         INTEGER NOT NULL,
    kind            TEXT NOT NULL,                       -- fill, stop, signal, report, broadcast, system
    priority        INTEGER NOT NULL,                    -- 0 first
    payload         TEXT NOT NULL,                       -- JSON: text, buttons, silent
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending','sending','sent','dead','dropped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_at      INTEGER,
    sent_at         INTEGER,
    last_error      TEXT,
    broadcast_id    INTEGER REFERENCES broadcasts(id),
    signal_id       INTEGER REFERENCES signals(id),
    created_at      INTEGER NOT NULL
);
CREATE INDEX ix_notifications_due ON notifications (priority, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX ix_notifications_sending ON notifications (claimed_at) WHERE status = 'sending';
CREATE INDEX ix_notifications_user ON notifications (user_id, status);
CREATE INDEX ix_notifications_broadcast ON notifications (broadcast_id, status)
    WHERE broadcast_id IS NOT NULL;
CREATE INDEX ix_notifications_dead ON notifications (created_at) WHERE status = 'dead';

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor_id INTEGER,                                    -- NULL for the system itself
    action   TEXT NOT NULL,
    target   TEXT,
    details  TEXT NOT NULL DEFAULT '{}',                 -- JSON
    ok       INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX ix_audit_log_at ON audit_log (at);
CREATE INDEX ix_audit_log_actor ON audit_log (actor_id, at);
CREATE INDEX ix_audit_log_action ON audit_log (action, at);

-- The paper exchange's ledger: one account per user, exact Decimal text throughout.
CREATE TABLE paper_accounts (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL UNIQUE,
    balance    TEXT NOT NULL,                            -- wallet balance in USDT
    created_at INTEGER NOT NULL,
    reset_at   INTEGER
);

CREATE TABLE paper_orders (
    id              TEXT PRIMARY KEY,                    -- the paper exchange's order id
    account_id      INTEGER NOT NULL REFERENCES paper_accounts(id) ON DELETE CASCADE,
    client_order_id TEXT,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL CHECK (side IN ('buy','sell')),
    order_type      TEXT NOT NULL CHECK (order_type IN ('market','limit')),
    qty             TEXT NOT NULL,
    price           TEXT,
    reduce_only     INTEGER NOT NULL DEFAULT 0,
    take_profit     TEXT,
    stop_loss       TEXT,
    status          TEXT NOT NULL,                       -- open, filled, cancelled, rejected
    filled_qty      TEXT NOT NULL DEFAULT '0',
    avg_price       TEXT,
    fee             TEXT NOT NULL DEFAULT '0',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (account_id, client_order_id)
) WITHOUT ROWID;
CREATE INDEX ix_paper_orders_account ON paper_orders (account_id, status);
CREATE INDEX ix_paper_orders_open_symbol ON paper_orders (symbol) WHERE status = 'open';

CREATE TABLE paper_positions (
    account_id    INTEGER NOT NULL REFERENCES paper_accounts(id) ON DELETE CASCADE,
    symbol        TEXT NOT NULL,
    side          TEXT NOT NULL CHECK (side IN ('long','short')),
    qty           TEXT NOT NULL,
    entry_price   TEXT NOT NULL,
    leverage      INTEGER NOT NULL,
    margin        TEXT NOT NULL,
    liq_price     TEXT,
    take_profit   TEXT,
    stop_loss     TEXT,
    realised_pnl  TEXT NOT NULL DEFAULT '0',
    opened_at     INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (account_id, symbol)
) WITHOUT ROWID;
CREATE INDEX ix_paper_positions_symbol ON paper_positions (symbol);

CREATE TABLE paper_leverage (
    account_id INTEGER NOT NULL REFERENCES paper_accounts(id) ON DELETE CASCADE,
    symbol     TEXT NOT NULL,
    leverage   INTEGER NOT NULL,
    PRIMARY KEY (account_id, symbol)
) WITHOUT ROWID;

CREATE TABLE paper_fills (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES paper_accounts(id) ON DELETE CASCADE,
    order_id     TEXT NOT NULL,
    symbol       TEXT NOT NULL,
    side         TEXT NOT NULL,
    qty          TEXT NOT NULL,
    price        TEXT NOT NULL,
    fee          TEXT NOT NULL,
    realised_pnl TEXT NOT NULL DEFAULT '0',
    is_maker     INTEGER NOT NULL DEFAULT 0,
    at           INTEGER NOT NULL
);
CREATE INDEX ix_paper_fills_account ON paper_fills (account_id, at);
CREATE INDEX ix_paper_fills_order ON paper_fills (order_id);
