-- +goose Up

-- A Meta app (app id + app secret) that Parley uses for a set of pages.
CREATE TABLE accounts (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    channel           TEXT NOT NULL DEFAULT 'facebook',
    app_id            TEXT NOT NULL,
    -- secrets.Box sealed value, aad "accounts/<id>/app_secret".
    app_secret_sealed TEXT NOT NULL,
    app_secret_hint   TEXT NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    deleted_at        TIMESTAMP
);

-- A Facebook page connected in an account.
CREATE TABLE pages (
    id                      TEXT PRIMARY KEY,
    account_id              TEXT NOT NULL REFERENCES accounts (id),
    name                    TEXT NOT NULL,
    page_id                 TEXT NOT NULL, -- Facebook's page id
    -- secrets.Box sealed value, aad "pages/<id>/access_token".
    access_token_sealed     TEXT NOT NULL,
    token_hint              TEXT NOT NULL,
    -- NULL (not '') when another account owns the Facebook page: the partial
    -- unique index below only counts owners.
    callback_key            TEXT,
    verify_token            TEXT,
    duplicate_of_account_id TEXT REFERENCES accounts (id),
    webhook_verified_at     TIMESTAMP,
    token_checked_at        TIMESTAMP,
    token_valid             BOOLEAN,
    token_error             TEXT NOT NULL DEFAULT '',
    token_expires_at        TIMESTAMP,
    subscribed_at           TIMESTAMP,
    last_error              TEXT NOT NULL DEFAULT '',
    last_webhook_at         TIMESTAMP,
    created_at              TIMESTAMP NOT NULL,
    updated_at              TIMESTAMP NOT NULL,
    deleted_at              TIMESTAMP,
    CHECK ((callback_key IS NULL AND verify_token IS NULL AND duplicate_of_account_id IS NOT NULL)
        OR (callback_key IS NOT NULL AND verify_token IS NOT NULL AND duplicate_of_account_id IS NULL))
);

-- One live owner per Facebook page: webhooks for a page id go to one place.
CREATE UNIQUE INDEX pages_owner_page_id ON pages (page_id)
    WHERE deleted_at IS NULL AND callback_key IS NOT NULL;
-- An account connects a Facebook page at most once.
CREATE UNIQUE INDEX pages_account_page_id ON pages (account_id, page_id)
    WHERE deleted_at IS NULL;
-- Webhook routing; NULLs (duplicates) do not collide.
CREATE UNIQUE INDEX pages_callback_key ON pages (callback_key);

-- One Messenger conversation: one run of the conversation workflow.
CREATE TABLE conversations (
    id                       TEXT PRIMARY KEY,
    page_ref                 TEXT NOT NULL REFERENCES pages (id),
    account_id               TEXT NOT NULL REFERENCES accounts (id),
    facebook_page_id         TEXT NOT NULL,
    psid                     TEXT NOT NULL,
    workflow_id              TEXT NOT NULL DEFAULT '',
    state                    TEXT NOT NULL,
    agent_id                 TEXT NOT NULL DEFAULT '',
    previous_conversation_id TEXT NOT NULL DEFAULT '',
    message_count            INTEGER NOT NULL DEFAULT 0,
    last_customer_message_at TIMESTAMP,
    closed_at                TIMESTAMP,
    started_at               TIMESTAMP NOT NULL,
    updated_at               TIMESTAMP NOT NULL
);

CREATE INDEX conversations_started ON conversations (started_at, id);
CREATE INDEX conversations_customer ON conversations (facebook_page_id, psid, started_at, id);
CREATE INDEX conversations_page_ref ON conversations (page_ref, started_at, id);

-- The transcript.
CREATE TABLE messages (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations (id),
    seq              BIGINT NOT NULL,
    direction        TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    sender           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    mid              TEXT NOT NULL DEFAULT '',
    -- NULL: no deduplication (NULLs never collide in a unique index).
    dedupe_key       TEXT,
    facebook_page_id TEXT NOT NULL,
    psid             TEXT NOT NULL,
    text             TEXT NOT NULL DEFAULT '',
    attachments      TEXT,
    payload          TEXT,
    status           TEXT NOT NULL,
    error_code       INTEGER NOT NULL DEFAULT 0,
    error_subcode    INTEGER NOT NULL DEFAULT 0,
    error_reason     TEXT NOT NULL DEFAULT '',
    agent_id         TEXT NOT NULL DEFAULT '',
    sent_at          TIMESTAMP NOT NULL,
    created_at       TIMESTAMP NOT NULL
);

-- Meta retries webhooks: an event is recorded once per customer.
CREATE UNIQUE INDEX messages_dedupe ON messages (facebook_page_id, psid, dedupe_key);
CREATE UNIQUE INDEX messages_conversation_seq ON messages (conversation_id, seq);
-- Delivery and read watermarks.
CREATE INDEX messages_outbound ON messages (facebook_page_id, psid, sent_at)
    WHERE direction = 'out';

-- Bearer API keys; only their SHA-256 is stored.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    agent_id     TEXT NOT NULL DEFAULT '',
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP
);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE pages;
DROP TABLE accounts;
