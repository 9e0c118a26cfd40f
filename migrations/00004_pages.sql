-- +goose Up

-- Meta has one callback URL per app: its verification concerns every page
-- of the account, whichever page's URL was pasted.
ALTER TABLE accounts ADD COLUMN webhook_verified_at TIMESTAMP;
UPDATE accounts SET webhook_verified_at =
    (SELECT MAX(webhook_verified_at) FROM pages WHERE pages.account_id = accounts.id);

-- A Send API refusal caused by the page itself (restricted, policy block,
-- app not live): shown on the page until an admin checks it again.
ALTER TABLE pages ADD COLUMN flag_code INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pages ADD COLUMN flag_subcode INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pages ADD COLUMN flag_class TEXT NOT NULL DEFAULT '';
ALTER TABLE pages ADD COLUMN flag_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE pages ADD COLUMN flagged_at TIMESTAMP;

-- Whether the token can read the thread's messages (pages_read_engagement
-- and pages_manage_metadata): NULL until checked.
ALTER TABLE pages ADD COLUMN thread_lookup BOOLEAN;

-- +goose Down
ALTER TABLE pages DROP COLUMN thread_lookup;
ALTER TABLE pages DROP COLUMN flagged_at;
ALTER TABLE pages DROP COLUMN flag_reason;
ALTER TABLE pages DROP COLUMN flag_class;
ALTER TABLE pages DROP COLUMN flag_subcode;
ALTER TABLE pages DROP COLUMN flag_code;
ALTER TABLE accounts DROP COLUMN webhook_verified_at;
