-- +goose Up

-- Data keys that encrypt what Temporal keeps of Parley's workflows (inputs,
-- signals, activity arguments and results, details): one key per customer
-- (Facebook page + PSID), so that erasing a customer's key leaves their
-- conversations in Temporal unreadable, and one system key (kind 'system',
-- empty page and PSID) for every other workflow. Each key is sealed with
-- Parley's master key (PARLEY_ENCRYPTION_KEY); a key is never updated, only
-- erased (the row deleted).
CREATE TABLE customer_keys (
    key_id           TEXT PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('customer', 'system')),
    facebook_page_id TEXT NOT NULL,
    psid             TEXT NOT NULL,
    wrapped_key      TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    CHECK ((kind = 'system' AND facebook_page_id = '' AND psid = '')
        OR (kind = 'customer' AND facebook_page_id <> '' AND psid <> '')),
    UNIQUE (facebook_page_id, psid)
);

-- +goose Down
-- Dropping the keys makes every payload encrypted with them unreadable.
DROP TABLE customer_keys;
