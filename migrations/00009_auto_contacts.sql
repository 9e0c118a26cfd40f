-- +goose Up

-- A workstream may create a contact for each named customer not linked to
-- one yet (issue 8).
ALTER TABLE workstreams ADD COLUMN auto_create_contacts BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE workstreams DROP COLUMN auto_create_contacts;
