package fakemeta

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const threadFields = "messages.limit(%d){id,message,created_time,from}"

// thread calls the Conversations API for psid with the test page's token.
func (e *env) thread(psid string, limit int) (int, map[string]any) {
	e.t.Helper()
	q := auth(testToken, testSecret)
	q.Set("platform", "messenger")
	q.Set("user_id", psid)
	q.Set("fields", fmt.Sprintf(threadFields, limit))
	st, b, _ := e.do(http.MethodGet, "/v25.0/"+testPage+"/conversations", q, "", "")
	return st, decode(e.t, b)
}

// threadMessages are the messages of the single thread of an answer.
func threadMessages(t *testing.T, body map[string]any) []map[string]any {
	t.Helper()
	data, ok := body["data"].([]any)
	if !ok || len(data) != 1 {
		t.Fatalf("data = %v, want one thread", body)
	}
	th := data[0].(map[string]any)
	if id, _ := th["id"].(string); !strings.HasPrefix(id, "t_") {
		t.Errorf("thread id = %q, want t_...", id)
	}
	var out []map[string]any
	for _, m := range th["messages"].(map[string]any)["data"].([]any) {
		out = append(out, m.(map[string]any))
	}
	return out
}

func attachmentBody(psid, url string) string {
	return `{"recipient":{"id":"` + psid + `"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"image","payload":{"url":"` + url + `"}}}}`
}

// Issue 6, defect 6: a send whose answer was lost is found on Meta's side:
// the thread lists what the page sent (even when the answer was an error
// after Meta accepted it) and what the person wrote, newest first.
func TestConversationsListsThreadNewestFirst(t *testing.T) {
	e := newEnv(t, Options{})
	in1 := e.customerWrites("Hallo, wo ist mein Paket?")
	if _, err := e.fake.CustomerSends(context.Background(), testPage, "9000000002", "another person"); err != nil {
		t.Fatalf("CustomerSends: %v", err)
	}
	e.clock.Add(time.Second)
	st, b := e.send(textBody(testPSID, "RESPONSE", "", "Grüße 😀"))
	wantOK(t, st, b)
	out1 := b["message_id"].(string)
	e.clock.Add(time.Second)
	st, b = e.send(attachmentBody(testPSID, "https://example.com/label.jpg"))
	wantOK(t, st, b)
	att := b["message_id"].(string)
	e.clock.Add(time.Second)
	// Meta accepts, then the answer is an error: the message is there anyway.
	e.fake.FailAfterAccept(Failure{Op: OpSend, PageID: testPage, Code: 2})
	st, b = e.send(textBody(testPSID, "RESPONSE", "", "lost answer"))
	wantGraphError(t, st, b, 500, 2, 0)
	sent := e.fake.Sent(testPage, testPSID)
	lost := sent[len(sent)-1].MessageID

	st, b = e.thread(testPSID, 20)
	wantOK(t, st, b)
	msgs := threadMessages(t, b)
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m["id"].(string))
	}
	if want := []string{lost, att, out1, in1}; !slices.Equal(ids, want) {
		t.Fatalf("ids = %v, want %v (newest first, only this person's thread)", ids, want)
	}
	if msgs[0]["message"] != "lost answer" || msgs[2]["message"] != "Grüße 😀" || msgs[3]["message"] != "Hallo, wo ist mein Paket?" {
		t.Errorf("texts = %v", msgs)
	}
	if _, ok := msgs[1]["message"]; ok {
		t.Errorf("attachment-only message has a message field: %v", msgs[1])
	}
	if from := msgs[0]["from"].(map[string]any)["id"]; from != testPage {
		t.Errorf("page's message from = %v, want the page", from)
	}
	if from := msgs[3]["from"].(map[string]any)["id"]; from != testPSID {
		t.Errorf("person's message from = %v, want the PSID", from)
	}
	if got, want := msgs[2]["created_time"], e.clock.Now().Add(-2*time.Second).Format("2006-01-02T15:04:05-0700"); got != want {
		t.Errorf("created_time = %v, want %v", got, want)
	}

	// The limit is honoured.
	st, b = e.thread(testPSID, 2)
	if msgs := threadMessages(t, b); st != 200 || len(msgs) != 2 || msgs[0]["id"] != lost {
		t.Errorf("limit 2: %d %v", st, msgs)
	}
	// Nobody wrote: no thread.
	st, b = e.thread("9000000099", 20)
	if data, ok := b["data"].([]any); st != 200 || !ok || len(data) != 0 {
		t.Errorf("unknown person: %d %v, want an empty data list", st, b)
	}
}

