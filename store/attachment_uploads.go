package store

import (
	"context"
	"time"
)

// AttachmentUploadMaxAge is how long an uploaded file's attachment_id is
// reused: Meta's expire after 90 days; 80 leaves room for the clocks and
// for a send scheduled just before the limit.
const AttachmentUploadMaxAge = 80 * 24 * time.Hour

// AttachmentUpload is a file Parley uploaded for a Facebook page, as the
// Send API's attachment type, with the attachment_id Meta gave.
type AttachmentUpload struct {
	FacebookPageID string    `db:"facebook_page_id"`
	SHA256         string    `db:"sha256"` // hex, of the file's bytes
	Type           string    `db:"type"`   // image | audio | video | file
	AttachmentID   string    `db:"attachment_id"`
	UploadedAt     time.Time `db:"uploaded_at"`
}

func checkUploadKey(facebookPageID, sha256, typ string) error {
	if facebookPageID == "" || sha256 == "" || typ == "" {
		return invalidf("an uploaded file is known by its Facebook page, SHA-256 and type")
	}
	return nil
}

// AttachmentUploadFor returns the attachment_id of the file (page, SHA-256,
// type) when one younger than AttachmentUploadMaxAge is known; ErrNotFound
// otherwise (never uploaded, or too old to trust).
func (s *Store) AttachmentUploadFor(ctx context.Context, facebookPageID, sha256, typ string) (_ AttachmentUpload, err error) {
	defer wrap(&err, "store.AttachmentUploadFor(%s, %s, %s)", facebookPageID, sha256, typ)
	if err := checkUploadKey(facebookPageID, sha256, typ); err != nil {
		return AttachmentUpload{}, err
	}
	var u AttachmentUpload
	if err := get(ctx, s.db, &u, `SELECT facebook_page_id, sha256, type, attachment_id, uploaded_at FROM attachment_uploads
		WHERE facebook_page_id = ? AND sha256 = ? AND type = ?`, facebookPageID, sha256, typ); err != nil {
		return AttachmentUpload{}, err
	}
	u.UploadedAt = u.UploadedAt.UTC()
	// Compared here rather than in SQL: SQLite keeps times as text.
	if s.clock().Sub(u.UploadedAt) >= AttachmentUploadMaxAge {
		return AttachmentUpload{}, ErrNotFound
	}
	return u, nil
}

// SaveAttachmentUpload records the attachment_id Meta gave for the file,
// replacing an older one.
func (s *Store) SaveAttachmentUpload(ctx context.Context, facebookPageID, sha256, typ, attachmentID string) (err error) {
	defer wrap(&err, "store.SaveAttachmentUpload(%s, %s, %s)", facebookPageID, sha256, typ)
	if err := checkUploadKey(facebookPageID, sha256, typ); err != nil {
		return err
	}
	if attachmentID == "" {
		return invalidf("no attachment_id")
	}
	_, err = exec(ctx, s.db, `INSERT INTO attachment_uploads (facebook_page_id, sha256, type, attachment_id, uploaded_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (facebook_page_id, sha256, type) DO UPDATE SET attachment_id = excluded.attachment_id, uploaded_at = excluded.uploaded_at`,
		facebookPageID, sha256, typ, attachmentID, s.timestamp(s.clock()))
	return err
}

// ForgetAttachmentUpload drops the file's attachment_id when it is still
// attachmentID (Meta refused it); a newer upload, saved meanwhile by
// another send, is kept.
func (s *Store) ForgetAttachmentUpload(ctx context.Context, facebookPageID, sha256, typ, attachmentID string) (err error) {
	defer wrap(&err, "store.ForgetAttachmentUpload(%s, %s, %s)", facebookPageID, sha256, typ)
	if err := checkUploadKey(facebookPageID, sha256, typ); err != nil {
		return err
	}
	_, err = exec(ctx, s.db, `DELETE FROM attachment_uploads WHERE facebook_page_id = ? AND sha256 = ? AND type = ? AND attachment_id = ?`,
		facebookPageID, sha256, typ, attachmentID)
	return err
}
