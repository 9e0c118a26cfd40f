-- +goose Up

-- How the conversations of one page are handled. Durations are
-- milliseconds; an auto-close duration of 0 means never.
CREATE TABLE workstreams (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    page_ref              TEXT NOT NULL REFERENCES pages (id),
    language              TEXT NOT NULL,
    human_agent_tag       BOOLEAN NOT NULL,
    customer_attachments  BOOLEAN NOT NULL,
    agent_attachments     BOOLEAN NOT NULL,
    auto_close_open_ms    BIGINT NOT NULL CHECK (auto_close_open_ms >= 0),
    auto_close_active_ms  BIGINT NOT NULL CHECK (auto_close_active_ms >= 0),
    auto_close_waiting_ms BIGINT NOT NULL CHECK (auto_close_waiting_ms >= 0),
    wrap_up_ms            BIGINT NOT NULL CHECK (wrap_up_ms >= 0),
    -- JSON object: trigger -> {"enabled": bool, "text": string}.
    automated_messages    TEXT NOT NULL DEFAULT '{}',
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    deleted_at            TIMESTAMP
);

-- A page has at most one live workstream: the workflow must find one answer.
CREATE UNIQUE INDEX workstreams_page_ref ON workstreams (page_ref)
    WHERE deleted_at IS NULL;

-- The people who answer customers; their API keys have the agent role.
CREATE TABLE agents (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL, -- lowercased
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);

CREATE UNIQUE INDEX agents_email ON agents (email) WHERE deleted_at IS NULL;

-- How an outbound message goes through the Send API: messaging_type
-- (RESPONSE, UPDATE, MESSAGE_TAG) and tag (HUMAN_AGENT); '' when inbound.
ALTER TABLE messages ADD COLUMN messaging_type TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN tag TEXT NOT NULL DEFAULT '';

-- Why a conversation closed (agent, auto-close, ...).
ALTER TABLE conversations ADD COLUMN closed_reason TEXT NOT NULL DEFAULT '';

-- An agent's conversations, newest first.
CREATE INDEX conversations_agent ON conversations (agent_id, started_at, id);

-- +goose Down
DROP INDEX conversations_agent;
ALTER TABLE conversations DROP COLUMN closed_reason;
ALTER TABLE messages DROP COLUMN tag;
ALTER TABLE messages DROP COLUMN messaging_type;
DROP TABLE agents;
DROP TABLE workstreams;
