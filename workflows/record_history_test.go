package workflows_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"parley/fakemeta"
	"parley/testenv"
	"parley/workflows"
)

// TestRecordHistory records real histories of the current workflow into
// testdata/ for the replay test. It runs only when asked:
//
//	PARLEY_RECORD_HISTORY=1 go test -run TestRecordHistory ./workflows
func TestRecordHistory(t *testing.T) {
	if os.Getenv("PARLEY_RECORD_HISTORY") == "" {
		t.Skip("set PARLEY_RECORD_HISTORY=1 to record histories into testdata/")
	}
	e, ws := itSetup(t, testenv.Options{TemporalInMemory: true})
	agent := e.CreateAgent("Ada", "ada@example.com")
	const psid = "730000000000001"
	ctx := t.Context()
	if _, err := e.Meta.CustomerSends(ctx, itPageID, psid, "Where is my order?"); err != nil {
		t.Fatal(err)
	}
	conv := itWaitConversation(t, e, psid, 30*time.Second, func(l []itConversation) bool { return len(l) == 1 })[0]
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/assign", map[string]string{"agent_id": agent.ID}, nil)
	reply := func(text string) {
		if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/messages", map[string]string{"text": text}); status != http.StatusCreated {
			t.Fatalf("reply: %d %s", status, raw)
		}
	}
	reply("Let me check.")
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/waiting", nil); status != http.StatusOK {
		t.Fatalf("waiting: %d %s", status, raw)
	}
	reply("Still checking, sorry!") // back to active
	if _, err := e.Meta.MarkRead(ctx, itPageID, psid); err != nil {
		t.Fatal(err)
	}
	e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+ws, map[string]any{"auto_close": map[string]string{"active": "1h"}}, nil)
	if _, err := e.Meta.CustomerSends(ctx, itPageID, psid, "Thanks!"); err != nil {
		t.Fatal(err)
	}
	// Closed once the customer's thanks are recorded: a message after the
	// close would open the next conversation.
	deadline := time.Now().Add(30 * time.Second)
	for len(itTranscript(t, e, conv.ID)) < 4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/close", nil); status != http.StatusOK {
		t.Fatalf("close: %d %s", status, raw)
	}
	itWaitConversation(t, e, psid, 30*time.Second, func(l []itConversation) bool { return len(l) == 1 && l[0].State == "closed" })
	time.Sleep(time.Second) // let the run end
	save(t, e, workflows.ConversationWorkflowID(itPageID, psid), "testdata/conversation_v3_nothing_lost_closed.json")
}

func save(t *testing.T, e *testenv.Env, workflowID, file string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	it := e.Temporal().GetWorkflowHistory(ctx, workflowID, "", false, 0)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	// Stored decrypted: the replay test has no customer keys, and replay
	// checks the workflow's logic, not the codec (tested on its own).
	testenv.Payloads(h.ProtoReflect(), func(p *commonpb.Payload) {
		clear, err := e.App.Codec.Decode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatal(err)
		}
		p.Metadata, p.Data = clear[0].Metadata, clear[0].Data
	})
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Clean(file), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d events", file, len(h.Events))
}

