package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"parley/fakemeta"
	"parley/testenv"
)

type sentJSON struct {
	ID            string `json:"id"`
	Text          string `json:"text"`
	Seq           int64  `json:"seq"`
	Status        string `json:"status"`
	MessagingType string `json:"messaging_type"`
	Tag           string `json:"tag"`
	MID           string `json:"mid"`
	ErrorCode     int    `json:"error_code"`
	ErrorSubcode  int    `json:"error_subcode"`
	ErrorReason   string `json:"error_reason"`
}

type convJSON struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	AgentID   string `json:"agent_id"`
	ReplyMode struct {
		Mode          string `json:"mode"`
		MessagingType string `json:"messaging_type"`
		Tag           string `json:"tag"`
		Reason        string `json:"reason"`
	} `json:"reply_mode"`
}

// replySetup: a connected page whose workstream has the human-agent tag on,
// a customer who wrote, and an agent the conversation is assigned to.
type replySetup struct {
	e      *testenv.Env
	agent  testenv.Agent
	convID string
	wrote  time.Time
}

func setupReplies(t *testing.T, opts testenv.Options, psid string) replySetup {
	e := testenv.Start(t, opts)
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Acme Messenger", "page": page.ID, "human_agent_tag": true}, nil)
	agent := e.CreateAgent("Ada", "ada@example.com")
	wrote := time.Now()
	if _, err := e.Meta.CustomerSends(t.Context(), pageID, psid, "Where is my order?"); err != nil {
		t.Fatal(err)
	}
	var convID string
	deadline := time.Now().Add(30 * time.Second)
	for convID == "" {
		var list struct{ Data []convJSON }
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?psid="+psid, nil, &list)
		if len(list.Data) == 1 {
			convID = list.Data[0].ID
		} else if time.Now().After(deadline) {
			t.Fatal("no conversation")
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	// As a client would: a short PARLEY_API_UPDATE_WAIT on a busy machine
	// may answer 202 (still in progress) or, past a lost workflow task
	// (Temporal retries it after 10 s), 503; the conversation tells.
	var c convJSON
	deadline = time.Now().Add(40 * time.Second)
	for {
		status, raw := e.Do(http.MethodPost, "/api/v1/conversations/"+convID+"/assign", map[string]string{"agent_id": agent.ID})
		if status == http.StatusOK {
			decodeJSON(t, raw, &c)
			break
		}
		if status != http.StatusAccepted && status != http.StatusServiceUnavailable {
			t.Fatalf("assign: %d %s", status, raw)
		}
		time.Sleep(500 * time.Millisecond)
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+convID, nil, &c)
		if c.State == "active" || time.Now().After(deadline) {
			break
		}
	}
	if c.State != "active" || c.AgentID != agent.ID {
		t.Fatalf("after assign: %+v", c)
	}
	return replySetup{e: e, agent: agent, convID: convID, wrote: wrote}
}

func (r replySetup) reply(t *testing.T, text string) (int, []sentJSON, string) {
	t.Helper()
	status, raw := r.e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/messages", map[string]string{"text": text})
	if status != http.StatusCreated {
		return status, nil, string(raw)
	}
	var out struct{ Data []sentJSON }
	decodeJSON(t, raw, &out)
	return status, out.Data, string(raw)
}

// Acceptance: on the real dev server, through the REST API, with windows of
// a few seconds: RESPONSE, then HUMAN_AGENT, then refused with 409.
func TestRepliesAcrossTheWindowsThroughTheAPI(t *testing.T) {
	r := setupReplies(t, testenv.Options{ReplyWindow: 6 * time.Second, HumanAgentWindow: 14 * time.Second}, "psid-w")
	status, msgs, raw := r.reply(t, "Let me check.")
	if status != http.StatusCreated || len(msgs) != 1 || msgs[0].Status != "sent" || msgs[0].MessagingType != "RESPONSE" || msgs[0].Tag != "" {
		t.Fatalf("reply inside the window: %d %s, want sent as RESPONSE", status, raw)
	}
	time.Sleep(time.Until(r.wrote.Add(7 * time.Second)))
	var c convJSON
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+r.convID, nil, &c)
	if c.ReplyMode.Mode != "human_agent" || c.ReplyMode.Tag != "HUMAN_AGENT" {
		t.Errorf("reply mode after the short window: %+v, want human_agent", c.ReplyMode)
	}
	status, msgs, raw = r.reply(t, "Found it: it ships tomorrow.")
	if status != http.StatusCreated || msgs[0].Status != "sent" || msgs[0].MessagingType != "MESSAGE_TAG" || msgs[0].Tag != "HUMAN_AGENT" {
		t.Fatalf("reply after the short window: %d %s, want sent as HUMAN_AGENT", status, raw)
	}
	time.Sleep(time.Until(r.wrote.Add(15 * time.Second)))
	status, _, raw = r.reply(t, "Anything else?")
	if status != http.StatusConflict || !strings.Contains(raw, "human-agent window") {
		t.Fatalf("reply after the human-agent window: %d %s, want 409 with the reason", status, raw)
	}
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+r.convID, nil, &c)
	if c.ReplyMode.Mode != "none" || !strings.Contains(c.ReplyMode.Reason, "closed at") {
		t.Errorf("reply mode at the end: %+v", c.ReplyMode)
	}
	sent := r.e.Meta.Sent(pageID, "psid-w")
	if len(sent) != 2 || sent[0].MessagingType != "RESPONSE" || sent[1].Tag != "HUMAN_AGENT" {
		t.Errorf("Meta received %+v, want the two accepted replies only", sent)
	}
	// The echoes confirmed the replies; none was recorded twice.
	var tr struct {
		Data []struct {
			Sender, Status, Text string
		}
	}
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+r.convID+"/messages", nil, &tr)
	if len(tr.Data) != 3 || tr.Data[0].Sender != "customer" {
		t.Fatalf("transcript = %+v, want the customer's message and two agent replies", tr.Data)
	}
	for _, m := range tr.Data[1:] {
		if m.Sender != "agent" || (m.Status != "sent" && m.Status != "delivered" && m.Status != "read") {
			t.Errorf("agent reply %+v, want sent (or later)", m)
		}
	}
}

