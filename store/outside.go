package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// AppendMessages adds messages at the end of a conversation's transcript,
// numbering them after its last one, for events that arrive when no
// workflow runs for the customer (its conversation is closed). Rows
// already recorded (same dedupe key for the customer) are skipped; it
// returns the ids inserted.
func (s *Store) AppendMessages(ctx context.Context, conversationID string, msgs []Message) (inserted []string, err error) {
	defer wrap(&err, "store.AppendMessages(%q)", conversationID)
	now := s.clock()
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var last int64
		if err := get(ctx, tx, &last, `SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = ?`, conversationID); err != nil {
			return fmt.Errorf("last seq: %w", err)
		}
		for _, m := range msgs {
			m.ConversationID = conversationID
			m.Seq = last + 1
			m.ID = ""
			r, err := s.messageRowOf(m, now)
			if err != nil {
				return err
			}
			var id string
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
				// Already recorded.
			case isForeignKeyViolation(err):
				return fmt.Errorf("conversation %s: %w", conversationID, ErrNotFound)
			case err != nil:
				return fmt.Errorf("message seq %d: %w", m.Seq, err)
			default:
				last++
				inserted = append(inserted, id)
			}
		}
		if len(inserted) > 0 {
			if _, err := exec(ctx, tx, `UPDATE conversations SET message_count = message_count + ? WHERE id = ?`, len(inserted), conversationID); err != nil {
				return fmt.Errorf("count messages: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return inserted, nil
}
