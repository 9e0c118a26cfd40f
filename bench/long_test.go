package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"parley/fakemeta"
	"parley/store"
	"parley/testenv"
	"parley/workflows"
)

const (
	// targetLongRatio: the last 100 messages of a long conversation are
	// recorded within 1.5 times the time of its first 100.
	targetLongRatio = 1.5
	longSample      = 100
	// longPoll is how often a sent message is looked for in the transcript:
	// the figures' resolution, at the cost of one indexed read per poll on
	// the store's read connections (the writer is not taken).
	longPoll = time.Millisecond
	// longRecordWithin fails the benchmark when a message is not recorded
	// in that time: something is stuck, and the figures would mean nothing.
	longRecordWithin = time.Minute
	longPSID         = "300000000000777"
	longControlPSID  = "300000000000778"
)

// BenchmarkLongConversation measures whether recording a message costs more
// as a conversation grows: one customer sends PARLEY_BENCH_MESSAGES messages
// (default 20,000) to one conversation, each in its own signed webhook, and
// the time from each webhook's POST to its message in the database's
// transcript is compared between the first and the last 100 messages. At
// the default Limits the conversation continues as new every 3,000 history
// events (350 to 500 messages as the workflow stands, 6 to 8 events each:
// 41 to 56 runs for 20,000), so the last messages go to a run that
// inherits what the earlier ones carried over.
//
// One sender, closed loop: each message leaves as soon as the previous one
// is recorded. Each message then crosses the system alone, so its latency
// is its own recording time and nothing else; at a steady rate it would
// also hold the time spent queued behind earlier messages, which depends
// on how close the chosen rate is to the maximum (a rate the first 100 are
// recorded at but the last 100 are not would measure a growing backlog,
// not the cost of one message). One message at a time is also the worst
// case of continue-as-new: every message is a signal and a workflow task of
// its own, so runs are as short, and as many, as they get.
//
// The first message opens the conversation (workflow start, the customer's
// data key, the conversation record, the profile) and is left out of the
// first 100, which are messages 2 to 101. The target is on the mean (the
// time the 100 take, continue-as-new pauses included); p50 is printed
// beside it, and so is a control measured right after the last 100 (a
// new conversation's first 100), to tell the conversation's length from
// the machine's load.
//
// 13 to 17 minutes for 20,000 messages on the shared 2-core machine (19 to
// 26 per second), under 2 minutes for 2,000. Run it with -benchtime 1x: b.N is not
// used.
func BenchmarkLongConversation(b *testing.B) {
	n := 20000
	if v := os.Getenv("PARLEY_BENCH_MESSAGES"); v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m < 2*longSample+1 {
			b.Fatalf("PARLEY_BENCH_MESSAGES=%q: want a number of at least %d", v, 2*longSample+1)
		}
		n = m
	}
	e := testenv.Start(b, testenv.Options{SignalTimeout: 30 * time.Second, TemporalInMemory: os.Getenv("PARLEY_BENCH_TEMPORAL") == "memory"})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Bench Page", token)
	e.ConnectWebhook(appID, page)
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	ctx := context.Background()

	// send posts one message and waits for it in the transcript.
	send := func(psid, mid, text string) (acked, recorded time.Duration, err error) {
		t0 := time.Now()
		if err := postLongMessage(httpc, page.CallbackURL, psid, mid, text); err != nil {
			return 0, 0, err
		}
		acked = time.Since(t0)
		if err := waitLongRecorded(ctx, e.App.Store, psid, mid); err != nil {
			return 0, 0, err
		}
		return acked, time.Since(t0), nil
	}
	recorded := make([]time.Duration, n) // POST to the message in the transcript
	acked := make([]time.Duration, n)    // POST to the gateway's 200
	// A control: a second customer's new conversation, right after the
	// last 100. On a shared machine the load moves in the minutes between
	// the first 100 and the last; the control's 100 are measured seconds
	// after the last 100, in a conversation as short as they get. Not
	// interleaved with them: alternating two conversations doubled both
	// ones' times (p50 25 to 48 ms over 200 messages), so the control would
	// not be measured the way the first 100 were.
	control := make([]time.Duration, longSample)
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		var err error
		if acked[i], recorded[i], err = send(longPSID, fmt.Sprintf("m_long_%d", i), fmt.Sprintf("message %d", i)); err != nil {
			b.Fatalf("message %d: %v", i, err)
		}
	}
	total := time.Since(start)
	// Its first message opens it: left out, like the long one's.
	if _, _, err := send(longControlPSID, "m_control_open", "hello"); err != nil {
		b.Fatalf("the control's first message: %v", err)
	}
	for j := range control {
		var err error
		if _, control[j], err = send(longControlPSID, fmt.Sprintf("m_control_%d", j), fmt.Sprintf("control %d", j)); err != nil {
			b.Fatalf("control message %d: %v", j, err)
		}
	}
	b.StopTimer()
	rate := float64(n) / total.Seconds()

	id := workflows.ConversationWorkflowID(pageID, longPSID)
	runs, err := longRuns(ctx, e, id)
	if err != nil {
		b.Fatal(err)
	}
	// The workflow counts its runs; visibility, which lists them, may not
	// show the newest one yet.
	var state workflows.ConversationState
	q, err := e.Temporal().QueryWorkflow(ctx, id, "", workflows.QueryState)
	if err != nil {
		b.Fatalf("query the conversation's state: %v", err)
	}
	if err := q.Get(&state); err != nil {
		b.Fatalf("decode the conversation's state: %v", err)
	}
	first, last := recorded[1:1+longSample], recorded[n-longSample:]
	ratio := longMean(last).Seconds() / longMean(first).Seconds()
	verdict := "met"
	if ratio > targetLongRatio {
		verdict = "NOT met"
	}
	slowest := 1
	for i := 2; i < n; i++ {
		if recorded[i] > recorded[slowest] {
			slowest = i
		}
	}
	b.ReportMetric(rate, "messages/s")
	b.ReportMetric(ratio, "last/first")
	b.ReportMetric(float64(state.Runs), "runs")
	ms := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	fmt.Printf("\n%d messages in one conversation (%d runs): first %d recorded p50 %v mean %v; last %d p50 %v mean %v; ratio %.2f (target <= %.1f: %s)\n",
		n, state.Runs, longSample, ms(percentile(first, 0.5)), ms(longMean(first)), longSample, ms(percentile(last, 0.5)), ms(longMean(last)), ratio, targetLongRatio, verdict)
	fmt.Printf("p50 ratio %.2f; acknowledged p50 first %v, last %v; all but the first p99 %v, slowest %v (message %d); %v in all, %.1f messages/s (one sender, closed loop, Temporal %s)\n",
		percentile(last, 0.5).Seconds()/percentile(first, 0.5).Seconds(), ms(percentile(acked[1:1+longSample], 0.5)), ms(percentile(acked[n-longSample:], 0.5)),
		ms(percentile(recorded[1:], 0.99)), ms(recorded[slowest]), slowest+1, total.Round(time.Second), rate, temporalMode())
	fmt.Printf("control, a new conversation's first %d right after: p50 %v mean %v; last %d / control: mean ratio %.2f, p50 ratio %.2f\n",
		longSample, ms(percentile(control, 0.5)), ms(longMean(control)), longSample,
		longMean(last).Seconds()/longMean(control).Seconds(), percentile(last, 0.5).Seconds()/percentile(control, 0.5).Seconds())
	tenths := make([]string, 10)
	for t := range tenths {
		tenths[t] = fmt.Sprint(percentile(recorded[max(1, t*n/10):(t+1)*n/10], 0.5).Round(time.Millisecond))
	}
	fmt.Printf("recorded p50 by tenth of the conversation: %s\n", strings.Join(tenths, " "))
	if len(runs) > 1 {
		// The last listed run may be the open one, partial: the one before
		// it is the last whole run.
		f, l := runs[0], runs[len(runs)-2]
		fmt.Printf("runs: the first %d history events (%d KB) and %d B of input; the last whole one %d events (%d KB) and %d B of input (carried over)\n",
			f.events, f.bytes/1024, f.input, l.events, l.bytes/1024, l.input)
	}
	fmt.Println()
}

