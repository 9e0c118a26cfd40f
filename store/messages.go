package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// Message is one line of a conversation's transcript.
type Message struct {
	ID             string
	ConversationID string
	Seq            int64  // order assigned by the workflow, strictly increasing per conversation
	Direction      string // "in" (from the customer) | "out" (from the page, an agent or the system)
	Sender         string // "customer" | "page" (echo of a message sent outside Parley) | "agent" | "system"
	Kind           string // message | postback | reaction | message_edit | referral | delivery | read | optin | unknown
	MID            string
	// DedupeKey is unique per (FacebookPageID, PSID), so that Meta's
	// retries are recorded once. "" disables deduplication.
	DedupeKey      string
	FacebookPageID string
	PSID           string
	Text           string
	Attachments    json.RawMessage // JSON array, or nil
	Payload        json.RawMessage // the raw event JSON, or nil
	Status         string          // in: received; out: pending | sent | delivered | read | failed; note (internal)
	ErrorCode      int
	ErrorSubcode   int
	ErrorReason    string
	AgentID        string
	// MessagingType and Tag are how an outbound message goes through the
	// Send API (RESPONSE, UPDATE or MESSAGE_TAG with a tag such as
	// HUMAN_AGENT); "" for inbound messages.
	MessagingType string
	Tag           string
	SentAt        time.Time // Meta's event time, or our send time
	CreatedAt     time.Time
}

// Message directions, senders and statuses.
const (
	DirectionIn  = "in"
	DirectionOut = "out"

	SenderCustomer = "customer"
	SenderPage     = "page"
	SenderAgent    = "agent"
	SenderSystem   = "system"

	StatusReceived  = "received"
	StatusPending   = "pending"
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusFailed    = "failed"
	// StatusNote: an internal note for agents (a transfer's), never sent.
	StatusNote = "note"

	KindUnknown = "unknown"
	KindNote    = "note"
)

var (
	directions = []string{DirectionIn, DirectionOut}
	senders    = []string{SenderCustomer, SenderPage, SenderAgent, SenderSystem}
	statuses   = []string{StatusReceived, StatusPending, StatusSent, StatusDelivered, StatusRead, StatusFailed, StatusNote}
)

const (
	defaultMessageLimit = 100
	maxMessageLimit     = 1000
)

type messageRow struct {
	ID             string         `db:"id"`
	ConversationID string         `db:"conversation_id"`
	Seq            int64          `db:"seq"`
	Direction      string         `db:"direction"`
	Sender         string         `db:"sender"`
	Kind           string         `db:"kind"`
	MID            string         `db:"mid"`
	DedupeKey      sql.NullString `db:"dedupe_key"`
	FacebookPageID string         `db:"facebook_page_id"`
	PSID           string         `db:"psid"`
	Text           string         `db:"text"`
	Attachments    sql.NullString `db:"attachments"`
	Payload        sql.NullString `db:"payload"`
	Status         string         `db:"status"`
	ErrorCode      int            `db:"error_code"`
	ErrorSubcode   int            `db:"error_subcode"`
	ErrorReason    string         `db:"error_reason"`
	AgentID        string         `db:"agent_id"`
	MessagingType  string         `db:"messaging_type"`
	Tag            string         `db:"tag"`
	SentAt         time.Time      `db:"sent_at"`
	CreatedAt      time.Time      `db:"created_at"`
}

const messageColumns = `id, conversation_id, seq, direction, sender, kind, mid, dedupe_key, facebook_page_id, psid,
	text, attachments, payload, status, error_code, error_subcode, error_reason, agent_id, messaging_type, tag,
	sent_at, created_at`

func (r messageRow) message() Message {
	return Message{
		ID:             r.ID,
		ConversationID: r.ConversationID,
		Seq:            r.Seq,
		Direction:      r.Direction,
		Sender:         r.Sender,
		Kind:           r.Kind,
		MID:            r.MID,
		DedupeKey:      r.DedupeKey.String,
		FacebookPageID: r.FacebookPageID,
		PSID:           r.PSID,
		Text:           r.Text,
		Attachments:    rawJSON(r.Attachments),
		Payload:        rawJSON(r.Payload),
		Status:         r.Status,
		ErrorCode:      r.ErrorCode,
		ErrorSubcode:   r.ErrorSubcode,
		ErrorReason:    r.ErrorReason,
		AgentID:        r.AgentID,
		MessagingType:  r.MessagingType,
		Tag:            r.Tag,
		SentAt:         r.SentAt.UTC(),
		CreatedAt:      r.CreatedAt.UTC(),
	}
}

