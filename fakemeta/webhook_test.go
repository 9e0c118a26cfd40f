package fakemeta

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHandshake(t *testing.T) {
	ctx := context.Background()
	f := New(Options{Logger: quietLogger()})
	defer f.Close()
	f.AddApp(testApp, testSecret)

	h := newHook(t)
	if err := f.SetWebhook(ctx, testApp, h.srv.URL+"/cb?key=1", testVerify, nil); err != nil {
		t.Fatalf("good callback refused: %v", err)
	}

	// Echoing something else than the exact challenge fails.
	bad := newHook(t)
	bad.mangle = func(ch string) string { return ch + "\n" }
	err := f.SetWebhook(ctx, testApp, bad.srv.URL, testVerify, nil)
	var de *DeliveryError
	if !errors.As(err, &de) || de.Status != http.StatusOK {
		t.Fatalf("wrong challenge: err = %v, want a *DeliveryError with status 200", err)
	}

	// A callback refusing the verify token (403) fails.
	err = f.SetWebhook(ctx, testApp, h.srv.URL, "other-token", nil)
	if !errors.As(err, &de) || de.Status != http.StatusForbidden {
		t.Fatalf("wrong verify token: err = %v, want status 403", err)
	}

	// The failed attempts did not replace the verified subscription.
	f.AddPage(testApp, testPage, "Acme", testToken)
	if _, err := f.CustomerSends(ctx, testPage, testPSID, "hi"); err != nil {
		t.Fatalf("CustomerSends after failed re-subscription: %v", err)
	}
	if n := len(h.Posts()); n != 1 {
		t.Fatalf("good callback got %d posts, want 1", n)
	}
	if err := f.SetWebhook(ctx, "nope", h.srv.URL, testVerify, nil); !errors.Is(err, ErrUnknownApp) {
		t.Fatalf("unknown app: %v", err)
	}
	if err := f.SetWebhook(ctx, testApp, h.srv.URL, testVerify, []string{"messages", "feed"}); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func TestCustomerMessageSigned(t *testing.T) {
	e := newEnv(t, Options{})
	text := "Grüße / <b>&</b> 😀"
	mid := e.customerWrites(text)
	if !strings.HasPrefix(mid, "m_") {
		t.Errorf("mid = %q", mid)
	}
	posts := e.hook.Posts()
	if len(posts) != 1 {
		t.Fatalf("posts = %d", len(posts))
	}
	p := posts[0]

	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write(p.body)
	if got, want := p.header.Get("X-Hub-Signature-256"), "sha256="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("X-Hub-Signature-256 = %q, want %q", got, want)
	}
	m1 := hmac.New(sha1.New, []byte(testSecret))
	m1.Write(p.body)
	if got, want := p.header.Get("X-Hub-Signature"), "sha1="+hex.EncodeToString(m1.Sum(nil)); got != want {
		t.Errorf("X-Hub-Signature = %q, want %q", got, want)
	}
	if ct := p.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}

	ms := e.clock.Now().UnixMilli()
	want := fmt.Sprintf(`{"object":"page","entry":[{"id":"%s","time":%d,"messaging":[{"sender":{"id":"%s"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"%s","text":"Gr\u00fc\u00dfe \/ <b>&<\/b> \ud83d\ude00"}}]}]}`,
		testPage, ms, testPSID, testPage, ms, mid)
	if string(p.body) != want {
		t.Errorf("body\n got %s\nwant %s", p.body, want)
	}
	ev := event(t, p.body)
	if got := ev["message"].(map[string]any)["text"]; got != text {
		t.Errorf("decoded text = %q", got)
	}

	// Sign and BuildEnvelope reproduce the exact bytes.
	s256, _ := Sign(p.body, testSecret)
	if s256 != p.header.Get("X-Hub-Signature-256") {
		t.Error("Sign disagrees with the delivered signature")
	}
	rebuilt, err := BuildEnvelope(Entry{PageID: testPage, Time: ms, Messaging: []json.RawMessage{json.RawMessage(
		fmt.Sprintf(`{"sender":{"id":"%s"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"%s","text":%q}}`, testPSID, testPage, ms, mid, text))}})
	if err != nil || !bytes.Equal(rebuilt, p.body) {
		t.Errorf("BuildEnvelope = %s, %v", rebuilt, err)
	}
}