// postLongMessage posts one signed webhook holding one message, as Meta would,
// and fails unless the gateway answers 200.
func postLongMessage(httpc *http.Client, callbackURL, psid, mid, text string) error {
	now := time.Now().UnixMilli()
	msg, err := json.Marshal(map[string]any{
		"sender": map[string]string{"id": psid}, "recipient": map[string]string{"id": pageID}, "timestamp": now,
		"message": map[string]string{"mid": mid, "text": text},
	})
	if err != nil {
		return fmt.Errorf("encode the message: %w", err)
	}
	body, err := fakemeta.BuildEnvelope(fakemeta.Entry{PageID: pageID, Time: now, Messaging: []json.RawMessage{msg}})
	if err != nil {
		return fmt.Errorf("build the webhook: %w", err)
	}
	sig, _ := fakemeta.Sign(body, appSecret) // the second signature is the legacy SHA-1 one
	req, err := http.NewRequest(http.MethodPost, callbackURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := httpc.Do(req)
	if err != nil {
		return fmt.Errorf("post the webhook: %w", err)
	}
	if err := resp.Body.Close(); err != nil {
		return fmt.Errorf("close the gateway's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("gateway answered %d", resp.StatusCode)
	}
	return nil
}

// waitLongRecorded polls the transcript until it holds the customer's message
// mid. The lookup is the gateway's own dedupe check: one row of the unique
// index on (page, customer, dedupe key), on the read connections, so its
// cost does not grow with the conversation and polls do not queue behind
// the worker's writes.
func waitLongRecorded(ctx context.Context, s *store.Store, psid, mid string) error {
	key := "mid:" + mid
	deadline := time.Now().Add(longRecordWithin)
	for {
		missing, err := s.UnrecordedDedupeKeys(ctx, pageID, psid, []string{key})
		if err != nil {
			return fmt.Errorf("look for %s in the transcript: %w", mid, err)
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not in the transcript after %v", mid, longRecordWithin)
		}
		time.Sleep(longPoll)
	}
}

func longMean(l []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	return sum / time.Duration(len(l))
}

// longRun is one run of a workflow: its history's length and size, and
// the size of its input (for a continued run, the state carried over).
type longRun struct {
	started       time.Time
	events, bytes int64
	input         int
}

// longRuns lists a workflow id's runs, oldest first.
func longRuns(ctx context.Context, e *testenv.Env, id string) ([]longRun, error) {
	tc := e.Temporal()
	var runs []longRun
	var token []byte
	for {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = %q", id), NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list the runs of %s: %w", id, err)
		}
		for _, ex := range resp.Executions {
			r := longRun{started: ex.GetStartTime().AsTime(), events: ex.GetHistoryLength(), bytes: ex.GetHistorySizeBytes()}
			it := tc.GetWorkflowHistory(ctx, id, ex.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			if it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					return nil, fmt.Errorf("first event of run %s: %w", ex.GetExecution().GetRunId(), err)
				}
				for _, p := range ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads() {
					r.input += len(p.GetData())
				}
			}
			runs = append(runs, r)
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].started.Before(runs[j].started) })
	return runs, nil
}
