-- Licensing: the admin lists of ended licences and of promo codes read by index, newest
-- first, instead of scanning tables that only grow.
CREATE INDEX ix_user_licenses_ended ON user_licenses (end_at) WHERE active = 0;
CREATE INDEX ix_promo_codes_created ON promo_codes (created_at);
