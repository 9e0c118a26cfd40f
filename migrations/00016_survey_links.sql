-- +goose Up

-- Post-conversation surveys as a link (issue 9): the conversation's token is
-- kept as its SHA-256 only (the link is the customer's key), and the link
-- expires. A workstream may also survey conversations that auto-close.
ALTER TABLE workstream_post_surveys ADD COLUMN on_auto_close BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE surveys ADD COLUMN token_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE surveys ADD COLUMN expires_at TIMESTAMP NULL;
CREATE UNIQUE INDEX surveys_token_hash ON surveys (token_hash) WHERE token_hash <> '';

-- +goose Down
DROP INDEX surveys_token_hash;
ALTER TABLE surveys DROP COLUMN expires_at;
ALTER TABLE surveys DROP COLUMN token_hash;
ALTER TABLE workstream_post_surveys DROP COLUMN on_auto_close;
