package fakemeta

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWindows(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("help please")

	e.clock.Add(23*time.Hour + 59*time.Minute)
	st, b := e.send(textBody(testPSID, "RESPONSE", "", "inside 24h"))
	wantOK(t, st, b)
	st, b = e.send(textBody(testPSID, "UPDATE", "", "update inside 24h"))
	wantOK(t, st, b)

	e.clock.Add(2 * time.Minute) // 24h01
	st, b = e.send(textBody(testPSID, "RESPONSE", "", "too late"))
	wantGraphError(t, st, b, 400, 10, 2018278)
	st, b = e.send(`{"recipient":{"id":"` + testPSID + `"},"sender_action":"typing_on"}`)
	wantGraphError(t, st, b, 400, 10, 2018278)

	e.clock.Add(6*24*time.Hour - 24*time.Hour - time.Minute) // 6 days after
	st, b = e.send(textBody(testPSID, "MESSAGE_TAG", "HUMAN_AGENT", "agent reply at 6d"))
	wantOK(t, st, b)

	e.clock.Add(24*time.Hour + time.Minute) // 7d + 1m
	st, b = e.send(textBody(testPSID, "MESSAGE_TAG", "HUMAN_AGENT", "too late even for an agent"))
	wantGraphError(t, st, b, 400, 10, 2018278)

	if n := len(e.fake.Sent(testPage, testPSID)); n != 3 {
		t.Errorf("sent = %d, want 3", n)
	}

	// The customer writes again: the window reopens.
	e.customerWrites("still there?")
	st, b = e.send(textBody(testPSID, "RESPONSE", "", "yes"))
	wantOK(t, st, b)

	// A person known only by profile never wrote: no window.
	e.fake.SetUserProfile(testPage, "555", "Al", "Bo", true)
	st, b = e.send(textBody("555", "RESPONSE", "", "hi"))
	wantGraphError(t, st, b, 400, 10, 2018278)

	// A postback opens the window too.
	if _, err := e.fake.CustomerPostback(context.Background(), testPage, "555", "Get Started", "GET_STARTED"); err != nil {
		t.Fatal(err)
	}
	st, b = e.send(textBody("555", "RESPONSE", "", "welcome"))
	wantOK(t, st, b)
}

func TestWindowOptions(t *testing.T) {
	e := newEnv(t, Options{ReplyWindow: time.Hour, HumanAgentWindow: 2 * time.Hour})
	e.customerWrites("hi")
	e.clock.Add(61 * time.Minute)
	st, b := e.send(textBody(testPSID, "RESPONSE", "", "x"))
	wantGraphError(t, st, b, 400, 10, 2018278)
	st, b = e.send(textBody(testPSID, "MESSAGE_TAG", "HUMAN_AGENT", "x"))
	wantOK(t, st, b)
}

func TestSendTextLength(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	st, b := e.send(textBody(testPSID, "RESPONSE", "", strings.Repeat("é", 2000)))
	wantOK(t, st, b)
	st, b = e.send(textBody(testPSID, "RESPONSE", "", strings.Repeat("é", 2001)))
	er := wantGraphError(t, st, b, 400, 100, 0)
	if er["message"] != "(#100) Length of param message[text] must be less than or equal to 2000" {
		t.Errorf("message = %q", er["message"])
	}
	// Meta counts UTF-16 units: 1,000 emoji fit, 1,001 (2,002 units) do not.
	st, b = e.send(textBody(testPSID, "RESPONSE", "", strings.Repeat("😀", 1000)))
	wantOK(t, st, b)
	st, b = e.send(textBody(testPSID, "RESPONSE", "", strings.Repeat("😀", 1001)))
	wantGraphError(t, st, b, 400, 100, 0)
	if n := len(e.fake.Sent("", "")); n != 2 {
		t.Errorf("sent = %d", n)
	}
}

func TestRetiredTagsAndTypes(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	for _, tag := range []string{"ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "CUSTOMER_FEEDBACK"} {
		st, b := e.send(textBody(testPSID, "MESSAGE_TAG", tag, "x"))
		wantGraphError(t, st, b, 400, 100, 0)
	}
	st, b := e.send(textBody(testPSID, "RESPONSE", "HUMAN_AGENT", "tag on RESPONSE"))
	wantGraphError(t, st, b, 400, 100, 0)
	st, b = e.send(textBody(testPSID, "MESSAGE_TAG", "", "no tag"))
	wantGraphError(t, st, b, 400, 100, 0)
	if n := len(e.fake.Sent("", "")); n != 0 {
		t.Errorf("sent = %d", n)
	}
}

