package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Receipt kinds.
const (
	ReceiptDelivery = "delivery"
	ReceiptRead     = "read"
)

// ApplyReceipt applies Meta's delivery or read receipt for a customer: the
// watermark (everything Meta sent before it is delivered or read) is kept,
// never lowered, and compared with Meta's time of each message (its echo's
// timestamp, else Parley's send time); delivery mids mark those messages,
// and are kept for messages not confirmed yet. It returns how many
// messages changed status. Sent becomes delivered, sent and delivered
// become read; pending and failed messages are left alone.
func (s *Store) ApplyReceipt(ctx context.Context, fbPageID, psid, kind string, watermark time.Time, mids []string) (changed int, err error) {
	defer wrap(&err, "store.ApplyReceipt(%q, %q, %q)", fbPageID, psid, kind)
	if fbPageID == "" || psid == "" {
		return 0, invalidf("Facebook page id and PSID are required")
	}
	column := ""
	switch kind {
	case ReceiptDelivery:
		column = "delivered_watermark"
	case ReceiptRead:
		column = "read_watermark"
	default:
		return 0, invalidf("receipt kind %q: want delivery or read", kind)
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		if !watermark.IsZero() {
			if _, err := exec(ctx, tx, `
				INSERT INTO customer_receipts (facebook_page_id, psid, `+column+`) VALUES (?, ?, ?)
				ON CONFLICT (facebook_page_id, psid) DO UPDATE SET `+column+` = CASE
					WHEN customer_receipts.`+column+` IS NULL OR customer_receipts.`+column+` < excluded.`+column+`
					THEN excluded.`+column+` ELSE customer_receipts.`+column+` END`,
				fbPageID, psid, s.timestamp(watermark)); err != nil {
				return fmt.Errorf("keep the watermark: %w", err)
			}
		}
		if kind == ReceiptDelivery {
			for _, mid := range mids {
				if mid == "" {
					continue
				}
				if _, err := exec(ctx, tx, `
					INSERT INTO delivered_mids (facebook_page_id, psid, mid) VALUES (?, ?, ?)
					ON CONFLICT DO NOTHING`, fbPageID, psid, mid); err != nil {
					return fmt.Errorf("keep delivered mid: %w", err)
				}
			}
		}
		n, err := s.applyStoredReceipts(ctx, tx, fbPageID, psid)
		changed = n
		return err
	})
	return changed, err
}

// applyStoredReceipts derives the statuses of the customer's outbound
// messages from the kept watermarks and mids.
func (s *Store) applyStoredReceipts(ctx context.Context, q querier, fbPageID, psid string) (int, error) {
	delivered, err := exec(ctx, q, `
		UPDATE messages SET status = ?
		WHERE facebook_page_id = ? AND psid = ? AND direction = ? AND status = ?
			AND (COALESCE(meta_at, sent_at) <= (SELECT delivered_watermark FROM customer_receipts WHERE facebook_page_id = ? AND psid = ?)
				OR mid IN (SELECT mid FROM delivered_mids WHERE facebook_page_id = ? AND psid = ?))`,
		StatusDelivered, fbPageID, psid, DirectionOut, StatusSent, fbPageID, psid, fbPageID, psid)
	if err != nil {
		return 0, fmt.Errorf("apply delivery: %w", err)
	}
	read, err := exec(ctx, q, `
		UPDATE messages SET status = ?
		WHERE facebook_page_id = ? AND psid = ? AND direction = ? AND status IN (?, ?)
			AND COALESCE(meta_at, sent_at) <= (SELECT read_watermark FROM customer_receipts WHERE facebook_page_id = ? AND psid = ?)`,
		StatusRead, fbPageID, psid, DirectionOut, StatusSent, StatusDelivered, fbPageID, psid)
	if err != nil {
		return 0, fmt.Errorf("apply read: %w", err)
	}
	return int(delivered + read), nil
}

// applyReceiptsOf applies the kept receipts to the customer of a message.
func (s *Store) applyReceiptsOf(ctx context.Context, q querier, messageID string) error {
	var who struct {
		FacebookPageID string `db:"facebook_page_id"`
		PSID           string `db:"psid"`
	}
	if err := get(ctx, q, &who, `SELECT facebook_page_id, psid FROM messages WHERE id = ?`, messageID); err != nil {
		return err
	}
	_, err := s.applyStoredReceipts(ctx, q, who.FacebookPageID, who.PSID)
	return err
}

// ConfirmEcho records Meta's echo of a message Parley sent: Meta's id and
// time. A pending message becomes sent; a failed one too, since the echo
// proves Meta holds it (its error reason keeps what was first reported).
// Kept receipts then apply at once. ErrNotFound when the message is not
// Parley's (another database); ErrConflict when it was sent under another mid.
func (s *Store) ConfirmEcho(ctx context.Context, messageID, mid string, metaAt time.Time) (err error) {
	defer wrap(&err, "store.ConfirmEcho(%q, %q)", messageID, mid)
	if mid == "" {
		return invalidf("mid is required")
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var cur struct {
			Direction      string `db:"direction"`
			Status         string `db:"status"`
			MID            string `db:"mid"`
			FacebookPageID string `db:"facebook_page_id"`
			PSID           string `db:"psid"`
		}
		if err := get(ctx, tx, &cur, `SELECT direction, status, mid, facebook_page_id, psid FROM messages WHERE id = ?`, messageID); err != nil {
			return err
		}
		switch {
		case cur.Direction != DirectionOut:
			return invalidf("message %s is inbound", messageID)
		case cur.MID != "" && cur.MID != mid:
			return fmt.Errorf("%w: message %s was sent as %s", ErrConflict, messageID, cur.MID)
		}
		status, note := cur.Status, ""
		switch cur.Status {
		case StatusPending:
			status = StatusSent
		case StatusFailed:
			status, note = StatusSent, "Meta's echo later showed it was delivered; first reported: "
		}
		if _, err := exec(ctx, tx, `
			UPDATE messages SET status = ?, mid = ?, meta_at = ?,
				error_reason = CASE WHEN ? = '' THEN error_reason ELSE ? || error_reason END,
				error_code = CASE WHEN ? = '' THEN error_code ELSE 0 END,
				error_subcode = CASE WHEN ? = '' THEN error_subcode ELSE 0 END
			WHERE id = ?`, status, mid, s.timestamp(metaAt), note, note, note, note, messageID); err != nil {
			return err
		}
		if cur.Status == StatusPending || cur.Status == StatusFailed {
			// An agent's first reply (supervisor metrics).
			if err := s.recordFirstReply(ctx, tx, messageID, metaAt); err != nil {
				return err
			}
		}
		_, err := s.applyStoredReceipts(ctx, tx, cur.FacebookPageID, cur.PSID)
		return err
	})
}
