package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"parley/fakemeta"
	"parley/testenv"
	"parley/workflows"
)

type fullMessage struct {
	Seq         int64           `json:"seq"`
	Kind        string          `json:"kind"`
	Direction   string          `json:"direction"`
	Sender      string          `json:"sender"`
	MID         string          `json:"mid"`
	Text        string          `json:"text"`
	Attachments json.RawMessage `json:"attachments"`
}

func connected(t *testing.T) (*testenv.Env, testenv.Page) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme Support", token)
	e.ConnectWebhook(appID, page)
	return e, page
}

func ev(format string, args ...any) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(format, args...))
}

// Every event kind of the spec, batched as Meta may, ends up in the
// conversation of its customer; events of pages Parley does not manage are
// acknowledged and dropped.
func TestEveryEventKindReachesItsConversation(t *testing.T) {
	e, _ := connected(t)
	ctx := context.Background()
	psid := "psid-kinds"
	ts := time.Now().UnixMilli()
	from := fmt.Sprintf(`"sender":{"id":"%s"},"recipient":{"id":"%s"}`, psid, pageID)
	events := []json.RawMessage{
		ev(`{%s,"timestamp":%d,"message":{"mid":"m_1","text":"Which size?","quick_reply":{"payload":"SIZE_M"},"reply_to":{"mid":"m_0"}}}`, from, ts),
		ev(`{%s,"timestamp":%d,"message":{"mid":"m_2","attachments":[{"type":"image","payload":{"url":"https://scontent.example/p.jpg"}},{"type":"fallback"},{"type":"sticker","payload":{"url":"https://scontent.example/s.png","sticker_id":369239263222822}}]}}`, from, ts+1),
		ev(`{%s,"timestamp":%d,"postback":{"mid":"m_3","title":"Track my order","payload":"TRACK","referral":{"ref":"summer","source":"SHORTLINK","type":"OPEN_THREAD"}}}`, from, ts+2),
		ev(`{"sender":{"id":"%s"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"m_4","text":"Answered from the Page Inbox","is_echo":true,"app_id":263902037430900,"metadata":"x"}}`, pageID, psid, ts+3),
		ev(`{%s,"timestamp":%d,"reaction":{"reaction":"love","emoji":"\u2764","action":"react","mid":"m_4"}}`, from, ts+4),
		ev(`{%s,"timestamp":%d,"message_edit":{"mid":"m_1","text":"Which size? M or L","num_edit":1}}`, from, ts+5),
		ev(`{%s,"timestamp":%d,"referral":{"ref":"ad-42","source":"ADS","type":"OPEN_THREAD","ad_id":"42"}}`, from, ts+6),
		ev(`{%s,"timestamp":%d,"delivery":{"mids":["m_4"],"watermark":%d}}`, from, ts+7, ts+3),
		ev(`{%s,"timestamp":%d,"read":{"watermark":%d}}`, from, ts+8, ts+3),
	}
	body, err := fakemeta.BuildEnvelope(
		fakemeta.Entry{PageID: pageID, Time: ts, Messaging: events},
		fakemeta.Entry{PageID: "999999999", Time: ts, Messaging: []json.RawMessage{ev(`{"sender":{"id":"stranger"},"recipient":{"id":"999999999"},"timestamp":%d,"message":{"mid":"m_x","text":"not yours"}}`, ts)}},
		fakemeta.Entry{PageID: pageID, Time: ts, Standby: []json.RawMessage{ev(`{%s,"timestamp":%d,"message":{"mid":"m_5","text":"while another app owns the thread"}}`, from, ts+9)}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if status, err := e.Meta.DeliverRaw(ctx, appID, body); status != http.StatusOK {
		t.Fatalf("batch of every kind: %d %v, want 200", status, err)
	}

	want := []string{
		"message in customer m_1 Which size?",
		"message in customer m_2 ",
		"postback in customer m_3 Track my order",
		"message out page m_4 Answered from the Page Inbox",
		"reaction in customer m_4 ",
		"message_edit in customer m_1 Which size? M or L",
		"referral in customer  ",
		"message in customer m_5 while another app owns the thread",
	}
	var got []fullMessage
	eventually(t, "every kind recorded", func() (bool, string) {
		cs := conversations(e, "psid="+psid)
		if len(cs) != 1 {
			return false, fmt.Sprintf("%d conversations", len(cs))
		}
		var out struct{ Data []fullMessage }
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+cs[0].ID+"/messages", nil, &out)
		got = out.Data
		return len(got) == len(want), fmt.Sprint(len(got), " messages")
	})
	for i, m := range got {
		if line := strings.Join([]string{m.Kind, m.Direction, m.Sender, m.MID, m.Text}, " "); line != want[i] {
			t.Errorf("message %d = %q, want %q", i, line, want[i])
		}
	}
	var atts []map[string]any
	if err := json.Unmarshal(got[1].Attachments, &atts); err != nil || len(atts) != 3 || atts[0]["type"] != "image" || atts[1]["type"] != "fallback" {
		t.Errorf("attachments = %s (%v), want image, fallback, sticker", got[1].Attachments, err)
	}
	_, err = e.Temporal().DescribeWorkflowExecution(ctx, workflows.ConversationWorkflowID("999999999", "stranger"), "")
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("an event for a page Parley does not manage started a workflow (%v)", err)
	}
}

