package activities_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"parley/activities"
	"parley/fakemeta"
	"parley/messenger"
	"parley/secrets"
	"parley/store"
)

const (
	appID     = "100000000000901"
	appSecret = "activity-test-app-secret-0123456789"
	pageID    = "200000000000901"
	token     = "EAAactivity-test-token-0123456789ab"
	psid      = "300000000000901"
)

// senderEnv is the Send API activity against the fake Meta and a real store.
func senderEnv(t *testing.T) (*activities.Sender, *fakemeta.Server, store.Page) {
	t.Helper()
	ctx := context.Background()
	box, err := secrets.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "p.db"), box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	acct, err := st.CreateAccount(ctx, store.NewAccount{Name: "Acme", AppID: appID, AppSecret: appSecret})
	if err != nil {
		t.Fatal(err)
	}
	page, err := st.CreatePage(ctx, store.NewPage{AccountID: acct.ID, Name: "Acme", PageID: pageID, AccessToken: token})
	if err != nil {
		t.Fatal(err)
	}
	fake := fakemeta.New(fakemeta.Options{})
	fake.AddApp(appID, appSecret)
	fake.AddPage(appID, pageID, "Acme", token)
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	// The customer writes first (through a stand-in callback): Meta's window opens.
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := w.Write([]byte(r.URL.Query().Get("hub.challenge"))); err != nil {
			t.Error(err)
		}
	}))
	t.Cleanup(callback.Close)
	if err := fake.SetWebhook(ctx, appID, callback.URL, "verify", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := fake.CustomerSends(ctx, pageID, psid, "hello"); err != nil {
		t.Fatal(err)
	}
	return &activities.Sender{Store: st, Graph: messenger.NewClient(srv.URL, "v25.0", nil)}, fake, page
}

func send(t *testing.T, a *activities.Sender, page store.Page, id string) activities.SendOutcome {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a.SendMessage)
	v, err := env.ExecuteActivity(a.SendMessage, activities.SendInput{
		MessageID: id, PageRef: page.ID, FacebookPageID: pageID, PSID: psid, Text: "hello", MessagingType: messenger.MessagingTypeResponse,
	})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	var out activities.SendOutcome
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Meta's answers, classified by code and subcode.
func TestSendMessageClassifiesMetasAnswers(t *testing.T) {
	a, fake, page := senderEnv(t)
	for _, c := range []struct {
		name          string
		code, subcode int
		drop          bool
		outcome       string
		class         messenger.ErrorClass
	}{
		{name: "outside the window", code: 10, subcode: 2018278, outcome: activities.OutcomeRefused, class: messenger.ClassOutsideWindow},
		{name: "throttled", code: 613, outcome: activities.OutcomeRetry, class: messenger.ClassThrottled},
		{name: "token invalid", code: 190, subcode: 460, outcome: activities.OutcomeRefused, class: messenger.ClassTokenInvalid},
		{name: "user unavailable", code: 551, outcome: activities.OutcomeRefused, class: messenger.ClassUserUnavailable},
		{name: "temporary: may have been accepted", code: 2, outcome: activities.OutcomeUnknown, class: messenger.ClassTemporary},
		{name: "connection dropped", drop: true, outcome: activities.OutcomeUnknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			fake.FailNext(fakemeta.Failure{Op: fakemeta.OpSend, Code: c.code, Subcode: c.subcode})
			out := send(t, a, page, "msg-"+c.name)
			if out.Outcome != c.outcome || out.Class != string(c.class) || out.Code != c.code || out.Subcode != c.subcode {
				t.Errorf("outcome = %+v, want %s (%s) %d/%d", out, c.outcome, c.class, c.code, c.subcode)
			}
			if c.outcome == activities.OutcomeRefused && out.Reason == "" {
				t.Error("a refusal without a reason")
			}
		})
	}
	before := len(fake.Sent(pageID, psid))
	out := send(t, a, page, "msg-ok")
	sent := fake.Sent(pageID, psid)
	if out.Outcome != activities.OutcomeSent || out.MID == "" || len(sent) != before+1 {
		t.Fatalf("success: %+v, %d messages at Meta", out, len(sent))
	}
	if last := sent[len(sent)-1]; last.Metadata != activities.Metadata("msg-ok") || last.MessagingType != "RESPONSE" || last.Tag != "" {
		t.Errorf("Meta received %+v, want RESPONSE, untagged, with Parley's id in metadata", last)
	}
}

func TestMarkPageTokenInvalid(t *testing.T) {
	a, _, page := senderEnv(t)
	ctx := context.Background()
	if err := a.MarkPageTokenInvalid(ctx, activities.TokenInvalidInput{PageRef: page.ID, Code: 190, Subcode: 460, Reason: "expired"}); err != nil {
		t.Fatal(err)
	}
	p, err := a.Store.GetPage(ctx, page.ID)
	if err != nil {
		t.Fatal(err)
	}
	if state, reason := p.Provisioning(); state != store.ProvisioningTokenInvalid || reason == "" {
		t.Errorf("page is %s (%s), want token_invalid with a reason", state, reason)
	}
}
