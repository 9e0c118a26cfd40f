package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"parley/fakemeta"
	"parley/testenv"
)

// pageView is the part of a page these tests read.
type pageView struct {
	ID                 string  `json:"id"`
	AccountID          string  `json:"account_id"`
	ProvisioningState  string  `json:"provisioning_state"`
	ProvisioningReason string  `json:"provisioning_reason"`
	WebhookVerifiedAt  *string `json:"webhook_verified_at"`
	ThreadLookup       *bool   `json:"thread_lookup"`
	ThreadLookupReason string  `json:"thread_lookup_reason"`
	Flag               *struct {
		Code    int    `json:"code"`
		Subcode int    `json:"subcode"`
		Class   string `json:"class"`
	} `json:"flag"`
}

func getPageView(t *testing.T, e *testenv.Env, id string) pageView {
	t.Helper()
	var p pageView
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/pages/"+id, nil, &p)
	return p
}

// Issue 6, defect 10: Meta has one callback URL per app. The handshake on
// one page's URL verifies the webhook of every page of the account, those
// created before and after it; each still needs its own token and
// subscription.
func TestOneHandshakeRunsEveryPageOfTheAccount(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	first := e.CreatePage(acct, pageID, "Acme", token)
	second := e.CreatePage(acct, "200000000000061", "Acme Support", "EAAsecond-page-token-0123456789abcd")
	for _, p := range []testenv.Page{first, second} {
		if p.ProvisioningState != "awaiting_verification" {
			t.Fatalf("page %s before the handshake: %s (%s), want awaiting_verification", p.PageID, p.ProvisioningState, p.ProvisioningReason)
		}
	}

	e.ConnectWebhook(appID, first) // the admin pasted the first page's URL
	for _, p := range []testenv.Page{first, second} {
		got := getPageView(t, e, p.ID)
		if got.ProvisioningState != "running" || got.WebhookVerifiedAt == nil {
			t.Errorf("page %s after the handshake on the first page's URL: %+v, want running with webhook_verified_at", p.PageID, got)
		}
	}

	// A page added later runs as soon as its own token and subscription are good.
	third := e.CreatePage(acct, "200000000000062", "Acme Sales", "EAAthird-page-token-01234567890abcd")
	if third.ProvisioningState != "running" {
		t.Errorf("page created after the handshake: %s (%s), want running", third.ProvisioningState, third.ProvisioningReason)
	}
	if !e.Meta.Subscribed("200000000000062", appID) {
		t.Error("the app is not subscribed to the page created after the handshake")
	}
	// ... and not before: a bad token keeps it out, whatever the webhook.
	var bad testenv.Page
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/accounts/"+acct.ID+"/pages",
		map[string]string{"name": "Nobody", "page_id": "200000000000063", "access_token": "EAAnever-issued-0123456789abcdefgh"}, &bad)
	if bad.ProvisioningState != "token_invalid" {
		t.Errorf("page with a token Meta never issued: %s (%s), want token_invalid", bad.ProvisioningState, bad.ProvisioningReason)
	}

	// Another account's pages are not verified by this account's handshake.
	other := e.CreateAccount("100000000000064", "another-app-secret-0123456789abc")
	foreign := e.CreatePage(other, "200000000000064", "Elsewhere", "EAAforeign-page-token-0123456789abc")
	if foreign.ProvisioningState != "awaiting_verification" || !strings.Contains(foreign.ProvisioningReason, "webhook") {
		t.Errorf("another account's page: %s (%s), want awaiting_verification of the webhook", foreign.ProvisioningState, foreign.ProvisioningReason)
	}
}

// Issue 6 (page side): looking for an unclear send on Meta's side needs
// pages_read_engagement and pages_manage_metadata; the page says whether
// its token has them, and what Parley does without them.
func TestThePageSaysWhetherParleyCanLookUpTheThread(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	got := getPageView(t, e, page.ID)
	if got.ThreadLookup == nil || !*got.ThreadLookup {
		t.Errorf("token with both permissions: thread_lookup %v, want true", got.ThreadLookup)
	}

	e.Meta.SetPageScopes(pageID, []string{"pages_show_list", "pages_messaging", "pages_read_engagement"})
	got = pageView{}
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/pages/"+page.ID+"/check", nil, &got)
	if got.ThreadLookup == nil || *got.ThreadLookup || !strings.Contains(got.ThreadLookupReason, "pages_manage_metadata") || !strings.Contains(got.ThreadLookupReason, "waits longer") {
		t.Errorf("token without pages_manage_metadata: thread_lookup %v (%q), want false saying Parley waits longer", got.ThreadLookup, got.ThreadLookupReason)
	}
	if got.ProvisioningState != "running" {
		t.Errorf("without thread lookup the page still sends: %s (%s), want running", got.ProvisioningState, got.ProvisioningReason)
	}
}

