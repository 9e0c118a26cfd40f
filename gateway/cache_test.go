package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/gateway"
	"parley/store"
	"parley/testenv"
)

// The gateway caches each callback key's page and app secret; a change made
// through the REST API of the same process takes effect at once.
func TestCacheFollowsTheAPIOfItsProcess(t *testing.T) {
	e, page := connected(t)
	now := time.Now().UnixMilli()
	send := func(psid, mid, secret string) int {
		t.Helper()
		body := envelope(pageID, event{psid, mid, "hello", now})
		status, _ := post(t, page.CallbackURL, body, sign(body, secret))
		return status
	}
	if status := send("psid-cache-1", "m_c1", appSecret); status != http.StatusOK {
		t.Fatalf("first webhook: %d, want 200", status)
	}
	if status := send("psid-cache-2", "m_c2", appSecret); status != http.StatusOK {
		t.Fatalf("second webhook (from the cache): %d, want 200", status)
	}

	// A rotated app secret: the new one works at once, the old one no more.
	const rotated = "rotated-app-secret-0123456789abcdef"
	e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/accounts/"+page.AccountID, map[string]string{"app_secret": rotated}, nil)
	if status := send("psid-cache-3", "m_c3", rotated); status != http.StatusOK {
		t.Errorf("webhook signed with the rotated secret: %d, want 200", status)
	}
	if status := send("psid-cache-4", "m_c4", appSecret); status != http.StatusUnauthorized {
		t.Errorf("webhook signed with the old secret: %d, want 401", status)
	}

	// A deleted page: its events are acknowledged and dropped at once.
	e.MustDo(http.StatusOK, http.MethodDelete, "/api/v1/pages/"+page.ID, nil, nil)
	if status := send("psid-cache-5", "m_c5", rotated); status != http.StatusOK {
		t.Errorf("webhook of the deleted page: %d, want 200 (acknowledged and dropped)", status)
	}
	if running(t, e, "psid-cache-5") {
		t.Errorf("a webhook of the deleted page started a conversation")
	}

	// A deleted account: 404 at once.
	e.MustDo(http.StatusNoContent, http.MethodDelete, "/api/v1/accounts/"+page.AccountID, nil, nil)
	if status := send("psid-cache-6", "m_c6", rotated); status != http.StatusNotFound {
		t.Errorf("webhook of the deleted account: %d, want 404", status)
	}
}

// clock is a settable time.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// replica serves a second gateway on the Env's database and Temporal, as
// another API replica would: the Env's REST API does not reach its cache.
func replica(t *testing.T, e *testenv.Env, now func() time.Time) string {
	t.Helper()
	ec := echo.New()
	ec.HTTPErrorHandler = apierror.Handler(slog.Default())
	gateway.New(gateway.Options{Store: e.App.Store, Temporal: e.Temporal(), TaskQueue: e.App.Config.TaskQueue,
		SignalTimeout: 5 * time.Second, Now: now}).Register(ec)
	srv := httptest.NewServer(ec)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Changes made elsewhere (another replica, straight in the database) reach
// a gateway's cache within DefaultCacheTTL; a rotated app secret at once.
// The first webhook of a page records that webhooks arrive.
func TestCacheAcrossReplicas(t *testing.T) {
	e, page := connected(t)
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	base := replica(t, e, clk.now)
	key := page.CallbackURL[len(e.URL):]
	callback := base + key
	now := time.Now().UnixMilli()
	send := func(psid, mid, secret string) int {
		t.Helper()
		body := envelope(pageID, event{psid, mid, "hello", now})
		status, _ := post(t, callback, body, sign(body, secret))
		return status
	}

	if status := send("psid-rep-1", "m_r1", appSecret); status != http.StatusOK {
		t.Fatalf("first webhook: %d, want 200", status)
	}
	p, err := e.App.Store.GetPage(ctx, page.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.LastWebhookAt == nil || p.LastWebhookAt.Sub(clk.now()).Abs() > time.Second {
		t.Errorf("last_webhook_at after the first webhook = %v, want about %v", p.LastWebhookAt, clk.now().UTC())
	}

	// The secret rotated elsewhere: a webhook signed with the new one is
	// accepted at once (the cached secret fails, the gateway reads it again).
	rotated := "rotated-app-secret-0123456789abcdef"
	if _, err := e.App.Store.UpdateAccount(ctx, page.AccountID, store.AccountUpdate{AppSecret: &rotated}); err != nil {
		t.Fatal(err)
	}
	if status := send("psid-rep-2", "m_r2", rotated); status != http.StatusOK {
		t.Errorf("webhook signed with the secret rotated elsewhere: %d, want 200 at once", status)
	}
	if status := send("psid-rep-3", "m_r3", appSecret); status != http.StatusUnauthorized {
		t.Errorf("webhook signed with the old secret: %d, want 401", status)
	}

	// The page deleted elsewhere: within the TTL its events are dropped.
	if err := e.App.Store.DeletePage(ctx, page.ID); err != nil {
		t.Fatal(err)
	}
	clk.add(gateway.DefaultCacheTTL)
	if status := send("psid-rep-4", "m_r4", rotated); status != http.StatusOK {
		t.Errorf("webhook of the page deleted elsewhere: %d, want 200 (acknowledged and dropped)", status)
	}
	if running(t, e, "psid-rep-4") {
		t.Errorf("a webhook of the page deleted elsewhere, a TTL later, started a conversation")
	}

	// The account deleted elsewhere: within the TTL its webhooks answer 404.
	if err := e.App.Store.DeleteAccount(ctx, page.AccountID); err != nil {
		t.Fatal(err)
	}
	clk.add(gateway.DefaultCacheTTL)
	if status := send("psid-rep-5", "m_r5", rotated); status != http.StatusNotFound {
		t.Errorf("webhook of the account deleted elsewhere, a TTL later: %d, want 404", status)
	}
}
