package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"parley/messenger"
	"parley/store"
)

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.WebhookAccepted(ReasonDelivered, time.Millisecond)
	m.WebhookRefused(ReasonBadSignature, time.Millisecond)
	m.GraphCall(messenger.OpSend, time.Millisecond, errors.New("x"))
	m.Offers(OfferCreated, 2)
	m.WatchStore(nil, 0)
	if m.TemporalHandler() != nil || m.Registry() != nil {
		t.Error("a nil Metrics hands out a handler or registry")
	}
	if err := m.Close(); err != nil {
		t.Error(err)
	}
}

func TestWebhooks(t *testing.T) {
	m := New(Options{})
	t.Cleanup(func() { m.Close() })
	m.WebhookAccepted(ReasonDelivered, 3*time.Millisecond)
	m.WebhookAccepted(ReasonDelivered, 7*time.Millisecond)
	m.WebhookRefused(ReasonBadSignature, time.Millisecond)

	if got := testutil.ToFloat64(m.webhooks.WithLabelValues(WebhookAccepted, ReasonDelivered)); got != 2 {
		t.Errorf("accepted/delivered = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.webhooks.WithLabelValues(WebhookRefused, ReasonBadSignature)); got != 1 {
		t.Errorf("refused/bad_signature = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.webhooks.WithLabelValues(WebhookRefused, ReasonTemporalUnavailable)); got != 0 {
		t.Errorf("refused/temporal_unavailable = %v, want 0", got)
	}
	// Every known outcome/reason pair is there from the start, at 0.
	if n := testutil.CollectAndCount(m.webhooks); n != 9 {
		t.Errorf("%d webhook series, want 9 (2 accepted + 7 refused reasons)", n)
	}
	want := `
# HELP parley_webhook_ack_seconds Time from a webhook POST's arrival to Parley's answer to Meta, by outcome.
# TYPE parley_webhook_ack_seconds histogram
parley_webhook_ack_seconds_bucket{outcome="accepted",le="0.001"} 0
parley_webhook_ack_seconds_bucket{outcome="accepted",le="0.0025"} 0
parley_webhook_ack_seconds_bucket{outcome="accepted",le="0.005"} 1
parley_webhook_ack_seconds_bucket{outcome="accepted",le="0.01"} 2
parley_webhook_ack_seconds_bucket{outcome="accepted",le="0.025"} 2
parley_webhook_ack_seconds_bucket{outcome="accepted",le="0.05"} 2
parley_webhook_ack_seconds_bucket{outcome="accepted",le="0.1"} 2
parley_webhook_ack_seconds_bucket{outcome="accepted",le="0.25"} 2
parley_webhook_ack_seconds_bucket{outcome="accepted",le="0.5"} 2
parley_webhook_ack_seconds_bucket{outcome="accepted",le="1"} 2
parley_webhook_ack_seconds_bucket{outcome="accepted",le="2.5"} 2
parley_webhook_ack_seconds_bucket{outcome="accepted",le="5"} 2
parley_webhook_ack_seconds_bucket{outcome="accepted",le="+Inf"} 2
parley_webhook_ack_seconds_sum{outcome="accepted"} 0.01
parley_webhook_ack_seconds_count{outcome="accepted"} 2
parley_webhook_ack_seconds_bucket{outcome="refused",le="0.001"} 1
parley_webhook_ack_seconds_bucket{outcome="refused",le="0.0025"} 1
parley_webhook_ack_seconds_bucket{outcome="refused",le="0.005"} 1
parley_webhook_ack_seconds_bucket{outcome="refused",le="0.01"} 1
parley_webhook_ack_seconds_bucket{outcome="refused",le="0.025"} 1
parley_webhook_ack_seconds_bucket{outcome="refused",le="0.05"} 1
parley_webhook_ack_seconds_bucket{outcome="refused",le="0.1"} 1
parley_webhook_ack_seconds_bucket{outcome="refused",le="0.25"} 1
parley_webhook_ack_seconds_bucket{outcome="refused",le="0.5"} 1
parley_webhook_ack_seconds_bucket{outcome="refused",le="1"} 1
parley_webhook_ack_seconds_bucket{outcome="refused",le="2.5"} 1
parley_webhook_ack_seconds_bucket{outcome="refused",le="5"} 1
parley_webhook_ack_seconds_bucket{outcome="refused",le="+Inf"} 1
parley_webhook_ack_seconds_sum{outcome="refused"} 0.001
parley_webhook_ack_seconds_count{outcome="refused"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "parley_webhook_ack_seconds"); err != nil {
		t.Error(err)
	}
}

// timeoutErr is a transport time-out (what http.Client's Timeout gives).
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestGraphErrorClass(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&messenger.GraphError{HTTPStatus: 400, Code: 10, Subcode: 2018278, Message: "window closed"}, "outside_window"},
		{fmt.Errorf("send: %w", &messenger.GraphError{HTTPStatus: 400, Code: 190, Message: "token"}), "token_invalid"},
		{&messenger.GraphError{HTTPStatus: 400, Code: 613, Message: "Calls to this api have exceeded the rate limit"}, "throttled"},
		{&messenger.GraphError{HTTPStatus: 502}, "temporary"},
		// The message never decides: an unknown code is unknown whatever it says.
		{&messenger.GraphError{HTTPStatus: 400, Code: 999999, Message: "outside of allowed window"}, "unknown"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), ClassTimeout},
		{fmt.Errorf("x: %w", timeoutErr{}), ClassTimeout},
		{fmt.Errorf("x: %w", context.Canceled), ClassCanceled},
		{fmt.Errorf("x: %w", messenger.ErrUnexpectedResponse), ClassUnexpectedResponse},
		{fmt.Errorf("x: %w", messenger.ErrInvalidRequest), ClassInvalidRequest},
		{errors.New("connection refused"), ClassTransport},
	} {
		if got := GraphErrorClass(c.err); got != c.want {
			t.Errorf("GraphErrorClass(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestGraphCalls(t *testing.T) {
	m := New(Options{})
	t.Cleanup(func() { m.Close() })
	m.GraphCall(messenger.OpSend, 20*time.Millisecond, nil)
	m.GraphCall(messenger.OpSend, 30*time.Millisecond, &messenger.GraphError{HTTPStatus: 400, Code: 551})
	m.GraphCall(messenger.OpSend, 40*time.Millisecond, &messenger.GraphError{HTTPStatus: 400, Code: 551})
	m.GraphCall(messenger.OpUserProfile, 40*time.Millisecond, context.DeadlineExceeded)

	want := `
# HELP parley_graph_calls_total Graph API calls (op send is the Send API), by operation, outcome (ok, error) and error class (messenger's classification by code and subcode, or timeout, canceled, transport, unexpected_response).
# TYPE parley_graph_calls_total counter
parley_graph_calls_total{error_class="",op="debug_token",outcome="ok"} 0
parley_graph_calls_total{error_class="",op="pass_thread_control",outcome="ok"} 0
parley_graph_calls_total{error_class="",op="send",outcome="ok"} 1
parley_graph_calls_total{error_class="",op="subscribe_app",outcome="ok"} 0
parley_graph_calls_total{error_class="",op="subscribed_apps",outcome="ok"} 0
parley_graph_calls_total{error_class="",op="take_thread_control",outcome="ok"} 0
parley_graph_calls_total{error_class="",op="thread_messages",outcome="ok"} 0
parley_graph_calls_total{error_class="",op="unsubscribe_app",outcome="ok"} 0
parley_graph_calls_total{error_class="",op="upload_attachment",outcome="ok"} 0
parley_graph_calls_total{error_class="",op="user_profile",outcome="ok"} 0
parley_graph_calls_total{error_class="timeout",op="user_profile",outcome="error"} 1
parley_graph_calls_total{error_class="user_unavailable",op="send",outcome="error"} 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "parley_graph_calls_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.graphTime); n != 2 {
		t.Errorf("%d graph duration series, want 2 (send, user_profile)", n)
	}
}

func TestOffers(t *testing.T) {
	m := New(Options{})
	t.Cleanup(func() { m.Close() })
	m.Offers(OfferCreated, 3)
	m.Offers(OfferAccepted, 1)
	m.Offers(OfferTimedOut, 1)
	m.Offers(OfferRejected, 0)
	want := `
# HELP parley_offers_total Offers of conversations to agents: created, then how they ended (accepted, rejected, timed_out, withdrawn).
# TYPE parley_offers_total counter
parley_offers_total{outcome="accepted"} 1
parley_offers_total{outcome="created"} 3
parley_offers_total{outcome="rejected"} 0
parley_offers_total{outcome="timed_out"} 1
parley_offers_total{outcome="withdrawn"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "parley_offers_total"); err != nil {
		t.Error(err)
	}
}

// fakeReader serves fixed queues and pages.
type fakeReader struct {
	queues  []store.Queue
	waiting map[string][]store.QueuedConversation
	pages   []store.Page
	err     error
	ctxSeen context.Context
}

func (f *fakeReader) ListQueues(ctx context.Context) ([]store.Queue, error) {
	f.ctxSeen = ctx
	return f.queues, f.err
}

func (f *fakeReader) QueuedConversations(ctx context.Context, id string) ([]store.QueuedConversation, error) {
	return f.waiting[id], nil
}

func (f *fakeReader) ListPages(ctx context.Context, accountID string) ([]store.Page, error) {
	if accountID != "" {
		return nil, fmt.Errorf("pages of account %q: want every account's", accountID)
	}
	return f.pages, nil
}

func TestStoreGauges(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	valid, invalid := true, false
	verified, subscribed := now.Add(-time.Hour), now.Add(-time.Hour)
	f := &fakeReader{
		queues: []store.Queue{{ID: "q1", Name: "Sales"}, {ID: "q2", Name: "Support"}},
		waiting: map[string][]store.QueuedConversation{
			"q1": {{QueueID: "q1", WaitingSince: now.Add(-90 * time.Second)}, {QueueID: "q1", WaitingSince: now.Add(-30 * time.Second)}},
		},
		pages: []store.Page{
			{PageID: "1", CallbackKey: "k1", TokenValid: &valid, WebhookVerifiedAt: &verified, SubscribedAt: &subscribed},
			{PageID: "2", CallbackKey: "k2", TokenValid: &invalid},
			{PageID: "3", CallbackKey: "k3"},
		},
	}
	m := New(Options{})
	t.Cleanup(func() { m.Close() })
	m.WatchStore(f, time.Second)
	m.store.now = func() time.Time { return now }

	want := `
# HELP parley_pages Live pages by provisioning state (running, awaiting_verification, error, flagged, token_invalid, duplicate, unsubscribed, expiring, silent).
# TYPE parley_pages gauge
parley_pages{provisioning_state="awaiting_verification"} 1
parley_pages{provisioning_state="duplicate"} 0
parley_pages{provisioning_state="error"} 0
parley_pages{provisioning_state="expiring"} 0
parley_pages{provisioning_state="flagged"} 0
parley_pages{provisioning_state="running"} 1
parley_pages{provisioning_state="silent"} 0
parley_pages{provisioning_state="token_invalid"} 1
parley_pages{provisioning_state="unsubscribed"} 0
# HELP parley_queue_longest_wait_seconds How long the conversation that has waited longest in each live queue has waited (since the customer's wait began), 0 when none waits.
# TYPE parley_queue_longest_wait_seconds gauge
parley_queue_longest_wait_seconds{queue="Sales"} 90
parley_queue_longest_wait_seconds{queue="Support"} 0
# HELP parley_queue_waiting Conversations waiting in each live queue (an offered one included until accepted), read from the database when scraped.
# TYPE parley_queue_waiting gauge
parley_queue_waiting{queue="Sales"} 2
parley_queue_waiting{queue="Support"} 0
# HELP parley_store_scrape_success 1 when the database reads behind parley_queue_* and parley_pages succeeded in this scrape, else 0 (those gauges are then left out).
# TYPE parley_store_scrape_success gauge
parley_store_scrape_success 1
`
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "scrape")
	if err := testutil.GatherAndCompare(m.Gatherer(ctx), strings.NewReader(want),
		"parley_pages", "parley_queue_waiting", "parley_queue_longest_wait_seconds", "parley_store_scrape_success"); err != nil {
		t.Error(err)
	}
	if f.ctxSeen == nil || f.ctxSeen.Value(ctxKey{}) != "scrape" {
		t.Error("the store was not read with the scrape's context")
	}
	if _, ok := f.ctxSeen.Deadline(); !ok {
		t.Error("the store read has no deadline")
	}

	// A failing read leaves the gauges out and says so.
	f.err = errors.New("database is locked")
	want = `
# HELP parley_store_scrape_success 1 when the database reads behind parley_queue_* and parley_pages succeeded in this scrape, else 0 (those gauges are then left out).
# TYPE parley_store_scrape_success gauge
parley_store_scrape_success 0
`
	if err := testutil.GatherAndCompare(m.Gatherer(context.Background()), strings.NewReader(want),
		"parley_pages", "parley_queue_waiting", "parley_store_scrape_success"); err != nil {
		t.Error(err)
	}
}

func TestHandlerServesEverything(t *testing.T) {
	m := New(Options{TemporalFlushInterval: 10 * time.Millisecond})
	t.Cleanup(func() { m.Close() })
	m.WatchStore(&fakeReader{}, time.Second)
	m.WebhookRefused(ReasonUnknownPage, time.Millisecond)
	// What the Temporal SDK does with its handler.
	m.TemporalHandler().WithTags(map[string]string{"operation": "StartWorkflowExecution", "namespace": "default"}).Counter("temporal_request").Inc(1)
	m.TemporalHandler().Timer("temporal_request_latency").Record(35 * time.Millisecond)

	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	var body string
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
		}
		body = string(b)
		// The SDK's metrics reach the registry at the next flush.
		if strings.Contains(body, `temporal_request_total{namespace="default",operation="StartWorkflowExecution"} 1`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		`parley_webhooks_total{outcome="refused",reason="unknown_page"} 1`,
		`temporal_request_total{namespace="default",operation="StartWorkflowExecution"} 1`,
		// TemporalBuckets: 35 ms falls between 30 and 40 ms, not only
		// somewhere below 50 ms.
		`temporal_request_latency_seconds_bucket{le="0.03"} 0`,
		`temporal_request_latency_seconds_bucket{le="0.04"} 1`,
		`parley_pages{provisioning_state="running"} 0`,
		`parley_store_scrape_success 1`,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "tally_internal") {
		t.Error("GET /metrics has tally's internal gauges")
	}
	if t.Failed() {
		t.Logf("body:\n%s", body)
	}
}
