package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Issue 6, defect 8: receipts are compared with Meta's clock, use mids, and
// are kept for messages confirmed later.
func TestReceipts(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := messageFixture(t, s, "900", "psid-r")
		queued := mustUTC(t, "2025-07-01T10:00:00Z")
		metaAt := queued.Add(200 * time.Millisecond) // Meta's time of the message
		confirmed := queued.Add(900 * time.Millisecond)
		var msgs []Message
		for i := int64(1); i <= 5; i++ {
			m := outbound(c, i, StatusPending, queued)
			m.MID = ""
			msgs = append(msgs, m)
		}
		if _, err := s.InsertMessages(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		status := func(i int) Message {
			t.Helper()
			list, err := s.ListMessages(ctx, c.ID, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range list {
				if m.ID == msgs[i].ID {
					return m
				}
			}
			t.Fatalf("message %d not found", i)
			return Message{}
		}

		// 0: confirmed by the Send API at Parley's time, then by its echo at
		// Meta's; a watermark equal to Meta's time marks it.
		if err := s.MarkMessageSent(ctx, msgs[0].ID, "m_0", confirmed); err != nil {
			t.Fatal(err)
		}
		if err := s.ConfirmEcho(ctx, msgs[0].ID, "m_0", metaAt); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ApplyReceipt(ctx, c.FacebookPageID, c.PSID, ReceiptDelivery, metaAt, nil); err != nil {
			t.Fatal(err)
		}
		if got := status(0); got.Status != StatusDelivered {
			t.Errorf("watermark equal to Meta's time: %s, want delivered", got.Status)
		}

		// 1: a delivery naming its mid, before Parley knew the mid.
		if _, err := s.ApplyReceipt(ctx, c.FacebookPageID, c.PSID, ReceiptDelivery, time.Time{}, []string{"m_1"}); err != nil {
			t.Fatal(err)
		}
		if got := status(1); got.Status != StatusPending {
			t.Errorf("pending message marked %s by a receipt", got.Status)
		}
		if err := s.MarkMessageSent(ctx, msgs[1].ID, "m_1", confirmed.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got := status(1); got.Status != StatusDelivered {
			t.Errorf("a message whose mid Meta reported delivered: %s once confirmed, want delivered", got.Status)
		}

		// 2: a read watermark that arrives while the message is pending.
		readAt := queued.Add(time.Minute)
		if _, err := s.ApplyReceipt(ctx, c.FacebookPageID, c.PSID, ReceiptRead, readAt, nil); err != nil {
			t.Fatal(err)
		}
		if got := status(2); got.Status != StatusPending {
			t.Errorf("pending message marked %s by a read receipt", got.Status)
		}
		if err := s.ConfirmEcho(ctx, msgs[2].ID, "m_2", metaAt.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := status(2); got.Status != StatusRead {
			t.Errorf("confirmed after the read watermark: %s, want read", got.Status)
		}
		// Read never goes back, the watermark never decreases.
		if _, err := s.ApplyReceipt(ctx, c.FacebookPageID, c.PSID, ReceiptRead, queued, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.ConfirmEcho(ctx, msgs[3].ID, "m_3", metaAt.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := status(3); got.Status != StatusRead {
			t.Errorf("an older read watermark lowered the kept one: %s, want read", got.Status)
		}

		// 4: failed (Parley gave up), then Meta's echo proves it arrived.
		if err := s.MarkMessageFailed(ctx, msgs[4].ID, 2, 0, "gave up after 8 attempts"); err != nil {
			t.Fatal(err)
		}
		if err := s.ConfirmEcho(ctx, msgs[4].ID, "m_4", readAt.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got := status(4)
		if got.Status != StatusSent || got.MID != "m_4" || got.ErrorCode != 0 || !strings.Contains(got.ErrorReason, "gave up after 8 attempts") {
			t.Errorf("failed then echoed: %+v, want sent with the first report kept", got)
		}
		if err := s.ConfirmEcho(ctx, msgs[4].ID, "m_other", readAt); err == nil {
			t.Errorf("an echo under another mid was accepted")
		}
		if _, err := s.ApplyReceipt(ctx, c.FacebookPageID, c.PSID, "seen", readAt, nil); err == nil {
			t.Errorf("an unknown receipt kind was accepted")
		}
	})
}
