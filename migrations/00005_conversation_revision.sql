-- +goose Up

-- The workflow numbers each save of a conversation: the store keeps the
-- highest, so that a retried older save never overwrites a newer state.
ALTER TABLE conversations ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE conversations DROP COLUMN revision;
