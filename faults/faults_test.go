// Package faults proves "nothing lost, nothing doubled" against the real
// Temporal dev server, the real gateway over HTTP and the fake Meta, under
// duplicated and shuffled webhooks, a Temporal outage, a worker killed
// mid-send, and a Graph API failing 30% of sends.
package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"parley/fakemeta"
	"parley/testenv"
)

const (
	appID     = "100000000000777"
	appSecret = "faults-app-secret-0123456789abcdef"
	pageID    = "200000000000777"
	token     = "EAAfaults-page-token-0123456789abcd"
)

// fastSends: short waits, so that unclear sends settle in seconds.
var fastSends = map[string]string{
	"PARLEY_ECHO_WAIT":    "1s",
	"PARLEY_SEND_TIMEOUT": "4s",
}

type setup struct {
	e     *testenv.Env
	page  testenv.Page
	agent testenv.Agent
}

func start(t *testing.T, opts testenv.Options, tag bool) setup {
	t.Helper()
	if testing.Short() {
		t.Skip("fault suite: runs the Temporal dev server")
	}
	e := testenv.Start(t, opts)
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Acme", "page": page.ID, "human_agent_tag": tag}, nil)
	return setup{e: e, page: page, agent: e.CreateAgent("Ada", "ada@example.com")}
}

func messageEvent(psid, mid, text string, ts int64) json.RawMessage {
	b, _ := json.Marshal(text) // a string always encodes
	return json.RawMessage(fmt.Sprintf(`{"sender":{"id":"%s"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"%s","text":%s}}`, psid, pageID, ts, mid, b))
}

// post sends one webhook body to the callback as Meta does (signed).
func post(ctx context.Context, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	sig, _ := fakemeta.Sign(body, appSecret)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

type message struct {
	Seq                          int64
	Sender, Text, Status, MID    string
	ErrorReason                  string `json:"error_reason"`
	Direction, Kind, MessagingID string
}

type conversation struct {
	ID, State string
}

func conversationsOf(t *testing.T, e *testenv.Env, psid string) []conversation {
	t.Helper()
	var out struct{ Data []conversation }
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?page_id="+pageID+"&psid="+psid, nil, &out)
	return out.Data
}

func transcript(t *testing.T, e *testenv.Env, convID string) []message {
	t.Helper()
	var out struct{ Data []message }
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+convID+"/messages?limit=1000", nil, &out)
	return out.Data
}

// customerTexts are the customer's messages of every conversation of psid.
func customerTexts(t *testing.T, e *testenv.Env, psid string) []string {
	t.Helper()
	var texts []string
	cs := conversationsOf(t, e, psid)
	slices.Reverse(cs) // oldest first
	for _, c := range cs {
		for _, m := range transcript(t, e, c.ID) {
			if m.Sender == "customer" {
				texts = append(texts, m.Text)
			}
		}
	}
	return texts
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s; last: %s", what, within, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkOrderedOnce waits until each customer's transcript holds exactly
// want[psid], in order, once.
func checkOrderedOnce(t *testing.T, e *testenv.Env, want map[string][]string) {
	t.Helper()
	psids := make([]string, 0, len(want))
	for p := range want {
		psids = append(psids, p)
	}
	slices.Sort(psids)
	for _, psid := range psids {
		waitFor(t, "transcript of "+psid, 60*time.Second, func() (bool, string) {
			got := customerTexts(t, e, psid)
			if slices.Equal(got, want[psid]) {
				return true, ""
			}
			var detail []string
			for _, c := range conversationsOf(t, e, psid) {
				var seqs []string
				for _, m := range transcript(t, e, c.ID) {
					seqs = append(seqs, fmt.Sprintf("%d:%s:%s", m.Seq, m.MID, m.Text))
				}
				detail = append(detail, fmt.Sprintf("conversation %s (%s): %v", c.ID, c.State, seqs))
			}
			return false, strings.Join(detail, "; ")
		})
	}
}

// 1. Every webhook of a 300-message, 30-customer run delivered three times,
// shuffled within Meta's ordering guarantees (a customer's messages arrive
// in order the first time; the copies come any time later, some at once).
func TestEveryWebhookThreeTimesShuffled(t *testing.T) {
	s := start(t, testenv.Options{TemporalInMemory: true}, false)
	const customers, perCustomer = 30, 10
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(6, 300))
	want := map[string][]string{}
	type delivery struct {
		body []byte
		copy bool // a redelivery of an earlier POST
	}
	plans := make([][]delivery, customers)
	base := time.Now().UnixMilli()
	for c := range customers {
		psid := fmt.Sprintf("3000000000%05d", c)
		var bodies [][]byte
		for i := range perCustomer {
			text := fmt.Sprintf("customer %d message %d", c, i)
			want[psid] = append(want[psid], text)
			body, err := fakemeta.BuildEnvelope(fakemeta.Entry{PageID: pageID, Time: base, Messaging: []json.RawMessage{
				messageEvent(psid, fmt.Sprintf("m_%d_%d", c, i), text, base+int64(i)),
			}})
			if err != nil {
				t.Fatal(err)
			}
			bodies = append(bodies, body)
		}
		// First copies in order; each of the two other copies anywhere after.
		var plan []delivery
		for _, b := range bodies {
			plan = append(plan, delivery{b, false})
		}
		for _, b := range bodies {
			first := slices.IndexFunc(plan, func(d delivery) bool { return !d.copy && bytes.Equal(d.body, b) })
			for range 2 {
				at := first + 1 + rng.IntN(len(plan)-first)
				plan = slices.Insert(plan, at, delivery{b, true})
			}
		}
		plans[c] = plan
	}
	started := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	var posts int
	for c := range customers {
		wg.Go(func() {
			for i, d := range plans[c] {
				send := func() {
					st, err := post(ctx, s.page.CallbackURL, d.body)
					mu.Lock()
					defer mu.Unlock()
					posts++
					statuses[st]++
					if err != nil {
						t.Errorf("POST: %v", err)
					}
				}
				if d.copy && i%3 == 0 { // some copies at the same moment as the next POST
					wg.Go(send)
					continue
				}
				send()
			}
		})
	}
	wg.Wait()
	t.Logf("%d webhook POSTs (300 messages x 3) for %d customers in %s: statuses %v", posts, customers, time.Since(started).Round(time.Millisecond), statuses)
	if statuses[http.StatusOK] != posts {
		t.Errorf("statuses %v, want all 200", statuses)
	}
	checkOrderedOnce(t, s.e, want)
	t.Logf("each of the 300 messages recorded exactly once, in order, %s after the first POST", time.Since(started).Round(time.Millisecond))
}