func rawJSON(s sql.NullString) json.RawMessage {
	if !s.Valid {
		return nil
	}
	return json.RawMessage(s.String)
}

// jsonColumn stores JSON as TEXT, nil or empty as NULL.
func jsonColumn(field string, v json.RawMessage) (sql.NullString, error) {
	if len(v) == 0 {
		return sql.NullString{}, nil
	}
	if !json.Valid(v) {
		return sql.NullString{}, invalidf("%s is not valid JSON", field)
	}
	return sql.NullString{String: string(v), Valid: true}, nil
}

// messageRowOf validates m and fills defaults: a new ID if empty, status
// received (in) or pending (out), kind unknown, SentAt now.
func (s *Store) messageRowOf(m Message, now time.Time) (messageRow, error) {
	if m.ConversationID == "" || m.FacebookPageID == "" || m.PSID == "" {
		return messageRow{}, invalidf("message %q: conversation id, Facebook page id and PSID are required", m.ID)
	}
	if !slices.Contains(directions, m.Direction) {
		return messageRow{}, invalidf("message %q: direction %q", m.ID, m.Direction)
	}
	if !slices.Contains(senders, m.Sender) {
		return messageRow{}, invalidf("message %q: sender %q", m.ID, m.Sender)
	}
	if m.Status == "" {
		m.Status = StatusReceived
		if m.Direction == DirectionOut {
			m.Status = StatusPending
		}
	}
	if !slices.Contains(statuses, m.Status) {
		return messageRow{}, invalidf("message %q: status %q", m.ID, m.Status)
	}
	if m.Kind == "" {
		m.Kind = KindUnknown
	}
	if m.ID == "" {
		id, err := newID()
		if err != nil {
			return messageRow{}, err
		}
		m.ID = id
	}
	if m.SentAt.IsZero() {
		m.SentAt = now
	}
	attachments, err := jsonColumn("attachments", m.Attachments)
	if err != nil {
		return messageRow{}, err
	}
	payload, err := jsonColumn("payload", m.Payload)
	if err != nil {
		return messageRow{}, err
	}
	return messageRow{
		ID:             m.ID,
		ConversationID: m.ConversationID,
		Seq:            m.Seq,
		Direction:      m.Direction,
		Sender:         m.Sender,
		Kind:           m.Kind,
		MID:            m.MID,
		DedupeKey:      nullString(m.DedupeKey),
		FacebookPageID: m.FacebookPageID,
		PSID:           m.PSID,
		Text:           m.Text,
		Attachments:    attachments,
		Payload:        payload,
		Status:         m.Status,
		ErrorCode:      m.ErrorCode,
		ErrorSubcode:   m.ErrorSubcode,
		ErrorReason:    m.ErrorReason,
		AgentID:        m.AgentID,
		MessagingType:  m.MessagingType,
		Tag:            m.Tag,
		SentAt:         utc(m.SentAt),
		CreatedAt:      now,
	}, nil
}

// InsertMessages inserts messages in one transaction. Rows that already
// exist (same dedupe key for the customer, or same id or conversation seq:
// a retried activity) are skipped. It returns the ids actually inserted,
// in input order; ids left empty in msgs are generated.
func (s *Store) InsertMessages(ctx context.Context, msgs []Message) (inserted []string, err error) {
	defer wrap(&err, "store.InsertMessages")
	return s.recordMessages(ctx, nil, msgs, nil, nil)
}