func TestSendValidation(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	r := `"recipient":{"id":"` + testPSID + `"}`
	cases := []struct {
		name, body    string
		code, subcode int
	}{
		{"no recipient", `{"messaging_type":"RESPONSE","message":{"text":"x"}}`, 100, 0},
		{"empty recipient id", `{"recipient":{},"messaging_type":"RESPONSE","message":{"text":"x"}}`, 100, 0},
		{"unknown psid", `{"recipient":{"id":"42"},"messaging_type":"RESPONSE","message":{"text":"x"}}`, 100, 2018001},
		{"nothing", `{` + r + `}`, 100, 0},
		{"message and action", `{` + r + `,"messaging_type":"RESPONSE","message":{"text":"x"},"sender_action":"typing_on"}`, 100, 0},
		{"no messaging_type", `{` + r + `,"message":{"text":"x"}}`, 100, 0},
		{"bad messaging_type", `{` + r + `,"messaging_type":"NON_PROMOTIONAL_SUBSCRIPTION","message":{"text":"x"}}`, 100, 0},
		{"empty message", `{` + r + `,"messaging_type":"RESPONSE","message":{}}`, 100, 0},
		{"empty text", `{` + r + `,"messaging_type":"RESPONSE","message":{"text":""}}`, 100, 0},
		{"text and attachment", `{` + r + `,"messaging_type":"RESPONSE","message":{"text":"x","attachment":{"type":"image","payload":{"url":"https://x.test/a.png"}}}}`, 100, 0},
		{"template attachment", `{` + r + `,"messaging_type":"RESPONSE","message":{"attachment":{"type":"template","payload":{"template_type":"generic"}}}}`, 100, 0},
		{"attachment no payload", `{` + r + `,"messaging_type":"RESPONSE","message":{"attachment":{"type":"image"}}}`, 100, 0},
		{"attachment bad url", `{` + r + `,"messaging_type":"RESPONSE","message":{"attachment":{"type":"image","payload":{"url":"ftp://x"}}}}`, 100, 0},
		{"unknown attachment id", `{` + r + `,"messaging_type":"RESPONSE","message":{"attachment":{"type":"image","payload":{"attachment_id":"999"}}}}`, 100, 0},
		{"bad sender action", `{` + r + `,"sender_action":"dance"}`, 100, 0},
		{"too many quick replies", `{` + r + `,"messaging_type":"RESPONSE","message":{"text":"x","quick_replies":[` + strings.TrimSuffix(strings.Repeat(`{"content_type":"text","title":"a","payload":"p"},`, 14), ",") + `]}}`, 100, 0},
		{"metadata too long", `{` + r + `,"messaging_type":"RESPONSE","message":{"text":"x","metadata":"` + strings.Repeat("m", 1001) + `"}}`, 100, 0},
		{"not JSON", `recipient=oops`, 100, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, b := e.send(c.body)
			wantGraphError(t, st, b, 400, c.code, c.subcode)
		})
	}
	if n := len(e.fake.Sent("", "")); n != 0 {
		t.Errorf("sent = %d after invalid calls", n)
	}

	// Sender action alone: {"recipient_id"} only, nothing recorded as sent.
	st, b := e.send(`{` + r + `,"sender_action":"typing_on"}`)
	wantOK(t, st, b)
	if len(b) != 1 || b["recipient_id"] != testPSID {
		t.Errorf("sender action answer = %v", b)
	}
	// Quick replies are kept.
	st, b = e.send(`{` + r + `,"messaging_type":"RESPONSE","message":{"text":"pick","quick_replies":[{"content_type":"text","title":"Yes","payload":"Y"},{"content_type":"user_email"}]}}`)
	wantOK(t, st, b)
	if s := e.fake.Sent(testPage, testPSID); len(s) != 1 || len(s[0].QuickReplies) != 2 || s[0].QuickReplies[0].Payload != "Y" {
		t.Errorf("sent = %+v", s)
	}
}

func TestSendFormEncodedAndMe(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	form := auth(testToken, testSecret)
	form.Set("recipient", `{"id":"`+testPSID+`"}`)
	form.Set("messaging_type", "RESPONSE")
	form.Set("message", `{"text":"via form"}`)
	st, body, _ := e.do(http.MethodPost, "/v25.0/me/messages", nil, "application/x-www-form-urlencoded", form.Encode())
	wantOK(t, st, decode(t, body))
	if s := e.fake.Sent(testPage, testPSID); len(s) != 1 || s[0].Text != "via form" {
		t.Fatalf("sent = %+v", s)
	}
	// The token in the form body is redacted in the call log.
	calls := e.fake.Calls()
	last := calls[len(calls)-1]
	if strings.Contains(string(last.Body), testToken) || last.PageID != testPage || last.Op != OpSend {
		t.Errorf("call = %+v", last)
	}
}

