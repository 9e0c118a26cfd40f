package fakemeta

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testApp    = "1234567890"
	testSecret = "s3cret"
	testPage   = "111222333"
	testToken  = "EAAtoken1"
	testPSID   = "9000000001"
	testVerify = "verify-me"
)

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// hook is the app's webhook callback.
type hook struct {
	srv         *httptest.Server
	verifyToken string

	mu       sync.Mutex
	posts    []hookPost
	statuses []int               // answers for the next POSTs; then 200
	mangle   func(string) string // alters the echoed challenge
}

type hookPost struct {
	body   []byte
	header http.Header
}

func newHook(t *testing.T) *hook {
	h := &hook{verifyToken: testVerify}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		if q.Get("hub.mode") != "subscribe" || q.Get("hub.verify_token") != h.verifyToken {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		ch := q.Get("hub.challenge")
		h.mu.Lock()
		if h.mangle != nil {
			ch = h.mangle(ch)
		}
		h.mu.Unlock()
		_, _ = io.WriteString(w, ch)
	case http.MethodPost:
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.posts = append(h.posts, hookPost{body: body, header: r.Header.Clone()})
		status := http.StatusOK
		if len(h.statuses) > 0 {
			status, h.statuses = h.statuses[0], h.statuses[1:]
		}
		h.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "ack")
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (h *hook) Posts() []hookPost {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookPost(nil), h.posts...)
}

func (h *hook) failNext(statuses ...int) {
	h.mu.Lock()
	h.statuses = append(h.statuses, statuses...)
	h.mu.Unlock()
}

// env is a fake with one app, one page, a webhook and a Graph host.
type env struct {
	t     *testing.T
	fake  *Server
	graph *httptest.Server
	hook  *hook
	clock *clock
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	c := newClock()
	if opts.Now == nil {
		opts.Now = c.Now
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	f := New(opts)
	t.Cleanup(f.Close)
	g := httptest.NewServer(f.Handler())
	t.Cleanup(g.Close)
	f.AddApp(testApp, testSecret)
	f.AddPage(testApp, testPage, "Acme Support", testToken)
	h := newHook(t)
	if err := f.SetWebhook(context.Background(), testApp, h.srv.URL+"/webhooks/facebook/k1", testVerify, nil); err != nil {
		t.Fatalf("SetWebhook: %v", err)
	}
	return &env{t: t, fake: f, graph: g, hook: h, clock: c}
}

// customerWrites makes testPSID write to the page now.
func (e *env) customerWrites(text string) string {
	e.t.Helper()
	mid, err := e.fake.CustomerSends(context.Background(), testPage, testPSID, text)
	if err != nil {
		e.t.Fatalf("CustomerSends: %v", err)
	}
	return mid
}

// do calls the Graph host. query gets the token and its proof unless the
// caller set access_token itself.
func (e *env) do(method, path string, query url.Values, contentType, body string) (int, []byte, http.Header) {
	e.t.Helper()
	u := e.graph.URL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.graph.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func auth(token, secret string) url.Values {
	return url.Values{"access_token": {token}, "appsecret_proof": {AppSecretProof(token, secret)}}
}

// send posts a Send API body with the test page's token.
func (e *env) send(body string) (int, map[string]any) {
	e.t.Helper()
	st, b, _ := e.do(http.MethodPost, "/v25.0/"+testPage+"/messages", auth(testToken, testSecret), "application/json", body)
	return st, decode(e.t, b)
}

func textBody(psid, messagingType, tag, text string) string {
	m := map[string]any{
		"recipient":      map[string]string{"id": psid},
		"messaging_type": messagingType,
		"message":        map[string]string{"text": text},
	}
	if tag != "" {
		m["tag"] = tag
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}

// wantGraphError checks a Graph error answer.
func wantGraphError(t *testing.T, status int, body map[string]any, wantStatus, code, subcode int) map[string]any {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	if !ok {
		t.Fatalf("status %d, body %v: want a Graph error %d/%d", status, body, code, subcode)
	}
	if status != wantStatus {
		t.Errorf("HTTP status = %d, want %d (body %v)", status, wantStatus, body)
	}
	if got := num(e["code"]); got != code {
		t.Errorf("code = %d, want %d (%v)", got, code, e)
	}
	if got := num(e["error_subcode"]); got != subcode {
		t.Errorf("error_subcode = %d, want %d (%v)", got, subcode, e)
	}
	if e["fbtrace_id"] == "" || e["fbtrace_id"] == nil {
		t.Errorf("missing fbtrace_id: %v", e)
	}
	if e["type"] == "" || e["type"] == nil {
		t.Errorf("missing type: %v", e)
	}
	return e
}

func wantOK(t *testing.T, status int, body map[string]any) {
	t.Helper()
	if status != http.StatusOK || body["error"] != nil {
		t.Fatalf("status %d body %v: want success", status, body)
	}
}

func num(v any) int {
	if v == nil {
		return 0
	}
	n, _ := v.(json.Number).Int64()
	return int(n)
}

// event decodes the single messaging event of a webhook body.
func event(t *testing.T, body []byte) map[string]any {
	t.Helper()
	env := decode(t, body)
	entries := env["entry"].([]any)
	if len(entries) != 1 {
		t.Fatalf("entries = %d, want 1: %s", len(entries), body)
	}
	msgs := entries[0].(map[string]any)["messaging"].([]any)
	if len(msgs) != 1 {
		t.Fatalf("messaging = %d, want 1: %s", len(msgs), body)
	}
	return msgs[0].(map[string]any)
}
