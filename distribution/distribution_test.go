// Package distribution_test runs routing and distribution at scale on the
// real stack: Temporal's dev server, Parley (gateway, REST API, worker,
// distributor), SQLite and the fake Meta. Agents act through the REST API
// and the live event stream, as agents' desktops do.
package distribution_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"parley/store"
	"parley/testenv"
	"parley/worker"
)

const (
	appID     = "760000000000001"
	appSecret = "dist-app-secret-0123456789"
	pageID    = "770000000000001"
	token     = "EAAG-dist-page-token-0123456789"
)

// event is one live event as GET /api/v1/events sends it.
type event struct {
	ID             int64           `json:"id"`
	Type           string          `json:"type"`
	AgentID        string          `json:"agent_id"`
	QueueID        string          `json:"queue_id"`
	ConversationID string          `json:"conversation_id"`
	Data           json.RawMessage `json:"data"`
	CreatedAt      time.Time       `json:"created_at"`
}

type offerData struct {
	OfferID        string    `json:"offer_id"`
	ConversationID string    `json:"conversation_id"`
	QueueID        string    `json:"queue_id"`
	ExpiresAt      time.Time `json:"expires_at"`
	Reason         string    `json:"reason"`
}

// stream reads one SSE stream with key, resuming with Last-Event-ID after
// any disconnection, until ctx ends. Every event goes to f, in order.
func stream(ctx context.Context, t *testing.T, e *testenv.Env, key string, f func(event)) {
	var last int64 = -1
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/api/v1/events", nil)
		if err != nil {
			t.Error(err)
			return
		}
		req.Header.Set("Authorization", "Bearer "+key)
		if last >= 0 {
			req.Header.Set("Last-Event-ID", fmt.Sprint(last))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			time.Sleep(100 * time.Millisecond) // Parley restarting
			continue
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		readEvents(t, resp.Body, func(ev event) {
			if ev.ID <= last {
				t.Errorf("event %d after %d: duplicate or out of order", ev.ID, last)
			}
			last = ev.ID
			f(ev)
		})
		resp.Body.Close()
		if last < 0 {
			last = 0
		}
	}
}

// readEvents decodes an SSE body, giving each event with an id to f.
func readEvents(t *testing.T, body io.Reader, f func(event)) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimSpace(strings.TrimPrefix(line, "data:")))
		case line == "" && data.Len() > 0:
			var ev event
			if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
				t.Errorf("event %s: %v", data.String(), err)
			} else if ev.ID > 0 {
				f(ev)
			}
			data.Reset()
		}
	}
}

type agentSim struct {
	id, key string
	queues  []string
	offers  *offerLog
}

// offerLog is every offer an agent's stream delivered, by conversation.
type offerLog struct {
	mu     sync.Mutex
	byConv map[string][]string
}

func (l *offerLog) add(d offerData) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byConv[d.ConversationID] = append(l.byConv[d.ConversationID], d.OfferID)
}