func TestBlockedAndHumanAgentPermission(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	e.fake.BlockUser(testPage, testPSID)
	st, b := e.send(textBody(testPSID, "RESPONSE", "", "x"))
	wantGraphError(t, st, b, 400, 10, 2018108)
	e.customerWrites("unblocked by writing")
	st, b = e.send(textBody(testPSID, "RESPONSE", "", "x"))
	wantOK(t, st, b)

	e.fake.SetHumanAgentPermission(testApp, false)
	st, b = e.send(textBody(testPSID, "MESSAGE_TAG", "HUMAN_AGENT", "x"))
	wantGraphError(t, st, b, 400, 200, 0)
	e.fake.SetHumanAgentPermission(testApp, true)
	st, b = e.send(textBody(testPSID, "MESSAGE_TAG", "HUMAN_AGENT", "x"))
	wantOK(t, st, b)
}

func TestFailNextThenSuccess(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	e.fake.FailNext(Failure{Op: OpSend, Code: 613})
	e.fake.FailNext(Failure{Op: OpProfile, Code: 1}) // does not match sends

	st, b := e.send(textBody(testPSID, "RESPONSE", "", "x"))
	er := wantGraphError(t, st, b, 400, 613, 0)
	if er["message"] != "(#613) Calls to this api have exceeded the rate limit." {
		t.Errorf("message = %q", er["message"])
	}
	if n := len(e.fake.Sent("", "")); n != 0 {
		t.Fatalf("a failed send was recorded")
	}
	st, b = e.send(textBody(testPSID, "RESPONSE", "", "x"))
	wantOK(t, st, b)

	// Code 1 answers 500; Times and PageID are honoured.
	e.fake.FailNext(Failure{Code: 1, PageID: "other"})
	e.fake.FailNext(Failure{Op: OpSend, Code: 2, Times: 2})
	for range 2 {
		st, b = e.send(textBody(testPSID, "RESPONSE", "", "x"))
		wantGraphError(t, st, b, 500, 2, 0)
	}
	st, b = e.send(textBody(testPSID, "RESPONSE", "", "x"))
	wantOK(t, st, b)

	// Custom status and message; usage header on throttling.
	e.fake.FailNext(Failure{Op: OpSend, Code: 4, Subcode: 2018022, HTTPStatus: 429, Message: "(#4) slow down"})
	st, body, h := e.do(http.MethodPost, "/v25.0/"+testPage+"/messages", auth(testToken, testSecret), "application/json", textBody(testPSID, "RESPONSE", "", "x"))
	er = wantGraphError(t, st, decode(t, body), 429, 4, 2018022)
	if er["message"] != "(#4) slow down" {
		t.Errorf("message = %q", er["message"])
	}
	var usage map[string][]map[string]any
	if err := json.Unmarshal([]byte(h.Get("X-Business-Use-Case-Usage")), &usage); err != nil || usage[testPage][0]["call_count"] != float64(100) {
		t.Errorf("usage header = %q (%v)", h.Get("X-Business-Use-Case-Usage"), err)
	}

	// Reset drops pending failures.
	e.fake.FailNext(Failure{Op: OpSend, Code: 613})
	e.fake.Reset()
	st, b = e.send(textBody(testPSID, "RESPONSE", "", "x"))
	wantOK(t, st, b)
	if n := len(e.fake.Calls()); n != 1 {
		t.Errorf("calls after Reset = %d", n)
	}
}

func TestFailAfterAccept(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")

	e.fake.FailAfterAccept(Failure{Op: OpSend, Code: 2})
	st, b := e.send(textBody(testPSID, "RESPONSE", "", "accepted but 500"))
	wantGraphError(t, st, b, 500, 2, 0)
	e.fake.Wait()
	sent := e.fake.Sent(testPage, testPSID)
	if len(sent) != 1 {
		t.Fatalf("sent = %d, want the accepted message", len(sent))
	}
	posts := e.hook.Posts()
	if !strings.Contains(string(posts[len(posts)-1].body), sent[0].MessageID) {
		t.Error("no echo of the accepted message")
	}

	// Code 0: the connection drops.
	e.fake.FailAfterAccept(Failure{Op: OpSend})
	req, _ := http.NewRequest(http.MethodPost, e.graph.URL+"/v25.0/"+testPage+"/messages?"+auth(testToken, testSecret).Encode(),
		strings.NewReader(textBody(testPSID, "RESPONSE", "", "dropped")))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.graph.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got HTTP %d, want a dropped connection", resp.StatusCode)
	}
	if n := len(e.fake.Sent(testPage, testPSID)); n != 2 {
		t.Fatalf("sent = %d, want 2", n)
	}
	calls := e.fake.Calls()
	if c := calls[len(calls)-1]; c.Status != 0 || c.Op != OpSend {
		t.Errorf("dropped call = %+v", c)
	}

	// FailNext with Code 0 drops without sending.
	e.fake.FailNext(Failure{Op: OpSend})
	req, _ = http.NewRequest(http.MethodPost, e.graph.URL+"/v25.0/"+testPage+"/messages?"+auth(testToken, testSecret).Encode(),
		strings.NewReader(textBody(testPSID, "RESPONSE", "", "never")))
	if resp, err := e.graph.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("want a dropped connection")
	}
	if n := len(e.fake.Sent(testPage, testPSID)); n != 2 {
		t.Fatalf("sent = %d, want still 2", n)
	}
}

