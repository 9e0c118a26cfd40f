package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// messageFixture creates a conversation to hang messages on.
func messageFixture(t *testing.T, s *Store, fbPageID, psid string) Conversation {
	t.Helper()
	p := conversationFixture(t, s, fbPageID)
	c := newConversation(p, "conv-"+fbPageID+"-"+psid, psid, mustUTC(t, "2025-06-01T00:00:00Z"))
	if err := s.UpsertConversation(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func inbound(c Conversation, seq int64, dedupe string, at time.Time) Message {
	return Message{
		ID:             fmt.Sprintf("%s-m%d", c.ID, seq),
		ConversationID: c.ID,
		Seq:            seq,
		Direction:      DirectionIn,
		Sender:         SenderCustomer,
		Kind:           "message",
		MID:            "m_" + dedupe,
		DedupeKey:      dedupe,
		FacebookPageID: c.FacebookPageID,
		PSID:           c.PSID,
		Text:           "hello " + dedupe,
		Status:         StatusReceived,
		SentAt:         at,
	}
}

func outbound(c Conversation, seq int64, status string, at time.Time) Message {
	m := inbound(c, seq, fmt.Sprint("out-", seq), at)
	m.Direction, m.Sender, m.Status, m.AgentID = DirectionOut, SenderAgent, status, "agent-1"
	return m
}

func TestMessages(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clock := newFakeClock(s)
		c := messageFixture(t, s, "600", "psid-1")
		at := mustUTC(t, "2025-06-01T10:00:00.5Z")
		m1 := inbound(c, 1, "mid.1", at)
		m1.Attachments = json.RawMessage(`[{"type":"image","payload":{"url":"https://example.com/a.png"}}]`)
		m1.Payload = json.RawMessage(`{"sender":{"id":"psid-1"},"message":{"mid":"mid.1","text":"hello"}}`)
		m2 := outbound(c, 2, StatusSent, at.Add(time.Second))
		m2.ErrorCode, m2.ErrorSubcode, m2.ErrorReason = 0, 0, ""
		m2.MessagingType, m2.Tag = "MESSAGE_TAG", "HUMAN_AGENT"

		inserted, err := s.InsertMessages(ctx, []Message{m1, m2})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(inserted, []string{m1.ID, m2.ID}) {
			t.Errorf("InsertMessages = %v, want both", inserted)
		}
		now := clock.Now().Add(-time.Second) // the reading InsertMessages got
		got, err := s.ListMessages(ctx, c.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		m1.CreatedAt, m2.CreatedAt = now, now
		if len(got) != 2 || !reflect.DeepEqual(got[0], m1) || !reflect.DeepEqual(got[1], m2) {
			t.Errorf("ListMessages =\n%+v\nwant\n%+v\n%+v", got, m1, m2)
		}

		// Meta retries: same dedupe key (another id), and the activity
		// retried (same id): recorded once.
		retry := inbound(c, 3, "mid.1", at)
		m4 := inbound(c, 4, "mid.4", at.Add(2*time.Second))
		m5 := inbound(c, 5, "mid.5", at.Add(3*time.Second))
		dupInBatch := inbound(c, 6, "mid.5", at.Add(3*time.Second))
		inserted, err = s.InsertMessages(ctx, []Message{retry, m1, m4, m5, dupInBatch})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(inserted, []string{m4.ID, m5.ID}) {
			t.Errorf("InsertMessages with duplicates = %v, want [%s %s]", inserted, m4.ID, m5.ID)
		}
		if inserted, err := s.InsertMessages(ctx, []Message{m4, m5}); err != nil || len(inserted) != 0 {
			t.Errorf("InsertMessages(all known) = %v, %v; want none", inserted, err)
		}
		// The dedupe key is per customer.
		c2 := messageFixture(t, s, "601", "psid-1")
		if inserted, err := s.InsertMessages(ctx, []Message{inbound(c2, 1, "mid.1", at)}); err != nil || len(inserted) != 1 {
			t.Errorf("InsertMessages(same key, other page) = %v, %v; want inserted", inserted, err)
		}

		// Defaults: generated id, status, kind; no dedupe key, no dedupe.
		bare := Message{ConversationID: c.ID, Seq: 10, Direction: DirectionOut, Sender: SenderSystem, FacebookPageID: c.FacebookPageID, PSID: c.PSID, SentAt: at}
		bare2 := bare
		bare2.Seq = 11
		inserted, err = s.InsertMessages(ctx, []Message{bare, bare2})
		if err != nil || len(inserted) != 2 || inserted[0] == "" || inserted[0] == inserted[1] {
			t.Fatalf("InsertMessages(no id, no dedupe key) = %v, %v", inserted, err)
		}
		after, err := s.ListMessages(ctx, c.ID, 9, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != 2 || after[0].ID != inserted[0] || after[0].Status != StatusPending || after[0].Kind != KindUnknown || after[0].Attachments != nil || after[0].Payload != nil {
			t.Errorf("defaults = %+v", after)
		}

		// ListMessages: by seq, after a seq, limited.
		all, err := s.ListMessages(ctx, c.ID, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, m := range all {
			seqs = append(seqs, m.Seq)
		}
		if !reflect.DeepEqual(seqs, []int64{1, 2, 4, 5, 10, 11}) {
			t.Errorf("seqs = %v", seqs)
		}
		page, err := s.ListMessages(ctx, c.ID, 2, 2)
		if err != nil || len(page) != 2 || page[0].Seq != 4 || page[1].Seq != 5 {
			t.Errorf("ListMessages(after 2, limit 2) = %+v, %v", page, err)
		}

		// Status updates.
		if err := s.UpdateMessageStatus(ctx, m2.ID, StatusFailed, 551, 1545041, "This person isn't available right now."); err != nil {
			t.Fatal(err)
		}
		failed, err := s.ListMessages(ctx, c.ID, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if f := failed[0]; f.Status != StatusFailed || f.ErrorCode != 551 || f.ErrorSubcode != 1545041 || f.ErrorReason == "" {
			t.Errorf("after UpdateMessageStatus: %+v", f)
		}
		if err := s.UpdateMessageStatus(ctx, "nope", StatusSent, 0, 0, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateMessageStatus(unknown) = %v, want ErrNotFound", err)
		}
		if err := s.UpdateMessageStatus(ctx, m2.ID, "lost", 0, 0, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpdateMessageStatus(bad status) = %v, want ErrInvalid", err)
		}

		// Invalid input, and an unknown conversation, insert nothing.
		for name, m := range map[string]Message{
			"direction":       func() Message { m := inbound(c, 20, "x20", at); m.Direction = "sideways"; return m }(),
			"sender":          func() Message { m := inbound(c, 21, "x21", at); m.Sender = "robot"; return m }(),
			"status":          func() Message { m := inbound(c, 22, "x22", at); m.Status = "lost"; return m }(),
			"attachments":     func() Message { m := inbound(c, 23, "x23", at); m.Attachments = json.RawMessage(`[{`); return m }(),
			"no psid":         func() Message { m := inbound(c, 24, "x24", at); m.PSID = ""; return m }(),
			"no conversation": func() Message { m := inbound(c, 25, "x25", at); m.ConversationID = ""; return m }(),
		} {
			if _, err := s.InsertMessages(ctx, []Message{inbound(c, 30, "x30", at), m}); !errors.Is(err, ErrInvalid) {
				t.Errorf("InsertMessages(bad %s) = %v, want ErrInvalid", name, err)
			}
		}
		orphan := inbound(c, 1, "orphan", at)
		orphan.ID, orphan.ConversationID = "orphan", "no-such-conversation"
		if _, err := s.InsertMessages(ctx, []Message{inbound(c, 30, "x30", at), orphan}); !errors.Is(err, ErrNotFound) {
			t.Errorf("InsertMessages(unknown conversation) = %v, want ErrNotFound", err)
		}
		// The transaction rolled back: x30 was not kept.
		if got, err := s.ListMessages(ctx, c.ID, 29, 0); err != nil || len(got) != 0 {
			t.Errorf("after a failed InsertMessages: %+v, %v; want nothing", got, err)
		}
		if inserted, err := s.InsertMessages(ctx, nil); err != nil || len(inserted) != 0 {
			t.Errorf("InsertMessages(nil) = %v, %v", inserted, err)
		}
	})
}

func TestApplyWatermark(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := messageFixture(t, s, "700", "psid-1")
		other := messageFixture(t, s, "700", "psid-2")
		t0 := mustUTC(t, "2025-06-01T10:00:00Z")
		at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
		msgs := []Message{
			outbound(c, 1, StatusSent, at(1)),
			outbound(c, 2, StatusSent, at(2)),
			outbound(c, 3, StatusPending, at(1)),
			outbound(c, 4, StatusFailed, at(1)),
			outbound(c, 5, StatusSent, at(10)),
			inbound(c, 6, "in-6", at(1)),
			outbound(other, 1, StatusSent, at(1)),
		}
		if _, err := s.InsertMessages(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		statuses := func() map[string]string {
			out := map[string]string{}
			for _, conv := range []Conversation{c, other} {
				list, err := s.ListMessages(ctx, conv.ID, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range list {
					out[m.ID] = m.Status
				}
			}
			return out
		}
		want := statuses()
		for _, step := range []struct {
			status    string
			watermark time.Time
			changed   int
			moved     map[int]string // index in msgs -> new status
		}{
			// Delivered up to t2: messages 1 and 2 (exactly at the watermark).
			{StatusDelivered, at(2), 2, map[int]string{0: StatusDelivered, 1: StatusDelivered}},
			// Again: nothing left to change.
			{StatusDelivered, at(2), 0, nil},
			// Read up to t1: message 1.
			{StatusRead, at(1), 1, map[int]string{0: StatusRead}},
			// An older delivery watermark never takes read back.
			{StatusDelivered, at(1), 0, nil},
			// Read up to t20: 2 (delivered) and 5 (sent, skipping delivered).
			{StatusRead, at(20), 2, map[int]string{1: StatusRead, 4: StatusRead}},
			// Delivered later: read stays read.
			{StatusDelivered, at(30), 0, nil},
		} {
			n, err := s.ApplyWatermark(ctx, c.FacebookPageID, c.PSID, step.status, step.watermark)
			if err != nil {
				t.Fatal(err)
			}
			if n != step.changed {
				t.Errorf("ApplyWatermark(%s, %v) = %d, want %d", step.status, step.watermark, n, step.changed)
			}
			for i, st := range step.moved {
				want[msgs[i].ID] = st
			}
			if got := statuses(); !reflect.DeepEqual(got, want) {
				t.Errorf("after ApplyWatermark(%s, %v):\n got %v\nwant %v", step.status, step.watermark, got, want)
			}
		}
		// Pending, failed, inbound and the other customer's messages never moved.
		for _, i := range []int{2, 3, 5, 6} {
			if got := statuses()[msgs[i].ID]; got != msgs[i].Status {
				t.Errorf("message %s: %s, want %s", msgs[i].ID, got, msgs[i].Status)
			}
		}
		if _, err := s.ApplyWatermark(ctx, c.FacebookPageID, c.PSID, StatusSent, at(1)); !errors.Is(err, ErrInvalid) {
			t.Errorf("ApplyWatermark(sent) = %v, want ErrInvalid", err)
		}
	})
}

func TestMarkMessageSentAndFailed(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clock := newFakeClock(s)
		c := messageFixture(t, s, "800", "psid-1")
		queued := mustUTC(t, "2025-06-01T10:00:00Z")
		sentAt := queued.Add(1500 * time.Millisecond)
		ok := outbound(c, 1, StatusPending, queued)
		ok.MID = ""
		ok.MessagingType, ok.Tag = "MESSAGE_TAG", "HUMAN_AGENT"
		bad := outbound(c, 2, StatusPending, queued)
		bad.MID = ""
		in := inbound(c, 3, "in-3", queued)
		now := outbound(c, 4, StatusPending, queued)
		now.MID = ""
		if _, err := s.InsertMessages(ctx, []Message{ok, bad, in, now}); err != nil {
			t.Fatal(err)
		}
		get := func(id string) Message {
			t.Helper()
			list, err := s.ListMessages(ctx, c.ID, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range list {
				if m.ID == id {
					return m
				}
			}
			t.Fatalf("message %s not found", id)
			return Message{}
		}

		// pending -> sent, with Meta's mid and the send time.
		if err := s.MarkMessageSent(ctx, ok.ID, "m_ok", sentAt); err != nil {
			t.Fatal(err)
		}
		want := get(ok.ID)
		if want.Status != StatusSent || want.MID != "m_ok" || !want.SentAt.Equal(sentAt) || want.MessagingType != "MESSAGE_TAG" || want.Tag != "HUMAN_AGENT" {
			t.Errorf("after MarkMessageSent: %+v", want)
		}
		// A retry with the same mid changes nothing, not even the time.
		if err := s.MarkMessageSent(ctx, ok.ID, "m_ok", sentAt.Add(time.Minute)); err != nil {
			t.Errorf("MarkMessageSent(retry) = %v, want nil", err)
		}
		if got := get(ok.ID); !reflect.DeepEqual(got, want) {
			t.Errorf("after a retried MarkMessageSent: %+v\nwant %+v", got, want)
		}
		if err := s.MarkMessageSent(ctx, ok.ID, "m_other", sentAt); !errors.Is(err, ErrConflict) {
			t.Errorf("MarkMessageSent(other mid) = %v, want ErrConflict", err)
		}
		// A late failure never turns a sent message into a failed one.
		if err := s.MarkMessageFailed(ctx, ok.ID, 1200, 0, "temporary"); err != nil {
			t.Errorf("MarkMessageFailed(sent) = %v, want nil", err)
		}
		if got := get(ok.ID); !reflect.DeepEqual(got, want) {
			t.Errorf("after MarkMessageFailed on a sent message: %+v\nwant %+v", got, want)
		}
		// Delivered (a watermark before the retry) stays delivered.
		if n, err := s.ApplyWatermark(ctx, c.FacebookPageID, c.PSID, StatusDelivered, sentAt); err != nil || n != 1 {
			t.Fatalf("ApplyWatermark = %d, %v", n, err)
		}
		want.Status = StatusDelivered
		if err := s.MarkMessageSent(ctx, ok.ID, "m_ok", sentAt); err != nil {
			t.Errorf("MarkMessageSent(delivered) = %v, want nil", err)
		}
		if err := s.MarkMessageFailed(ctx, ok.ID, 1200, 0, "temporary"); err != nil {
			t.Errorf("MarkMessageFailed(delivered) = %v, want nil", err)
		}
		if got := get(ok.ID); !reflect.DeepEqual(got, want) {
			t.Errorf("delivered message after Mark*: %+v\nwant %+v", got, want)
		}

		// pending -> failed with Meta's error; the first error stays.
		if err := s.MarkMessageFailed(ctx, bad.ID, 551, 1545041, "This person isn't available right now."); err != nil {
			t.Fatal(err)
		}
		failed := get(bad.ID)
		if failed.Status != StatusFailed || failed.ErrorCode != 551 || failed.ErrorSubcode != 1545041 || failed.ErrorReason != "This person isn't available right now." || failed.MID != "" {
			t.Errorf("after MarkMessageFailed: %+v", failed)
		}
		if err := s.MarkMessageFailed(ctx, bad.ID, 10, 2018278, "outside the window"); err != nil {
			t.Errorf("MarkMessageFailed(again) = %v, want nil", err)
		}
		if err := s.MarkMessageSent(ctx, bad.ID, "m_bad", sentAt); !errors.Is(err, ErrConflict) {
			t.Errorf("MarkMessageSent(failed) = %v, want ErrConflict", err)
		}
		if got := get(bad.ID); !reflect.DeepEqual(got, failed) {
			t.Errorf("failed message after Mark*: %+v\nwant %+v", got, failed)
		}

		// A zero time is now. The delivery watermark kept above (at sentAt,
		// not before now) applies at once to a message confirmed after it.
		if err := s.MarkMessageSent(ctx, now.ID, "m_now", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if got, at := get(now.ID), clock.Now().Add(-time.Second); got.Status != StatusDelivered || !got.SentAt.Equal(at) || at.After(sentAt) {
			t.Errorf("MarkMessageSent(zero time): %s at %v, want delivered (watermark %v) at %v", got.Status, got.SentAt, sentAt, at)
		}

		for name, err := range map[string]error{
			"sent, inbound":   s.MarkMessageSent(ctx, in.ID, "m_in", sentAt),
			"failed, inbound": s.MarkMessageFailed(ctx, in.ID, 1, 0, "x"),
			"sent, empty mid": s.MarkMessageSent(ctx, bad.ID, "", sentAt),
			"sent, unknown":   s.MarkMessageSent(ctx, "nope", "m", sentAt),
			"failed, unknown": s.MarkMessageFailed(ctx, "nope", 1, 0, "x"),
		} {
			want := ErrInvalid
			if strings.HasSuffix(name, "unknown") {
				want = ErrNotFound
			}
			if !errors.Is(err, want) {
				t.Errorf("Mark (%s) = %v, want %v", name, err, want)
			}
		}
		if got := get(in.ID); got.Status != StatusReceived || got.MID != in.MID {
			t.Errorf("inbound message after Mark*: %+v", got)
		}
	})
}

// RecordMessages commits the conversation, its messages, their files and
// the live events together: a retry adds nothing, and a burst that fails
// halfway leaves no trace (no message recorded without its event).
func TestRecordMessagesIsOneTransaction(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := messageFixture(t, s, "610", "psid-r")
		at := mustUTC(t, "2025-06-01T10:00:00Z")
		m1, m2 := inbound(c, 1, "mid.r1", at), inbound(c, 2, "mid.r2", at.Add(time.Second))
		c.MessageCount = 2
		ev := func(m Message) NewEvent {
			return NewEvent{Type: EventConversationMessage, AgentID: "agent-1", ConversationID: c.ID,
				Data: map[string]any{"message_id": m.ID}, DedupeKey: "msg/" + m.ID}
		}
		before, err := s.EventsAfter(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := s.RecordMessages(ctx, c, []Message{m1, m2}, nil, []NewEvent{ev(m1), ev(m2)})
		if err != nil || len(ids) != 2 {
			t.Fatalf("RecordMessages: %v %v, want 2 ids", ids, err)
		}
		again, err := s.RecordMessages(ctx, c, []Message{m1, m2}, nil, []NewEvent{ev(m1), ev(m2)})
		if err != nil || len(again) != 0 {
			t.Fatalf("retry: %v %v, want nothing inserted", again, err)
		}
		got, err := s.GetConversation(ctx, c.ID)
		if err != nil || got.MessageCount != 2 {
			t.Fatalf("conversation: %+v %v, want 2 messages counted", got, err)
		}
		after, err := s.EventsAfter(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(after) - len(before); n != 2 {
			t.Errorf("%d live events, want 2 (none doubled by the retry)", n)
		}

		// A bad attachment fails the burst: its message is not recorded.
		m3 := inbound(c, 3, "mid.r3", at.Add(2*time.Second))
		bad := Attachment{ID: m3.ID + "-a0", MessageID: m3.ID, ConversationID: c.ID, Type: "image", Status: "nonsense", Direction: DirectionIn}
		if _, err := s.RecordMessages(ctx, c, []Message{m3}, []Attachment{bad}, []NewEvent{ev(m3)}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad attachment: %v, want ErrInvalid", err)
		}
		msgs, err := s.ListMessages(ctx, c.ID, 0, 10)
		if err != nil || len(msgs) != 2 {
			t.Errorf("after the failed burst: %d messages (%v), want 2", len(msgs), err)
		}
	})
}