// RecordMessages records a burst of a conversation's transcript in one
// transaction (one commit, so one fsync on SQLite, instead of one per
// step): the conversation's row (as UpsertConversation), the messages (as
// InsertMessages), their attachments (as InsertAttachments) and the live
// events about them (as AppendEvents, last: it holds the event counter's
// lock until the commit). It returns the ids of the messages inserted.
func (s *Store) RecordMessages(ctx context.Context, c Conversation, msgs []Message, files []Attachment, evs []NewEvent) (inserted []string, err error) {
	defer wrap(&err, "store.RecordMessages(%q)", c.ID)
	return s.recordMessages(ctx, &c, msgs, files, evs)
}

// recordMessages is RecordMessages; without a conversation, InsertMessages.
func (s *Store) recordMessages(ctx context.Context, c *Conversation, msgs []Message, files []Attachment, evs []NewEvent) (inserted []string, err error) {
	now := s.clock()
	rows := make([]messageRow, len(msgs))
	for i, m := range msgs {
		if rows[i], err = s.messageRowOf(m, now); err != nil {
			return nil, err
		}
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		inserted = inserted[:0]
		if c != nil {
			if err := s.upsertConversation(ctx, tx, *c); err != nil {
				return err
			}
		}
		for _, r := range rows {
			id, ok, err := s.insertMessage(ctx, tx, r)
			if err != nil {
				return err
			}
			if ok {
				inserted = append(inserted, id)
			}
		}
		if err := s.insertAttachments(ctx, tx, files); err != nil {
			return err
		}
		return s.appendEvents(ctx, tx, evs...)
	})
	if err != nil {
		return nil, err
	}
	return inserted, nil
}

// insertMessage inserts one row; ok is false when it was already recorded
// (same dedupe key for the customer, id, or conversation seq).
func (s *Store) insertMessage(ctx context.Context, tx *sqlx.Tx, r messageRow) (id string, ok bool, err error) {
	err = get(ctx, tx, &id, `
		INSERT INTO messages (id, conversation_id, seq, direction, sender, kind, mid, dedupe_key,
			facebook_page_id, psid, text, attachments, payload, status, error_code, error_subcode,
			error_reason, agent_id, messaging_type, tag, sent_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING
		RETURNING id`,
		r.ID, r.ConversationID, r.Seq, r.Direction, r.Sender, r.Kind, r.MID, r.DedupeKey,
		r.FacebookPageID, r.PSID, r.Text, r.Attachments, r.Payload, r.Status, r.ErrorCode, r.ErrorSubcode,
		r.ErrorReason, r.AgentID, r.MessagingType, r.Tag, s.timestamp(r.SentAt), s.timestamp(r.CreatedAt))
	switch {
	case errors.Is(err, ErrNotFound):
		return "", false, nil
	case isForeignKeyViolation(err):
		return "", false, fmt.Errorf("message %s: conversation %s: %w", r.ID, r.ConversationID, ErrNotFound)
	case err != nil:
		return "", false, fmt.Errorf("message %s: %w", r.ID, err)
	}
	return id, true, nil
}

// ListMessages returns a conversation's messages with seq > afterSeq, by
// seq. limit defaults to 100 and is at most 1000.
func (s *Store) ListMessages(ctx context.Context, conversationID string, afterSeq int64, limit int) (_ []Message, err error) {
	defer wrap(&err, "store.ListMessages(%q, %d)", conversationID, afterSeq)
	if limit <= 0 {
		limit = defaultMessageLimit
	}
	limit = min(limit, maxMessageLimit)
	var rows []messageRow
	if err := list(ctx, s.db, &rows, `
		SELECT `+messageColumns+` FROM messages
		WHERE conversation_id = ? AND seq > ?
		ORDER BY seq LIMIT ?`, conversationID, afterSeq, limit); err != nil {
		return nil, err
	}
	out := make([]Message, len(rows))
	for i, r := range rows {
		out[i] = r.message()
	}
	return out, nil
}

// UpdateMessageStatus sets a message's status and error (zero values for
// none), typically the outcome of sending it.
func (s *Store) UpdateMessageStatus(ctx context.Context, id, status string, code, subcode int, reason string) (err error) {
	defer wrap(&err, "store.UpdateMessageStatus(%q, %q)", id, status)
	if !slices.Contains(statuses, status) {
		return invalidf("status %q", status)
	}
	return execOne(ctx, s.db, `
		UPDATE messages SET status = ?, error_code = ?, error_subcode = ?, error_reason = ?
		WHERE id = ?`, status, code, subcode, reason, id)
}