// metaDelivers delivers one event as Meta does: again and again, with
// growing gaps, until Parley answers 200.
func metaDelivers(ctx context.Context, fake *fakemeta.Server, ev json.RawMessage, mid string) (attempts int, err error) {
	status, _ := fake.Deliver(ctx, pageID, ev)
	attempts = 1
	gap := 100 * time.Millisecond
	for status != http.StatusOK {
		select {
		case <-ctx.Done():
			return attempts, ctx.Err()
		case <-time.After(gap):
		}
		gap = min(2*gap, time.Second)
		id := -1
		for _, d := range fake.Deliveries() {
			if bytes.Contains(d.Body, []byte(mid)) && d.Status != http.StatusOK {
				id = d.ID
			}
		}
		if id < 0 {
			return attempts, fmt.Errorf("no failed delivery of %s", mid)
		}
		status, _ = fake.Redeliver(ctx, id)
		attempts++
	}
	return attempts, nil
}

// 2. The Temporal server stopped mid-run and restarted on the same
// database: the gateway answers 503 meanwhile, Meta redelivers, nothing is
// lost or doubled.
func TestTemporalRestartMidRun(t *testing.T) {
	s := start(t, testenv.Options{}, false)
	const customers, perCustomer = 20, 6
	ctx := t.Context()
	want := map[string][]string{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	retried, extra := 0, 0
	delivered := make(chan struct{}, customers*perCustomer)
	for c := range customers {
		psid := fmt.Sprintf("3100000000%05d", c)
		for i := range perCustomer {
			want[psid] = append(want[psid], fmt.Sprintf("c%d m%d", c, i))
		}
		wg.Go(func() {
			for i := range perCustomer {
				mid := fmt.Sprintf("m_r_%d_%d", c, i)
				n, err := metaDelivers(ctx, s.e.Meta, messageEvent(psid, mid, fmt.Sprintf("c%d m%d", c, i), time.Now().UnixMilli()), mid)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if n > 1 {
					retried++
					extra += n - 1
				}
				mu.Unlock()
				delivered <- struct{}{}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	// Stop Temporal once a third of the messages went through.
	for range customers * perCustomer / 3 {
		<-delivered
	}
	stopped := time.Now()
	s.e.StopTemporal()
	time.Sleep(2 * time.Second)
	s.e.StartTemporal()
	t.Logf("Temporal down for %s", time.Since(stopped).Round(100*time.Millisecond))
	wg.Wait()
	var s503 int
	for _, d := range s.e.Meta.Deliveries() {
		for _, st := range d.Statuses {
			if st == http.StatusServiceUnavailable {
				s503++
			}
		}
	}
	t.Logf("%d messages from %d customers: %d needed Meta's redelivery (%d extra attempts, %d answered 503)", customers*perCustomer, customers, retried, extra, s503)
	if s503 == 0 {
		t.Errorf("no 503 while Temporal was down: the outage did not hit the run")
	}
	checkOrderedOnce(t, s.e, want)
}

// reply sends an agent's reply; it returns the HTTP status.
func reply(ctx context.Context, e *testenv.Env, key, convID, text string) (int, error) {
	body, err := json.Marshal(map[string]string{"text": text})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/api/v1/conversations/"+convID+"/messages", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "reply:"+convID+":"+text)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

// openConversations has n customers write, and assigns their
// conversations to the agent; it returns psid -> conversation id.
func openConversations(t *testing.T, s setup, prefix string, n int) map[string]string {
	t.Helper()
	out := map[string]string{}
	for c := range n {
		psid := fmt.Sprintf("%s%05d", prefix, c)
		if _, err := s.e.Meta.CustomerSends(t.Context(), pageID, psid, "hello"); err != nil {
			t.Fatal(err)
		}
		var cs []conversation
		waitFor(t, "conversation of "+psid, 30*time.Second, func() (bool, string) {
			cs = conversationsOf(t, s.e, psid)
			return len(cs) == 1, fmt.Sprint(cs)
		})
		s.e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+cs[0].ID+"/assign", map[string]string{"agent_id": s.agent.ID}, nil)
		out[psid] = cs[0].ID
	}
	return out
}

// settled waits until no reply is pending, and returns every agent
// message by text.
func settled(t *testing.T, e *testenv.Env, convs map[string]string, replies int) map[string]message {
	t.Helper()
	var byText map[string]message
	waitFor(t, "every reply settled", 120*time.Second, func() (bool, string) {
		byText = map[string]message{}
		pending := 0
		for _, id := range convs {
			for _, m := range transcript(t, e, id) {
				if m.Sender != "agent" {
					continue
				}
				if _, dup := byText[m.Text]; dup {
					t.Fatalf("reply %q recorded twice", m.Text)
				}
				byText[m.Text] = m
				if m.Status == "pending" {
					pending++
				}
			}
		}
		return len(byText) == replies && pending == 0, fmt.Sprintf("%d recorded, %d pending", len(byText), pending)
	})
	return byText
}

// heldByMeta counts the page's messages Meta holds, by text.
func heldByMeta(e *testenv.Env) map[string]int {
	held := map[string]int{}
	for _, m := range e.Meta.Sent(pageID, "") {
		held[m.Text]++
	}
	return held
}

// 4. The Graph API fails 30% of sends with a mix of 613, code 2, dropped
// connections after accepting, and 10/2018278: every reply ends sent
// exactly once or failed with its reason; none stays pending.
func TestGraphAPIFailing30Percent(t *testing.T) {
	s := start(t, testenv.Options{TemporalInMemory: true, Config: fastSends}, false)
	convs := openConversations(t, s, "3200000000", 10)
	const perConversation = 4
	replies := len(convs) * perConversation
	// 12 of 40 sends fail: 3 of each kind.
	for range 3 {
		s.e.Meta.FailNext(fakemeta.Failure{Op: fakemeta.OpSend, PageID: pageID, Code: 613})
		s.e.Meta.FailNext(fakemeta.Failure{Op: fakemeta.OpSend, PageID: pageID, Code: 2})
		s.e.Meta.FailNext(fakemeta.Failure{Op: fakemeta.OpSend, PageID: pageID, Code: 10, Subcode: 2018278})
		s.e.Meta.FailAfterAccept(fakemeta.Failure{Op: fakemeta.OpSend, PageID: pageID})
	}
	ctx := t.Context()
	started := time.Now()
	var wg sync.WaitGroup
	codes := map[int]int{}
	var mu sync.Mutex
	for psid, id := range convs {
		wg.Go(func() {
			for i := range perConversation {
				st, err := reply(ctx, s.e, s.agent.Key, id, fmt.Sprintf("%s reply %d", psid, i))
				mu.Lock()
				codes[st]++
				mu.Unlock()
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	byText := settled(t, s.e, convs, replies)
	held := heldByMeta(s.e)
	sent, failed := 0, 0
	for text, m := range byText {
		switch {
		case (m.Status == "sent" || m.Status == "delivered" || m.Status == "read") && held[text] == 1:
			sent++
		case m.Status == "failed" && m.ErrorReason != "" && held[text] == 0:
			failed++
		default:
			t.Errorf("reply %q: %s (%q), Meta holds it %d times", text, m.Status, m.ErrorReason, held[text])
		}
	}
	var sendCalls int
	for _, c := range s.e.Meta.Calls() {
		if c.Op == fakemeta.OpSend {
			sendCalls++
		}
	}
	t.Logf("%d replies, 12 injected failures (3x613, 3x code 2, 3x dropped after accept, 3x 10/2018278): %d sent exactly once, %d failed with a reason, 0 pending; %d Send API calls; HTTP %v; settled in %s",
		replies, sent, failed, sendCalls, codes, time.Since(started).Round(100*time.Millisecond))
	if failed != 3 {
		t.Errorf("%d replies failed, want the 3 refused as outside the window (the tag is off)", failed)
	}
}

// parleyBin is the parley binary, for a worker in its own process.
var parleyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "parley-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	parleyBin = filepath.Join(dir, "parley")
	if out, err := exec.Command("go", "build", "-o", parleyBin, "../cmd/parley").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build parley: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// workerProcess is `parley worker` in its own process, killable for real.
type workerProcess struct {
	t   *testing.T
	env []string
	cmd *exec.Cmd
	out *bytes.Buffer
}

func (w *workerProcess) start() {
	w.t.Helper()
	w.out = &bytes.Buffer{}
	w.cmd = exec.Command(parleyBin, "worker")
	w.cmd.Env = w.env
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
}

// kill is SIGKILL: no cleanup, no graceful shutdown.
func (w *workerProcess) kill() {
	w.t.Helper()
	if err := w.cmd.Process.Kill(); err != nil {
		w.t.Fatal(err)
	}
	err := w.cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		w.t.Fatal(err)
	}
}

// 3. The worker killed (SIGKILL) mid-conversation, during sends, and
// restarted: every reply sent exactly once.
func TestWorkerKilledDuringSends(t *testing.T) {
	cfg := map[string]string{}
	for k, v := range fastSends {
		cfg[k] = v
	}
	s := start(t, testenv.Options{TemporalInMemory: true, NoWorker: true, Config: cfg}, false)
	// Between the worker and Meta: Send API calls take 400 ms, so that a
	// kill lands while one is in flight (reached Meta or not).
	inFlight := make(chan struct{}, 1)
	var aborted atomic.Int64
	proxy := newSlowProxy(t, s.e.MetaURL, 400*time.Millisecond, inFlight, &aborted)
	env := append(s.e.ProcessEnv(), "PARLEY_GRAPH_API_URL="+proxy, "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	w := &workerProcess{t: t, env: env}
	w.start()
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			w.kill()
		}
	})
	// Without message_echoes (an admin's choice, or Meta dropping it): only
	// a look at Meta's side can tell whether an unanswered send got there.
	var fields []string
	for _, f := range fakemeta.MessagingFields() {
		if f != "message_echoes" {
			fields = append(fields, f)
		}
	}
	if err := s.e.Meta.SetWebhook(t.Context(), appID, s.page.CallbackURL, s.page.VerifyToken, fields); err != nil {
		t.Fatal(err)
	}
	convs := openConversations(t, s, "3300000000", 6)
	const perConversation = 4
	replies := len(convs) * perConversation
	ctx := t.Context()
	var wg sync.WaitGroup
	codes := map[int]int{}
	var mu sync.Mutex
	for psid, id := range convs {
		wg.Go(func() {
			for i := range perConversation {
				st, err := reply(ctx, s.e, s.agent.Key, id, fmt.Sprintf("%s reply %d", psid, i))
				mu.Lock()
				codes[st]++
				mu.Unlock()
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	kills := 0
	// Killed before the call reached Meta, then after Meta accepted it but
	// before the answer came back.
	for _, after := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond} {
		for len(inFlight) > 0 { // announcements of calls long answered
			<-inFlight
		}
		select {
		case <-inFlight: // a Send API call is on its way
		case <-time.After(60 * time.Second):
			t.Fatal("no send in flight to kill the worker during")
		}
		time.Sleep(after)
		w.kill()
		kills++
		time.Sleep(500 * time.Millisecond)
		w.start()
	}
	wg.Wait()
	byText := settled(t, s.e, convs, replies)
	held := heldByMeta(s.e)
	for text, m := range byText {
		if m.Status == "failed" || held[text] != 1 {
			t.Errorf("reply %q: %s (%s), Meta holds it %d times; want sent exactly once", text, m.Status, m.ErrorReason, held[text])
		}
	}
	lookups, sendCalls := 0, 0
	for _, c := range s.e.Meta.Calls() {
		switch c.Op {
		case fakemeta.OpConversations:
			lookups++
		case fakemeta.OpSend:
			sendCalls++
		}
	}
	t.Logf("%d replies across %d conversations, worker SIGKILLed %d times during sends, echoes unsubscribed: every reply sent exactly once (HTTP %v; %d Send API calls reached Meta, %d died before reaching it; %d lookups on Meta's side)", replies, len(convs), kills, codes, sendCalls, aborted.Load(), lookups)
	if t.Failed() {
		t.Logf("worker output:\n%s", lastLines(w.out.String(), 40))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
