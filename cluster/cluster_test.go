// Package cluster runs Parley as it is deployed: two `parley api` processes
// and two `parley worker` processes on one PostgreSQL database and one
// Temporal server, with the fake Meta delivering webhooks to both APIs.
package cluster

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"parley/events/eventstest"
	"parley/fakemeta"
	"parley/store"
	"parley/testenv"
	"parley/workflows"
)

const (
	customers   = 60 // 30 per page, so per API
	perCustomer = 3  // messages each
	agents      = 6
)

// process is one `parley api` or `parley worker`.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.Output
	url  string // the API's base URL
}

func startProcess(t *testing.T, bin, name, sub string, env []string) *process {
	t.Helper()
	p := &process{name: name, out: &testenv.Output{}}
	p.cmd = exec.Command(bin, sub)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output (end):\n%s", p.name, p.out.Tail(60))
		}
	})
	return p
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type event struct {
	ID             int64           `json:"id"`
	Type           string          `json:"type"`
	AgentID        string          `json:"agent_id"`
	ConversationID string          `json:"conversation_id"`
	Data           json.RawMessage `json:"data"`
}

// stream reads GET /api/v1/events of base with key until ctx ends,
// resuming with Last-Event-ID.
func stream(ctx context.Context, base, key string, f func(event)) {
	var last int64 = -1
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		if last >= 0 {
			req.Header.Set("Last-Event-ID", fmt.Sprint(last))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			if resp != nil {
				resp.Body.Close()
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var data strings.Builder
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "data:"):
				data.WriteString(strings.TrimSpace(strings.TrimPrefix(line, "data:")))
			case line == "" && data.Len() > 0:
				var ev event
				if json.Unmarshal([]byte(data.String()), &ev) == nil && ev.ID > last {
					last = ev.ID
					f(ev)
				}
				data.Reset()
			}
		}
		resp.Body.Close()
		if last < 0 {
			last = 0
		}
	}
}

