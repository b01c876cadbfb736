-- /users NAME matches the start of a username, first or last name in any case: one NOCASE
-- index per column lets the search read three index ranges instead of every user.
CREATE INDEX ix_users_first_name ON users (first_name COLLATE NOCASE);
CREATE INDEX ix_users_last_name ON users (last_name COLLATE NOCASE);
