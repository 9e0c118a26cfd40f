package messenger

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/fakemeta"
)

const (
	fakeApp  = "1001"
	fakePage = "2002"
	fakePSID = "3003"
)

// metaThread is fake Meta with one page whose person fakePSID wrote, and a
// client for it; now moves the fake's clock.
func metaThread(t *testing.T) (*Client, *fakemeta.Server, PageAuth, func(time.Duration)) {
	t.Helper()
	var mu sync.Mutex
	now := time.Date(2026, 11, 28, 20, 6, 36, 0, time.UTC)
	fake := fakemeta.New(fakemeta.Options{
		Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		},
	})
	t.Cleanup(fake.Close)
	graph := httptest.NewServer(fake.Handler())
	t.Cleanup(graph.Close)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			if _, err := io.WriteString(w, r.URL.Query().Get("hub.challenge")); err != nil {
				t.Errorf("handshake answer: %v", err)
			}
		}
	}))
	t.Cleanup(app.Close)
	fake.AddApp(fakeApp, testSecret)
	fake.AddPage(fakeApp, fakePage, "Acme", testToken)
	if err := fake.SetWebhook(context.Background(), fakeApp, app.URL, "vt", nil); err != nil {
		t.Fatalf("SetWebhook: %v", err)
	}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	auth := PageAuth{PageID: fakePage, AccessToken: testToken, AppSecret: testSecret}
	return NewClient(graph.URL, "v25.0", graph.Client()), fake, auth, advance
}

// Issue 6, defect 6: before resending a message whose outcome is unknown,
// the page's thread is read back from Meta: ids, texts, senders and times,
// newest first, attachments without text.
func TestThreadMessages(t *testing.T) {
	c, fake, auth, advance := metaThread(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 28, 20, 6, 36, 0, time.UTC)
	in, err := fake.CustomerSends(ctx, fakePage, fakePSID, "Wo ist mein Paket?")
	if err != nil {
		t.Fatalf("CustomerSends: %v", err)
	}
	advance(time.Minute)
	text, err := c.Send(ctx, auth, SendRequest{Recipient: Recipient{ID: fakePSID}, MessagingType: MessagingTypeResponse, Message: &OutMessage{Text: "Grüße 😀"}})
	if err != nil {
		t.Fatalf("Send text: %v", err)
	}
	advance(time.Minute)
	img, err := c.Send(ctx, auth, SendRequest{Recipient: Recipient{ID: fakePSID}, MessagingType: MessagingTypeResponse,
		Message: &OutMessage{Attachment: &OutAttachment{Type: AttachmentImage, Payload: AttachmentPayload{URL: "https://example.com/label.jpg"}}}})
	if err != nil {
		t.Fatalf("Send image: %v", err)
	}

	got, err := c.ThreadMessages(ctx, auth, fakePSID, 20)
	if err != nil {
		t.Fatalf("ThreadMessages: %v", err)
	}
	want := []ThreadMessage{
		{ID: img.MessageID, Text: "", From: fakePage, CreatedTime: start.Add(2 * time.Minute)},
		{ID: text.MessageID, Text: "Grüße 😀", From: fakePage, CreatedTime: start.Add(time.Minute)},
		{ID: in, Text: "Wo ist mein Paket?", From: fakePSID, CreatedTime: start},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Text != w.Text || g.From != w.From || !g.CreatedTime.Equal(w.CreatedTime) {
			t.Errorf("message %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	calls := fake.Calls()
	last := calls[len(calls)-1]
	if last.Op != fakemeta.OpConversations || last.Method != http.MethodGet || last.Path != "/v25.0/"+fakePage+"/conversations" {
		t.Errorf("call = %s %s (%s)", last.Method, last.Path, last.Op)
	}
	if q := last.Query; q.Get("platform") != "messenger" || q.Get("user_id") != fakePSID ||
		!strings.HasPrefix(q.Get("fields"), "messages.limit(20){id,message,created_time") || q.Get("appsecret_proof") == "" {
		t.Errorf("query = %v", q)
	}

	// The limit is passed on; a limit of 0 means 20.
	if got, err := c.ThreadMessages(ctx, auth, fakePSID, 1); err != nil || len(got) != 1 || got[0].ID != img.MessageID {
		t.Errorf("limit 1: %+v, %v", got, err)
	}
	if _, err := c.ThreadMessages(ctx, auth, fakePSID, 0); err != nil {
		t.Fatalf("limit 0: %v", err)
	}
	calls = fake.Calls()
	if f := calls[len(calls)-1].Query.Get("fields"); !strings.HasPrefix(f, "messages.limit(20)") {
		t.Errorf("limit 0 asked for %q", f)
	}

	// Nobody else's thread: nothing, and no error.
	if got, err := c.ThreadMessages(ctx, auth, "3999", 20); err != nil || len(got) != 0 {
		t.Errorf("unknown person: %+v, %v", got, err)
	}
}

// Without pages_read_engagement Meta refuses the listing: the caller gets a
// *GraphError of class permission_denied, which names no secret.
func TestThreadMessagesWithoutPermission(t *testing.T) {
	c, fake, auth, _ := metaThread(t)
	ctx := context.Background()
	if _, err := fake.CustomerSends(ctx, fakePage, fakePSID, "hi"); err != nil {
		t.Fatalf("CustomerSends: %v", err)
	}
	fake.SetPageScopes(fakePage, []string{"pages_show_list", "pages_messaging"})
	msgs, err := c.ThreadMessages(ctx, auth, fakePSID, 20)
	var ge *GraphError
	if !errors.As(err, &ge) || ge.Code != 10 || ge.Class() != ClassPermission || msgs != nil {
		t.Fatalf("ThreadMessages = %+v, %v; want a *GraphError 10 (%s)", msgs, err, ClassPermission)
	}
	if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), testSecret) {
		t.Errorf("error leaks a secret: %v", err)
	}
}

func TestThreadMessagesRefusedLocallyAndOddAnswers(t *testing.T) {
	c, rec := fakeGraph(t, 200, `{"data":[{"id":"t_1","messages":{"data":[{"id":"m_1","message":"x","created_time":"yesterday"}]}}]}`)
	ctx := context.Background()
	if _, err := c.ThreadMessages(ctx, testAuth, "", 20); err == nil {
		t.Error("no PSID: no error")
	}
	if _, err := c.ThreadMessages(ctx, PageAuth{PageID: "123"}, "7", 20); err == nil {
		t.Error("no token: no error")
	}
	if rec.method != "" {
		t.Errorf("a refused call reached Meta: %s %s", rec.method, rec.path)
	}
	if _, err := c.ThreadMessages(ctx, testAuth, "7", 20); !errors.Is(err, ErrUnexpectedResponse) {
		t.Errorf("bad created_time: %v, want ErrUnexpectedResponse", err)
	}
	assertPageAuth(t, rec.query)

	c, _ = fakeGraph(t, 500, `{"error":{"message":"(#2) Service temporarily unavailable","type":"OAuthException","code":2,"fbtrace_id":"T"}}`)
	_, err := c.ThreadMessages(ctx, testAuth, "7", 20)
	if !isClass(err, ClassTemporary) {
		t.Errorf("code 2: %v, want class %s", err, ClassTemporary)
	}
}
