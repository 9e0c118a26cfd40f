package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"parley/fakemeta"
	"parley/testenv"
	"parley/workflows"
)

// running tells whether the customer's conversation workflow runs.
func running(t *testing.T, e *testenv.Env, psid string) bool {
	t.Helper()
	d, err := e.Temporal().DescribeWorkflowExecution(context.Background(), workflows.ConversationWorkflowID(pageID, psid), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return d.WorkflowExecutionInfo.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// Issue 6, defect 1: receipts, reactions and echoes never open a
// conversation (nor start a workflow); a Page Inbox message is kept in the
// customer's transcript without creating work.
func TestOnlyACustomerMessageOpensAConversation(t *testing.T) {
	e, _ := connected(t)
	ctx := context.Background()
	psid := "psid-never-wrote"
	ts := time.Now().UnixMilli()
	from := fmt.Sprintf(`"sender":{"id":"%s"},"recipient":{"id":"%s"}`, psid, pageID)
	status, err := e.Meta.Deliver(ctx, pageID,
		ev(`{%s,"timestamp":%d,"delivery":{"mids":["m_unknown"],"watermark":%d}}`, from, ts, ts),
		ev(`{%s,"timestamp":%d,"read":{"watermark":%d}}`, from, ts+1, ts),
		ev(`{%s,"timestamp":%d,"reaction":{"reaction":"like","action":"react","mid":"m_x"}}`, from, ts+2),
		ev(`{"sender":{"id":"%s"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"m_inbox","text":"Hello from our team","is_echo":true,"app_id":263902037430900}}`, pageID, psid, ts+3),
	)
	if status != http.StatusOK {
		t.Fatalf("receipts, reaction, Page Inbox echo: %d %v", status, err)
	}
	if running(t, e, psid) {
		t.Errorf("a workflow runs for a customer who never wrote")
	}
	cs := conversations(e, "psid="+psid)
	if len(cs) != 1 || cs[0].State != "closed" {
		t.Fatalf("conversations = %+v, want one closed conversation holding the page's message", cs)
	}
	if got := transcript(e, cs[0].ID); fmt.Sprint(got) != "[m_x: m_inbox:Hello from our team]" {
		t.Errorf("transcript = %v, want the reaction and the Page Inbox message", got)
	}
}

// Issue 6, defects 1 and 8: after the conversation closed, Meta's retries
// (of a recorded message, of the echo of Parley's reply), a Page Inbox
// message, a reaction and receipts open nothing; they land in the closed
// conversation, once, and the receipts still mark the agent's reply read.
func TestAfterCloseRetriesAndReceiptsOpenNothing(t *testing.T) {
	e, _ := connected(t)
	ctx := context.Background()
	psid := "psid-closed"
	mid, err := e.Meta.CustomerSends(ctx, pageID, psid, "hello")
	if err != nil {
		t.Fatal(err)
	}
	var cs []conversation
	eventually(t, "conversation", func() (bool, string) {
		cs = conversations(e, "psid="+psid)
		return len(cs) == 1, fmt.Sprint(cs)
	})
	agent := e.CreateAgent("Ada", "ada@example.com")
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+cs[0].ID+"/assign", map[string]string{"agent_id": agent.ID}, nil)
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+cs[0].ID+"/messages", map[string]string{"text": "Hi!"}); status != http.StatusCreated {
		t.Fatalf("reply: %d %s", status, raw)
	}
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+cs[0].ID+"/close", nil, nil)
	eventually(t, "workflow ended", func() (bool, string) { return !running(t, e, psid), "running" })

	before := conversations(e, "psid="+psid)[0].MessageCount

	// Meta retries everything it sent (the first message, the echo of the
	// reply), the page writes from the Page Inbox, the customer reacts and
	// reads.
	for _, d := range e.Meta.Deliveries() {
		if status, err := e.Meta.Redeliver(ctx, d.ID); status != http.StatusOK {
			t.Fatalf("retry of delivery %d (%s): %d %v", d.ID, d.Body, status, err)
		}
	}
	ts := time.Now().UnixMilli()
	from := fmt.Sprintf(`"sender":{"id":"%s"},"recipient":{"id":"%s"}`, psid, pageID)
	if status, err := e.Meta.Deliver(ctx, pageID,
		ev(`{"sender":{"id":"%s"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"m_inbox_after","text":"We are closed today","is_echo":true,"app_id":263902037430900}}`, pageID, psid, ts)); status != http.StatusOK {
		t.Fatalf("Page Inbox echo: %d %v", status, err)
	}
	after := conversations(e, "psid="+psid)
	if len(after) != 1 || after[0].State != "closed" {
		t.Fatalf("conversations = %+v, want the closed one only", after)
	}
	if after[0].MessageCount != before+1 {
		t.Errorf("message count %d, want %d (the Page Inbox message counts, Meta's retries do not)", after[0].MessageCount, before+1)
	}
	if status, err := e.Meta.Deliver(ctx, pageID, ev(`{%s,"timestamp":%d,"reaction":{"reaction":"love","action":"react","mid":"%s"}}`, from, ts+1, mid)); status != http.StatusOK {
		t.Fatalf("reaction: %d %v", status, err)
	}
	if status, err := e.Meta.MarkRead(ctx, pageID, psid); status != http.StatusOK {
		t.Fatalf("read: %d %v", status, err)
	}
	if running(t, e, psid) {
		t.Errorf("a retry, a reaction or a receipt after close started a workflow")
	}
	if cs := conversations(e, "psid="+psid); len(cs) != 1 {
		t.Fatalf("%d conversations, want the closed one only", len(cs))
	}
	var out struct{ Data []fullMessageStatus }
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+cs[0].ID+"/messages", nil, &out)
	var replies, customer, inbox, reactions int
	read := false
	for _, m := range out.Data {
		switch {
		case m.Sender == "agent":
			replies++
			read = m.Status == "read"
		case m.Sender == "customer" && m.Kind == "message":
			customer++
		case m.Sender == "page" && m.Text == "We are closed today":
			inbox++
		case m.Kind == "reaction":
			reactions++
		}
	}
	if replies != 1 || !read || customer != 1 || inbox != 1 || reactions != 1 {
		t.Errorf("transcript %+v: want the customer message and the reply once, the reply read, the Page Inbox message and the reaction recorded in the closed conversation", out.Data)
	}
	if n := conversations(e, "psid="+psid)[0].MessageCount; n != before+1 {
		t.Errorf("message count %d after the reaction, want %d: reactions are not messages", n, before+1)
	}
}

