-- +goose Up

-- Supervisor metrics (issue 10): what happened to each conversation, as it
-- happened, kept for reporting (the live events table is pruned). Written
-- in the transaction of the change it records: queued, offered, accepted,
-- assigned, transfer (out of queue_id), first_reply, ended, closed,
-- abandoned. (conversation_id, kind, ref) is unique so that a retried
-- writer records an event once: ref is the routing attempt, the offer, the
-- assignment, or '' for the once-per-conversation kinds.
CREATE TABLE conversation_events (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    kind            TEXT NOT NULL,
    ref             TEXT NOT NULL DEFAULT '',
    queue_id        TEXT NOT NULL DEFAULT '',
    workstream_id   TEXT NOT NULL DEFAULT '',
    agent_id        TEXT NOT NULL DEFAULT '',
    waited_ms       BIGINT,                   -- answers from a queue, abandons: the wait in the queue
    detail          TEXT NOT NULL DEFAULT '', -- how (assigned), where to (transfer), the reason (closed)
    at              TIMESTAMP NOT NULL
);

CREATE UNIQUE INDEX conversation_events_once ON conversation_events (conversation_id, kind, ref);
CREATE INDEX conversation_events_queue ON conversation_events (queue_id, at);

-- A queue's service-level threshold: answered within it counts as in service level.
ALTER TABLE queues ADD COLUMN service_level_seconds INTEGER NOT NULL DEFAULT 60;

-- +goose Down
ALTER TABLE queues DROP COLUMN service_level_seconds;
DROP INDEX conversation_events_queue;
DROP INDEX conversation_events_once;
DROP TABLE conversation_events;