func call(base, key, method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// Two API processes and two workers on one PostgreSQL database and one
// Temporal server: webhooks spread over both APIs (one page's callback on
// each), conversations over both workers, agents' event streams on both
// APIs (each agent accepts through the other one). Nothing is lost,
// doubled or assigned twice.
func TestTwoAPIsTwoWorkersOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a Temporal dev server and four parley processes")
	}
	if os.Getenv(eventstest.PostgresEnv) == "" {
		t.Skipf("multi-process test skipped: it needs PostgreSQL (one database for four processes); set %s, e.g. from the repository root: export \"$(scripts/testpg.sh start)\"", eventstest.PostgresEnv)
	}
	began := time.Now()
	dbURL := eventstest.DatabaseURL(t, store.DialectPostgres)
	bin, err := testenv.BuildParley(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The in-process Parley of testenv only sets up (accounts, pages,
	// agents); it runs no worker.
	e := testenv.Start(t, testenv.Options{DatabaseURL: dbURL, NoWorker: true, TemporalInMemory: true, SignalTimeout: 10 * time.Second,
		Config: map[string]string{"PARLEY_EVENTS_POLL_INTERVAL": "100ms"}})
	base := append(os.Environ(), e.ProcessEnv()...)
	base = append(base, "TEMPORAL_CONFIG_FILE="+filepath.Join(t.TempDir(), "none.toml"))

	apis := make([]*process, 2)
	for i := range apis {
		addr := freeAddr(t)
		apis[i] = startProcess(t, bin, fmt.Sprintf("api-%d", i+1), "api", append(base, "PARLEY_HTTP_ADDR="+addr))
		apis[i].url = "http://" + addr
	}
	workers := make([]*process, 2)
	for i := range workers {
		workers[i] = startProcess(t, bin, fmt.Sprintf("worker-%d", i+1), "worker", base)
	}
	for _, a := range apis {
		deadline := time.Now().Add(60 * time.Second)
		for {
			if st, _ := call(a.url, e.AdminKey, http.MethodGet, "/readyz", nil); st == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready after 60s:\n%s", a.name, a.out.Tail(60))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Two apps with a page each: page 1's webhooks go to API 1, page 2's to API 2.
	var q struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/queues", map[string]any{"name": "General", "priority": 1, "assignment_method": "highest_capacity"}, &q)
	pageIDs := []string{"880000000000001", "880000000000002"}
	for i, pid := range pageIDs {
		appID := fmt.Sprintf("88100000000000%d", i+1)
		acct := e.CreateAccount(appID, fmt.Sprintf("cluster-secret-%d-0123456789", i+1))
		page := e.CreatePage(acct, pid, fmt.Sprintf("Acme %d", i+1), fmt.Sprintf("EAAG-cluster-token-%d-0123456789", i+1))
		callback := strings.Replace(page.CallbackURL, e.URL, apis[i].url, 1)
		if callback == page.CallbackURL {
			t.Fatalf("callback %s does not start with %s", page.CallbackURL, e.URL)
		}
		if err := e.Meta.SetWebhook(t.Context(), appID, callback, page.VerifyToken, nil); err != nil {
			t.Fatalf("webhook handshake through %s: %v", apis[i].name, err)
		}
		e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{
			"name": fmt.Sprintf("Acme %d", i+1), "page": page.ID, "wrap_up_duration": "0s",
			"distribution": map[string]any{
				"mode": "push", "capacity_units": 1, "allowed_presences": []string{"available", "busy"},
				"offer_timeout": "30s", "missed_offer_presence": "inactive",
				"block_capacity_during_wrap_up": map[string]any{"mode": "never"},
				"fallback_queue":                q.ID,
			},
		}, nil)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		mu            sync.Mutex
		acceptedBy    = map[string]string{} // conversation -> agent whose accept succeeded
		doubles       []string
		offersSeenVia = [2]int{}
		accepts       = [2]int{}
		refused       int // accepts of an offer no longer open (409)
		retried       int // accepts tried again after a 409
		wg            sync.WaitGroup
	)
	for i := range agents {
		a := e.CreateAgent(fmt.Sprintf("Agent %d", i), fmt.Sprintf("agent%d@example.com", i))
		e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/agents/"+a.ID, map[string]any{"capacity_units": customers}, nil)
		if st, raw := e.Do(http.MethodPut, "/api/v1/queues/"+q.ID+"/agents/"+a.ID, nil); st >= 300 {
			t.Fatalf("queue membership: %d %s", st, raw)
		}
		if st, raw := call(e.URL, a.Key, http.MethodPut, "/api/v1/agents/"+a.ID+"/presence", map[string]string{"presence": "available"}); st != http.StatusOK {
			t.Fatalf("presence: %d %s", st, raw)
		}
		via, other := i%2, (i+1)%2
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream(ctx, apis[via].url, a.Key, func(ev event) {
				if ev.Type != store.EventOfferCreated || ev.AgentID != a.ID {
					return
				}
				mu.Lock()
				offersSeenVia[via]++
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					// An accept right on the offer's event can come before
					// the conversation knows of its offer (409): an agent's
					// screen retries, a few times.
					st, raw := 0, []byte(nil)
					for try := range 4 {
						if try > 0 {
							mu.Lock()
							retried++
							mu.Unlock()
							time.Sleep(300 * time.Millisecond)
						}
						if st, raw = call(apis[other].url, a.Key, http.MethodPost, "/api/v1/conversations/"+ev.ConversationID+"/accept", nil); st != http.StatusConflict {
							break
						}
					}
					mu.Lock()
					defer mu.Unlock()
					if st == http.StatusConflict {
						refused++
						return
					}
					if st != http.StatusOK {
						if ctx.Err() == nil {
							t.Errorf("agent %d accepts %s through %s: %d %s", i, ev.ConversationID, apis[other].name, st, raw)
						}
						return
					}
					accepts[other]++
					if prev, ok := acceptedBy[ev.ConversationID]; ok {
						doubles = append(doubles, fmt.Sprintf("%s accepted by %s and %s", ev.ConversationID, prev, a.ID))
					}
					acceptedBy[ev.ConversationID] = a.ID
				}()
			})
		}()
	}

	// The customers write, in parallel.
	start := time.Now()
	var sent sync.Map           // mid -> psid
	var unanswered atomic.Int64 // webhooks answered 503 at first (Meta retries them)
	var cw sync.WaitGroup
	for c := range customers {
		cw.Add(1)
		go func() {
			defer cw.Done()
			time.Sleep(time.Duration(c) * 100 * time.Millisecond) // 10 new customers a second
			pid, psid := pageIDs[c%2], fmt.Sprintf("99%013d", c)
			for m := range perCustomer {
				mid, err := e.Meta.CustomerSends(ctx, pid, psid, fmt.Sprintf("hello %d from customer %d", m, c))
				var de *fakemeta.DeliveryError
				if errors.As(err, &de) && mid != "" {
					unanswered.Add(1)
				} else if err != nil {
					t.Errorf("customer %d message %d: %v", c, m, err)
					return
				}
				sent.Store(mid, psid)
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	cw.Wait()
	// Meta's retries of what was not answered 200.
	for range 30 {
		n, err := e.Meta.RetryFailed(ctx)
		if err == nil && n == 0 {
			break
		}
		time.Sleep(time.Second)
	}

	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(query string) int {
		var n int
		if err := db.QueryRowContext(t.Context(), query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	want := customers * perCustomer
	deadline := time.Now().Add(90 * time.Second)
	var recorded, accepted int
	for {
		recorded = count(`SELECT count(*) FROM messages WHERE direction = 'in'`)
		mu.Lock()
		accepted = len(acceptedBy)
		mu.Unlock()
		if (recorded >= want && accepted >= customers) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	settled := time.Since(start)
	time.Sleep(time.Second) // anything doubled late shows up
	cancel()
	wg.Wait()

	// Every customer message recorded exactly once.
	rows, err := db.QueryContext(t.Context(), `SELECT mid, count(*) FROM messages WHERE direction = 'in' GROUP BY mid`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var mid string
		var n int
		if err := rows.Scan(&mid, &n); err != nil {
			t.Fatal(err)
		}
		got[mid] = n
	}
	rows.Close()
	nSent := 0
	sent.Range(func(k, _ any) bool {
		nSent++
		if n := got[k.(string)]; n != 1 {
			t.Errorf("customer message %s recorded %d times", k, n)
		}
		return true
	})
	if nSent != want || len(got) != want {
		t.Errorf("%d messages sent, %d distinct recorded; want %d", nSent, len(got), want)
	}
	// Every conversation assigned to exactly one agent.
	convs := count(`SELECT count(*) FROM conversations`)
	if convs != customers || accepted != customers {
		t.Errorf("%d conversations, %d accepted; want %d", convs, accepted, customers)
	}
	for _, d := range doubles {
		t.Error(d)
	}
	if n := count(`SELECT count(*) FROM (SELECT conversation_id FROM conversation_events WHERE kind = 'accepted' GROUP BY conversation_id HAVING count(*) > 1) d`); n != 0 {
		t.Errorf("%d conversations accepted more than once in the ledger", n)
	}

	// Webhooks answered by both APIs.
	perAPI := [2]int{}
	for _, d := range e.Meta.Deliveries() {
		for i, a := range apis {
			if strings.HasPrefix(d.URL, a.url) {
				perAPI[i]++
				if d.Status != http.StatusOK {
					t.Errorf("delivery %d to %s: status %d %v", d.ID, a.name, d.Status, d.Statuses)
				}
			}
		}
	}
	// Conversations over both workers: who ran their tasks (the identity
	// of a worker is pid@host@).
	tasksBy := map[string]int{}
	for c := range customers {
		id := workflows.ConversationWorkflowID(pageIDs[c%2], fmt.Sprintf("99%013d", c))
		it := e.Temporal().GetWorkflowHistory(t.Context(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatalf("history of %s: %v", id, err)
			}
			var identity string
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				identity = ev.GetActivityTaskStartedEventAttributes().GetIdentity()
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
				identity = ev.GetWorkflowTaskStartedEventAttributes().GetIdentity()
			default:
				continue
			}
			for _, w := range workers {
				if strings.HasPrefix(identity, fmt.Sprint(w.cmd.Process.Pid)+"@") {
					tasksBy[w.name]++
				}
			}
		}
	}
	for _, w := range workers {
		if tasksBy[w.name] == 0 {
			t.Errorf("%s ran no task of the conversations (%v)", w.name, tasksBy)
		}
	}
	for i, a := range apis {
		if perAPI[i] == 0 {
			t.Errorf("%s answered no webhook", a.name)
		}
		if offersSeenVia[i] == 0 {
			t.Errorf("no offer reached an agent through %s's event stream", a.name)
		}
		if accepts[i] == 0 {
			t.Errorf("no accept went through %s", a.name)
		}
	}
	t.Logf("%d customers wrote %d messages (%d recorded once each; %d webhooks answered 503 first, then retried as Meta does); %d conversations, each accepted once (%d doubles; %d accepts retried after a 409, %d refused for good); settled in %v, test %v",
		customers, nSent, len(got), unanswered.Load(), convs, len(doubles), retried, refused, settled.Round(time.Millisecond), time.Since(began).Round(time.Second))
	t.Logf("webhooks: %s %d, %s %d; offers seen on the event streams of %s %d, %s %d; accepts through %s %d, %s %d; tasks run: %v",
		apis[0].name, perAPI[0], apis[1].name, perAPI[1], apis[0].name, offersSeenVia[0], apis[1].name, offersSeenVia[1],
		apis[0].name, accepts[0], apis[1].name, accepts[1], tasksBy)
}
