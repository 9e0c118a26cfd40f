-- +goose Up

-- Thread control (issue 10): whether a customer's messages to another app
-- of the page (standby) open work for agents.
ALTER TABLE workstreams ADD COLUMN standby_opens_conversations BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE workstreams DROP COLUMN standby_opens_conversations;
