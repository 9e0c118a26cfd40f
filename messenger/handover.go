package messenger

import (
	"context"
	"fmt"
	"net/http"
)

// Handover operations named to Client.Observe.
const (
	OpPassThreadControl = "pass_thread_control"
	OpTakeThreadControl = "take_thread_control"
)

type handoverRequest struct {
	Recipient   Recipient `json:"recipient"`
	TargetAppID string    `json:"target_app_id,omitempty"`
	Metadata    string    `json:"metadata,omitempty"`
}

// PassThreadControl gives the thread with psid to another app (the Page
// Inbox: PageInboxAppID): POST /{page-id}/pass_thread_control.
func (c *Client) PassThreadControl(ctx context.Context, auth PageAuth, psid, targetAppID, metadata string) error {
	if targetAppID == "" {
		return fmt.Errorf("%w: a target app id is required", ErrInvalidRequest)
	}
	return c.handover(ctx, auth, OpPassThreadControl, handoverRequest{Recipient: Recipient{ID: psid}, TargetAppID: targetAppID, Metadata: metadata})
}

// TakeThreadControl takes the thread with psid back from the app that owns
// it (the page's primary app may): POST /{page-id}/take_thread_control.
func (c *Client) TakeThreadControl(ctx context.Context, auth PageAuth, psid, metadata string) error {
	return c.handover(ctx, auth, OpTakeThreadControl, handoverRequest{Recipient: Recipient{ID: psid}, Metadata: metadata})
}

func (c *Client) handover(ctx context.Context, auth PageAuth, op string, req handoverRequest) error {
	if err := auth.check(); err != nil {
		return err
	}
	seg, err := segment("page id", auth.PageID)
	if err != nil {
		return err
	}
	if req.Recipient.ID == "" {
		return fmt.Errorf("%w: a recipient psid is required", ErrInvalidRequest)
	}
	var w struct {
		Success bool `json:"success"`
	}
	p := "/" + seg + "/" + op
	if err := c.do(ctx, op, http.MethodPost, p, auth.query(), req, auth.secrets(), &w); err != nil {
		return err
	}
	if !w.Success {
		return fmt.Errorf("messenger: POST %s: %w: success is not true", c.path(p), ErrUnexpectedResponse)
	}
	return nil
}
