package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"parley/messenger"
	"parley/store"
)

// FindSentMessageName looks for a message on Meta's side.
const FindSentMessageName = "FindSentMessage"

// FindSentInput is a message whose send had no clear answer.
type FindSentInput struct {
	MessageID      string    `json:"message_id"`
	PageRef        string    `json:"page_ref"`
	FacebookPageID string    `json:"facebook_page_id"`
	PSID           string    `json:"psid"`
	Text           string    `json:"text,omitempty"`
	AttachmentURL  string    `json:"attachment_url,omitempty"`
	Since          time.Time `json:"since"` // when Parley first tried to send it
}

// Lookup outcomes.
const (
	LookupFound       = "found"
	LookupAbsent      = "absent"
	LookupUnavailable = "unavailable"
)

// FindSentOutcome says whether Meta holds the message.
type FindSentOutcome struct {
	Outcome string `json:"outcome"`
	MID     string `json:"mid,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// FindSentMessage looks for the message in the thread's recent messages
// (Conversations API). It needs the page token's pages_read_engagement and
// pages_manage_metadata: without them the outcome is unavailable.
func (a *Sender) FindSentMessage(ctx context.Context, in FindSentInput) (FindSentOutcome, error) {
	page, auth, err := a.pageAuth(ctx, in.PageRef)
	if errors.Is(err, store.ErrNotFound) {
		return FindSentOutcome{Outcome: LookupUnavailable, Reason: "the page or its account was deleted from Parley"}, nil
	}
	if err != nil {
		return FindSentOutcome{}, fmt.Errorf("page %s: %w", in.PageRef, err)
	}
	if page.ThreadLookup == nil || !*page.ThreadLookup {
		return FindSentOutcome{Outcome: LookupUnavailable, Reason: "the page token lacks pages_read_engagement and pages_manage_metadata"}, nil
	}
	msgs, err := a.Graph.ThreadMessages(ctx, auth, in.PSID, threadLookupLimit)
	if err != nil {
		if ge, ok := messenger.AsGraphError(err); ok && !ge.Class().Retryable() {
			return FindSentOutcome{Outcome: LookupUnavailable, Reason: fmt.Sprintf("Meta refused the lookup (code %d, subcode %d): %s", ge.Code, ge.Subcode, ge.Class().Reason())}, nil
		}
		return FindSentOutcome{}, fmt.Errorf("look for message %s on Meta's side: %w", in.MessageID, err)
	}
	// A mid that already belongs to another message of ours is not this one.
	free, err := a.Store.UnheldMIDs(ctx, in.FacebookPageID, in.PSID, lookFor(msgs, in))
	if err != nil {
		return FindSentOutcome{}, err
	}
	if len(free) > 0 {
		a.log().InfoContext(ctx, "unclear send found on Meta's side", "message", in.MessageID, "mid", free[0])
		return FindSentOutcome{Outcome: LookupFound, MID: free[0]}, nil
	}
	a.log().InfoContext(ctx, "unclear send not on Meta's side: it will be sent again", "message", in.MessageID, "looked_at", len(msgs))
	return FindSentOutcome{Outcome: LookupAbsent}, nil
}

// threadLookupLimit: Meta lists the newest messages first; 20 covers the
// messages sent since an unclear send, short of a flood.
const threadLookupLimit = 20

// clockSkew allows for Meta's created_time (seconds) against Parley's clock.
const clockSkew = 5 * time.Second

// lookFor returns, oldest first, the mids of the page's messages that match
// the one sent: from the page, same text ("" for an attachment), created
// after the first try.
func lookFor(msgs []messenger.ThreadMessage, in FindSentInput) []string {
	var out []string
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.From != in.FacebookPageID || m.CreatedTime.Before(in.Since.Add(-clockSkew)) || m.Text != in.Text {
			continue
		}
		out = append(out, m.ID)
	}
	return out
}
