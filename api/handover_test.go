package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"parley/fakemeta"
	"parley/testenv"
)

// Issue 10, thread control, on the real dev server with the simulated
// Messenger: the Page Inbox takes the thread; the agent's reply is refused
// with the reason; the customer's message to the inbox is recorded; the
// agent takes control back through Meta's handover API and replies.
func TestTheAgentTakesTheThreadBackFromThePageInbox(t *testing.T) {
	r := setupReplies(t, testenv.Options{TemporalInMemory: true}, "psid-handover")
	e := r.e
	e.Meta.OtherAppTakesThread(t.Context(), pageID, "psid-handover", fakemeta.PageInboxAppID)
	var status int
	var raw string
	deadline := time.Now().Add(15 * time.Second)
	for {
		if status, _, raw = r.reply(t, "Are you still there?"); status == http.StatusConflict || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status != http.StatusConflict || !strings.Contains(raw, "the Page Inbox (Meta Business Suite) controls this thread") {
		t.Fatalf("reply while the Page Inbox has the thread: %d %s, want 409 with the reason", status, raw)
	}
	if _, err := e.Meta.CustomerSends(t.Context(), pageID, "psid-handover", "Talking to the page's people"); err != nil {
		t.Fatal(err)
	}
	waitForText(t, e, r.convID, "Talking to the page's people")

	var out struct {
		ThreadOwner string `json:"thread_owner"`
	}
	if st, body := e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/pass-control", map[string]string{"target_app_id": "abc"}); st != http.StatusBadRequest {
		t.Errorf("pass-control to a non-numeric app: %d %s, want 400", st, body)
	}
	st, body := e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/take-control", nil)
	if st != http.StatusOK {
		t.Fatalf("take-control: %d %s", st, body)
	}
	decodeJSON(t, body, &out)
	if out.ThreadOwner != "parley" || e.Meta.ThreadOwner(pageID, "psid-handover") != appID {
		t.Errorf("after take-control: %+v, Meta's owner %q; want Parley", out, e.Meta.ThreadOwner(pageID, "psid-handover"))
	}
	if status, msgs, raw := r.reply(t, "I am back, sorry for the wait."); status != http.StatusCreated || msgs[0].Status != "sent" {
		t.Fatalf("reply after take-control: %d %s, want sent", status, raw)
	}
	// Passing it again: Meta's owner is the inbox; the reply is refused.
	if st, body := e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/pass-control", nil); st != http.StatusOK {
		t.Fatalf("pass-control: %d %s", st, body)
	}
	if o := e.Meta.ThreadOwner(pageID, "psid-handover"); o != fakemeta.PageInboxAppID {
		t.Errorf("Meta's owner after pass-control: %q, want the Page Inbox", o)
	}
	if status, _, raw := r.reply(t, "one more"); status != http.StatusConflict {
		t.Errorf("reply after passing the thread: %d %s, want 409", status, raw)
	}
}

// waitForText waits until the conversation's transcript holds text.
func waitForText(t *testing.T, e *testenv.Env, convID, text string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var msgs struct{ Data []struct{ Text string } }
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+convID+"/messages", nil, &msgs)
		for _, m := range msgs.Data {
			if m.Text == text {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not in the transcript: %+v", text, msgs.Data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
