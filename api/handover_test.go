package api_test

import (
	"fmt"
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
	// The agent's live event stream says each time the thread changes hands.
	events := dialSSE(t, e.URL, r.agent.Key, "", "")
	// The inbox asks first (request_thread_control): the thread stays Parley's.
	e.Meta.OtherAppRequestsThread(t.Context(), pageID, "psid-handover", fakemeta.PageInboxAppID, "a customer called the shop")
	// An agent who opens the conversation after the live event sees the
	// request too.
	waitForThread(t, r, "Parley's, asked by the inbox", func(s threadShown) bool {
		return s.ThreadRequestedBy == fakemeta.PageInboxAppID && s.matches("parley", "response")
	})
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
	// The agent sees it before writing: the conversation says who has the
	// thread, and that nothing may be sent.
	waitForThreadOwner(t, r, fakemeta.PageInboxAppID, "none")
	if s := threadOf(t, r); s.ThreadRequestedBy != "" {
		t.Errorf("GET conversation once the inbox took the thread: requested by %q, want no pending request", s.ThreadRequestedBy)
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
	checkThreadOwner(t, r, "parley", "response")
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
	checkThreadOwner(t, r, fakemeta.PageInboxAppID, "none")
	if status, _, raw := r.reply(t, "one more"); status != http.StatusConflict {
		t.Errorf("reply after passing the thread: %d %s, want 409", status, raw)
	}

	// Once per change: the inbox asked for it, took it, the agent took it
	// back, passed it.
	want := []string{"parley (asked by " + fakemeta.PageInboxAppID + ")", fakemeta.PageInboxAppID, "parley", fakemeta.PageInboxAppID}
	var owners []string
	for len(owners) < len(want)+1 {
		m, ok := events.next(3 * time.Second)
		if !ok {
			break
		}
		if m.Event != "conversation.thread" {
			continue
		}
		ev := decodeEvent(t, m)
		var d struct {
			ConversationID   string     `json:"conversation_id"`
			ThreadOwner      string     `json:"thread_owner"`
			ThreadOwnerSince *time.Time `json:"thread_owner_since"`
			RequestedBy      *string    `json:"requested_by"`
		}
		decodeJSON(t, ev.Data, &d)
		if ev.ConversationID != r.convID || d.ConversationID != r.convID || ev.AgentID != r.agent.ID || (d.ThreadOwner == "parley") != (d.ThreadOwnerSince == nil) {
			t.Errorf("conversation.thread event %s: want conversation %s, agent %s, and a since unless Parley has the thread", m.Data, r.convID, r.agent.ID)
		}
		if d.RequestedBy != nil {
			d.ThreadOwner += " (asked by " + *d.RequestedBy + ")"
		}
		owners = append(owners, d.ThreadOwner)
	}
	if strings.Join(owners, ",") != strings.Join(want, ",") {
		t.Errorf("the agent's conversation.thread events name %q, want %q", owners, want)
	}
}

type threadShown struct {
	ThreadOwner       string     `json:"thread_owner"`
	ThreadOwnerSince  *time.Time `json:"thread_owner_since"`
	ThreadRequestedBy string     `json:"thread_requested_by"`
	ReplyMode         struct {
		Mode   string `json:"mode"`
		Reason string `json:"reason"`
	} `json:"reply_mode"`
}

// threadOf is what GET /conversations/{id} tells the agent of the thread.
func threadOf(t *testing.T, r replySetup) threadShown {
	t.Helper()
	st, body := r.e.DoWithKey(r.agent.Key, http.MethodGet, "/api/v1/conversations/"+r.convID, nil)
	if st != http.StatusOK {
		t.Fatalf("GET conversation: %d %s", st, body)
	}
	var out threadShown
	decodeJSON(t, body, &out)
	return out
}

// matches: owner and mode, and while another app has the thread, since
// when and the reason.
func (s threadShown) matches(owner, mode string) bool {
	if s.ThreadOwner != owner || s.ReplyMode.Mode != mode {
		return false
	}
	if owner == "parley" {
		return s.ThreadOwnerSince == nil
	}
	return s.ThreadOwnerSince != nil && strings.Contains(s.ReplyMode.Reason, "controls this thread on Messenger") &&
		strings.Contains(s.ReplyMode.Reason, "take-control")
}

// checkThreadOwner: right after a take or pass through the API.
func checkThreadOwner(t *testing.T, r replySetup, owner, mode string) {
	t.Helper()
	if s := threadOf(t, r); !s.matches(owner, mode) {
		t.Errorf("GET conversation: thread %+v, want owner %q and reply mode %q with the reason", s, owner, mode)
	}
}

// waitForThreadOwner: after Meta's handover event, which the conversation
// records a moment later.
func waitForThreadOwner(t *testing.T, r replySetup, owner, mode string) {
	t.Helper()
	waitForThread(t, r, fmt.Sprintf("owner %q and reply mode %q with the reason", owner, mode), func(s threadShown) bool {
		return s.matches(owner, mode)
	})
}

// waitForThread waits until GET /conversations/{id} shows the thread as
// ok wants (want says it in words).
func waitForThread(t *testing.T, r replySetup, want string, ok func(threadShown) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := threadOf(t, r)
		if ok(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET conversation: thread %+v, want %s", s, want)
		}
		time.Sleep(100 * time.Millisecond)
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
