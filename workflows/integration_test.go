package workflows_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"parley/messenger"
	"parley/testenv"
	"parley/workflows"
)

const (
	itAppID     = "700000000000001"
	itAppSecret = "it-app-secret-0123456789"
	itPageID    = "710000000000001"
	itToken     = "EAAG-it-page-token-0123456789"
)

type itConversation struct {
	ID, State    string
	ClosedReason string `json:"closed_reason"`
}

// itSetup runs Parley against a real dev server and the fake Meta, with one
// page whose webhook is verified and a workstream; it returns the
// workstream's id.
func itSetup(t *testing.T, opts testenv.Options) (*testenv.Env, string) {
	e, ws, _ := itSetupPage(t, opts)
	return e, ws
}

func itSetupPage(t *testing.T, opts testenv.Options) (*testenv.Env, string, testenv.Page) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server")
	}
	e := testenv.Start(t, opts)
	acct := e.CreateAccount(itAppID, itAppSecret)
	page := e.CreatePage(acct, itPageID, "Acme", itToken)
	e.ConnectWebhook(itAppID, page)
	var ws struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Acme", "page": page.ID}, &ws)
	return e, ws.ID, page
}

// itWaitConversation polls the customer's conversations until ok says yes.
func itWaitConversation(t *testing.T, e *testenv.Env, psid string, within time.Duration, ok func([]itConversation) bool) []itConversation {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var list struct{ Data []itConversation }
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?psid="+psid, nil, &list)
		if ok(list.Data) {
			return list.Data
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the conversations of %s are %+v", within, psid, list.Data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Defect 9: a workstream change reaches its open conversations within
// seconds: a shortened auto-close closes them now, not at their next event.
func TestAShortenedAutoCloseReachesOpenConversations(t *testing.T) {
	e, ws := itSetup(t, testenv.Options{TemporalInMemory: true})
	const psid = "720000000000001"
	if _, err := e.Meta.CustomerSends(t.Context(), itPageID, psid, "hello"); err != nil {
		t.Fatal(err)
	}
	open := itWaitConversation(t, e, psid, 30*time.Second, func(l []itConversation) bool { return len(l) == 1 && l[0].State == "open" })
	itFindInTemporalWeb(t, e, psid, open[0].ID, "open")
	changed := time.Now()
	e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+ws, map[string]any{"auto_close": map[string]string{"open": "2s"}}, nil)
	l := itWaitConversation(t, e, psid, 15*time.Second, func(l []itConversation) bool { return len(l) == 1 && l[0].State == "closed" })
	t.Logf("closed %s after the change: %s", time.Since(changed).Round(100*time.Millisecond), l[0].ClosedReason)
	// A new conversation records one version marker (versionCurrent), not
	// one per change, each with its TemporalChangeVersion upsert.
	markers, upserts := 0, 0
	it := e.Temporal().GetWorkflowHistory(t.Context(), workflows.ConversationWorkflowID(itPageID, psid), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "Version" {
			markers++
		}
		if _, ok := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()["TemporalChangeVersion"]; ok {
			upserts++
		}
	}
	if markers != 1 || upserts != 1 {
		t.Errorf("the conversation's history has %d version markers and %d TemporalChangeVersion upserts, want 1 and 1", markers, upserts)
	}
}

// Defects 2 and 17: under a stream of webhooks that never pauses, the
// conversation still continues as new at its limit (the stream is carried
// to the next run, not drained first), and agents' replies sent meanwhile,
// some retried with the same Idempotency-Key across runs, are each sent
// and recorded exactly once.
func TestASteadyStreamContinuesAsNewAndLosesNoReply(t *testing.T) {
	const (
		messages   = 1500
		replies    = 12
		maxSignals = 100
		psid       = "740000000000001"
	)
	e, _, page := itSetupPage(t, testenv.Options{TemporalInMemory: true})
	agent := e.CreateAgent("Ada", "ada@example.com")
	ctx := t.Context()
	id := workflows.ConversationWorkflowID(itPageID, psid)
	in := workflows.ConversationInput{PageRef: page.ID, AccountID: page.AccountID, FacebookPageID: itPageID, PageName: "Acme", PSID: psid,
		Limits: workflows.Limits{MaxSignalsPerRun: maxSignals}}
	opts := client.StartWorkflowOptions{
		ID: id, TaskQueue: "parley-test",
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}
	// As the gateway does, one webhook (signal) per message.
	send := func(i int) error {
		ev := messenger.Event{Kind: messenger.KindMessage, PageID: itPageID, PSID: psid, MID: fmt.Sprintf("m_stream_%d", i),
			Text: fmt.Sprintf("message %d", i), Timestamp: time.Now().UnixMilli()}
		_, err := e.Temporal().SignalWithStartWorkflow(ctx, id, workflows.SignalMessengerEvents,
			workflows.MessengerEventsSignal{Events: []messenger.Event{ev}}, opts, workflows.ConversationWorkflowName, in)
		return err
	}
	if err := send(0); err != nil {
		t.Fatal(err)
	}
	conv := itWaitConversation(t, e, psid, 30*time.Second, func(l []itConversation) bool { return len(l) == 1 })[0]
	// The fake Meta learns of the customer (its window opens) through a
	// real webhook, which reaches the same run.
	if _, err := e.Meta.CustomerSends(ctx, itPageID, psid, "hello from Messenger"); err != nil {
		t.Fatal(err)
	}
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/assign", map[string]string{"agent_id": agent.ID}, nil)

	streamErr := make(chan error, 1)
	go func() {
		for i := 1; i < messages; i++ {
			if err := send(i); err != nil {
				streamErr <- fmt.Errorf("message %d: %w", i, err)
				return
			}
		}
		streamErr <- nil
	}()
	// Replies while the stream runs; each is retried with its key a moment
	// later, by then usually in another run.
	first := map[string]string{}
	for r := 0; r < replies; r++ {
		key := fmt.Sprintf("reply-key-%d", r)
		text := fmt.Sprintf("reply %d", r)
		a := itReply(t, e, agent.Key, conv.ID, key, text)
		time.Sleep(150 * time.Millisecond)
		b := itReply(t, e, agent.Key, conv.ID, key, text)
		if a != b {
			t.Errorf("%s: first answer %s, retry answered %s", key, a, b)
		}
		first[text] = a
	}
	if err := <-streamErr; err != nil {
		t.Fatal(err)
	}

	// Every message and reply recorded once, in order.
	deadline := time.Now().Add(60 * time.Second)
	var tr []itMessage
	for {
		tr = itTranscript(t, e, conv.ID)
		if len(tr) >= messages+1+replies || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	customer, agentReplies := 0, map[string]int{}
	for i, m := range tr {
		if m.Seq != int64(i+1) {
			t.Logf("%d entries, want %d; around the gap:", len(tr), messages+1+replies)
			for j := max(0, i-3); j < min(len(tr), i+3); j++ {
				t.Logf("  entry %d: seq %d, %s: %q", j, tr[j].Seq, tr[j].Sender, tr[j].Text)
			}
			t.Fatalf("transcript entry %d has seq %d: a sequence number was skipped or doubled", i, m.Seq)
		}
		switch m.Sender {
		case "customer":
			if m.Text == "hello from Messenger" {
				continue
			}
			if m.Text != fmt.Sprintf("message %d", customer) {
				t.Fatalf("customer message %d is %q: order lost", customer, m.Text)
			}
			customer++
		case "agent":
			agentReplies[m.Text]++
		}
	}
	if customer != messages {
		t.Errorf("%d customer messages recorded, want %d", customer, messages)
	}
	held := map[string]int{}
	for _, m := range e.Meta.Sent(itPageID, psid) {
		held[m.Text]++
	}
	for r := 0; r < replies; r++ {
		text := fmt.Sprintf("reply %d", r)
		if agentReplies[text] != 1 || held[text] != 1 {
			t.Errorf("%q: recorded %d times, Meta holds it %d times; want once each", text, agentReplies[text], held[text])
		}
	}

	// The last run still carries the search attributes its first set.
	now := itWaitConversation(t, e, psid, time.Second, func(l []itConversation) bool { return len(l) == 1 })[0]
	itFindInTemporalWeb(t, e, psid, conv.ID, now.State)

	// Runs: each bounded by the limit.
	runs, most := itRuns(t, e, id)
	t.Logf("%d messages without pause and %d replies: %d runs, at most %d signals in one run (limit %d)", messages, replies, runs, most, maxSignals)
	// A run may take what arrives while it waits for running replies to
	// finish; it must not wait for the stream to pause.
	if most > 3*maxSignals || runs < messages/(3*maxSignals) {
		t.Errorf("%d runs, one took %d signals: continue-as-new waited for the stream to pause", runs, most)
	}
}

// itFindInTemporalWeb finds the customer's running conversation as ops do
// in Temporal Web, by the query the README gives, and checks its search
// attributes.
func itFindInTemporalWeb(t *testing.T, e *testenv.Env, psid, convID, state string) {
	t.Helper()
	query := fmt.Sprintf(`ParleyPageID=%q AND ParleyPSID=%q AND ExecutionStatus="Running"`, itPageID, psid)
	deadline := time.Now().Add(10 * time.Second) // visibility is eventually consistent
	for {
		resp, err := e.Temporal().ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatalf("list %s: %v", query, err)
		}
		var got []string
		for _, ex := range resp.GetExecutions() {
			f := ex.GetSearchAttributes().GetIndexedFields()
			var id, st string
			if err := converter.GetDefaultDataConverter().FromPayload(f["ParleyConversationID"], &id); err != nil {
				t.Fatal(err)
			}
			if err := converter.GetDefaultDataConverter().FromPayload(f["ParleyState"], &st); err != nil {
				t.Fatal(err)
			}
			if ex.GetExecution().GetWorkflowId() == workflows.ConversationWorkflowID(itPageID, psid) && id == convID && st == state {
				return
			}
			got = append(got, fmt.Sprintf("%s: conversation %q, state %q", ex.GetExecution().GetWorkflowId(), id, st))
		}
		if time.Now().After(deadline) {
			t.Fatalf("Temporal Web's query %s finds %v; want conversation %s, state %s", query, got, convID, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type itMessage struct {
	Seq                  int64
	Sender, Text, Status string
}

func itTranscript(t *testing.T, e *testenv.Env, convID string) []itMessage {
	t.Helper()
	var all []itMessage
	after := int64(0)
	for {
		var page struct{ Data []itMessage }
		e.MustDo(http.StatusOK, http.MethodGet, fmt.Sprintf("/api/v1/conversations/%s/messages?limit=1000&after_seq=%d", convID, after), nil, &page)
		all = append(all, page.Data...)
		if len(page.Data) < 1000 {
			return all
		}
		after = page.Data[len(page.Data)-1].Seq
	}
}

// itReply sends a reply with an Idempotency-Key; it returns the message id.
func itReply(t *testing.T, e *testenv.Env, key, convID, idem, text string) string {
	t.Helper()
	body, err := json.Marshal(map[string]string{"text": text})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.URL+"/api/v1/conversations/"+convID+"/messages", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idem)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("reply %s: %d %s", idem, resp.StatusCode, raw)
	}
	var out struct {
		Data []struct{ ID, Status string }
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Data) != 1 {
		t.Fatalf("reply %s: %s (%v)", idem, raw, err)
	}
	return out.Data[0].ID
}

// itRuns counts a workflow id's runs and the most signals one run took.
func itRuns(t *testing.T, e *testenv.Env, id string) (runs, most int) {
	t.Helper()
	ctx := t.Context()
	var token []byte
	for {
		resp, err := e.Temporal().ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = %q", id), NextPageToken: token,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range resp.Executions {
			runs++
			n := 0
			it := e.Temporal().GetWorkflowHistory(ctx, id, ex.Execution.RunId, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					t.Fatal(err)
				}
				if ev.EventType == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED {
					n++
				}
			}
			most = max(most, n)
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return runs, most
		}
	}
}
