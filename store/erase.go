package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// ClosedErased is the closed reason of a conversation whose customer was
// erased.
const ClosedErased = "erased"

// ErasedData is what EraseCustomerData removed. Counts and timestamps
// (conversations, messages, who answered when) stay for reports.
type ErasedData struct {
	Conversations []string // the customer's conversations (their rows stay, emptied)
	Messages      int64    // messages whose text and payload were removed
	Attachments   int64    // attachment rows removed (their files are the blob store's)
	Events        int64    // live events removed (they carried message texts)
	Profile       bool     // the customer's profile (name, picture) was removed
	// Ended are the conversations the erase closed, with their agents (to
	// tell them).
	Ended []EndedByErase
}

// EndedByErase is an open conversation closed by an erase.
type EndedByErase struct {
	ConversationID string `db:"id"`
	AgentID        string `db:"agent_id"`
}

// EraseCustomerData removes what Parley's database holds of a customer of
// a page: names, message texts, raw payloads, attachments, transfer notes
// and the live events that quoted them; open conversations are closed
// (reason "erased"). The contact, if any, is the caller's to erase.
func (s *Store) EraseCustomerData(ctx context.Context, pageRef, facebookPageID, psid string, now time.Time) (_ ErasedData, err error) {
	defer wrap(&err, "store.EraseCustomerData(%s, %s)", facebookPageID, psid)
	var out ErasedData
	if pageRef == "" || facebookPageID == "" || psid == "" {
		return out, invalidf("a page and a PSID are required")
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := list(ctx, tx, &out.Conversations, `SELECT id FROM conversations WHERE facebook_page_id = ? AND psid = ? ORDER BY started_at`, facebookPageID, psid); err != nil {
			return err
		}
		var err error
		if out.Messages, err = exec(ctx, tx, `UPDATE messages SET text = '', payload = NULL, attachments = NULL
			WHERE facebook_page_id = ? AND psid = ?`, facebookPageID, psid); err != nil {
			return err
		}
		if out.Attachments, err = exec(ctx, tx, `DELETE FROM attachments WHERE facebook_page_id = ? AND psid = ?`, facebookPageID, psid); err != nil {
			return err
		}
		for _, id := range out.Conversations {
			n, err := exec(ctx, tx, `DELETE FROM events WHERE conversation_id = ?`, id)
			if err != nil {
				return err
			}
			out.Events += n
			if _, err := exec(ctx, tx, `UPDATE queue_items SET note = '' WHERE conversation_id = ?`, id); err != nil {
				return err
			}
			// A survey's comment is the customer's words (the rating stays for
			// reports); its link stops working.
			if _, err := exec(ctx, tx, `UPDATE surveys SET comment = '', token_hash = '' WHERE conversation_id = ?`, id); err != nil {
				return err
			}
			// Pre-survey answers are the customer's words too.
			if _, err := exec(ctx, tx, `DELETE FROM pre_surveys WHERE conversation_id = ?`, id); err != nil {
				return err
			}
		}
		if err := list(ctx, tx, &out.Ended, `SELECT id, agent_id FROM conversations
			WHERE facebook_page_id = ? AND psid = ? AND state <> 'closed' ORDER BY id`, facebookPageID, psid); err != nil {
			return err
		}
		if _, err := exec(ctx, tx, `UPDATE conversations SET state = 'closed', closed_reason = ?, closed_at = ?, updated_at = ?
			WHERE facebook_page_id = ? AND psid = ? AND state <> 'closed'`,
			ClosedErased, s.timestamp(now), s.timestamp(now), facebookPageID, psid); err != nil {
			return err
		}
		n, err := exec(ctx, tx, `DELETE FROM customers WHERE page_ref = ? AND psid = ?`, pageRef, psid)
		if err != nil {
			return err
		}
		out.Profile = n > 0
		for _, q := range []string{
			`DELETE FROM contact_customers WHERE page_ref = ? AND psid = ?`,
		} {
			if _, err := exec(ctx, tx, q, pageRef, psid); err != nil {
				return err
			}
		}
		for _, q := range []string{
			`DELETE FROM delivered_mids WHERE facebook_page_id = ? AND psid = ?`,
			`DELETE FROM customer_receipts WHERE facebook_page_id = ? AND psid = ?`,
		} {
			if _, err := exec(ctx, tx, q, facebookPageID, psid); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// EraseContact deletes a contact and everything it said about the person
// (name, emails, phones, notes), unlinking its customers.
func (s *Store) EraseContact(ctx context.Context, id string) (err error) {
	defer wrap(&err, "store.EraseContact(%s)", id)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := exec(ctx, tx, `DELETE FROM contact_customers WHERE contact_id = ?`, id); err != nil {
			return err
		}
		return execOne(ctx, tx, `DELETE FROM contacts WHERE id = ?`, id)
	})
}