type fullMessageStatus struct {
	Kind, Sender, Status, Text string
}

// Issue 6, defect 11: the callback URL pasted in Meta's dashboard belongs
// to one page, but carries every page of the app: once that page is
// deleted, its events are acknowledged and dropped, the others still work.
func TestADeletedPagesCallbackStillServesTheOtherPages(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	first := e.CreatePage(acct, pageID, "Acme Support", token)
	const otherPage = "200000000000043"
	e.CreatePage(acct, otherPage, "Acme Sales", "EAAtoken-other-0123456789abcdef")
	e.ConnectWebhook(appID, first) // the URL pasted is the first page's
	e.MustDo(http.StatusOK, http.MethodDelete, "/api/v1/pages/"+first.ID, nil, nil)

	ts := time.Now().UnixMilli()
	body, err := fakemeta.BuildEnvelope(
		fakemeta.Entry{PageID: pageID, Time: ts, Messaging: []json.RawMessage{ev(`{"sender":{"id":"psid-a"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"m_deleted","text":"to the deleted page"}}`, pageID, ts)}},
		fakemeta.Entry{PageID: otherPage, Time: ts, Messaging: []json.RawMessage{ev(`{"sender":{"id":"psid-b"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"m_live","text":"to the live page"}}`, otherPage, ts)}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if status, raw := post(t, first.CallbackURL, body, sign(body, appSecret)); status != http.StatusOK {
		t.Fatalf("POST on the deleted page's callback: %d %s, want 200 (a 404 makes Meta disable the app's webhook)", status, raw)
	}
	eventually(t, "the live page's conversation", func() (bool, string) {
		cs := conversations(e, "page_id="+otherPage)
		return len(cs) == 1, fmt.Sprint(cs)
	})
	if cs := conversations(e, "page_id="+pageID); len(cs) != 0 {
		t.Errorf("the deleted page got a conversation: %+v", cs)
	}
	if status, _ := get(t, first.CallbackURL+"?hub.mode=subscribe&hub.verify_token="+first.VerifyToken+"&hub.challenge=42"); status != http.StatusOK {
		t.Errorf("handshake on the deleted page's callback: %d, want 200", status)
	}
}