// newerOffer waits up to wait for an offer of conv other than offerID: a
// late accept may take the conversation's next offer to the same agent.
func (l *offerLog) newerOffer(conv, offerID string, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		l.mu.Lock()
		ids := l.byConv[conv]
		l.mu.Unlock()
		for _, id := range ids {
			if id != offerID {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ledgerWatch checks the invariants on the ledger and on the event log, as
// they happen.
type ledgerWatch struct {
	t  *testing.T
	mu sync.Mutex
	// holder is who each conversation is offered to or assigned to, from events.
	offered map[string]offerData // conversation -> open offer
	// violations found; checks counts the ledger checks made.
	violations []string
	checks     int
	maxUsed    map[string]int
	// firstOffer is when each conversation was first offered, assigned
	// when an agent first accepted it.
	firstOffer, assigned map[string]time.Time
	// lag: how long after their time-out expired offers were withdrawn.
	lag            []time.Duration
	worstLag       time.Duration
	worstLagExpiry time.Time
	worstLagConv   string
	// fifo checks the order of offers.
	fifo *fifoWatch
}

func (w *ledgerWatch) violate(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.violations) < 20 {
		w.violations = append(w.violations, fmt.Sprintf(format, args...))
	}
}

// checkLedger: no agent above capacity unless a supervisor forced it.
func (w *ledgerWatch) checkLedger(ctx context.Context, st *store.Store) {
	loads, err := st.AgentLoads(ctx)
	if err != nil {
		return // the database is busy or Parley restarting: next time
	}
	w.mu.Lock()
	w.checks++
	for _, l := range loads {
		w.maxUsed[l.AgentID] = max(w.maxUsed[l.AgentID], l.Used)
	}
	w.mu.Unlock()
	for _, l := range loads {
		if l.Used > l.Capacity && !l.Forced {
			w.violate("agent %s holds %d units of %d", l.AgentID, l.Used, l.Capacity)
		}
	}
}

// onEvent follows offers: never two open offers of one conversation, and
// an offer ends (accepted, rejected, timed out) no later than its time-out.
func (w *ledgerWatch) onEvent(ev event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fifo.onEvent(ev)
	var d offerData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return
	}
	switch ev.Type {
	case store.EventOfferCreated:
		if open, ok := w.offered[ev.ConversationID]; ok {
			w.violations = append(w.violations, fmt.Sprintf("conversation %s offered to %s while offered (%s)", ev.ConversationID, ev.AgentID, open.OfferID))
		}
		w.offered[ev.ConversationID] = d
		if _, ok := w.firstOffer[ev.ConversationID]; !ok {
			w.firstOffer[ev.ConversationID] = ev.CreatedAt
		}
	case store.EventOfferWithdrawn:
		// An offer cannot be accepted after its time-out (the agents try:
		// lateRefused); how long after it the ledger gave its unit back
		// is the workflow's lag, measured here.
		if open, ok := w.offered[ev.ConversationID]; ok && ev.CreatedAt.After(open.ExpiresAt) {
			lag := ev.CreatedAt.Sub(open.ExpiresAt)
			w.lag = append(w.lag, lag)
			if lag > w.worstLag {
				w.worstLag, w.worstLagExpiry, w.worstLagConv = lag, open.ExpiresAt, ev.ConversationID
			}
		}
		if _, ok := w.assigned[ev.ConversationID]; !ok && d.Reason == "accepted" {
			w.assigned[ev.ConversationID] = ev.CreatedAt
		}
		delete(w.offered, ev.ConversationID)
	}
}

func TestFiveHundredConversationsKeepTheInvariants(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server")
	}
	const (
		conversations = 500
		agents        = 20
		capacity      = 3
		offerTimeout  = 5 * time.Second
	)
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true, NoWorker: true})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The worker runs here, so that the test can restart it alone.
	startWorker := func() *worker.Worker {
		w := worker.New(e.Temporal(), "parley-test", worker.Deps{Store: e.App.Store, Graph: e.App.Graph, Waker: e.App.Waker()})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	wk := startWorker()
	defer func() { wk.Stop() }()
	if err := e.App.Waker().Start(ctx); err != nil {
		t.Fatal(err)
	}
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)

	queue := func(name string, priority int) string {
		var q struct{ ID string }
		e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/queues",
			map[string]any{"name": name, "priority": priority, "assignment_method": "highest_capacity"}, &q)
		return q.ID
	}
	billing, tech, general := queue("Billing", 1), queue("Tech", 2), queue("General", 3)
	queues := []string{billing, tech, general}
	var ws struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{
		"name": "Acme", "page": page.ID, "wrap_up_duration": "0s",
		"distribution": map[string]any{
			"mode": "push", "capacity_units": 1, "allowed_presences": []string{"available", "busy"},
			"offer_timeout": offerTimeout.String(), "missed_offer_presence": "inactive",
			"block_capacity_during_wrap_up": map[string]any{"mode": "never"},
			"fallback_queue":                general,
			"routing_rules": []map[string]any{
				{"name": "billing", "queue": billing, "conditions": []map[string]any{{"field": "first_message", "operator": "contains", "value": "invoice"}}},
				{"name": "tech", "queue": tech, "conditions": []map[string]any{{"field": "first_message", "operator": "matches", "value": "(?i)router|wifi"}}},
			},
		},
	}, &ws)

	rng := rand.New(rand.NewPCG(7, 7))
	sims := make([]agentSim, agents)
	for i := range sims {
		a := e.CreateAgent(fmt.Sprintf("Agent %02d", i), fmt.Sprintf("agent%02d@example.com", i))
		sims[i] = agentSim{id: a.ID, key: a.Key, offers: &offerLog{byConv: map[string][]string{}}}
		e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/agents/"+a.ID, map[string]any{"capacity_units": capacity}, nil)
		// Everyone in one queue, half of them in a second one.
		qs := []string{queues[i%3]}
		if i%2 == 0 {
			qs = append(qs, queues[(i+1)%3])
		}
		sims[i].queues = qs
		for _, q := range qs {
			if st, raw := e.Do(http.MethodPut, "/api/v1/queues/"+q+"/agents/"+a.ID, nil); st >= 300 {
				t.Fatalf("queue membership: %d %s", st, raw)
			}
		}
		setPresence(t, e, sims[i], "available")
	}

	w := &ledgerWatch{t: t, offered: map[string]offerData{}, maxUsed: map[string]int{},
		firstOffer: map[string]time.Time{}, assigned: map[string]time.Time{}, fifo: newFIFOWatch()}
	for i, q := range queues {
		w.fifo.priority[q] = i + 1
	}
	for _, a := range sims {
		for _, q := range a.queues {
			w.fifo.member(q, a.id)
		}
	}
	var sentMu sync.Mutex
	sentAt := map[string]time.Time{} // psid -> when the customer wrote
	var wg sync.WaitGroup
	// The supervisor's stream sees every event: the invariants of offers.
	wg.Add(1)
	go func() {
		defer wg.Done()
		stream(ctx, t, e, e.AdminKey, w.onEvent)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			w.checkLedger(ctx, e.App.Store)
			time.Sleep(50 * time.Millisecond)
		}
	}()

	var accepted, rejected, ignored, transfers, lateRefused, lateNewer, presenceChanges atomic.Int64
	for i := range sims {
		a := sims[i]
		r := rand.New(rand.NewPCG(uint64(i), 11))
		acts := make(chan event, 1000)
		wg.Add(2)
		go func() {
			defer wg.Done()
			stream(ctx, t, e, a.key, func(ev event) {
				if ev.Type == store.EventOfferCreated {
					var d offerData
					if err := json.Unmarshal(ev.Data, &d); err == nil {
						a.offers.add(d)
					}
					acts <- ev
				}
			})
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-acts:
					var d offerData
					if err := json.Unmarshal(ev.Data, &d); err != nil {
						t.Error(err)
						continue
					}
					agentActs(t, e, a, d, r, offerTimeout, queues, &accepted, &rejected, &ignored, &transfers, &lateRefused, &lateNewer)
				}
			}
		}()
		// Presence changes now and then (and back from inactive).
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				time.Sleep(time.Duration(500+r.IntN(1500)) * time.Millisecond)
				if r.IntN(10) == 0 {
					setPresence(t, e, a, []string{"away", "offline", "do_not_disturb"}[r.IntN(3)])
					presenceChanges.Add(1)
					time.Sleep(time.Duration(200+r.IntN(800)) * time.Millisecond)
				}
				setPresence(t, e, a, "available")
			}
		}()
	}

	texts := []string{"my invoice is wrong", "the router blinks red", "hello", "question about my invoice", "wifi down", "how are you"}
	start := time.Now()
	restarted := false
	var restartAt time.Time
	for i := 0; i < conversations; i++ {
		psid := fmt.Sprintf("78%013d", i)
		sentMu.Lock()
		sentAt[psid] = time.Now()
		sentMu.Unlock()
		if _, err := e.Meta.CustomerSends(ctx, pageID, psid, texts[rng.IntN(len(texts))]); err != nil {
			t.Fatalf("customer %d: %v", i, err)
		}
		if i == conversations/2 && !restarted {
			// A worker restart in the middle of it all.
			t0 := time.Now()
			restartAt = t0
			wk.Stop()
			wk = startWorker()
			restarted = true
			t.Logf("worker restarted at conversation %d: down %s", i, time.Since(t0).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d customers wrote in %s", conversations, time.Since(start).Round(time.Millisecond))

	// Everyone ends up served or ended with a reason: wait for quiet.
	deadline := time.Now().Add(4 * time.Minute)
	var states map[string]int
	for {
		states = conversationStates(t, e)
		if states["closed"] == conversations || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait()

	// None lost: every customer has a conversation, and each is closed
	// with a reason (agents end what they accept; the rest ran out of
	// queue time only if the test's deadline passed).
	if states["closed"] != conversations {
		t.Errorf("conversation states after %s: %v, want all %d closed", elapsed.Round(time.Second), states, conversations)
	}
	checkReasons(t, e)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.violations = append(w.violations, w.fifo.done()...)
	for _, v := range w.violations {
		t.Error(v)
	}
	if len(w.offered) > 0 {
		t.Errorf("%d offers never ended (accepted, rejected, timed out or withdrawn)", len(w.offered))
	}
	if late := lateRefused.Load(); late == 0 || late+lateNewer.Load() != ignored.Load() {
		t.Errorf("%d offers left to time out, %d late accepts refused, %d took a newer offer: every late accept of its own offer must be refused",
			ignored.Load(), late, lateNewer.Load())
	}
	sort.Slice(w.lag, func(i, j int) bool { return w.lag[i] < w.lag[j] })
	if n := len(w.lag); n > 0 {
		t.Logf("expired offers given back after their time-out: p50 %s, max %s (%d offers); the slowest, of %s, expired %s after the worker restart",
			w.lag[n/2].Round(time.Millisecond), w.lag[n-1].Round(time.Millisecond), n, w.worstLagConv, w.worstLagExpiry.Sub(restartAt).Round(time.Millisecond))
	}
	if w.checks < 100 {
		t.Errorf("only %d ledger checks ran: the invariant was not watched continuously", w.checks)
	}
	var lat, assign []time.Duration
	for conv, psid := range conversationPSIDs(t, e) {
		if at, ok := w.firstOffer[conv]; ok {
			lat = append(lat, at.Sub(sentAt[psid]))
		}
		if at, ok := w.assigned[conv]; ok {
			assign = append(assign, at.Sub(sentAt[psid]))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(assign, func(i, j int) bool { return assign[i] < assign[j] })
	if len(lat) == 0 || len(assign) == 0 {
		t.Fatal("no offer or assignment latency measured")
	}
	maxUsed := 0
	for _, u := range w.maxUsed {
		maxUsed = max(maxUsed, u)
	}
	t.Logf("%d conversations, %d agents of capacity %d, 3 queues: all settled in %s; %d ledger checks; max units held by one agent %d",
		conversations, agents, capacity, elapsed.Round(time.Second), w.checks, maxUsed)
	t.Logf("FIFO and queue priority checked at %d offers against the event log's queues (%d offers of retried rounds not placed)",
		w.fifo.checks, w.fifo.uncheckable)
	t.Logf("agents: %d accepted, %d rejected, %d offers left to time out, %d transfers, %d late accepts refused (%d took the same agent's next offer), %d presence changes",
		accepted.Load(), rejected.Load(), ignored.Load(), transfers.Load(), lateRefused.Load(), lateNewer.Load(), presenceChanges.Load())
	t.Logf("customer message to first offer: p50 %s, p99 %s (over %d conversations)",
		lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond), len(lat))
	// Including the time spent waiting for a free agent: 60 units for 500
	// customers writing in about a minute.
	t.Logf("customer message to assignment (accepted): p50 %s, p99 %s (over %d conversations)",
		assign[len(assign)/2].Round(time.Millisecond), assign[len(assign)*99/100].Round(time.Millisecond), len(assign))
}

// call is an agent's request; a restarting Parley answers 0 (retry later).
func call(e *testenv.Env, key, method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func setPresence(t *testing.T, e *testenv.Env, a agentSim, presence string) {
	st, raw := call(e, a.key, http.MethodPut, "/api/v1/agents/"+a.id+"/presence", map[string]string{"presence": presence})
	if st == 0 {
		return
	}
	if st != http.StatusOK && st != http.StatusServiceUnavailable {
		t.Errorf("presence %s: %d %s", presence, st, raw)
	}
}

// agentActs answers one offer as a person would: mostly accept, sometimes
// reject, sometimes let it time out (and then try to accept too late).
func agentActs(t *testing.T, e *testenv.Env, a agentSim, d offerData, r *rand.Rand, timeout time.Duration,
	queues []string, accepted, rejected, ignored, transfers, lateRefused, lateNewer *atomic.Int64) {
	path := "/api/v1/conversations/" + d.ConversationID
	switch n := r.IntN(100); {
	case n < 10:
		ignored.Add(1)
		time.Sleep(timeout + 500*time.Millisecond)
		st, _ := call(e, a.key, http.MethodPost, path+"/accept", nil)
		if st == http.StatusConflict {
			lateRefused.Add(1)
		}
		if st != http.StatusOK {
			return
		}
		// Accepted: legitimate only if the conversation was offered to this
		// agent again meanwhile (that offer waits behind this one).
		if !a.offers.newerOffer(d.ConversationID, d.OfferID, 15*time.Second) {
			t.Errorf("agent %s accepted offer %s after its time-out", a.id, d.OfferID)
			return
		}
		lateNewer.Add(1)
	case n < 20:
		if st, _ := call(e, a.key, http.MethodPost, path+"/reject", nil); st == http.StatusOK {
			rejected.Add(1)
		}
		return
	default:
		time.Sleep(time.Duration(r.IntN(300)) * time.Millisecond)
		st, raw := call(e, a.key, http.MethodPost, path+"/accept", nil)
		if st != http.StatusOK {
			if st != 0 && st != http.StatusConflict && st != http.StatusServiceUnavailable {
				t.Errorf("accept: %d %s", st, raw)
			}
			return
		}
	}
	accepted.Add(1)
	time.Sleep(time.Duration(200+r.IntN(800)) * time.Millisecond)
	if r.IntN(10) == 0 {
		// Transfer to another queue, with a note; someone else ends it.
		q := queues[r.IntN(len(queues))]
		if st, _ := call(e, a.key, http.MethodPost, path+"/transfer", map[string]string{"queue_id": q, "note": "over to you"}); st == http.StatusOK {
			transfers.Add(1)
			return
		}
	}
	if st, raw := call(e, a.key, http.MethodPost, path+"/end", nil); st != 0 && st != http.StatusOK && st != http.StatusServiceUnavailable {
		t.Errorf("end: %d %s", st, raw)
	}
}

func conversationStates(t *testing.T, e *testenv.Env) map[string]int {
	states := map[string]int{}
	cursor := ""
	for {
		var page struct {
			Data []struct {
				State        string `json:"state"`
				ClosedReason string `json:"closed_reason"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		st, raw := e.Do(http.MethodGet, "/api/v1/conversations?limit=200&cursor="+cursor, nil)
		if st != http.StatusOK {
			return states
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Data {
			states[c.State]++
		}
		if page.NextCursor == "" {
			return states
		}
		cursor = page.NextCursor
	}
}

// conversationPSIDs maps every conversation to its customer.
func conversationPSIDs(t *testing.T, e *testenv.Env) map[string]string {
	out := map[string]string{}
	cursor := ""
	for {
		var page struct {
			Data []struct {
				ID   string `json:"id"`
				PSID string `json:"psid"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?limit=200&cursor="+cursor, nil, &page)
		for _, c := range page.Data {
			out[c.ID] = c.PSID
		}
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
}

// checkReasons: every closed conversation says why it closed.
func checkReasons(t *testing.T, e *testenv.Env) {
	var missing []string
	cursor := ""
	for {
		var page struct {
			Data []struct {
				ID           string `json:"id"`
				ClosedReason string `json:"closed_reason"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?limit=200&state=closed&cursor="+cursor, nil, &page)
		for _, c := range page.Data {
			if c.ClosedReason == "" {
				missing = append(missing, c.ID)
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(missing) > 0 {
		t.Errorf("closed without a reason: %v", missing)
	}
}
