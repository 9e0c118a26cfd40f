package messenger

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// ThreadMessage is one message of a thread, as the Conversations API lists it.
type ThreadMessage struct {
	ID          string    // Meta's message id (mid)
	Text        string    // "" for an attachment
	From        string    // the sender's id: the page's id, or the person's PSID
	CreatedTime time.Time // second precision
}

// ThreadMessages lists the newest messages (at most limit, newest first) of
// the page's thread with a person: GET /{version}/{page-id}/conversations?
// platform=messenger&user_id=PSID&fields=messages.limit(N){id,message,
// created_time,from}. It needs pages_read_engagement and
// pages_manage_metadata; without them Meta answers a *GraphError.
func (c *Client) ThreadMessages(ctx context.Context, auth PageAuth, psid string, limit int) ([]ThreadMessage, error) {
	if err := auth.check(); err != nil {
		return nil, err
	}
	seg, err := segment("page id", auth.PageID)
	if err != nil {
		return nil, err
	}
	if _, err := segment("PSID", psid); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 20
	}
	q := auth.query()
	q.Set("platform", "messenger")
	q.Set("user_id", psid)
	q.Set("fields", "messages.limit("+strconv.Itoa(limit)+"){id,message,created_time,from}")
	var body struct {
		Data []struct {
			Messages struct {
				Data []struct {
					ID          string `json:"id"`
					Message     string `json:"message"`
					CreatedTime string `json:"created_time"`
					From        struct {
						ID string `json:"id"`
					} `json:"from"`
				} `json:"data"`
			} `json:"messages"`
		} `json:"data"`
	}
	p := "/" + seg + "/conversations"
	if err := c.do(ctx, OpThreadMessages, http.MethodGet, p, q, nil, auth.secrets(), &body); err != nil {
		return nil, err
	}
	var out []ThreadMessage
	for _, th := range body.Data {
		for _, m := range th.Messages.Data {
			at, err := time.Parse("2006-01-02T15:04:05-0700", m.CreatedTime)
			if err != nil {
				return nil, fmt.Errorf("messenger: GET %s: %w: created_time %q", c.path(p), ErrUnexpectedResponse, m.CreatedTime)
			}
			out = append(out, ThreadMessage{ID: m.ID, Text: m.Message, From: m.From.ID, CreatedTime: at.UTC()})
		}
	}
	return out, nil
}
