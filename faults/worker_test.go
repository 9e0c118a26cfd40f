package faults

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"parley/fakemeta"
	"parley/testenv"
)

// parleyBin is the parley binary, for a worker in its own process.
var parleyBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() { // every test here skips
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "parley-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if parleyBin, err = testenv.BuildParley(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// workerProcess is `parley worker` in its own process, killable for real.
// Its output (every run) is kept for failure reports.
type workerProcess struct {
	t    *testing.T
	env  []string
	out  testenv.Output
	runs int
	cmd  *exec.Cmd
	done chan error // the current run's exit
}

func (w *workerProcess) start() {
	w.t.Helper()
	w.runs++
	fmt.Fprintf(&w.out, "---- worker run %d\n", w.runs)
	w.cmd = exec.Command(parleyBin, "worker")
	w.cmd.Env = w.env
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if err := w.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan error, 1)
	w.done = done
	cmd := w.cmd
	go func() { done <- cmd.Wait() }()
}

// alive is nil while the current run has not exited on its own.
func (w *workerProcess) alive() error {
	select {
	case err := <-w.done:
		w.done = nil
		return fmt.Errorf("the worker exited by itself (%v); its output:\n%s", err, w.out.Tail(40))
	default:
		return nil
	}
}

// kill is SIGKILL: no cleanup, no graceful shutdown.
func (w *workerProcess) kill() {
	w.t.Helper()
	if w.done == nil {
		return
	}
	if err := w.alive(); err != nil {
		w.t.Fatal(err)
	}
	if err := w.cmd.Process.Kill(); err != nil {
		w.t.Fatal(err)
	}
	select {
	case err := <-w.done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			w.t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		w.t.Fatal("the worker did not die within 10s of SIGKILL")
	}
	w.done = nil
}

// 3. The worker killed (SIGKILL) mid-conversation, during sends, and
// restarted: every reply sent exactly once, every customer message
// (written while it died and while it was down) recorded once, in order.
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
	t.Cleanup(w.kill)
	// Without message_echoes (an admin's choice, or Meta dropping it): only
	// a look at Meta's side can tell whether an unanswered send got there.
	withoutEchoes(t, s)
	convs := openConversations(t, s, "3300000000", 6)
	want := map[string][]string{}
	for psid := range convs {
		want[psid] = []string{"hello"}
	}
	// customersWrite: each customer writes once (in turn); it returns the
	// texts by customer.
	customersWrite := func(what string) (map[string]string, error) {
		texts := map[string]string{}
		for psid := range convs {
			text := fmt.Sprintf("%s %s", psid, what)
			if _, err := s.e.Meta.CustomerSends(t.Context(), pageID, psid, text); err != nil {
				return texts, fmt.Errorf("%s: %w", text, err)
			}
			texts[psid] = text
		}
		return texts, nil
	}
	const perConversation = 4
	replies := len(convs) * perConversation
	started := time.Now()
	codes := map[int]int{}
	repliesDone := make(chan struct{})
	go func() {
		defer close(repliesDone)
		codes = sendReplies(t.Context(), t, s, convs, perConversation)
	}()
	kills := 0
	// Killed before the call reached Meta, then after Meta accepted it but
	// before the answer came back; customers write as it dies and while it
	// is down.
	for round, after := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond} {
		for len(inFlight) > 0 { // announcements of calls long answered
			<-inFlight
		}
		select {
		case <-inFlight: // a Send API call is on its way
		case <-time.After(60 * time.Second):
			t.Fatal("no send in flight to kill the worker during")
		}
		var dying map[string]string
		var dyingErr error
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			dying, dyingErr = customersWrite(fmt.Sprintf("as the worker dies %d", round))
		}()
		time.Sleep(after)
		w.kill()
		kills++
		<-wrote
		down, err := customersWrite(fmt.Sprintf("while the worker is down %d", round))
		for _, e := range []error{dyingErr, err} {
			if e != nil {
				t.Errorf("a customer message was not accepted while the worker was dead: %v", e)
			}
		}
		for psid := range convs {
			for _, texts := range []map[string]string{dying, down} {
				if text, ok := texts[psid]; ok {
					want[psid] = append(want[psid], text)
				}
			}
		}
		time.Sleep(300 * time.Millisecond)
		w.start()
	}
	select {
	case <-repliesDone:
	case <-time.After(120 * time.Second):
		t.Fatalf("the agent's replies were not all accepted within 2 minutes; worker output:\n%s", w.out.Tail(40))
	}
	byText := settled(t, s.e, convs, replies, w.alive)
	held := heldByMeta(s.e)
	once := 0
	for text, m := range byText {
		if !isSent(m.Status) || len(held[text]) != 1 {
			t.Errorf("reply %q: %s (%q, mid %q), Meta holds it %d times %v; want sent exactly once", text, m.Status, m.ErrorReason, m.MID, len(held[text]), midsOf(held[text]))
			continue
		}
		if m.MID != held[text][0].MessageID {
			t.Errorf("reply %q: Parley recorded mid %q, Meta holds it as %q", text, m.MID, held[text][0].MessageID)
			continue
		}
		once++
	}
	inbound := checkTranscripts(t, s.e, want, 60*time.Second)
	lookups, sendCalls := 0, 0
	for _, c := range s.e.Meta.Calls() {
		switch c.Op {
		case fakemeta.OpConversations:
			lookups++
		case fakemeta.OpSend:
			sendCalls++
		}
	}
	t.Logf("%d replies across %d conversations, worker SIGKILLed %d times during sends, echoes unsubscribed: %d sent exactly once with Meta's mid (HTTP %v; %d Send API calls reached Meta, %d died before reaching it; %d lookups on Meta's side; %d replies reached Meta after a later one of the same conversation); %d customer messages (%d written as the worker died or while it was down) recorded once, in order; settled in %s",
		replies, len(convs), kills, once, codes, sendCalls, aborted.Load(), lookups, outOfOrder(s.e), inbound, inbound-len(convs), time.Since(started).Round(100*time.Millisecond))
	if t.Failed() {
		t.Logf("worker output:\n%s", w.out.Tail(60))
	}
}
