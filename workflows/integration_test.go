package workflows_test

import (
	"net/http"
	"testing"
	"time"

	"parley/testenv"
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
	return e, ws.ID
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
	itWaitConversation(t, e, psid, 30*time.Second, func(l []itConversation) bool { return len(l) == 1 && l[0].State == "open" })
	changed := time.Now()
	e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+ws, map[string]any{"auto_close": map[string]string{"open": "2s"}}, nil)
	l := itWaitConversation(t, e, psid, 15*time.Second, func(l []itConversation) bool { return len(l) == 1 && l[0].State == "closed" })
	t.Logf("closed %s after the change: %s", time.Since(changed).Round(100*time.Millisecond), l[0].ClosedReason)
}
