-- +goose Up

-- A contact is a person the contact center knows (name, emails, phones,
-- an external reference, notes). Customers (page + PSID) link to at most
-- one contact; later conversations of a linked customer find it through
-- the link.
CREATE TABLE contacts (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    emails       TEXT NOT NULL DEFAULT '[]', -- JSON list, lowercased
    phones       TEXT NOT NULL DEFAULT '[]', -- JSON list, "+" and digits
    external_ref TEXT NOT NULL DEFAULT '',
    notes        TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    deleted_at   TIMESTAMP
);

CREATE TABLE contact_customers (
    page_ref   TEXT NOT NULL,
    psid       TEXT NOT NULL,
    contact_id TEXT NOT NULL REFERENCES contacts (id),
    linked_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (page_ref, psid)
);

CREATE INDEX contact_customers_contact ON contact_customers (contact_id);

-- +goose Down
DROP TABLE contact_customers;
DROP TABLE contacts;
