-- +goose Up

-- A file or other attachment of a message, in or out. Meta's URLs expire
-- and are never kept: a file Parley keeps is in the blob store under
-- blob_key, served by Parley's own URL. Stickers, fallbacks, shares and
-- locations are recorded for what they are (type, title, sticker id).
CREATE TABLE attachments (
    id               TEXT PRIMARY KEY,
    message_id       TEXT NOT NULL REFERENCES messages (id),
    conversation_id  TEXT NOT NULL REFERENCES conversations (id),
    facebook_page_id TEXT NOT NULL,
    psid             TEXT NOT NULL,
    position         INTEGER NOT NULL,
    direction        TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    type             TEXT NOT NULL,
    -- pending: to download; kept: in the blob store; refused: the
    -- workstream does not accept it; failed: could not be kept (note says
    -- why); shown: not a file (fallback, share, location), nothing to keep.
    status           TEXT NOT NULL CHECK (status IN ('pending', 'kept', 'refused', 'failed', 'shown')),
    content_type     TEXT NOT NULL DEFAULT '',
    size             BIGINT NOT NULL DEFAULT 0,
    sha256           TEXT NOT NULL DEFAULT '',
    blob_key         TEXT NOT NULL DEFAULT '',
    filename         TEXT NOT NULL DEFAULT '',
    title            TEXT NOT NULL DEFAULT '',
    sticker_id       BIGINT NOT NULL DEFAULT 0,
    note             TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_id, position);
CREATE INDEX attachments_customer ON attachments (facebook_page_id, psid);

-- +goose Down
DROP TABLE attachments;
