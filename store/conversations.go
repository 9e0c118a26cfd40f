package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Conversation is one Messenger conversation: one run of the conversation
// workflow for a customer (PSID) of a page.
type Conversation struct {
	ID                     string
	PageRef                string // our page id (Page.ID)
	AccountID              string
	FacebookPageID         string
	PSID                   string
	WorkflowID             string
	State                  string
	AgentID                string
	PreviousConversationID string
	MessageCount           int
	LastCustomerMessageAt  *time.Time
	ClosedAt               *time.Time
	ClosedReason           string // why it closed, set with ClosedAt
	StartedAt              time.Time
	UpdatedAt              time.Time
	// Revision orders saves: a save with a lower revision than the stored
	// one is ignored (0: legacy callers, ordered by UpdatedAt).
	Revision int64
	// ThreadOwner is the app controlling the customer's Messenger thread
	// when it is not Parley ("" while Parley has it), since ThreadOwnerSince.
	ThreadOwner      string
	ThreadOwnerSince *time.Time
	// ThreadRequestedBy is the app that asked Parley for the thread and
	// has no answer yet ("" when none).
	ThreadRequestedBy string
}

// ConversationFilter selects conversations; empty fields match everything.
type ConversationFilter struct {
	FacebookPageID string
	PageRef        string
	PSID           string
	State          string
	AgentID        string // the assigned agent
	Limit          int    // default 50, at most 200
	Cursor         string // opaque, the nextCursor of the previous page
}

const (
	defaultConversationLimit = 50
	maxConversationLimit     = 200
)

type conversationRow struct {
	ID                     string       `db:"id"`
	PageRef                string       `db:"page_ref"`
	AccountID              string       `db:"account_id"`
	FacebookPageID         string       `db:"facebook_page_id"`
	PSID                   string       `db:"psid"`
	WorkflowID             string       `db:"workflow_id"`
	State                  string       `db:"state"`
	AgentID                string       `db:"agent_id"`
	PreviousConversationID string       `db:"previous_conversation_id"`
	MessageCount           int          `db:"message_count"`
	LastCustomerMessageAt  sql.NullTime `db:"last_customer_message_at"`
	ClosedAt               sql.NullTime `db:"closed_at"`
	ClosedReason           string       `db:"closed_reason"`
	StartedAt              time.Time    `db:"started_at"`
	UpdatedAt              time.Time    `db:"updated_at"`
	Revision               int64        `db:"revision"`
	ThreadOwner            string       `db:"thread_owner"`
	ThreadOwnerSince       sql.NullTime `db:"thread_owner_since"`
	ThreadRequestedBy      string       `db:"thread_requested_by"`
}

const conversationColumns = `id, page_ref, account_id, facebook_page_id, psid, workflow_id, state, agent_id,
	previous_conversation_id, message_count, last_customer_message_at, closed_at, closed_reason, started_at, updated_at,
	revision, thread_owner, thread_owner_since, thread_requested_by`

func (r conversationRow) conversation() Conversation {
	return Conversation{
		ID:                     r.ID,
		PageRef:                r.PageRef,
		AccountID:              r.AccountID,
		FacebookPageID:         r.FacebookPageID,
		PSID:                   r.PSID,
		WorkflowID:             r.WorkflowID,
		State:                  r.State,
		AgentID:                r.AgentID,
		PreviousConversationID: r.PreviousConversationID,
		MessageCount:           r.MessageCount,
		LastCustomerMessageAt:  timePtr(r.LastCustomerMessageAt),
		ClosedAt:               timePtr(r.ClosedAt),
		ClosedReason:           r.ClosedReason,
		StartedAt:              r.StartedAt.UTC(),
		UpdatedAt:              r.UpdatedAt.UTC(),
		Revision:               r.Revision,
		ThreadOwner:            r.ThreadOwner,
		ThreadOwnerSince:       timePtr(r.ThreadOwnerSince),
		ThreadRequestedBy:      r.ThreadRequestedBy,
	}
}

// UpsertConversation inserts a conversation or, when its id exists, updates
// its state, agent, message count, last customer message, closing time and
// reason, thread owner and pending request for the thread, and updated_at.
// Activities retry, so this is idempotent; and an update older (by
// UpdatedAt) than the stored row is ignored, so that a late retry of an
// earlier activity cannot roll the conversation back.
// A zero StartedAt or UpdatedAt means now.
func (s *Store) UpsertConversation(ctx context.Context, c Conversation) (err error) {
	defer wrap(&err, "store.UpsertConversation(%q)", c.ID)
	return s.upsertConversation(ctx, s.db, c)
}

