package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Attachment statuses.
const (
	// AttachmentPending: a file to download from Meta's (expiring) URL.
	AttachmentPending = "pending"
	// AttachmentKept: the file is in the blob store under BlobKey.
	AttachmentKept = "kept"
	// AttachmentRefused: the workstream does not accept customer files;
	// nothing downloaded, no URL kept.
	AttachmentRefused = "refused"
	// AttachmentFailed: the file could not be kept; Note says why.
	AttachmentFailed = "failed"
	// AttachmentShown: not a file (fallback, share, location...): recorded
	// for what it is.
	AttachmentShown = "shown"
)

var attachmentStatuses = []string{AttachmentPending, AttachmentKept, AttachmentRefused, AttachmentFailed, AttachmentShown}

// Attachment is one attachment of a message. Meta's URL is never stored.
type Attachment struct {
	ID             string
	MessageID      string
	ConversationID string
	FacebookPageID string
	PSID           string
	Position       int    // order within the message
	Direction      string // in | out
	Type           string // Meta's: image, audio, video, file, sticker, fallback, share, location, reel...
	Status         string
	ContentType    string
	Size           int64
	SHA256         string // hex, of the kept file
	BlobKey        string
	Filename       string
	Title          string
	StickerID      int64
	Note           string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

type attachmentRow struct {
	ID             string    `db:"id"`
	MessageID      string    `db:"message_id"`
	ConversationID string    `db:"conversation_id"`
	FacebookPageID string    `db:"facebook_page_id"`
	PSID           string    `db:"psid"`
	Position       int       `db:"position"`
	Direction      string    `db:"direction"`
	Type           string    `db:"type"`
	Status         string    `db:"status"`
	ContentType    string    `db:"content_type"`
	Size           int64     `db:"size"`
	SHA256         string    `db:"sha256"`
	BlobKey        string    `db:"blob_key"`
	Filename       string    `db:"filename"`
	Title          string    `db:"title"`
	StickerID      int64     `db:"sticker_id"`
	Note           string    `db:"note"`
	CreatedAt      time.Time `db:"created_at"`
	UpdatedAt      time.Time `db:"updated_at"`
}

const attachmentColumns = `id, message_id, conversation_id, facebook_page_id, psid, position, direction, type, status,
	content_type, size, sha256, blob_key, filename, title, sticker_id, note, created_at, updated_at`

func (r attachmentRow) attachment() Attachment {
	a := Attachment(r)
	a.CreatedAt, a.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return a
}

// InsertAttachments records attachments of messages already recorded; one
// whose message is not (Meta's redelivery, recorded under its first id) is
// skipped. Idempotent: an id already there is left as it is (a retry).
func (s *Store) InsertAttachments(ctx context.Context, as []Attachment) (err error) {
	defer wrap(&err, "store.InsertAttachments(%d)", len(as))
	if len(as) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.insertAttachments(ctx, tx, as) })
}

// insertAttachments is InsertAttachments inside the caller's transaction.
func (s *Store) insertAttachments(ctx context.Context, tx *sqlx.Tx, as []Attachment) error {
	for _, a := range as {
		if a.ID == "" || a.MessageID == "" || a.ConversationID == "" || a.Type == "" {
			return invalidf("an attachment needs an id, a message, a conversation and a type")
		}
		if !slices.Contains(attachmentStatuses, a.Status) {
			return invalidf("attachment status %q is not one of %s", a.Status, strings.Join(attachmentStatuses, ", "))
		}
		if !slices.Contains(directions, a.Direction) {
			return invalidf("attachment direction %q is not in or out", a.Direction)
		}
		now := s.timestamp(time.Now())
		var n int
		if err := get(ctx, tx, &n, `SELECT COUNT(*) FROM messages WHERE id = ? AND conversation_id = ?`, a.MessageID, a.ConversationID); err != nil {
			return fmt.Errorf("message of attachment %s: %w", a.ID, err)
		}
		if n == 0 {
			continue
		}
		if _, err := exec(ctx, tx, `INSERT INTO attachments (`+attachmentColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`,
			a.ID, a.MessageID, a.ConversationID, a.FacebookPageID, a.PSID, a.Position, a.Direction, a.Type, a.Status,
			a.ContentType, a.Size, a.SHA256, a.BlobKey, a.Filename, a.Title, a.StickerID, a.Note, now, now); err != nil {
			return fmt.Errorf("attachment %s: %w", a.ID, err)
		}
	}
	return nil
}

// GetAttachment returns one attachment.
func (s *Store) GetAttachment(ctx context.Context, id string) (_ Attachment, err error) {
	defer wrap(&err, "store.GetAttachment(%s)", id)
	var r attachmentRow
	if err := get(ctx, s.db, &r, `SELECT `+attachmentColumns+` FROM attachments WHERE id = ?`, id); err != nil {
		return Attachment{}, err
	}
	return r.attachment(), nil
}

// AttachmentKeptAs is a file now in the blob store.
type AttachmentKeptAs struct {
	BlobKey, ContentType, SHA256, Filename string
	Size                                   int64
}

// KeepAttachment marks a pending attachment kept. It reports false when
// the attachment is no longer pending (kept by an earlier attempt, or
// erased): the caller then deletes what it stored.
func (s *Store) KeepAttachment(ctx context.Context, id string, k AttachmentKeptAs) (_ bool, err error) {
	defer wrap(&err, "store.KeepAttachment(%s)", id)
	n, err := exec(ctx, s.db, `UPDATE attachments SET status = 'kept', blob_key = ?, content_type = ?, sha256 = ?, size = ?,
			filename = CASE WHEN ? = '' THEN filename ELSE ? END, note = '', updated_at = ?
		WHERE id = ? AND status = 'pending'`,
		k.BlobKey, k.ContentType, k.SHA256, k.Size, k.Filename, k.Filename, s.timestamp(time.Now()), id)
	return n == 1, err
}

// FailAttachment marks a pending attachment failed, with why.
func (s *Store) FailAttachment(ctx context.Context, id, note string) (err error) {
	defer wrap(&err, "store.FailAttachment(%s)", id)
	_, err = exec(ctx, s.db, `UPDATE attachments SET status = 'failed', note = ?, updated_at = ? WHERE id = ? AND status = 'pending'`,
		note, s.timestamp(time.Now()), id)
	return err
}

// MessageAttachments returns the attachments of some messages of a
// conversation, by message id, in order.
func (s *Store) MessageAttachments(ctx context.Context, conversationID string, messageIDs []string) (_ map[string][]Attachment, err error) {
	defer wrap(&err, "store.MessageAttachments(%s)", conversationID)
	out := map[string][]Attachment{}
	for chunk := range slices.Chunk(messageIDs, 500) {
		query, args, err := sqlx.In(`SELECT `+attachmentColumns+` FROM attachments WHERE conversation_id = ? AND message_id IN (?)
			ORDER BY message_id, position`, conversationID, chunk)
		if err != nil {
			return nil, err
		}
		var rows []attachmentRow
		if err := list(ctx, s.db, &rows, query, args...); err != nil {
			return nil, err
		}
		for _, r := range rows {
			out[r.MessageID] = append(out[r.MessageID], r.attachment())
		}
	}
	return out, nil
}
