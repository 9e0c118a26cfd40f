-- +goose Up

-- Meta's delivery and read watermarks per customer, kept (monotonic) so that
-- a message confirmed after its watermark arrived is marked at once.
CREATE TABLE customer_receipts (
    facebook_page_id    TEXT NOT NULL,
    psid                TEXT NOT NULL,
    delivered_watermark TIMESTAMP,
    read_watermark      TIMESTAMP,
    PRIMARY KEY (facebook_page_id, psid)
);

-- Meta's delivery.mids: messages delivered, kept for those Parley has not
-- confirmed yet (their mid is not known until then).
CREATE TABLE delivered_mids (
    facebook_page_id TEXT NOT NULL,
    psid             TEXT NOT NULL,
    mid              TEXT NOT NULL,
    PRIMARY KEY (facebook_page_id, psid, mid)
);

-- Meta's time of an outbound message (its echo's timestamp): watermarks
-- are compared with Meta's clock, not with Parley's.
ALTER TABLE messages ADD COLUMN meta_at TIMESTAMP;

-- +goose Down
ALTER TABLE messages DROP COLUMN meta_at;
DROP TABLE delivered_mids;
DROP TABLE customer_receipts;
