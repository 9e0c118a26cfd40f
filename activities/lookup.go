package activities

import (
	"context"
	"time"
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
	return FindSentOutcome{Outcome: LookupUnavailable, Reason: "not implemented yet"}, nil
}
