-- +goose Up

-- The post-conversation survey of a workstream (issue 9), in its own table
-- so that it evolves apart from the workstream's other settings. No row:
-- no survey.
CREATE TABLE workstream_post_surveys (
    workstream_id    TEXT PRIMARY KEY REFERENCES workstreams (id) ON DELETE CASCADE,
    enabled          BOOLEAN NOT NULL,
    mode             TEXT NOT NULL,             -- in_chat
    timeout_seconds  BIGINT NOT NULL,           -- response time-out, per question
    question         TEXT NOT NULL,
    comment_prompt   TEXT NOT NULL,
    thanks           TEXT NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

-- One post-conversation survey per conversation: sent (waiting for the
-- rating), answered, timed_out, or not_sent with the reason. Agent, queue and
-- workstream are kept as they were when the conversation ended, for reports.
CREATE TABLE surveys (
    conversation_id  TEXT PRIMARY KEY,
    workstream_id    TEXT NOT NULL,
    queue_id         TEXT NOT NULL,
    agent_id         TEXT NOT NULL,
    mode             TEXT NOT NULL,
    status           TEXT NOT NULL,
    not_sent_reason  TEXT NOT NULL,
    rating           INTEGER NOT NULL,          -- 1-5; 0 until rated
    comment          TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    sent_at          TIMESTAMP NULL,
    answered_at      TIMESTAMP NULL
);
CREATE INDEX surveys_created_at ON surveys (created_at);

-- +goose Down
DROP TABLE surveys;
DROP TABLE workstream_post_surveys;