func TestMalformedAndOversizedWebhooks(t *testing.T) {
	e, page := connected(t)
	sign256 := func(b []byte) string { s, _ := fakemeta.Sign(b, appSecret); return s }

	body := []byte(`{"object":"page","entry":[{"id":"` + pageID + `","messaging":[{"sender":`)
	if status, _ := post(t, page.CallbackURL, body, sign256(body)); status != http.StatusBadRequest {
		t.Errorf("signed malformed JSON: %d, want 400", status)
	}
	big := []byte(`{"object":"page","entry":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`)
	if status, _ := post(t, page.CallbackURL, big, sign256(big)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("1 MiB + body: %d, want 413", status)
	}
	ig := []byte(`{"object":"instagram","entry":[]}`)
	if status, _ := post(t, page.CallbackURL, ig, sign256(ig)); status != http.StatusOK {
		t.Errorf("an object Parley does not handle: %d, want 200 (acknowledged, not retried forever)", status)
	}
	if status, _ := post(t, page.CallbackURL+"x", ig, sign256(ig)); status != http.StatusNotFound {
		t.Errorf("unknown callback key: %d, want 404", status)
	}

	// Legacy sha1 is accepted only without a sha256 header.
	msg := envelope(pageID, event{"psid-sha1", "m_sha1", "legacy", time.Now().UnixMilli()})
	_, sha1 := fakemeta.Sign(msg, appSecret)
	req, _ := http.NewRequest(http.MethodPost, page.CallbackURL, strings.NewReader(string(msg)))
	req.Header.Set("X-Hub-Signature", sha1)
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong sha256 with a right sha1: %d, want 401", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, page.CallbackURL, strings.NewReader(string(msg)))
	req.Header.Set("X-Hub-Signature", sha1)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("legacy sha1 alone: %d, want 200", resp.StatusCode)
	}
	transcriptOf(t, e, "psid-sha1", []string{"m_sha1:legacy"})
}

// Meta redelivers a message after Parley restarted: recorded once.
func TestRetryAcrossARestartIsRecordedOnce(t *testing.T) {
	e, page := connected(t)
	first := envelope(pageID, event{"psid-r", "m_r1", "before the restart", time.Now().UnixMilli()})
	sig, _ := fakemeta.Sign(first, appSecret)
	if status, _ := post(t, page.CallbackURL, first, sig); status != http.StatusOK {
		t.Fatalf("first delivery: %d", status)
	}
	transcriptOf(t, e, "psid-r", []string{"m_r1:before the restart"})
	e.RestartParley()
	if status, _ := post(t, page.CallbackURL, first, sig); status != http.StatusOK {
		t.Fatalf("redelivery after the restart: %d", status)
	}
	next := envelope(pageID, event{"psid-r", "m_r2", "after the restart", time.Now().UnixMilli()})
	sig2, _ := fakemeta.Sign(next, appSecret)
	if status, _ := post(t, page.CallbackURL, next, sig2); status != http.StatusOK {
		t.Fatalf("next message: %d", status)
	}
	transcriptOf(t, e, "psid-r", []string{"m_r1:before the restart", "m_r2:after the restart"})
}
