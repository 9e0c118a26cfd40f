package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"parley/fakemeta"
	"parley/testenv"
)

// Issue 6, defect 11: deleting a page closes its live conversations with
// the reason and unsubscribes the app from the page at Meta.
func TestDeletingAPageClosesItsConversationsAndUnsubscribes(t *testing.T) {
	r := setupReplies(t, testenv.Options{}, "psid-delete")
	var before struct{ Data []struct{ ID string } }
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/pages", nil, &before)
	if len(before.Data) != 1 {
		t.Fatalf("pages = %+v", before.Data)
	}
	pageRef := before.Data[0].ID
	if !r.e.Meta.Subscribed(pageID, appID) {
		t.Fatal("the app is not subscribed to the page before the test")
	}
	var out struct {
		ClosedConversations int      `json:"closed_conversations"`
		Unsubscribed        bool     `json:"unsubscribed"`
		Warnings            []string `json:"warnings"`
	}
	r.e.MustDo(http.StatusOK, http.MethodDelete, "/api/v1/pages/"+pageRef, nil, &out)
	if out.ClosedConversations != 1 || !out.Unsubscribed || len(out.Warnings) != 0 {
		t.Errorf("DELETE answered %+v, want 1 conversation closed and the app unsubscribed", out)
	}
	if r.e.Meta.Subscribed(pageID, appID) {
		t.Errorf("Meta still sends the deleted page's webhooks to the app")
	}
	var c struct {
		State        string `json:"state"`
		ClosedReason string `json:"closed_reason"`
	}
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+r.convID, nil, &c)
	if c.State != "closed" || c.ClosedReason != "the page was deleted from Parley" {
		t.Errorf("conversation after the page was deleted: %+v", c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := r.e.Temporal().DescribeWorkflowExecution(t.Context(), "conversation/"+pageID+"/psid-delete", "")
		if err != nil {
			t.Fatal(err)
		}
		if d.WorkflowExecutionInfo.CloseTime != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the conversation's workflow still runs")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, _, raw := r.reply(t, "anyone?"); status != http.StatusConflict {
		t.Errorf("reply after the page was deleted: %d %s, want 409", status, raw)
	}
}

// Issue 6, defect 13: Meta refusing to send because of the page itself
// (here 10/1893063, restricted) flags the page with the reason, as 190 does.
func TestARefusalCausedByThePageFlagsIt(t *testing.T) {
	r := setupReplies(t, testenv.Options{}, "psid-flag")
	r.e.Meta.FailNext(fakemeta.Failure{Op: fakemeta.OpSend, PageID: pageID, Code: 10, Subcode: 1893063})
	if status, msgs, raw := r.reply(t, "hello"); status != http.StatusCreated || msgs[0].Status != "failed" {
		t.Fatalf("reply: %d %s, want failed", status, raw)
	}
	var pages struct {
		Data []struct {
			ProvisioningState  string `json:"provisioning_state"`
			ProvisioningReason string `json:"provisioning_reason"`
			Flag               *struct {
				Code, Subcode int
			} `json:"flag"`
		}
	}
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/pages", nil, &pages)
	p := pages.Data[0]
	if p.ProvisioningState != "flagged" || p.Flag == nil || p.Flag.Code != 10 || p.Flag.Subcode != 1893063 || !strings.Contains(p.ProvisioningReason, "1893063") {
		t.Errorf("page after 10/1893063: %+v, want flagged with the code", p)
	}
}
