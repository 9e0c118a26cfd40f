package store

import (
	"context"
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
		counted := 0
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
			id, ok, err := s.insertMessage(ctx, tx, r)
			if err != nil {
				return err
			}
			if ok { // else already recorded
				last++
				inserted = append(inserted, id)
				// Counted as the workflow counts: messages and postbacks,
				// not reactions, edits or receipts.
				if m.Kind == "message" || m.Kind == "postback" {
					counted++
				}
			}
		}
		if counted > 0 {
			if _, err := exec(ctx, tx, `UPDATE conversations SET message_count = message_count + ? WHERE id = ?`, counted, conversationID); err != nil {
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
