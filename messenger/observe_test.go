package messenger

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// observed is what Client.Observe was told.
type observed struct {
	op  string
	d   time.Duration
	err error
}

func observe(c *Client) func() []observed {
	var mu sync.Mutex
	var got []observed
	c.Observe = func(op string, d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, observed{op, d, err})
	}
	return func() []observed {
		mu.Lock()
		defer mu.Unlock()
		return append([]observed(nil), got...)
	}
}

func TestObserveNamesTheOperationAndItsError(t *testing.T) {
	c, _ := fakeGraph(t, 200, `{"recipient_id":"1","message_id":"m_1"}`)
	seen := observe(c)
	if _, err := c.Send(context.Background(), testAuth, SendRequest{Recipient: Recipient{ID: "1"}, MessagingType: MessagingTypeResponse, Message: &OutMessage{Text: "hi"}}); err != nil {
		t.Fatal(err)
	}
	got := seen()
	if len(got) != 1 || got[0].op != OpSend || got[0].err != nil || got[0].d <= 0 {
		t.Fatalf("observed %+v, want one successful %s with a duration", got, OpSend)
	}

	c, _ = fakeGraph(t, 400, `{"error":{"message":"outside","type":"OAuthException","code":10,"error_subcode":2018278}}`)
	seen = observe(c)
	if _, err := c.UserProfile(context.Background(), testAuth, "42"); err == nil {
		t.Fatal("UserProfile: want an error")
	}
	got = seen()
	if len(got) != 1 || got[0].op != OpUserProfile {
		t.Fatalf("observed %+v, want one %s", got, OpUserProfile)
	}
	ge, ok := AsGraphError(got[0].err)
	if !ok || ge.Class() != ClassOutsideWindow {
		t.Errorf("observed error %v, want the GraphError (outside_window)", got[0].err)
	}
}

func TestObserveSkipsCallsRefusedLocally(t *testing.T) {
	c, _ := fakeGraph(t, 200, `{}`)
	seen := observe(c)
	_, err := c.Send(context.Background(), PageAuth{PageID: "123"}, SendRequest{Recipient: Recipient{ID: "1"}, Message: &OutMessage{Text: "hi"}})
	if !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("Send without a token: %v, want ErrInvalidRequest", err)
	}
	if got := seen(); len(got) != 0 {
		t.Errorf("observed %+v for a call that never left Parley", got)
	}
}
