package api_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/api"
	"parley/app"
	"parley/config"
	"parley/events"
	"parley/events/eventstest"
	"parley/store"
)

const sseAdminKey = "pk_admin_sse_test_key_0123456789abcdef"

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// sseServer is one API process: its own store (connection pool), hub and
// HTTP server, on a database others may share.
type sseServer struct {
	URL   string
	Store *store.Store
	Hub   *events.Hub
}

func startSSEServer(t *testing.T, dbURL string, opts events.Options) *sseServer {
	t.Helper()
	st := eventstest.OpenStore(t, dbURL)
	opts.Logger = quietLog
	hub := events.New(st, opts)
	hub.Start()
	srv := api.New(api.Options{Store: st, AdminAPIKey: sseAdminKey, Events: hub, Logger: quietLog})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(hub.Close) // first: ends the streams, so that ts.Close does not wait for them
	return &sseServer{URL: ts.URL, Store: st, Hub: hub}
}

// sseMsg is one message of a stream: an event, a comment (heartbeat) or
// an id alone.
type sseMsg struct {
	ID, Event, Data, Comment string
	HasID                    bool
	At                       time.Time
}

func (m sseMsg) id(t *testing.T) int64 {
	t.Helper()
	n, err := strconv.ParseInt(m.ID, 10, 64)
	if err != nil {
		t.Fatalf("message %+v: bad id: %v", m, err)
	}
	return n
}

type sseClient struct {
	t      *testing.T
	resp   *http.Response
	cancel context.CancelFunc
	msgs   chan sseMsg
	ended  chan struct{}
}

// dialSSE opens GET /api/v1/events<query> with key and, unless empty,
// Last-Event-ID; it fails the test unless the answer is 200.
func dialSSE(t *testing.T, baseURL, key, query, lastID string) *sseClient {
	t.Helper()
	c, status, body := tryDialSSE(t, baseURL, key, query, lastID)
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/events%s: %d %s", query, status, body)
	}
	return c
}

func tryDialSSE(t *testing.T, baseURL, key, query, lastID string) (*sseClient, int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /api/v1/events%s: %v", query, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, string(b)
	}
	c := &sseClient{t: t, resp: resp, cancel: cancel, msgs: make(chan sseMsg, 10000), ended: make(chan struct{})}
	go c.read()
	t.Cleanup(c.Close)
	return c, resp.StatusCode, ""
}

// read parses the stream (the SSE format: fields up to a blank line).
func (c *sseClient) read() {
	defer close(c.ended)
	defer close(c.msgs)
	r := bufio.NewReader(c.resp.Body)
	var m sseMsg
	started := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if started {
				m.At = time.Now()
				c.msgs <- m
			}
			m, started = sseMsg{}, false
			continue
		}
		started = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			m.Comment = value
		case "id":
			m.ID, m.HasID = value, true
		case "event":
			m.Event = value
		case "data":
			m.Data += value
		}
	}
}

// next returns the next event (skipping comments, id-only messages and
// retry:) within d.
func (c *sseClient) next(d time.Duration) (sseMsg, bool) {
	c.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				return sseMsg{}, false
			}
			if m.Event == "" {
				continue
			}
			return m, true
		case <-timer.C:
			return sseMsg{}, false
		}
	}
}

func (c *sseClient) mustNext(what string) sseMsg {
	c.t.Helper()
	m, ok := c.next(5 * time.Second)
	if !ok {
		c.t.Fatalf("%s: no event within 5s", what)
	}
	return m
}

// idsUntil reads events until the stream has gone past id last (an event
// or a heartbeat's id) and returns the ids of the events.
func (c *sseClient) idsUntil(last int64) []int64 {
	c.t.Helper()
	var ids []int64
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("stream ended after %v", ids)
			}
			if !m.HasID {
				continue
			}
			id := m.id(c.t)
			if m.Event != "" {
				ids = append(ids, id)
			}
			if id >= last {
				return ids
			}
		case <-deadline:
			c.t.Fatalf("stream did not reach id %d within 10s; events %v", last, ids)
		}
	}
}