func TestDeliveryFailureAndRetry(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	e.hook.failNext(http.StatusServiceUnavailable)
	mid, err := e.fake.CustomerSends(ctx, testPage, testPSID, "hello")
	var de *DeliveryError
	if !errors.As(err, &de) || de.Status != http.StatusServiceUnavailable || mid == "" {
		t.Fatalf("CustomerSends = %q, %v; want a 503 DeliveryError", mid, err)
	}
	ds := e.fake.Deliveries()
	if len(ds) != 1 || ds[0].Attempts != 1 || ds[0].Status != 503 {
		t.Fatalf("deliveries = %+v", ds)
	}
	// The customer still wrote: the window is open.
	st, body := e.send(textBody(testPSID, "RESPONSE", "", "hi"))
	wantOK(t, st, body)

	n, err := e.fake.RetryFailed(ctx)
	if n != 1 || err != nil {
		t.Fatalf("RetryFailed = %d, %v", n, err)
	}
	ds = e.fake.Deliveries()
	if ds[0].Attempts != 2 || ds[0].Status != 200 || fmt.Sprint(ds[0].Statuses) != "[503 200]" {
		t.Fatalf("after retry: %+v", ds[0])
	}
	posts := e.hook.Posts()
	var msgPosts [][]byte
	for _, p := range posts {
		if bytes.Contains(p.body, []byte(mid)) && !bytes.Contains(p.body, []byte("is_echo")) {
			msgPosts = append(msgPosts, p.body)
		}
	}
	if len(msgPosts) != 2 || !bytes.Equal(msgPosts[0], msgPosts[1]) {
		t.Fatalf("retry did not resend the same bytes: %q", msgPosts)
	}
	// Redeliver by id duplicates it again (Meta duplicates too).
	if st, err := e.fake.Redeliver(ctx, ds[0].ID); st != 200 || err != nil {
		t.Fatalf("Redeliver = %d, %v", st, err)
	}
	// No subscriber: unknown page, and a page whose app is unsubscribed.
	if _, err := e.fake.CustomerSends(ctx, "nope", testPSID, "x"); !errors.Is(err, ErrUnknownPage) {
		t.Fatalf("unknown page: %v", err)
	}
}

func TestEchoWithMetadata(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	body := `{"recipient":{"id":"` + testPSID + `"},"messaging_type":"RESPONSE","message":{"text":"Hello Ann","metadata":"agent:42/conv:7"}}`
	st, resp := e.send(body)
	wantOK(t, st, resp)
	mid := resp["message_id"].(string)
	if resp["recipient_id"] != testPSID || !strings.HasPrefix(mid, "m_") {
		t.Fatalf("answer = %v", resp)
	}
	e.fake.Wait()
	posts := e.hook.Posts()
	if len(posts) != 2 {
		t.Fatalf("posts = %d, want message + echo", len(posts))
	}
	echo := posts[1]
	s256, _ := Sign(echo.body, testSecret)
	if echo.header.Get("X-Hub-Signature-256") != s256 {
		t.Error("echo badly signed")
	}
	if !bytes.Contains(echo.body, []byte(`"app_id":1234567890`)) {
		t.Errorf("app_id not a number: %s", echo.body)
	}
	if !bytes.Contains(echo.body, []byte(`"metadata":"agent:42\/conv:7"`)) {
		t.Errorf("metadata not escaped like Meta: %s", echo.body)
	}
	ev := event(t, echo.body)
	msg := ev["message"].(map[string]any)
	if ev["sender"].(map[string]any)["id"] != testPage || ev["recipient"].(map[string]any)["id"] != testPSID {
		t.Errorf("echo parties: %v", ev)
	}
	if msg["mid"] != mid || msg["is_echo"] != true || msg["metadata"] != "agent:42/conv:7" || msg["text"] != "Hello Ann" {
		t.Errorf("echo message = %v", msg)
	}
	sent := e.fake.Sent(testPage, testPSID)
	if len(sent) != 1 || sent[0].MessageID != mid || sent[0].Metadata != "agent:42/conv:7" || sent[0].MessagingType != "RESPONSE" {
		t.Errorf("Sent = %+v", sent)
	}
}

