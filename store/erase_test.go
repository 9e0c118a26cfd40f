package store

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Erasing a customer empties what identifies them or quotes them (every
// table searched), keeps counts and timestamps, closes the open
// conversation, and leaves another customer of the same page untouched.
func TestEraseCustomerData(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		acct := mustCreateAccount(t, s, "Acme")
		page := mustCreatePage(t, s, acct.ID, "310000000000001")
		now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
		for _, who := range []string{"gone", "stays"} {
			conv := Conversation{ID: "c-" + who, PageRef: page.ID, AccountID: acct.ID, FacebookPageID: page.PageID, PSID: "psid-" + who,
				WorkflowID: "w-" + who, State: "active", MessageCount: 2, StartedAt: now, UpdatedAt: now}
			if err := s.UpsertConversation(ctx, conv); err != nil {
				t.Fatal(err)
			}
			if _, err := s.InsertMessages(ctx, []Message{
				{ID: "m1-" + who, ConversationID: conv.ID, Seq: 1, Direction: DirectionIn, Sender: SenderCustomer, Kind: "message",
					FacebookPageID: page.PageID, PSID: conv.PSID, Text: "secret text of " + who, Status: StatusReceived, SentAt: now,
					Payload: json.RawMessage(`{"message":{"text":"secret text of ` + who + `"}}`)},
				{ID: "m2-" + who, ConversationID: conv.ID, Seq: 2, Direction: DirectionOut, Sender: SenderAgent, Kind: "message",
					FacebookPageID: page.PageID, PSID: conv.PSID, Text: "agent answer to " + who, Status: StatusSent, SentAt: now},
			}); err != nil {
				t.Fatal(err)
			}
			if err := s.InsertAttachments(ctx, []Attachment{{ID: "a-" + who, MessageID: "m1-" + who, ConversationID: conv.ID,
				FacebookPageID: page.PageID, PSID: conv.PSID, Direction: DirectionIn, Type: "file", Status: AttachmentKept,
				Filename: "passport-of-" + who + ".pdf", BlobKey: "customers/x/" + who}}); err != nil {
				t.Fatal(err)
			}
			if err := s.AppendEvents(ctx, NewEvent{Type: EventConversationMessage, ConversationID: conv.ID,
				Data: map[string]any{"text": "secret text of " + who}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SaveProfile(ctx, page.ID, conv.PSID, ProfileFetched{FirstName: "First-" + who, LastName: "Last-" + who, At: now}); err != nil {
				t.Fatal(err)
			}
		}
		// An attachment of a message never recorded is skipped, not an error.
		if err := s.InsertAttachments(ctx, []Attachment{{ID: "a-orphan", MessageID: "nope", ConversationID: "c-gone", Direction: DirectionIn,
			Type: "image", Status: AttachmentPending}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAttachment(ctx, "a-orphan"); err == nil {
			t.Error("an attachment without its message was recorded")
		}

		got, err := s.EraseCustomerData(ctx, page.ID, page.PageID, "psid-gone", now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Conversations) != 1 || got.Messages != 2 || got.Attachments != 1 || got.Events != 1 || !got.Profile ||
			len(got.Ended) != 1 || got.Ended[0].ConversationID != "c-gone" {
			t.Errorf("erased %+v", got)
		}
		if err := s.EachCell(ctx, func(table, column, value string) {
			if strings.Contains(value, "gone") && !strings.HasSuffix(value, "-gone") && value != "gone" {
				t.Errorf("%s.%s still holds %q", table, column, value)
			}
		}); err != nil {
			t.Fatal(err)
		}
		c, err := s.GetConversation(ctx, "c-gone")
		if err != nil {
			t.Fatal(err)
		}
		if c.State != "closed" || c.ClosedReason != ClosedErased || c.MessageCount != 2 || !c.StartedAt.Equal(now) {
			t.Errorf("erased conversation = %+v, want closed, erased, counts and times kept", c)
		}
		msgs, err := s.ListMessages(ctx, "c-gone", 0, 10)
		if err != nil || len(msgs) != 2 || msgs[0].Text != "" || msgs[0].Payload != nil || !msgs[0].SentAt.Equal(now) {
			t.Errorf("erased messages = %+v, %v", msgs, err)
		}
		// The other customer keeps everything.
		msgs, err = s.ListMessages(ctx, "c-stays", 0, 10)
		if err != nil || len(msgs) != 2 || msgs[0].Text != "secret text of stays" {
			t.Errorf("the other customer's messages = %+v, %v", msgs, err)
		}
		if cu, err := s.GetCustomer(ctx, page.ID, "psid-stays"); err != nil || cu.FirstName != "First-stays" {
			t.Errorf("the other customer = %+v, %v", cu, err)
		}
		if _, err := s.GetAttachment(ctx, "a-stays"); err != nil {
			t.Errorf("the other customer's attachment: %v", err)
		}
		// Erasing again is harmless.
		if again, err := s.EraseCustomerData(ctx, page.ID, page.PageID, "psid-gone", now.Add(2*time.Hour)); err != nil || again.Profile || again.Attachments != 0 {
			t.Errorf("second erase: %+v, %v", again, err)
		}
	})
}