func (c *sseClient) Close() {
	c.cancel()
	<-c.ended
	c.resp.Body.Close()
}

type eventData struct {
	ID             int64           `json:"id"`
	Type           string          `json:"type"`
	AgentID        string          `json:"agent_id"`
	QueueID        string          `json:"queue_id"`
	ConversationID string          `json:"conversation_id"`
	Data           json.RawMessage `json:"data"`
	CreatedAt      time.Time       `json:"created_at"`
	Reason         string          `json:"reason"`
	Message        string          `json:"message"`
}

func decodeEvent(t *testing.T, m sseMsg) eventData {
	t.Helper()
	var d eventData
	if err := json.Unmarshal([]byte(m.Data), &d); err != nil {
		t.Fatalf("event %+v: data is not JSON: %v", m, err)
	}
	if strconv.FormatInt(d.ID, 10) != m.ID || d.Type != m.Event {
		t.Errorf("event %+v: data's id/type %d/%s differ from the SSE fields", m, d.ID, d.Type)
	}
	return d
}

func appendEvent(t *testing.T, s *store.Store, e store.NewEvent) {
	t.Helper()
	if e.Data == nil {
		e.Data = map[string]string{"conversation_id": e.ConversationID}
	}
	if err := s.AppendEvents(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

func agentKey(t *testing.T, s *store.Store, name string) (agentID, key string) {
	t.Helper()
	ctx := context.Background()
	a, err := s.CreateAgent(ctx, name, strings.ToLower(name)+"@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := s.CreateAPIKey(ctx, name, api.RoleAgent, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID, secret
}

// newQueue inserts a bare queue row: membership is all the stream reads of
// queues (through store.QueueIDsOfAgent).
func newQueue(t *testing.T, sqliteURL, name string) string {
	t.Helper()
	db, err := sql.Open("sqlite", strings.TrimPrefix(sqliteURL, "sqlite:")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := "queue-" + strings.ToLower(name)
	now := time.Now().UTC().Format("2006-01-02 15:04:05.000000Z")
	if _, err := db.Exec(`INSERT INTO queues (id, name, priority, assignment_method, created_at, updated_at)
		VALUES (?, ?, 0, 'highest_capacity', ?, ?)`, id, name, now, now); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEventStreamVisibilityByRole(t *testing.T) {
	dbURL := eventstest.DatabaseURL(t, store.DialectSQLite)
	srv := startSSEServer(t, dbURL, events.Options{
		PollInterval: 20 * time.Millisecond, Heartbeat: 50 * time.Millisecond, MembershipRefresh: 50 * time.Millisecond})
	s := srv.Store
	ctx := context.Background()
	ada, adaKey := agentKey(t, s, "Ada")
	bob, bobKey := agentKey(t, s, "Bob")
	q1, q2 := newQueue(t, dbURL, "Billing"), newQueue(t, dbURL, "Sales")
	if err := s.AddQueueAgent(ctx, q1, ada); err != nil {
		t.Fatal(err)
	}
	_, supKey, err := s.CreateAPIKey(ctx, "sup", api.RoleSupervisor, "")
	if err != nil {
		t.Fatal(err)
	}

	streams := map[string]*sseClient{
		"admin":            dialSSE(t, srv.URL, sseAdminKey, "", ""),
		"supervisor":       dialSSE(t, srv.URL, supKey, "", ""),
		"supervisor sales": dialSSE(t, srv.URL, supKey, "?queue="+q2, ""),
		"supervisor bob":   dialSSE(t, srv.URL, supKey, "?agent="+bob, ""),
		"ada":              dialSSE(t, srv.URL, adaKey, "", ""),
		"bob":              dialSSE(t, srv.URL, bobKey, "", ""),
		"ada asking bob's": dialSSE(t, srv.URL, adaKey, "?agent="+bob, ""),
	}
	evs := []store.NewEvent{
		{Type: store.EventOfferCreated, AgentID: ada, QueueID: q1, ConversationID: "c1"},       // 1
		{Type: store.EventOfferCreated, AgentID: bob, QueueID: q2, ConversationID: "c2"},       // 2
		{Type: store.EventConversationQueued, QueueID: q1, ConversationID: "c3"},               // 3
		{Type: store.EventConversationQueued, QueueID: q2, ConversationID: "c4"},               // 4
		{Type: store.EventConversationState, QueueID: q1, ConversationID: "c5"},                // 5: no agent, not new work
		{Type: store.EventPresenceChanged, AgentID: ada},                                       // 6
		{Type: store.EventConversationMessage, AgentID: bob, ConversationID: "c2"},             // 7
		{Type: store.EventConversationQueued, AgentID: bob, QueueID: q1, ConversationID: "c6"}, // 8: addressed to bob
	}
	for _, e := range evs {
		appendEvent(t, s, e)
	}
	want := map[string][]int64{
		"admin":            {1, 2, 3, 4, 5, 6, 7, 8},
		"supervisor":       {1, 2, 3, 4, 5, 6, 7, 8},
		"supervisor sales": {2, 4},
		"supervisor bob":   {2, 7, 8},
		"ada":              {1, 3, 6},
		"bob":              {2, 7, 8},
		"ada asking bob's": nil,
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range streams {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		// Every stream goes past id 8: with its last event, or with the
		// heartbeat's id when the rest was not for it.
		if got := streams[name].idsUntil(8); fmt.Sprint(got) != fmt.Sprint(want[name]) {
			t.Errorf("%s sees %v, want %v", name, got, want[name])
		}
	}

	// Bob joins Sales: once his stream re-reads his queues, new work there is his to see.
	if err := s.AddQueueAgent(ctx, q2, bob); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)                                                                        // > MembershipRefresh
	appendEvent(t, s, store.NewEvent{Type: store.EventConversationQueued, QueueID: q2, ConversationID: "c7"}) // 9
	if got := streams["bob"].idsUntil(9); fmt.Sprint(got) != "[9]" {
		t.Errorf("bob after joining Sales sees %v, want [9]", got)
	}
	if got := streams["ada"].idsUntil(9); len(got) != 0 {
		t.Errorf("ada sees %v of Sales, which she is not in", got)
	}
}

func TestEventStreamRefusals(t *testing.T) {
	srv := startSSEServer(t, eventstest.DatabaseURL(t, store.DialectSQLite), events.Options{})
	for _, tc := range []struct {
		what, key, query, lastID string
		status                   int
		field                    string
	}{
		{"no key", "", "", "", http.StatusUnauthorized, ""},
		{"unknown key", "pk_nope", "", "", http.StatusUnauthorized, ""},
		{"bad Last-Event-ID", sseAdminKey, "", "abc", http.StatusBadRequest, "Last-Event-ID"},
		{"negative Last-Event-ID", sseAdminKey, "", "-3", http.StatusBadRequest, "Last-Event-ID"},
		{"bad last_event_id", sseAdminKey, "?last_event_id=1.5", "", http.StatusBadRequest, "last_event_id"},
	} {
		_, status, body := tryDialSSE(t, srv.URL, tc.key, tc.query, tc.lastID)
		wantError(t, tc.what, status, []byte(body), tc.status, tc.field)
	}
	// A server without a hub answers 503.
	st := eventstest.OpenStore(t, eventstest.DatabaseURL(t, store.DialectSQLite))
	ts := httptest.NewServer(api.New(api.Options{Store: st, AdminAPIKey: sseAdminKey, Logger: quietLog}))
	defer ts.Close()
	_, status, body := tryDialSSE(t, ts.URL, sseAdminKey, "", "")
	wantError(t, "no hub", status, []byte(body), http.StatusServiceUnavailable, "")
}

func TestEventStreamHeadersAndHeartbeat(t *testing.T) {
	srv := startSSEServer(t, eventstest.DatabaseURL(t, store.DialectSQLite), events.Options{Heartbeat: 100 * time.Millisecond})
	c := dialSSE(t, srv.URL, sseAdminKey, "", "")
	h := c.resp.Header
	if h.Get("Content-Type") != "text/event-stream" || h.Get("Cache-Control") != "no-cache" || h.Get("X-Accel-Buffering") != "no" {
		t.Errorf("headers %v", h)
	}
	start := time.Now()
	beats := 0
	timeout := time.After(5 * time.Second)
	for beats < 3 {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				t.Fatal("stream ended")
			}
			if m.Comment == "heartbeat" {
				if m.HasID || m.Event != "" {
					t.Errorf("heartbeat %+v carries more than the comment with nothing to skip", m)
				}
				beats++
			}
		case <-timeout:
			t.Fatalf("%d heartbeats in 5s with a 100ms period", beats)
		}
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("3 heartbeats took %v with a 100ms period", d)
	}
}

func TestEventStreamResumesWithLastEventID(t *testing.T) {
	srv := startSSEServer(t, eventstest.DatabaseURL(t, store.DialectSQLite), events.Options{PollInterval: 20 * time.Millisecond})
	s := srv.Store
	appendEvent(t, s, store.NewEvent{Type: store.EventPresenceChanged, AgentID: "before"}) // 1: before connecting
	c := dialSSE(t, srv.URL, sseAdminKey, "", "")
	for i := range 3 {
		appendEvent(t, s, store.NewEvent{Type: store.EventPresenceChanged, AgentID: fmt.Sprint("a", i)}) // 2..4
	}
	var last sseMsg
	for i := range 3 {
		last = c.mustNext("live event")
		d := decodeEvent(t, last)
		if d.ID != int64(i+2) || d.AgentID != fmt.Sprint("a", i) || d.Type != store.EventPresenceChanged || d.CreatedAt.IsZero() {
			t.Errorf("event %d = %+v", i, d)
		}
	}
	c.Close()
	for i := range 4 {
		appendEvent(t, s, store.NewEvent{Type: store.EventPresenceChanged, AgentID: fmt.Sprint("b", i)}) // 5..8
	}
	// The header, as EventSource sends it.
	c = dialSSE(t, srv.URL, sseAdminKey, "", last.ID)
	appendEvent(t, s, store.NewEvent{Type: store.EventPresenceChanged, AgentID: "live"}) // 9
	if got := c.idsUntil(9); fmt.Sprint(got) != "[5 6 7 8 9]" {
		t.Errorf("resumed after %s: %v, want [5 6 7 8 9]", last.ID, got)
	}
	if _, ok := c.next(200 * time.Millisecond); ok {
		t.Error("an event after the last one")
	}
	c.Close()
	// ?last_event_id=, for clients that cannot set headers; the header wins.
	c = dialSSE(t, srv.URL, sseAdminKey, "?last_event_id=6", "")
	if got := c.idsUntil(9); fmt.Sprint(got) != "[7 8 9]" {
		t.Errorf("?last_event_id=6: %v, want [7 8 9]", got)
	}
	c.Close()
	c = dialSSE(t, srv.URL, sseAdminKey, "?last_event_id=2", "8")
	if got := c.idsUntil(9); fmt.Sprint(got) != "[9]" {
		t.Errorf("header 8 and ?last_event_id=2: %v, want [9]", got)
	}
	c.Close()
	// Last-Event-ID 0: everything retained.
	c = dialSSE(t, srv.URL, sseAdminKey, "", "0")
	if got := c.idsUntil(9); fmt.Sprint(got) != "[1 2 3 4 5 6 7 8 9]" {
		t.Errorf("from 0: %v", got)
	}
}

func TestEventStreamResetAfterPruning(t *testing.T) {
	srv := startSSEServer(t, eventstest.DatabaseURL(t, store.DialectSQLite), events.Options{PollInterval: 20 * time.Millisecond})
	s := srv.Store
	for i := range 5 {
		appendEvent(t, s, store.NewEvent{Type: store.EventPresenceChanged, AgentID: fmt.Sprint("old", i)}) // 1..5
	}
	if _, err := s.PruneEvents(context.Background(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		appendEvent(t, s, store.NewEvent{Type: store.EventPresenceChanged, AgentID: fmt.Sprint("new", i)}) // 6..8
	}
	c := dialSSE(t, srv.URL, sseAdminKey, "", "2")
	m := c.mustNext("reset")
	d := decodeEvent(t, m)
	if m.Event != "reset" || m.ID != "5" || d.Reason != "pruned" || !strings.Contains(d.Message, "reload") {
		t.Errorf("first message %+v (%+v), want a reset with id 5 telling to reload", m, d)
	}
	if got := c.idsUntil(8); fmt.Sprint(got) != "[6 7 8]" {
		t.Errorf("after the reset: %v, want [6 7 8]", got)
	}
	c.Close()
	// Resuming from the reset's id (what EventSource does) needs no new reset.
	c = dialSSE(t, srv.URL, sseAdminKey, "", "5")
	if m := c.mustNext("event"); m.Event == "reset" || m.ID != "6" {
		t.Errorf("from the reset's id: %+v, want event 6", m)
	}
}

// apiProcess is one Parley API process (app.Open + ServeHTTP: its own
// store, hub and HTTP server) on a shared database.
type apiProcess struct {
	URL      string
	App      *app.App
	cancel   context.CancelFunc
	served   chan error
	stopOnce sync.Once
	stopped  time.Duration
}

func startAPIProcess(t *testing.T, dbURL string) *apiProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"PARLEY_DATA_DIR":         t.TempDir(),
		"PARLEY_DATABASE_URL":     dbURL,
		"PARLEY_HTTP_ADDR":        ln.Addr().String(),
		"PARLEY_ENCRYPTION_KEY":   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"PARLEY_ADMIN_API_KEY":    sseAdminKey,
		"PARLEY_TEMPORAL_ADDRESS": "127.0.0.1:1", // lazy, never used here
		"PARLEY_LOG_LEVEL":        "error",
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, cfg, quietLog)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &apiProcess{URL: "http://" + ln.Addr().String(), App: a, cancel: cancel, served: make(chan error, 1)}
	go func() { p.served <- a.ServeHTTP(ctx, ln) }()
	t.Cleanup(func() { p.stop(t); a.Close() })
	return p
}

// stop shuts the process's HTTP server down (once) and says how long it took.
func (p *apiProcess) stop(t *testing.T) time.Duration {
	t.Helper()
	p.stopOnce.Do(func() {
		start := time.Now()
		p.cancel()
		select {
		case err := <-p.served:
			if err != nil {
				t.Errorf("ServeHTTP: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("ServeHTTP did not return")
		}
		p.stopped = time.Since(start)
	})
	return p.stopped
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

// Acceptance (issue 7, point 3): two API processes on one database. A
// client of process B gets, within a second, an event appended through
// process A; it disconnects, more events come, it reconnects to process A
// with Last-Event-ID and gets exactly the missed ones, in order, once.
func TestEventStreamAcrossTwoAPIProcesses(t *testing.T) {
	for _, dialect := range eventstest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dbURL := eventstest.DatabaseURL(t, dialect)
			a := startAPIProcess(t, dbURL)
			b := startAPIProcess(t, dbURL)
			agent, key := agentKey(t, a.App.Store, "Ada")

			// The agent listens on B; the offer is made through A.
			cb := dialSSE(t, b.URL, key, "", "")
			var lat []time.Duration
			var lastID string
			for i := range 20 {
				start := time.Now()
				appendEvent(t, a.App.Store, store.NewEvent{Type: store.EventOfferCreated, AgentID: agent, ConversationID: fmt.Sprint("c", i),
					Data: map[string]string{"offer_id": fmt.Sprint("o", i)}})
				m, ok := cb.next(time.Second)
				if !ok {
					t.Fatalf("offer %d appended through A did not reach B's client within 1s", i)
				}
				lat = append(lat, m.At.Sub(start))
				d := decodeEvent(t, m)
				if d.Type != store.EventOfferCreated || d.AgentID != agent || d.ConversationID != fmt.Sprint("c", i) {
					t.Fatalf("offer %d: got %+v", i, d)
				}
				lastID = m.ID
				time.Sleep(rand.N(events.DefaultPollInterval)) // any phase of the poll
			}
			t.Logf("%s: append (commit) through A to delivery by B: p50 %v, max %v (poll %v)", dialect,
				percentile(lat, 0.5), percentile(lat, 1), events.DefaultPollInterval)
			cb.Close()

			// Missed while disconnected: through both processes, with
			// others' events in between.
			var missed []string
			for i := range 6 {
				st := a.App.Store
				if i%2 == 1 {
					st = b.App.Store
				}
				appendEvent(t, st, store.NewEvent{Type: store.EventConversationMessage, AgentID: agent, ConversationID: fmt.Sprint("m", i)})
				appendEvent(t, st, store.NewEvent{Type: store.EventPresenceChanged, AgentID: "someone-else"})
				missed = append(missed, fmt.Sprint("m", i))
			}
			ca := dialSSE(t, a.URL, key, "", lastID)
			appendEvent(t, b.App.Store, store.NewEvent{Type: store.EventConversationMessage, AgentID: agent, ConversationID: "live"})
			var got []string
			seen := map[string]bool{}
			prev, _ := strconv.ParseInt(lastID, 10, 64)
			for len(got) < len(missed)+1 {
				m := ca.mustNext("resumed event")
				if seen[m.ID] {
					t.Errorf("event %s twice", m.ID)
				}
				seen[m.ID] = true
				if id := m.id(t); id <= prev {
					t.Errorf("event %d after %d: out of order", id, prev)
				} else {
					prev = id
				}
				got = append(got, decodeEvent(t, m).ConversationID)
			}
			if want := append(slices.Clone(missed), "live"); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("after reconnecting to A: %v, want %v", got, want)
			}
			if m, ok := ca.next(300 * time.Millisecond); ok {
				t.Errorf("unexpected event %+v", m)
			}

			// Shutting process A down ends its streams at once (the
			// client reconnects elsewhere) instead of holding Shutdown.
			if d := a.stop(t); d > 5*time.Second {
				t.Errorf("shutdown with an open stream took %v", d)
			}
			select {
			case <-ca.ended:
			case <-time.After(5 * time.Second):
				t.Error("the stream of the stopped process did not end")
			}
		})
	}
}

// The stream's first message gives the client its starting id: a client
// that leaves before any event for it resumes from there, missing nothing.
func TestEventStreamStartsWithItsID(t *testing.T) {
	srv := startSSEServer(t, eventstest.DatabaseURL(t, store.DialectSQLite), events.Options{
		PollInterval: 20 * time.Millisecond, Heartbeat: time.Hour})
	s := srv.Store
	ada, adaKey := agentKey(t, s, "Ada")
	appendEvent(t, s, store.NewEvent{Type: store.EventPresenceChanged, AgentID: "someone"}) // 1
	appendEvent(t, s, store.NewEvent{Type: store.EventPresenceChanged, AgentID: "someone"}) // 2
	c := dialSSE(t, srv.URL, adaKey, "", "")
	var first sseMsg
	select {
	case first = <-c.msgs:
	case <-time.After(5 * time.Second):
		t.Fatal("no first message")
	}
	if !first.HasID || first.ID != "2" || first.Event != "" {
		t.Fatalf("first message %+v, want id 2 and no event", first)
	}
	c.Close()
	appendEvent(t, s, store.NewEvent{Type: store.EventOfferCreated, AgentID: ada, ConversationID: "c"}) // 3, while away
	c = dialSSE(t, srv.URL, adaKey, "", first.ID)
	if m := c.mustNext("missed offer"); m.ID != "3" || m.Event != store.EventOfferCreated {
		t.Errorf("after reconnecting: %+v, want the offer 3", m)
	}
}