func TestSendAPIErrorsThroughTheWholeSystem(t *testing.T) {
	// A throttled page pauses its sends for Meta's regain time (the fake
	// says a minute): shortened here.
	r := setupReplies(t, testenv.Options{Config: map[string]string{"PARLEY_MAX_THROTTLE_PAUSE": "2s"}}, "psid-e")
	fail := func(code, subcode int) {
		r.e.Meta.FailNext(fakemeta.Failure{Op: fakemeta.OpSend, PageID: pageID, Code: code, Subcode: subcode})
	}
	sends := func() int {
		n := 0
		for _, c := range r.e.Meta.Calls() {
			if c.Op == fakemeta.OpSend {
				n++
			}
		}
		return n
	}

	// 10/2018278: Meta's clock says the window closed; with the tag on the
	// reply is tried once more as HUMAN_AGENT, then failed with its reason.
	before := sends()
	fail(10, 2018278)
	fail(10, 2018278)
	status, msgs, raw := r.reply(t, "outside?")
	if status != http.StatusCreated || msgs[0].Status != "failed" || msgs[0].ErrorCode != 10 || msgs[0].ErrorSubcode != 2018278 || msgs[0].ErrorReason == "" {
		t.Errorf("10/2018278: %d %s, want failed with code, subcode and reason", status, raw)
	}
	if n := sends() - before; n != 2 {
		t.Errorf("10/2018278 was tried %d times, want twice (RESPONSE, then HUMAN_AGENT)", n)
	}

	// 613: retried after the page's pause, then sent once.
	before = sends()
	fail(613, 0)
	status, msgs, raw = r.reply(t, "throttled first")
	if status != http.StatusCreated || msgs[0].Status != "sent" {
		t.Errorf("613: %d %s, want sent after a retry", status, raw)
	}
	if n := sends() - before; n != 2 {
		t.Errorf("613: %d Send API calls, want 2", n)
	}

	// Meta accepted it but the connection dropped: the echo settles it, no double.
	r.e.Meta.FailAfterAccept(fakemeta.Failure{Op: fakemeta.OpSend, PageID: pageID})
	status, msgs, raw = r.reply(t, "accepted, answer lost")
	if status != http.StatusCreated || msgs[0].Status != "sent" || msgs[0].MID == "" {
		t.Errorf("accepted but unanswered: %d %s, want sent (confirmed by the echo)", status, raw)
	}
	if count := sentTimes(r.e, "psid-e", "accepted, answer lost"); count != 1 {
		t.Errorf("Meta received the unanswered message %d times, want once", count)
	}

	// 2,500 characters: two messages, in order.
	long := strings.Repeat("0123456789 ", 228)[:2500]
	status, msgs, raw = r.reply(t, long)
	if status != http.StatusCreated || len(msgs) != 2 || msgs[0].Status != "sent" || msgs[1].Status != "sent" {
		t.Fatalf("2,500 characters: %d %s, want two sent messages", status, raw)
	}
	sent := r.e.Meta.Sent(pageID, "psid-e")
	a, b := sent[len(sent)-2], sent[len(sent)-1]
	if strings.Join(strings.Fields(a.Text+" "+b.Text), " ") != strings.Join(strings.Fields(long), " ") {
		t.Errorf("the two parts do not rebuild the reply in order")
	}

	// 190: the message fails and the page shows token_invalid.
	fail(190, 460)
	status, msgs, raw = r.reply(t, "token?")
	if status != http.StatusCreated || msgs[0].Status != "failed" || msgs[0].ErrorCode != 190 {
		t.Errorf("190: %d %s, want failed with 190", status, raw)
	}
	var pages struct{ Data []testenv.Page }
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/pages", nil, &pages)
	p := pages.Data[0]
	if p.ProvisioningState != "token_invalid" || !strings.Contains(p.ProvisioningReason, "190") {
		t.Errorf("page after a 190: %s (%s), want token_invalid", p.ProvisioningState, p.ProvisioningReason)
	}

	// The customer reads everything: sent messages become read, failed ones stay failed.
	if status, err := r.e.Meta.MarkRead(t.Context(), pageID, "psid-e"); status != http.StatusOK {
		t.Fatalf("read receipt: %d %v", status, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var tr struct {
			Data []struct {
				Direction, Status, Text string
			}
		}
		r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+r.convID+"/messages", nil, &tr)
		read, failed, other := 0, 0, []string{}
		for _, m := range tr.Data {
			switch {
			case m.Direction == "in":
			case m.Status == "read":
				read++
			case m.Status == "failed":
				failed++
			default:
				other = append(other, m.Text+": "+m.Status)
			}
		}
		if read == 4 && failed == 2 && len(other) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the read receipt: %d read, %d failed, others %v; want 4 read (3 replies, one in 2 parts) and the 2 failures", read, failed, other)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAgentsActOnlyOnTheirConversations(t *testing.T) {
	r := setupReplies(t, testenv.Options{}, "psid-a")
	other := r.e.CreateAgent("Bob", "bob@example.com")
	if s, raw := r.e.DoWithKey(other.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/messages", map[string]string{"text": "hi"}); s != http.StatusNotFound {
		t.Errorf("another agent replying: %d %s, want 404", s, raw)
	}
	if s, raw := r.e.Do(http.MethodPost, "/api/v1/conversations/"+r.convID+"/messages", map[string]string{"text": "hi"}); s != http.StatusForbidden {
		t.Errorf("an admin replying: %d %s, want 403 (replies are sent by agents)", s, raw)
	}
	var list struct{ Data []convJSON }
	if s, raw := r.e.DoWithKey(other.Key, http.MethodGet, "/api/v1/conversations", nil); s != http.StatusOK || strings.Contains(string(raw), r.convID) {
		t.Errorf("another agent's list: %d %s, want none of Ada's", s, raw)
	}
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations", nil, &list)
	if len(list.Data) != 1 || list.Data[0].ID != r.convID {
		t.Errorf("the admin's list = %+v, want Ada's conversation", list.Data)
	}
	// Lifecycle through the API: waiting, back on the customer's message, end, close.
	var c convJSON
	s, raw := r.e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/waiting", nil)
	decodeJSON(t, raw, &c)
	if s != http.StatusOK || c.State != "waiting" {
		t.Fatalf("waiting: %d %s", s, raw)
	}
	if _, err := r.e.Meta.CustomerSends(t.Context(), pageID, "psid-a", "back again"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for c.State != "active" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+r.convID, nil, &c)
	}
	if c.State != "active" || c.AgentID != r.agent.ID {
		t.Fatalf("after the customer wrote: %+v, want active with the same agent", c)
	}
	s, raw = r.e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/end", nil)
	decodeJSON(t, raw, &c)
	if s != http.StatusOK || c.State != "wrap_up" {
		t.Fatalf("end: %d %s", s, raw)
	}
	if s, raw := r.e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/messages", map[string]string{"text": "one more"}); s != http.StatusConflict {
		t.Errorf("reply in wrap-up: %d %s, want 409", s, raw)
	}
	s, raw = r.e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/close", nil)
	decodeJSON(t, raw, &c)
	if s != http.StatusOK || c.State != "closed" {
		t.Fatalf("close: %d %s", s, raw)
	}
	// A message after close starts a new conversation, linked to this one.
	if _, err := r.e.Meta.CustomerSends(t.Context(), pageID, "psid-a", "new question"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		var l struct {
			Data []struct {
				ID       string `json:"id"`
				State    string `json:"state"`
				Previous string `json:"previous_conversation_id"`
			}
		}
		r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?psid=psid-a", nil, &l)
		if len(l.Data) == 2 && l.Data[0].Previous == r.convID && l.Data[0].State == "open" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new conversation linked to the closed one: %+v", l.Data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func decodeJSON(t *testing.T, raw []byte, out any) {
	t.Helper()
	if err := jsonUnmarshal(raw, out); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

// With customer attachments off, the agent gets no file but a note saying one came.
func TestCustomerAttachmentsOffKeepsANoteNotTheFile(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Acme", "page": page.ID, "attachments": map[string]bool{"customer": false, "agent": true}}, nil)
	ts := time.Now().UnixMilli()
	ev := fmt.Sprintf(`{"sender":{"id":"psid-f"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"m_file","attachments":[{"type":"image","payload":{"url":"https://scontent.example/x.jpg"}}]}}`, pageID, ts)
	if status, err := e.Meta.Deliver(t.Context(), pageID, []byte(ev)); status != http.StatusOK {
		t.Fatalf("deliver: %d %v", status, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list struct{ Data []struct{ ID string } }
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?psid=psid-f", nil, &list)
		if len(list.Data) == 1 {
			var tr struct {
				Data []struct {
					Attachments json.RawMessage `json:"attachments"`
					ErrorReason string          `json:"error_reason"`
				}
			}
			e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+list.Data[0].ID+"/messages", nil, &tr)
			if len(tr.Data) == 1 {
				// The entry says a file came, refused: no file, no link.
				raw := string(tr.Data[0].Attachments)
				if !strings.Contains(raw, `"status":"refused"`) || strings.Contains(raw, "scontent") || strings.Contains(raw, `"url"`) ||
					!strings.Contains(tr.Data[0].ErrorReason, "attachments from customers are off") {
					t.Errorf("message = %s %q, want a refused entry without a link, and a note", raw, tr.Data[0].ErrorReason)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the message never arrived")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A reply that Meta throttles for longer than the API waits answers 202
// in_progress (not 503: Temporal took it in), and is sent once the page's
// pause is over; the agent sees it in the conversation's messages.
func TestAThrottledReplyAnswers202AndIsSentLater(t *testing.T) {
	// The wait is short, yet long enough for the setup's assignment on a
	// busy machine; the pause is longer than the wait.
	r := setupReplies(t, testenv.Options{Config: map[string]string{"PARLEY_MAX_THROTTLE_PAUSE": "15s", "PARLEY_API_UPDATE_WAIT": "8s"}}, "psid-t")
	r.e.Meta.FailNext(fakemeta.Failure{Op: fakemeta.OpSend, PageID: pageID, Code: 613})
	status, _, raw := r.reply(t, "throttled for a while")
	if status != http.StatusAccepted || !strings.Contains(raw, `"in_progress"`) {
		t.Fatalf("throttled reply: %d %s, want 202 in_progress", status, raw)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var page struct{ Data []sentJSON }
		r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+r.convID+"/messages", nil, &page)
		var found *sentJSON
		for i, m := range page.Data {
			if m.Text == "throttled for a while" {
				found = &page.Data[i]
			}
		}
		if found != nil && found.Status == "sent" && found.MID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the throttled reply is %+v 30 s later, want sent", found)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := sentTimes(r.e, "psid-t", "throttled for a while"); n != 1 {
		t.Errorf("Meta holds the reply %d times, want once", n)
	}
}

// sentTimes is how many messages with this text Meta holds for the customer.
func sentTimes(e *testenv.Env, psid, text string) int {
	n := 0
	for _, m := range e.Meta.Sent(pageID, psid) {
		if m.Text == text {
			n++
		}
	}
	return n
}