// Issue 6, defect 13: a refusal caused by the page (here 368, a policy
// block) flags it until the admin checks it again successfully.
func TestAFlaggedPageClearsOnASuccessfulCheck(t *testing.T) {
	r := setupReplies(t, testenv.Options{}, "psid-flag-clear")
	var list struct{ Data []pageView }
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/pages", nil, &list)
	ref := list.Data[0].ID
	r.e.Meta.FailNext(fakemeta.Failure{Op: fakemeta.OpSend, PageID: pageID, Code: 368})
	if status, msgs, raw := r.reply(t, "hello"); status != http.StatusCreated || msgs[0].Status != "failed" {
		t.Fatalf("reply: %d %s, want failed", status, raw)
	}
	got := getPageView(t, r.e, ref)
	if got.ProvisioningState != "flagged" || got.Flag == nil || got.Flag.Code != 368 || got.Flag.Class != "policy_block" {
		t.Fatalf("page after 368: %+v, want flagged policy_block", got)
	}
	got = pageView{}
	r.e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/pages/"+ref+"/check", nil, &got)
	if got.ProvisioningState != "running" || got.Flag != nil {
		t.Errorf("after a successful check: %s (%s), flag %+v; want running without flag", got.ProvisioningState, got.ProvisioningReason, got.Flag)
	}
}

// Issue 6, defect 11: a page whose token Meta revoked cannot unsubscribe
// the app; it is deleted all the same, its conversations closed, and the
// answer says why Meta still sends its events and what to do.
func TestDeletingAPageWithARevokedToken(t *testing.T) {
	r := setupReplies(t, testenv.Options{}, "psid-revoked")
	var list struct{ Data []pageView }
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/pages", nil, &list)
	ref := list.Data[0].ID
	r.e.Meta.InvalidateToken(pageID, 460)

	var out struct {
		ClosedConversations int      `json:"closed_conversations"`
		Unsubscribed        bool     `json:"unsubscribed"`
		Warnings            []string `json:"warnings"`
	}
	r.e.MustDo(http.StatusOK, http.MethodDelete, "/api/v1/pages/"+ref, nil, &out)
	if out.Unsubscribed || out.ClosedConversations != 1 || len(out.Warnings) != 1 ||
		!strings.Contains(out.Warnings[0], "token is no longer valid") || !strings.Contains(out.Warnings[0], "190") {
		t.Errorf("DELETE answered %+v, want 1 closed, not unsubscribed, a warning that the token is no longer valid (190)", out)
	}
	if !r.e.Meta.Subscribed(pageID, appID) {
		t.Error("the fake unsubscribed the app with a revoked token")
	}
	var c struct {
		State        string `json:"state"`
		ClosedReason string `json:"closed_reason"`
	}
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+r.convID, nil, &c)
	if c.State != "closed" || c.ClosedReason != "the page was deleted from Parley" {
		t.Errorf("conversation after the page was deleted: %+v", c)
	}
	if s, raw := r.e.Do(http.MethodGet, "/api/v1/pages/"+ref, nil); s != http.StatusNotFound {
		t.Errorf("deleted page still served: %d %s", s, raw)
	}
}

// Issue 6, defect 11: with Temporal down, deleting the page would leave
// its conversations running: the page is kept (503) and nothing is undone
// at Meta; once Temporal is back, the same DELETE does it all.
func TestDeletingAPageWhileTemporalIsDown(t *testing.T) {
	r := setupReplies(t, testenv.Options{}, "psid-outage")
	var list struct{ Data []pageView }
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/pages", nil, &list)
	ref := list.Data[0].ID

	r.e.StopTemporal()
	status, raw := r.e.Do(http.MethodDelete, "/api/v1/pages/"+ref, nil)
	wantError(t, "DELETE with Temporal down", status, raw, http.StatusServiceUnavailable, "")
	if s, raw := r.e.Do(http.MethodGet, "/api/v1/pages/"+ref, nil); s != http.StatusOK {
		t.Errorf("page after a refused delete: %d %s, want still there", s, raw)
	}
	if !r.e.Meta.Subscribed(pageID, appID) {
		t.Error("the app was unsubscribed by a delete that did not happen")
	}

	r.e.StartTemporal()
	var out struct {
		ClosedConversations int  `json:"closed_conversations"`
		Unsubscribed        bool `json:"unsubscribed"`
	}
	// The admin retries until Temporal answers again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, raw = r.e.Do(http.MethodDelete, "/api/v1/pages/"+ref, nil)
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if status != http.StatusOK {
		t.Fatalf("DELETE once Temporal is back: %d %s, want 200", status, raw)
	}
	decodeJSON(t, raw, &out)
	if out.ClosedConversations != 1 || !out.Unsubscribed {
		t.Errorf("DELETE once Temporal is back: %+v, want 1 closed and unsubscribed", out)
	}
	var c struct {
		State string `json:"state"`
	}
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+r.convID, nil, &c)
	if c.State != "closed" {
		t.Errorf("conversation after the delete: %s, want closed", c.State)
	}
}

// Deleting a channel ends its open conversations cleanly
// (contact-center.md): deleting an account closes its pages' live
// conversations with the reason.
func TestDeletingAnAccountClosesItsConversations(t *testing.T) {
	r := setupReplies(t, testenv.Options{}, "psid-account")
	var list struct{ Data []pageView }
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/pages", nil, &list)
	r.e.MustDo(http.StatusNoContent, http.MethodDelete, "/api/v1/accounts/"+list.Data[0].AccountID, nil, nil)
	var c struct {
		State        string `json:"state"`
		ClosedReason string `json:"closed_reason"`
	}
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+r.convID, nil, &c)
	if c.State != "closed" || c.ClosedReason != "the page's account was deleted from Parley" {
		t.Errorf("conversation after its account was deleted: %+v, want closed with the reason", c)
	}
}