// TestRecordRoutingHistory records a routed conversation (queued, offered,
// rejected, offered again and accepted, transferred to another agent,
// waiting and back, closed after wrap-up) and the distributor that offered
// it:
//
//	PARLEY_RECORD_HISTORY=1 go test -run TestRecordRoutingHistory ./workflows
//
// testdata/distributor_v1_signalled.json is the same scenario's distributor
// recorded at commit 80cf42b, before rounds delivered their own offers
// (version "deliver-in-round"): the workflow signalled each offer.
func TestRecordRoutingHistory(t *testing.T) {
	if os.Getenv("PARLEY_RECORD_HISTORY") == "" {
		t.Skip("set PARLEY_RECORD_HISTORY=1 to record histories into testdata/")
	}
	e, ws, _ := itSetupPage(t, testenv.Options{TemporalInMemory: true})
	var q struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/queues", map[string]any{"name": "Billing", "priority": 1}, &q)
	agents := map[string]testenv.Agent{}
	for _, name := range []string{"Ada", "Bob"} {
		a := e.CreateAgent(name, name+"@example.com")
		e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/agents/"+a.ID, map[string]any{"capacity_units": 2}, nil)
		if st, raw := e.Do(http.MethodPut, "/api/v1/queues/"+q.ID+"/agents/"+a.ID, nil); st >= 300 {
			t.Fatalf("membership: %d %s", st, raw)
		}
		if st, raw := e.DoWithKey(a.Key, http.MethodPut, "/api/v1/agents/"+a.ID+"/presence", map[string]string{"presence": "available"}); st != http.StatusOK {
			t.Fatalf("presence: %d %s", st, raw)
		}
		agents[a.ID] = a
	}
	e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+ws, map[string]any{
		"wrap_up_duration": "2s",
		"distribution": map[string]any{"mode": "push", "capacity_units": 1, "offer_timeout": "1m", "fallback_queue": q.ID,
			"keep_same_agent": map[string]any{"enabled": true, "wait": "30s"},
			"routing_rules": []map[string]any{{"name": "billing", "queue": q.ID,
				"conditions": []map[string]any{{"field": "first_message", "operator": "contains", "value": "invoice"}}}}},
	}, nil)
	const psid = "730000000000002"
	e.Meta.SetUserProfile(itPageID, psid, "Ada", "Lovelace", true)
	ctx := t.Context()
	if _, err := e.Meta.CustomerSends(ctx, itPageID, psid, "My invoice is wrong"); err != nil {
		t.Fatal(err)
	}
	conv := itWaitConversation(t, e, psid, 30*time.Second, func(l []itConversation) bool { return len(l) == 1 })[0]
	offeredTo := func(not string) testenv.Agent {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			var c struct {
				Queue *struct {
					OfferedTo string `json:"offered_to"`
				} `json:"queue"`
			}
			e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+conv.ID, nil, &c)
			if c.Queue != nil && c.Queue.OfferedTo != "" && c.Queue.OfferedTo != not {
				return agents[c.Queue.OfferedTo]
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("no offer within 30 s")
		return testenv.Agent{}
	}
	// The ledger shows an offer a moment before the conversation has it
	// (the offer.created event waits for that): retry a refused action.
	act := func(a testenv.Agent, path string, body any, want int) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, raw := e.DoWithKey(a.Key, http.MethodPost, "/api/v1/conversations/"+conv.ID+path, body)
			if st == want {
				return
			}
			if st != http.StatusConflict || time.Now().After(deadline) {
				t.Fatalf("%s by %s: %d %s", path, a.ID, st, raw)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first := offeredTo("")
	act(first, "/reject", nil, http.StatusOK)
	second := offeredTo(first.ID)
	act(second, "/accept", nil, http.StatusOK)
	act(second, "/messages", map[string]string{"text": "Let me pass you to my colleague."}, http.StatusCreated)
	act(second, "/transfer", map[string]string{"agent_id": first.ID, "note": "Invoice 42 charged twice"}, http.StatusOK)
	act(first, "/messages", map[string]string{"text": "I see the double charge."}, http.StatusCreated)
	act(first, "/waiting", nil, http.StatusOK)
	if _, err := e.Meta.CustomerSends(ctx, itPageID, psid, "Any news?"); err != nil {
		t.Fatal(err)
	}
	// A photo of the invoice: kept by KeepAttachments (versionKeepFiles).
	if _, err := e.Meta.CustomerSendsFiles(ctx, itPageID, psid, e.MetaURL, []fakemeta.CDNFile{
		{Type: "image", ContentType: "image/png", Data: []byte("\x89PNG\r\n\x1a\ninvoice")}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(itTranscript(t, e, conv.ID)) < 6 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// Back in the queue, kept for its last agent, who accepts again.
	if again := offeredTo(""); again.ID != first.ID {
		t.Fatalf("offered again to %s, want its last agent %s", again.ID, first.ID)
	}
	act(first, "/accept", nil, http.StatusOK)
	act(first, "/messages", map[string]string{"text": "Refunded."}, http.StatusCreated)
	act(first, "/close", nil, http.StatusOK)
	itWaitConversation(t, e, psid, 30*time.Second, func(l []itConversation) bool { return len(l) == 1 && l[0].State == "closed" })
	time.Sleep(time.Second) // let the run end
	// v4 (testdata/conversation_v4_routing_closed.json) was recorded before
	// the customer's profile (versionProfile), v5 before the customer's
	// files were kept (versionKeepFiles) and payloads encrypted.
	save(t, e, workflows.ConversationWorkflowID(itPageID, psid), "testdata/conversation_v6_files_routing_closed.json")
}

// TestRecordSurveyHistory records a conversation with issue 9's automated
// messages (greeting, privacy notice, agent ended), an answered
// pre-conversation survey and an answered post-conversation survey
// (testdata/conversation_v7_automated_survey_closed.json was recorded
// before the pre-conversation survey):
//
//	PARLEY_RECORD_HISTORY=1 go test -run TestRecordSurveyHistory ./workflows
func TestRecordSurveyHistory(t *testing.T) {
	recordSurveyHistory(t, "testdata/conversation_v8_both_surveys_closed.json")
}

// TestRecordLocalReadsHistory records the same conversation once its
// reads are local activities (versionLocalReads):
//
//	PARLEY_RECORD_HISTORY=1 go test -run TestRecordLocalReadsHistory ./workflows
func TestRecordLocalReadsHistory(t *testing.T) {
	recordSurveyHistory(t, "testdata/conversation_v10_local_reads_closed.json")
}

// TestRecordCurrentHistory records the same conversation once a new run
// records one version marker for every change (versionCurrent):
//
//	PARLEY_RECORD_HISTORY=1 go test -run TestRecordCurrentHistory ./workflows
func TestRecordCurrentHistory(t *testing.T) {
	recordSurveyHistory(t, "testdata/conversation_v11_current_closed.json")
}

func recordSurveyHistory(t *testing.T, file string) {
	if os.Getenv("PARLEY_RECORD_HISTORY") == "" {
		t.Skip("set PARLEY_RECORD_HISTORY=1 to record histories into testdata/")
	}
	e, ws, _ := itSetupPage(t, testenv.Options{TemporalInMemory: true})
	on := func(text string) map[string]any { return map[string]any{"enabled": true, "text": text} }
	e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+ws, map[string]any{
		"wrap_up_duration": "2s",
		"automated_messages": map[string]any{
			"greeting":           on("Hello {first_name}, welcome to Acme."),
			"privacy_notice":     on("This conversation may be recorded."),
			"conversation_ended": on("Thanks for writing to us."),
		},
	}, nil)
	e.MustDo(http.StatusOK, http.MethodPut, "/api/v1/workstreams/"+ws+"/post-survey", map[string]any{"enabled": true, "response_timeout": "1m"}, nil)
	e.MustDo(http.StatusOK, http.MethodPut, "/api/v1/workstreams/"+ws+"/pre-survey", map[string]any{"enabled": true, "questions": []any{
		map[string]any{"id": "topic", "text": "What is it about?", "choices": []string{"Billing", "Delivery"}, "required": true}}}, nil)
	agent := e.CreateAgent("Ada", "ada@example.com")
	const psid = "730000000000004"
	e.Meta.SetUserProfile(itPageID, psid, "Grace", "Hopper", true)
	ctx := t.Context()
	if _, err := e.Meta.CustomerSends(ctx, itPageID, psid, "My parcel is late"); err != nil {
		t.Fatal(err)
	}
	conv := itWaitConversation(t, e, psid, 30*time.Second, func(l []itConversation) bool { return len(l) == 1 })[0]
	for len(e.Meta.Sent(itPageID, psid)) < 3 { // greeting, notice, the pre-survey's question
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := e.Meta.CustomerSends(ctx, itPageID, psid, "Delivery"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/assign", map[string]string{"agent_id": agent.ID}, nil)
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/messages", map[string]string{"text": "It ships today."}); status != http.StatusCreated {
		t.Fatalf("reply: %d %s", status, raw)
	}
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/end", nil); status != http.StatusOK {
		t.Fatalf("end: %d %s", status, raw)
	}
	// The rating question is out: the customer taps 5, then comments.
	deadline := time.Now().Add(30 * time.Second)
	for len(e.Meta.Sent(itPageID, psid)) < 6 && time.Now().Before(deadline) { // greeting, notice, question, reply, ended, rating
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := e.Meta.CustomerTapsQuickReply(ctx, itPageID, psid, "5", "PARLEY_CSAT:"+conv.ID+":5"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := e.Meta.CustomerSends(ctx, itPageID, psid, "Quick and kind, thank you"); err != nil {
		t.Fatal(err)
	}
	itWaitConversation(t, e, psid, 30*time.Second, func(l []itConversation) bool { return len(l) == 1 && l[0].State == "closed" })
	time.Sleep(time.Second) // let the run end
	save(t, e, workflows.ConversationWorkflowID(itPageID, psid), file)
}

// TestRecordPositionAndLinkSurveyHistory records a conversation that waits
// second in a queue, is told when it moves up (position-updates), is
// assigned, and auto-closes into a link survey (on_auto_close, link mode):
//
//	PARLEY_RECORD_HISTORY=1 go test -run TestRecordPositionAndLinkSurveyHistory ./workflows
func TestRecordPositionAndLinkSurveyHistory(t *testing.T) {
	if os.Getenv("PARLEY_RECORD_HISTORY") == "" {
		t.Skip("set PARLEY_RECORD_HISTORY=1 to record histories into testdata/")
	}
	e, ws, _ := itSetupPage(t, testenv.Options{TemporalInMemory: true})
	var q struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/queues", map[string]any{"name": "General", "priority": 1}, &q)
	e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+ws, map[string]any{
		"auto_close":   map[string]any{"active": "3s"},
		"distribution": map[string]any{"mode": "push", "fallback_queue": q.ID},
		"automated_messages": map[string]any{
			"queue_position": map[string]any{"enabled": true, "text": "You are number {position} in {queue}.", "step": 1, "every_minutes": 1},
		},
	}, nil)
	e.MustDo(http.StatusOK, http.MethodPut, "/api/v1/workstreams/"+ws+"/post-survey", map[string]any{
		"enabled": true, "mode": "link", "question": "How did we do? {link}", "response_timeout": "72h", "on_auto_close": true}, nil)
	agent := e.CreateAgent("Ada", "ada@example.com")
	ctx := t.Context()
	const first, psid = "730000000000005", "730000000000006"
	if _, err := e.Meta.CustomerSends(ctx, itPageID, first, "Hello"); err != nil {
		t.Fatal(err)
	}
	ahead := itWaitConversation(t, e, first, 30*time.Second, func(l []itConversation) bool { return len(l) == 1 })[0]
	time.Sleep(time.Second)
	if _, err := e.Meta.CustomerSends(ctx, itPageID, psid, "Where is my parcel?"); err != nil {
		t.Fatal(err)
	}
	conv := itWaitConversation(t, e, psid, 30*time.Second, func(l []itConversation) bool { return len(l) == 1 })[0]
	time.Sleep(2 * time.Second)
	// The customer ahead leaves the queue: the next read says "number 1".
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+ahead.ID+"/assign", map[string]string{"agent_id": agent.ID}, nil)
	deadline := time.Now().Add(90 * time.Second)
	for len(e.Meta.Sent(itPageID, psid)) < 2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if sent := e.Meta.Sent(itPageID, psid); len(sent) != 2 || sent[1].Text != "You are number 1 in General." {
		t.Fatalf("sent %+v, want the position twice", sent)
	}
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/assign", map[string]string{"agent_id": agent.ID}, nil)
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/messages", map[string]string{"text": "It ships today."}); status != http.StatusCreated {
		t.Fatalf("reply: %d %s", status, raw)
	}
	itWaitConversation(t, e, psid, 30*time.Second, func(l []itConversation) bool { return len(l) == 1 && l[0].State == "closed" })
	time.Sleep(time.Second) // let the run end
	save(t, e, workflows.ConversationWorkflowID(itPageID, psid), "testdata/conversation_v9_position_link_survey_closed.json")
}
