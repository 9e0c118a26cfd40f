package fakemeta

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// ctl calls the control API and decodes the JSON answer.
func ctl(t *testing.T, base, method, path string, in any) (int, map[string]any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, body)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, out
}

func TestControlAPIRoundTrip(t *testing.T) {
	f := New(Options{Logger: quietLogger()})
	t.Cleanup(f.Close)
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	h := newHook(t)
	base := srv.URL

	mustOK := func(st int, out map[string]any) {
		t.Helper()
		if st != 200 {
			t.Fatalf("status %d: %v", st, out)
		}
	}
	mustOK(ctl(t, base, "POST", "/_fake/apps", map[string]string{"app_id": testApp, "app_secret": testSecret}))
	if st, out := ctl(t, base, "POST", "/_fake/pages", map[string]string{"app_id": "nope", "page_id": testPage, "access_token": testToken}); st != 404 || out["error"] == nil {
		t.Fatalf("unknown app: %d %v", st, out)
	}
	mustOK(ctl(t, base, "POST", "/_fake/pages", map[string]string{"app_id": testApp, "page_id": testPage, "name": "Acme", "access_token": testToken}))

	// Handshake failure then success.
	if st, out := ctl(t, base, "POST", "/_fake/webhooks", map[string]any{"app_id": testApp, "callback_url": h.srv.URL, "verify_token": "wrong"}); st != 502 || !strings.Contains(out["error"].(string), "403") {
		t.Fatalf("bad handshake: %d %v", st, out)
	}
	mustOK(ctl(t, base, "POST", "/_fake/webhooks", map[string]any{"app_id": testApp, "callback_url": h.srv.URL, "verify_token": testVerify}))

	mustOK(ctl(t, base, "POST", "/_fake/users", map[string]any{"page_id": testPage, "psid": testPSID, "first_name": "Ann", "last_name": "Lee"}))
	mustOK(ctl(t, base, "POST", "/_fake/users/block", map[string]any{"page_id": testPage, "psid": "blocked-1"}))
	mustOK(ctl(t, base, "POST", "/_fake/human_agent", map[string]any{"app_id": testApp, "allowed": false}))
	if st, _ := ctl(t, base, "POST", "/_fake/human_agent", map[string]any{"app_id": "nope"}); st != 404 {
		t.Fatalf("human_agent unknown app: %d", st)
	}
	st, out := ctl(t, base, "POST", "/_fake/customer/messages", map[string]string{"page_id": testPage, "psid": testPSID, "text": "Bonjour"})
	if st != 200 || out["status"] != float64(200) || !strings.HasPrefix(out["mid"].(string), "m_") {
		t.Fatalf("customer message: %d %v", st, out)
	}
	if len(h.Posts()) != 1 {
		t.Fatalf("callback got %d posts", len(h.Posts()))
	}
	mustOK(ctl(t, base, "POST", "/_fake/customer/postbacks", map[string]string{"page_id": testPage, "psid": testPSID, "title": "Start", "payload": "GET_STARTED"}))
	if st, out := ctl(t, base, "POST", "/_fake/customer/messages", map[string]string{"page_id": "nope", "psid": testPSID, "text": "x"}); st != 404 {
		t.Fatalf("unknown page: %d %v", st, out)
	}
	if st, _ := ctl(t, base, "POST", "/_fake/customer/messages", map[string]string{"page_id": testPage}); st != 400 {
		t.Fatalf("missing fields: %d", st)
	}

	// Callback failure -> 502 with its status and body.
	h.failNext(500)
	st, out = ctl(t, base, "POST", "/_fake/customer/messages", map[string]string{"page_id": testPage, "psid": testPSID, "text": "again"})
	if st != 502 || out["status"] != float64(500) || out["body"] != "ack" || out["mid"] == nil {
		t.Fatalf("callback failure: %d %v", st, out)
	}
	if st, out := ctl(t, base, "POST", "/_fake/deliveries/retry", nil); st != 200 || out["retried"] != float64(1) {
		t.Fatalf("retry: %d %v", st, out)
	}

	// A reply through the Graph API, seen in /sent.
	q := auth(testToken, testSecret)
	resp, err := http.Post(base+"/v25.0/me/messages?"+q.Encode(), "application/json",
		strings.NewReader(textBody(testPSID, "RESPONSE", "", "Hello Ann")))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("send: %v %v", resp, err)
	}
	resp.Body.Close()
	st, out = ctl(t, base, "GET", "/_fake/sent?"+url.Values{"page_id": {testPage}, "psid": {testPSID}}.Encode(), nil)
	sent := out["data"].([]any)
	if st != 200 || len(sent) != 1 || sent[0].(map[string]any)["text"] != "Hello Ann" {
		t.Fatalf("sent: %d %v", st, out)
	}
	resp, _ = http.Post(base+"/v25.0/me/messages?"+q.Encode(), "application/json", strings.NewReader(textBody(testPSID, "MESSAGE_TAG", "HUMAN_AGENT", "tagged")))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"code":200`) {
		t.Fatalf("HUMAN_AGENT without permission: %d %s", resp.StatusCode, b)
	}
	mustOK(ctl(t, base, "POST", "/_fake/customer/delivered", map[string]string{"page_id": testPage, "psid": testPSID}))
	mustOK(ctl(t, base, "POST", "/_fake/customer/read", map[string]string{"page_id": testPage, "psid": testPSID}))
	mustOK(ctl(t, base, "POST", "/_fake/deliver", map[string]any{"page_id": testPage, "events": []json.RawMessage{
		json.RawMessage(`{"sender":{"id":"` + testPSID + `"},"recipient":{"id":"` + testPage + `"},"timestamp":1,"message_edit":{"mid":"m_1","text":"edited","num_edit":1}}`),
	}}))

	// Injected failure, then token invalidation.
	mustOK(ctl(t, base, "POST", "/_fake/failures", map[string]any{"op": "send", "code": 613}))
	resp, _ = http.Post(base+"/v25.0/me/messages?"+q.Encode(), "application/json", strings.NewReader(textBody(testPSID, "RESPONSE", "", "x")))
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"code":613`) {
		t.Fatalf("injected failure: %d %s", resp.StatusCode, b)
	}
	mustOK(ctl(t, base, "POST", "/_fake/failures", map[string]any{"op": "send", "code": 2, "after_accept": true}))
	resp, _ = http.Post(base+"/v25.0/me/messages?"+q.Encode(), "application/json", strings.NewReader(textBody(testPSID, "RESPONSE", "", "accepted")))
	resp.Body.Close()
	if resp.StatusCode != 500 || len(f.Sent(testPage, testPSID)) != 2 {
		t.Fatalf("after-accept failure: %d, sent %d", resp.StatusCode, len(f.Sent(testPage, testPSID)))
	}
	mustOK(ctl(t, base, "POST", "/_fake/tokens/invalidate", map[string]any{"page_id": testPage, "subcode": 460}))
	resp, _ = http.Post(base+"/v25.0/me/messages?"+q.Encode(), "application/json", strings.NewReader(textBody(testPSID, "RESPONSE", "", "x")))
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"error_subcode":460`) {
		t.Fatalf("invalidated token: %s", b)
	}

	st, out = ctl(t, base, "GET", "/_fake/calls", nil)
	calls := out["data"].([]any)
	if st != 200 || len(calls) != 5 {
		t.Fatalf("calls: %d %d", st, len(calls))
	}
	c0 := calls[0].(map[string]any)
	if c0["op"] != "send" || c0["query"].(map[string]any)["access_token"].([]any)[0] != "***" || !strings.Contains(c0["body"].(string), "Hello Ann") {
		t.Errorf("call view = %v", c0)
	}
	st, out = ctl(t, base, "GET", "/_fake/deliveries", nil)
	if st != 200 || len(out["data"].([]any)) < 5 {
		t.Fatalf("deliveries: %d %v", st, out)
	}

	mustOK(ctl(t, base, "POST", "/_fake/reset", nil))
	_, out = ctl(t, base, "GET", "/_fake/calls", nil)
	if len(out["data"].([]any)) != 0 {
		t.Error("calls survived reset")
	}
	if st, _ := ctl(t, base, "GET", "/_fake/nothing", nil); st != 404 {
		t.Errorf("unknown control route: %d", st)
	}
	if st, _ := ctl(t, base, "POST", "/_fake/apps", map[string]string{"app_id": "x", "app_secret": "y", "extra": "z"}); st != 400 {
		t.Errorf("unknown field accepted: %d", st)
	}
}
