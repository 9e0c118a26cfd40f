-- +goose Up

-- Thread control (issue 10): the app that asked Parley for the thread
-- (request_thread_control) while the agent has not answered ('' when no
-- request is pending), so that the conversation shows it to an agent who
-- opens it after the live event.
ALTER TABLE conversations ADD COLUMN thread_requested_by TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE conversations DROP COLUMN thread_requested_by;