func TestEchoRetriesAndFieldFilter(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	e.hook.failNext(500, 500)
	st, resp := e.send(textBody(testPSID, "RESPONSE", "", "one"))
	wantOK(t, st, resp)
	start := time.Now()
	e.fake.Wait()
	if time.Since(start) < 2*asyncRetryGap-50*time.Millisecond {
		t.Errorf("retries did not wait: %v", time.Since(start))
	}
	ds := e.fake.Deliveries()
	last := ds[len(ds)-1]
	if last.Attempts != 3 || fmt.Sprint(last.Statuses) != "[500 500 200]" {
		t.Fatalf("echo delivery = %+v", last)
	}

	// Without message_echoes in the webhook fields, no echo.
	if err := e.fake.SetWebhook(context.Background(), testApp, e.hook.srv.URL, testVerify, []string{"messages"}); err != nil {
		t.Fatal(err)
	}
	before := len(e.hook.Posts())
	st, resp = e.send(textBody(testPSID, "RESPONSE", "", "two"))
	wantOK(t, st, resp)
	e.fake.Wait()
	if n := len(e.hook.Posts()); n != before {
		t.Fatalf("echo delivered without message_echoes: %d posts, had %d", n, before)
	}
	// And postbacks are no longer delivered either.
	if _, err := e.fake.CustomerPostback(context.Background(), testPage, testPSID, "Start", "GET_STARTED"); !errors.Is(err, ErrNoSubscriber) {
		t.Fatalf("postback without messaging_postbacks: %v", err)
	}
}

func TestDeliverBatchStandbyRaw(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	ms := e.clock.Now().UnixMilli()
	reaction := json.RawMessage(fmt.Sprintf(`{"sender":{"id":"7000"},"recipient":{"id":"%s"},"timestamp":%d,"reaction":{"reaction":"love","emoji":"\u2764","action":"react","mid":"m_x"}}`, testPage, ms))
	msg := json.RawMessage(fmt.Sprintf(`{"sender":{"id":"7001"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"m_y","text":"yo"}}`, testPage, ms))
	st, err := e.fake.Deliver(ctx, testPage, reaction, msg)
	if st != 200 || err != nil {
		t.Fatalf("Deliver = %d, %v", st, err)
	}
	p := e.hook.Posts()[0]
	if !bytes.Contains(p.body, []byte(`"emoji":"\u2764"`)) {
		t.Errorf("emoji not escaped: %s", p.body)
	}
	entry := decode(t, p.body)["entry"].([]any)[0].(map[string]any)
	if n := len(entry["messaging"].([]any)); n != 2 {
		t.Fatalf("batch of %d, want 2", n)
	}
	// A reaction does not open a window; a message does.
	st1, b1 := e.send(textBody("7000", "RESPONSE", "", "x"))
	wantGraphError(t, st1, b1, 400, 100, 2018001)
	st2, b2 := e.send(textBody("7001", "RESPONSE", "", "x"))
	wantOK(t, st2, b2)
	e.fake.Wait() // the echo
	last := func() hookPost { ps := e.hook.Posts(); return ps[len(ps)-1] }

	if st, err := e.fake.DeliverStandby(ctx, testPage, msg); st != 200 || err != nil {
		t.Fatalf("DeliverStandby = %d, %v", st, err)
	}
	sb := decode(t, last().body)["entry"].([]any)[0].(map[string]any)
	if sb["standby"] == nil || sb["messaging"] != nil {
		t.Fatalf("standby envelope = %v", sb)
	}

	raw, _ := BuildEnvelope(
		Entry{PageID: testPage, Time: ms, Messaging: []json.RawMessage{msg}},
		Entry{PageID: testPage, Time: ms + 1, Messaging: []json.RawMessage{msg}},
	)
	if st, err := e.fake.DeliverRaw(ctx, testApp, raw); st != 200 || err != nil {
		t.Fatalf("DeliverRaw = %d, %v", st, err)
	}
	got := last()
	s256, s1 := Sign(raw, testSecret)
	if !bytes.Equal(got.body, raw) || got.header.Get("X-Hub-Signature-256") != s256 || got.header.Get("X-Hub-Signature") != s1 {
		t.Fatal("DeliverRaw did not send the exact signed bytes")
	}
}