// upsertConversation is UpsertConversation with q.
func (s *Store) upsertConversation(ctx context.Context, q querier, c Conversation) error {
	if c.ID == "" || c.PageRef == "" || c.AccountID == "" || c.FacebookPageID == "" || c.PSID == "" || c.State == "" {
		return invalidf("id, page ref, account id, Facebook page id, PSID and state are required")
	}
	now := s.clock()
	if c.StartedAt.IsZero() {
		c.StartedAt = now
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = now
	}
	_, err := exec(ctx, q, `
		INSERT INTO conversations (id, page_ref, account_id, facebook_page_id, psid, workflow_id, state, agent_id,
			previous_conversation_id, message_count, last_customer_message_at, closed_at, closed_reason,
			started_at, updated_at, revision, thread_owner, thread_owner_since, thread_requested_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			state = excluded.state,
			agent_id = excluded.agent_id,
			message_count = excluded.message_count,
			last_customer_message_at = excluded.last_customer_message_at,
			closed_at = excluded.closed_at,
			closed_reason = excluded.closed_reason,
			updated_at = excluded.updated_at,
			revision = excluded.revision,
			thread_owner = excluded.thread_owner,
			thread_owner_since = excluded.thread_owner_since,
			thread_requested_by = excluded.thread_requested_by
		WHERE (excluded.revision > 0 AND conversations.revision <= excluded.revision)
			OR (excluded.revision = 0 AND conversations.revision = 0 AND conversations.updated_at <= excluded.updated_at)`,
		c.ID, c.PageRef, c.AccountID, c.FacebookPageID, c.PSID, c.WorkflowID, c.State, c.AgentID,
		c.PreviousConversationID, c.MessageCount, s.nullTimestamp(c.LastCustomerMessageAt), s.nullTimestamp(c.ClosedAt),
		c.ClosedReason, s.timestamp(c.StartedAt), s.timestamp(c.UpdatedAt), c.Revision, c.ThreadOwner, s.nullTimestamp(c.ThreadOwnerSince),
		c.ThreadRequestedBy)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("page %s or account %s: %w", c.PageRef, c.AccountID, ErrNotFound)
	}
	return err
}

// GetConversation returns a conversation.
func (s *Store) GetConversation(ctx context.Context, id string) (_ Conversation, err error) {
	defer wrap(&err, "store.GetConversation(%q)", id)
	var r conversationRow
	if err := get(ctx, s.db, &r, `SELECT `+conversationColumns+` FROM conversations WHERE id = ?`, id); err != nil {
		return Conversation{}, err
	}
	return r.conversation(), nil
}

// ListConversations returns conversations matching f, newest first (by
// start time, then id). nextCursor is "" on the last page. A cursor that
// this function did not produce is an error wrapping ErrInvalidCursor.
func (s *Store) ListConversations(ctx context.Context, f ConversationFilter) (_ []Conversation, nextCursor string, err error) {
	defer wrap(&err, "store.ListConversations")
	limit := f.Limit
	if limit <= 0 {
		limit = defaultConversationLimit
	}
	limit = min(limit, maxConversationLimit)

	var where []string
	var args []any
	for _, c := range []struct{ column, value string }{
		{"facebook_page_id", f.FacebookPageID},
		{"page_ref", f.PageRef},
		{"psid", f.PSID},
		{"state", f.State},
		{"agent_id", f.AgentID},
	} {
		if c.value != "" {
			where = append(where, c.column+" = ?")
			args = append(args, c.value)
		}
	}
	if f.Cursor != "" {
		startedAt, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		// Keyset pagination: rows strictly after the cursor in (started_at, id) DESC order.
		where = append(where, "(started_at < ? OR (started_at = ? AND id < ?))")
		args = append(args, s.timestamp(startedAt), s.timestamp(startedAt), id)
	}
	query := `SELECT ` + conversationColumns + ` FROM conversations`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	// One extra row tells whether there is a next page.
	query += ` ORDER BY started_at DESC, id DESC LIMIT ?`
	args = append(args, limit+1)

	var rows []conversationRow
	if err := list(ctx, s.db, &rows, query, args...); err != nil {
		return nil, "", err
	}
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		nextCursor = encodeCursor(last.StartedAt, last.ID)
	}
	out := make([]Conversation, len(rows))
	for i, r := range rows {
		out[i] = r.conversation()
	}
	return out, nextCursor, nil
}

// A cursor is base64url("<started_at in Unix microseconds>|<id>").
func encodeCursor(startedAt time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d|%s", startedAt.UnixMicro(), id))
}

func decodeCursor(cursor string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return time.Time{}, "", ErrInvalidCursor
	}
	micros, id, ok := strings.Cut(string(raw), "|")
	if !ok || id == "" {
		return time.Time{}, "", ErrInvalidCursor
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return time.Time{}, "", ErrInvalidCursor
	}
	return time.UnixMicro(us).UTC(), id, nil
}

// LatestConversation returns the customer's most recent conversation with
// a page, to link a new conversation to it.
func (s *Store) LatestConversation(ctx context.Context, fbPageID, psid string) (_ Conversation, err error) {
	defer wrap(&err, "store.LatestConversation(%q, %q)", fbPageID, psid)
	var r conversationRow
	if err := get(ctx, s.db, &r, `
		SELECT `+conversationColumns+` FROM conversations
		WHERE facebook_page_id = ? AND psid = ?
		ORDER BY started_at DESC, id DESC LIMIT 1`, fbPageID, psid); err != nil {
		return Conversation{}, err
	}
	return r.conversation(), nil
}