// MarkMessageSent records that Meta accepted an outbound message: a pending
// message becomes sent, with Meta's message id and the send time. Activities
// retry, so a message already sent with the same mid is left as is, and so
// is a delivered or read one (a watermark may arrive before the retry). A
// failed message, or one sent under another mid, is ErrConflict; an inbound
// message is ErrInvalid. A zero at means now.
func (s *Store) MarkMessageSent(ctx context.Context, id, mid string, at time.Time) (err error) {
	defer wrap(&err, "store.MarkMessageSent(%q, %q)", id, mid)
	if mid == "" {
		return invalidf("mid is required")
	}
	if at.IsZero() {
		at = s.clock()
	}
	var n int64
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		n, err = exec(ctx, tx, `
		UPDATE messages SET status = ?, mid = ?, sent_at = ?
		WHERE id = ? AND direction = ? AND status = ?`,
			StatusSent, mid, s.timestamp(at), id, DirectionOut, StatusPending)
		if err != nil || n == 0 {
			return err
		}
		// An agent's first reply (supervisor metrics).
		if err := s.recordFirstReply(ctx, tx, id, at); err != nil {
			return err
		}
		// Receipts that came while it was pending apply now.
		return s.applyReceiptsOf(ctx, tx, id)
	})
	if err != nil || n > 0 {
		return err
	}
	cur, err := s.messageState(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case cur.Direction != DirectionOut:
		return invalidf("message %s is inbound", id)
	case cur.Status == StatusSent && cur.MID == mid, cur.Status == StatusDelivered, cur.Status == StatusRead:
		return nil
	case cur.Status == StatusSent:
		return fmt.Errorf("%w: message %s was sent as %s", ErrConflict, id, cur.MID)
	}
	return fmt.Errorf("%w: message %s is %s", ErrConflict, id, cur.Status)
}

// MarkMessageFailed records that an outbound message could not be sent,
// with Meta's error code, subcode and reason: a pending message becomes
// failed. A message already sent, delivered, read or failed is left as is,
// so that a late or retried failure never hides a sent message (nor
// replaces the first error). An inbound message is ErrInvalid.
func (s *Store) MarkMessageFailed(ctx context.Context, id string, code, subcode int, reason string) (err error) {
	defer wrap(&err, "store.MarkMessageFailed(%q)", id)
	n, err := exec(ctx, s.db, `
		UPDATE messages SET status = ?, error_code = ?, error_subcode = ?, error_reason = ?
		WHERE id = ? AND direction = ? AND status = ?`,
		StatusFailed, code, subcode, reason, id, DirectionOut, StatusPending)
	if err != nil || n > 0 {
		return err
	}
	cur, err := s.messageState(ctx, id)
	if err != nil {
		return err
	}
	if cur.Direction != DirectionOut {
		return invalidf("message %s is inbound", id)
	}
	return nil
}

// messageState is what MarkMessageSent and MarkMessageFailed check when
// their update changed nothing.
type messageState struct {
	Direction string `db:"direction"`
	Status    string `db:"status"`
	MID       string `db:"mid"`
}

func (s *Store) messageState(ctx context.Context, id string) (messageState, error) {
	var st messageState
	err := get(ctx, s.db, &st, `SELECT direction, status, mid FROM messages WHERE id = ?`, id)
	return st, err
}

// ApplyWatermark applies a delivery ("delivered") or read ("read")
// watermark: see ApplyReceipt.
func (s *Store) ApplyWatermark(ctx context.Context, fbPageID, psid, status string, watermark time.Time) (int, error) {
	switch status {
	case StatusDelivered:
		return s.ApplyReceipt(ctx, fbPageID, psid, ReceiptDelivery, watermark, nil)
	case StatusRead:
		return s.ApplyReceipt(ctx, fbPageID, psid, ReceiptRead, watermark, nil)
	}
	return 0, fmt.Errorf("store.ApplyWatermark(%q, %q, %q): %w", fbPageID, psid, status, invalidf("watermark status %q: want delivered or read", status))
}