func TestAttachments(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	r := `"recipient":{"id":"` + testPSID + `"},"messaging_type":"RESPONSE"`

	st, b := e.send(`{` + r + `,"message":{"attachment":{"type":"image","payload":{"url":"https://cdn.example/a.png","is_reusable":true}}}}`)
	wantOK(t, st, b)
	attID, _ := b["attachment_id"].(string)
	if attID == "" {
		t.Fatalf("no attachment_id for a reusable URL: %v", b)
	}
	st, b = e.send(`{` + r + `,"message":{"attachment":{"type":"image","payload":{"attachment_id":"` + attID + `"}}}}`)
	wantOK(t, st, b)

	st, body, _ := e.do(http.MethodPost, "/v25.0/"+testPage+"/message_attachments", auth(testToken, testSecret), "application/json",
		`{"message":{"attachment":{"type":"file","payload":{"url":"https://cdn.example/doc.pdf","is_reusable":true}}}}`)
	up := decode(t, body)
	wantOK(t, st, up)
	st, b = e.send(`{` + r + `,"message":{"attachment":{"type":"file","payload":{"attachment_id":"` + up["attachment_id"].(string) + `"}}}}`)
	wantOK(t, st, b)

	sent := e.fake.Sent(testPage, testPSID)
	if len(sent) != 3 || sent[1].AttachmentURL != "https://cdn.example/a.png" || sent[2].AttachmentType != "file" || sent[2].AttachmentID == "" {
		t.Fatalf("sent = %+v", sent)
	}
	e.fake.Wait()
	posts := e.hook.Posts()
	ev := event(t, posts[len(posts)-1].body)
	att := ev["message"].(map[string]any)["attachments"].([]any)[0].(map[string]any)
	if att["type"] == nil || att["payload"].(map[string]any)["url"] == nil {
		t.Errorf("echo attachment = %v", att)
	}
}

func TestConcurrentSends(t *testing.T) {
	e := newEnv(t, Options{})
	for i := range 5 {
		if _, err := e.fake.CustomerSends(context.Background(), testPage, fmt.Sprint("p", i), "hi"); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	mids := make(chan string, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := auth(testToken, testSecret)
			st, body, _ := e.do(http.MethodPost, "/v25.0/"+testPage+"/messages", q, "application/json", textBody(fmt.Sprint("p", i%5), "RESPONSE", "", "x"))
			var m map[string]any
			if st != 200 || json.Unmarshal(body, &m) != nil {
				t.Errorf("send %d: %d %s", i, st, body)
				return
			}
			mids <- m["message_id"].(string)
		}()
	}
	wg.Wait()
	close(mids)
	seen := map[string]bool{}
	for m := range mids {
		if seen[m] {
			t.Fatalf("duplicate mid %s", m)
		}
		seen[m] = true
	}
	e.fake.Wait()
	if n := len(e.fake.Sent(testPage, "")); n != 50 {
		t.Errorf("sent = %d", n)
	}
}

func TestAttachmentUploadMultipart(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("access_token", testToken)
	_ = mw.WriteField("appsecret_proof", AppSecretProof(testToken, testSecret))
	_ = mw.WriteField("message", `{"attachment":{"type":"image","payload":{"is_reusable":true}}}`)
	fw, _ := mw.CreateFormFile("filedata", "cat.png")
	_, _ = fw.Write([]byte("\x89PNG fake"))
	_ = mw.Close()
	st, body, _ := e.do(http.MethodPost, "/v25.0/me/message_attachments", nil, mw.FormDataContentType(), buf.String())
	up := decode(t, body)
	wantOK(t, st, up)
	id, _ := up["attachment_id"].(string)
	if id == "" {
		t.Fatalf("upload = %v", up)
	}
	st, b := e.send(`{"recipient":{"id":"` + testPSID + `"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"image","payload":{"attachment_id":"` + id + `"}}}}`)
	wantOK(t, st, b)
	calls := e.fake.Calls()
	if c := calls[0]; c.Op != OpAttachmentUpload || bytes.Contains(c.Body, []byte(testToken)) {
		t.Errorf("upload call = %s %q", c.Op, c.Body)
	}
	// Without a URL or a file.
	st, body, _ = e.do(http.MethodPost, "/v25.0/me/message_attachments", auth(testToken, testSecret), "application/json",
		`{"message":{"attachment":{"type":"image","payload":{}}}}`)
	wantGraphError(t, st, decode(t, body), 400, 100, 0)
}
