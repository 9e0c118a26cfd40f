-- +goose Up

-- A customer is a person writing to a page (page + PSID). Its profile comes
-- from Meta's user profile API, which fails for many apps: the status says
-- whether the name is known, and a failed fetch waits for
-- next_profile_attempt_at before it is tried again.
CREATE TABLE customers (
    page_ref                TEXT NOT NULL,
    psid                    TEXT NOT NULL,
    first_name              TEXT NOT NULL DEFAULT '',
    last_name               TEXT NOT NULL DEFAULT '',
    picture_url             TEXT NOT NULL DEFAULT '',
    profile_status          TEXT NOT NULL DEFAULT 'unknown' CHECK (profile_status IN ('unknown', 'known', 'unavailable')),
    profile_error           TEXT NOT NULL DEFAULT '',
    profile_attempts        INTEGER NOT NULL DEFAULT 0,
    profile_fetched_at      TIMESTAMP,
    next_profile_attempt_at TIMESTAMP,
    created_at              TIMESTAMP NOT NULL,
    updated_at              TIMESTAMP NOT NULL,
    PRIMARY KEY (page_ref, psid)
);

-- +goose Down
DROP TABLE customers;
