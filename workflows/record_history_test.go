package workflows_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

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
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Clean(file), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d events", file, len(h.Events))
}
