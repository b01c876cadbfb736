-- /users NAME matches the start of a username, first or last name in any case: one NOCASE
-- index per column lets the search read three index ranges instead of every user.
CREATE INDEX ix_users_first_name ON users (first_name COLLATE NOCASE);
CREATE INDEX ix_users_last_name ON users (last_name COLLATE NOCASE);

-- Whether signals come is the subscription alone; notify_signals says how they sound (on or
-- silent). A signals setting of 'off' from before becomes an unsubscription.
UPDATE users SET signals_subscribed = 0, notify_signals = 'on' WHERE notify_signals = 'off';
