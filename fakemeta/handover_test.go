package fakemeta

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// The handover protocol: once the Page Inbox takes the thread, the app
// gets take_thread_control and the customer's messages as standby; it may
// not pass a thread it does not control, takes it back, and the customer's
// messages come as messaging[] again.
func TestHandoverMovesTheThreadAndItsEvents(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	e.customerWrites("hello")
	last := func() map[string]any {
		posts := e.hook.Posts()
		var env struct {
			Entry []map[string]any `json:"entry"`
		}
		if err := json.Unmarshal(posts[len(posts)-1].body, &env); err != nil {
			t.Fatal(err)
		}
		return env.Entry[0]
	}
	// The inbox asks first (the simulated Messenger's control endpoint):
	// the app that has the thread hears it, and keeps it.
	if st, out := ctl(t, e.graph.URL, "POST", "/_fake/thread", map[string]string{"page_id": testPage, "psid": testPSID, "action": "request", "metadata": "a call"}); st != http.StatusOK {
		t.Fatalf("request the thread: %d %v", st, out)
	}
	req, _ := last()["messaging"].([]any)[0].(map[string]any)["request_thread_control"].(map[string]any)
	if req["requested_owner_app_id"] != PageInboxAppID || req["metadata"] != "a call" || e.fake.ThreadOwner(testPage, testPSID) != "" {
		t.Fatalf("after the inbox asked: %v, owner %q; want request_thread_control, the thread unmoved", req, e.fake.ThreadOwner(testPage, testPSID))
	}
	e.fake.OtherAppTakesThread(ctx, testPage, testPSID, PageInboxAppID)
	ev := last()["messaging"].([]any)[0].(map[string]any)
	take, ok := ev["take_thread_control"].(map[string]any)
	if !ok || take["new_owner_app_id"] != PageInboxAppID || take["previous_owner_app_id"] != testApp {
		t.Fatalf("after the Page Inbox took the thread: %v, want take_thread_control", ev)
	}
	e.customerWrites("to the inbox")
	if entry := last(); entry["standby"] == nil || entry["messaging"] != nil {
		t.Fatalf("customer message while the inbox has the thread: %v, want standby only", entry)
	}

	call := func(op, body string) (int, string) {
		st, b, _ := e.do(http.MethodPost, "/v25.0/"+testPage+"/"+op, auth(testToken, testSecret), "application/json", body)
		return st, string(b)
	}
	if st, b := call("pass_thread_control", `{"recipient":{"id":"`+testPSID+`"},"target_app_id":"`+PageInboxAppID+`"}`); st != http.StatusForbidden || !strings.Contains(b, `"code":10`) {
		t.Errorf("passing a thread it does not control: %d %s, want 403 code 10", st, b)
	}
	if st, b := call("take_thread_control", `{"recipient":{"id":"`+testPSID+`"},"metadata":"agent"}`); st != http.StatusOK || !strings.Contains(b, `"success":true`) {
		t.Fatalf("take: %d %s", st, b)
	}
	if o := e.fake.ThreadOwner(testPage, testPSID); o != testApp {
		t.Errorf("owner after take: %q, want the app", o)
	}
	e.customerWrites("back to you")
	if entry := last(); entry["messaging"] == nil {
		t.Errorf("customer message after the take: %v, want messaging", entry)
	}
	if st, b := call("pass_thread_control", `{"recipient":{"id":"`+testPSID+`"},"target_app_id":"42"}`); st != http.StatusBadRequest || !strings.Contains(b, `"code":100`) {
		t.Errorf("passing to an app without a role: %d %s, want 400 code 100", st, b)
	}
	if st, b := call("pass_thread_control", `{"recipient":{"id":"`+testPSID+`"},"target_app_id":"`+PageInboxAppID+`"}`); st != http.StatusOK {
		t.Errorf("pass to the inbox: %d %s", st, b)
	}
	if o := e.fake.ThreadOwner(testPage, testPSID); o != PageInboxAppID {
		t.Errorf("owner after pass: %q", o)
	}
}
