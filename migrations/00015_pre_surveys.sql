-- +goose Up

-- The pre-conversation survey of a workstream (issue 9). Questions are kept
-- as one JSON document: they are always read and written together.
CREATE TABLE workstream_pre_surveys (
    workstream_id             TEXT PRIMARY KEY REFERENCES workstreams (id) ON DELETE CASCADE,
    enabled                   BOOLEAN NOT NULL,
    questions                 TEXT NOT NULL,   -- JSON array of questions
    question_timeout_seconds  BIGINT NOT NULL, -- per question
    timeout_seconds           BIGINT NOT NULL, -- whole survey
    updated_at                TIMESTAMP NOT NULL
);

-- One pre-conversation survey per conversation, as the workflow last saved it.
CREATE TABLE pre_surveys (
    conversation_id  TEXT PRIMARY KEY,
    workstream_id    TEXT NOT NULL,
    status           TEXT NOT NULL,            -- asking, answered, timed_out, not_sent
    answers          TEXT NOT NULL,            -- JSON array of {question_id, question, answer}
    timed_out        BOOLEAN NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE pre_surveys;
DROP TABLE workstream_pre_surveys;
