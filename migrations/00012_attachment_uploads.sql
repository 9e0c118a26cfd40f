-- +goose Up

-- Files Parley uploaded to Meta with the Attachment Upload API, so that the
-- same file sent again from the same Facebook page goes by its reusable
-- attachment_id instead of being uploaded again (issue 8). Meta's ids expire
-- after 90 days: an older row is not reused (store.AttachmentUploadMaxAge)
-- and the next upload replaces it. Only hashes: the files themselves are in
-- the blob store, under each customer.
CREATE TABLE attachment_uploads (
    facebook_page_id TEXT NOT NULL,
    sha256           TEXT NOT NULL,
    type             TEXT NOT NULL,
    attachment_id    TEXT NOT NULL,
    uploaded_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (facebook_page_id, sha256, type)
);

-- +goose Down
DROP TABLE attachment_uploads;
