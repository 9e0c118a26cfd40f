package messenger

import (
	"context"
	"fmt"
	"net/http"
)

// UnsubscribeApp stops the app's webhooks for the page:
// DELETE /{version}/{page-id}/subscribed_apps.
func (c *Client) UnsubscribeApp(ctx context.Context, auth PageAuth) error {
	if err := auth.check(); err != nil {
		return err
	}
	seg, err := segment("page id", auth.PageID)
	if err != nil {
		return err
	}
	var w struct {
		Success bool `json:"success"`
	}
	p := "/" + seg + "/subscribed_apps"
	if err := c.do(ctx, OpUnsubscribeApp, http.MethodDelete, p, auth.query(), nil, auth.secrets(), &w); err != nil {
		return err
	}
	if !w.Success {
		return fmt.Errorf("messenger: DELETE %s: %w: success is not true", c.path(p), ErrUnexpectedResponse)
	}
	return nil
}
