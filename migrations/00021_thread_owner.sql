-- +goose Up

-- Thread control (issue 10): the app that controls the conversation's
-- Messenger thread when it is not Parley ('' while Parley has it), and
-- since when, so that the API's reply mode tells an agent before they
-- write that nothing can be sent.
ALTER TABLE conversations ADD COLUMN thread_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN thread_owner_since TIMESTAMP;

-- +goose Down
ALTER TABLE conversations DROP COLUMN thread_owner_since;
ALTER TABLE conversations DROP COLUMN thread_owner;