func TestReceipts(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	e.customerWrites("hi")
	_, r1 := e.send(textBody(testPSID, "RESPONSE", "", "a"))
	_, r2 := e.send(textBody(testPSID, "RESPONSE", "", "b"))
	e.fake.Wait()
	e.clock.Add(time.Second)
	if st, err := e.fake.MarkDelivered(ctx, testPage, testPSID); st != 200 || err != nil {
		t.Fatalf("MarkDelivered = %d, %v", st, err)
	}
	posts := e.hook.Posts()
	ev := event(t, posts[len(posts)-1].body)
	d := ev["delivery"].(map[string]any)
	ms := e.clock.Now().UnixMilli()
	if fmt.Sprint(d["mids"]) != fmt.Sprint([]any{r1["message_id"], r2["message_id"]}) || num(d["watermark"]) != int(ms) {
		t.Errorf("delivery = %v", d)
	}
	if ev["sender"].(map[string]any)["id"] != testPSID {
		t.Errorf("delivery sender = %v", ev["sender"])
	}
	if _, err := e.fake.MarkRead(ctx, testPage, testPSID); err != nil {
		t.Fatal(err)
	}
	posts = e.hook.Posts()
	ev = event(t, posts[len(posts)-1].body)
	if num(ev["read"].(map[string]any)["watermark"]) != int(ms) {
		t.Errorf("read = %v", ev)
	}
	// Nothing new since: mids absent.
	_, _ = e.fake.MarkDelivered(ctx, testPage, testPSID)
	posts = e.hook.Posts()
	if d := event(t, posts[len(posts)-1].body)["delivery"].(map[string]any); d["mids"] != nil {
		t.Errorf("mids present with nothing sent: %v", d)
	}
}

func TestMetaEscape(t *testing.T) {
	in, _ := marshalNoHTML(map[string]string{"a": "ä/<>&\u2028𝄞\"\\/"})
	got := string(metaEscape(in))
	want := `{"a":"\u00e4\/<>&\u2028\ud834\udd1e\"\\\/"}`
	if got != want {
		t.Errorf("metaEscape = %s, want %s", got, want)
	}
	var back map[string]string
	if err := json.Unmarshal([]byte(got), &back); err != nil || back["a"] != "ä/<>&\u2028𝄞\"\\/" {
		t.Errorf("round trip = %q, %v", back["a"], err)
	}
}

func TestCustomerTapsQuickReplyCarriesThePayload(t *testing.T) {
	e := newEnv(t, Options{})
	if _, err := e.fake.CustomerTapsQuickReply(context.Background(), testPage, testPSID, "4", "PARLEY_CSAT:c1:4"); err != nil {
		t.Fatal(err)
	}
	posts := e.hook.Posts()
	if len(posts) != 1 || !strings.Contains(string(posts[0].body), `"text":"4","quick_reply":{"payload":"PARLEY_CSAT:c1:4"}`) {
		t.Errorf("webhooks = %d, want the tap with its payload", len(posts))
	}
}
