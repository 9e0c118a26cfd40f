-- +goose Up

-- The periodic page health check (issue 10): what it found beyond the
-- token's validity (expiring, unsubscribed, silent), the state last
-- alerted (an alert goes once per change), and a page's own silence
-- threshold (0: the default).
ALTER TABLE pages ADD COLUMN health_state TEXT NOT NULL DEFAULT '';
ALTER TABLE pages ADD COLUMN health_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE pages ADD COLUMN health_checked_at TIMESTAMP NULL;
ALTER TABLE pages ADD COLUMN alerted_state TEXT NOT NULL DEFAULT '';
ALTER TABLE pages ADD COLUMN silence_after_seconds BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE pages DROP COLUMN silence_after_seconds;
ALTER TABLE pages DROP COLUMN alerted_state;
ALTER TABLE pages DROP COLUMN health_checked_at;
ALTER TABLE pages DROP COLUMN health_reason;
ALTER TABLE pages DROP COLUMN health_state;