func TestConversationsLimitAtMost25(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	for i := range 30 {
		e.clock.Add(time.Second)
		st, b := e.send(textBody(testPSID, "RESPONSE", "", fmt.Sprintf("reply %d", i)))
		wantOK(t, st, b)
	}
	_, b := e.thread(testPSID, 100)
	msgs := threadMessages(t, b)
	if len(msgs) != 25 || msgs[0]["message"] != "reply 29" || msgs[24]["message"] != "reply 5" {
		t.Errorf("limit 100: %d messages, first %v, last %v; want the newest 25", len(msgs), msgs[0], msgs[len(msgs)-1])
	}
}

// Without pages_read_engagement and pages_manage_metadata Meta refuses the
// listing; the scopes are per page and debug_token shows them.
func TestConversationsNeedPermissions(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	e.fake.AddPage(testApp, "444", "Other page", "EAAtoken2")

	e.fake.SetPageScopes(testPage, []string{"pages_show_list", "pages_messaging", "pages_manage_metadata"})
	st, b := e.thread(testPSID, 20)
	er := wantGraphError(t, st, b, 400, 10, 0)
	if er["type"] != "OAuthException" || !strings.Contains(er["message"].(string), "pages_read_engagement") {
		t.Errorf("error = %v", er)
	}
	if scopes := e.debugScopes(testToken); slices.Contains(scopes, "pages_read_engagement") || !slices.Contains(scopes, "pages_messaging") {
		t.Errorf("debug_token scopes = %v", scopes)
	}
	// The other page keeps the default.
	if scopes := e.debugScopes("EAAtoken2"); !slices.Contains(scopes, "pages_read_engagement") || !slices.Contains(scopes, "pages_manage_metadata") {
		t.Errorf("other page's scopes = %v", scopes)
	}
	// Sending still works: it needs pages_messaging only.
	st, b = e.send(textBody(testPSID, "RESPONSE", "", "x"))
	wantOK(t, st, b)

	e.fake.SetPageScopes(testPage, nil)
	st, b = e.thread(testPSID, 20)
	wantOK(t, st, b)

	// The page token's proof is checked as for other page calls.
	q := url.Values{"access_token": {testToken}, "platform": {"messenger"}, "user_id": {testPSID}}
	st2, raw, _ := e.do(http.MethodGet, "/v25.0/"+testPage+"/conversations", q, "", "")
	wantGraphError(t, st2, decode(t, raw), 400, 100, 0)
}

func (e *env) debugScopes(token string) []string {
	e.t.Helper()
	q := url.Values{"input_token": {token}, "access_token": {testApp + "|" + testSecret}}
	st, raw, _ := e.do(http.MethodGet, "/v25.0/debug_token", q, "", "")
	b := decode(e.t, raw)
	wantOK(e.t, st, b)
	var out []string
	for _, s := range b["data"].(map[string]any)["scopes"].([]any) {
		out = append(out, s.(string))
	}
	return out
}

func TestControlAPIPageScopes(t *testing.T) {
	e := newEnv(t, Options{})
	ctlSrv := httptest.NewServer(e.fake.Handler())
	t.Cleanup(ctlSrv.Close)
	e.customerWrites("hi")

	if st, out := ctl(t, ctlSrv.URL, "POST", "/_fake/pages/scopes", map[string]any{"page_id": "nope", "scopes": []string{}}); st != 404 {
		t.Errorf("unknown page: %d %v", st, out)
	}
	if st, out := ctl(t, ctlSrv.URL, "POST", "/_fake/pages/scopes", map[string]any{"page_id": testPage, "scopes": []string{}}); st != 200 {
		t.Fatalf("set scopes: %d %v", st, out)
	}
	st, b := e.thread(testPSID, 20)
	wantGraphError(t, st, b, 400, 10, 0)
	if st, out := ctl(t, ctlSrv.URL, "POST", "/_fake/pages/scopes", map[string]any{"page_id": testPage, "scopes": nil}); st != 200 {
		t.Fatalf("restore scopes: %d %v", st, out)
	}
	st, b = e.thread(testPSID, 20)
	wantOK(t, st, b)
}
