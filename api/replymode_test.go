package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"parley/testenv"
)

// Issue 6, defect 15: reply_mode says what a reply would get, the state
// included; the agent of a waiting conversation may reply, which brings it
// back to active.
func TestReplyModeFollowsTheState(t *testing.T) {
	r := setupReplies(t, testenv.Options{}, "psid-modes")
	get := func(id string) convJSON {
		t.Helper()
		var c convJSON
		r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+id, nil, &c)
		return c
	}
	if c := get(r.convID); c.State != "active" || c.ReplyMode.Mode != "response" {
		t.Errorf("active: %+v, want response", c)
	}
	if status, raw := r.e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/waiting", nil); status != http.StatusOK {
		t.Fatalf("waiting: %d %s", status, raw)
	}
	if c := get(r.convID); c.State != "waiting" || c.ReplyMode.Mode != "response" {
		t.Errorf("waiting: %+v, want response (the agent may reply)", c)
	}
	if status, msgs, raw := r.reply(t, "Any news on your side?"); status != http.StatusCreated || msgs[0].Status != "sent" {
		t.Fatalf("reply while waiting: %d %s, want sent", status, raw)
	}
	if c := get(r.convID); c.State != "active" {
		t.Errorf("after the agent's reply the conversation is %s, want active", c.State)
	}
	if status, raw := r.e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/end", nil); status != http.StatusOK {
		t.Fatalf("end: %d %s", status, raw)
	}
	c := get(r.convID)
	if c.State != "wrap_up" || c.ReplyMode.Mode != "none" || !strings.Contains(c.ReplyMode.Reason, "ended") {
		t.Errorf("wrap-up: %+v, want none because the agent ended it", c)
	}
	if status, _, raw := r.reply(t, "one more thing"); status != http.StatusConflict {
		t.Errorf("reply in wrap-up: %d %s, want 409 as reply_mode said", status, raw)
	}

	// A new customer: open, nobody may reply before it is assigned.
	if _, err := r.e.Meta.CustomerSends(t.Context(), pageID, "psid-modes-2", "hello?"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Data []convJSON }
		r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?psid=psid-modes-2", nil, &list)
		if len(list.Data) == 1 {
			if c := get(list.Data[0].ID); c.State != "open" || c.ReplyMode.Mode != "none" || !strings.Contains(c.ReplyMode.Reason, "assigned") {
				t.Errorf("open: %+v, want none until assigned", c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no conversation for the second customer")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
