package activities_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
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
// newTestStore is a migrated SQLite store with the test account and page.
func newTestStore(t *testing.T) (*store.Store, store.Account, store.Page) {
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
	return st, acct, page
}

func senderEnv(t *testing.T) (*activities.Sender, *fakemeta.Server, store.Page) {
	t.Helper()
	ctx := context.Background()
	st, _, page := newTestStore(t)
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

	// Throttled: retry, after the pause Meta's usage header gives (the
	// fake: a minute); meanwhile every send of the page waits, without
	// calling Meta.
	fake.FailNext(fakemeta.Failure{Op: fakemeta.OpSend, Code: 613})
	out = send(t, a, page, "msg-throttled")
	if out.Outcome != activities.OutcomeRetry || out.Class != string(messenger.ClassThrottled) || out.RetryAfter != time.Minute {
		t.Errorf("throttled: %+v, want retry after a minute", out)
	}
	calls := len(fake.Calls())
	out = send(t, a, page, "msg-after")
	if out.Outcome != activities.OutcomeDelayed || out.RetryAfter < 55*time.Second || !strings.Contains(out.Reason, "code 613") || len(fake.Calls()) != calls {
		t.Errorf("while paused: %+v after %d new calls, want delayed about a minute with the reason, Meta not called", out, len(fake.Calls())-calls)
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

func findSent(t *testing.T, a *activities.Sender, page store.Page, id, text string, since time.Time) activities.FindSentOutcome {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a.FindSentMessage)
	v, err := env.ExecuteActivity(a.FindSentMessage, activities.FindSentInput{
		MessageID: id, PageRef: page.ID, FacebookPageID: pageID, PSID: psid, Text: text, Since: since,
	})
	if err != nil {
		t.Fatalf("FindSentMessage: %v", err)
	}
	var out activities.FindSentOutcome
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkToken(t *testing.T, a *activities.Sender, page store.Page, scopes []string) {
	t.Helper()
	if _, err := a.Store.RecordTokenCheck(context.Background(), page.ID, store.TokenCheck{At: time.Now(), Valid: true, Scopes: scopes}); err != nil {
		t.Fatal(err)
	}
}

// Issue 6, defect 6: after a send with no clear answer, Parley looks for the
// message on Meta's side (Conversations API) before sending it again.
func TestFindSentMessageLooksOnMetasSide(t *testing.T) {
	a, fake, page := senderEnv(t)
	since := time.Now().Add(-time.Second)
	checkToken(t, a, page, []string{"pages_messaging", "pages_read_engagement", "pages_manage_metadata"})

	// Meta accepted it, then the connection dropped.
	fake.FailAfterAccept(fakemeta.Failure{Op: fakemeta.OpSend})
	if out := send(t, a, page, "msg-accepted"); out.Outcome != activities.OutcomeUnknown {
		t.Fatalf("send = %+v, want unknown", out)
	}
	sent := fake.Sent(pageID, psid)
	found := findSent(t, a, page, "msg-accepted", "hello", since)
	if found.Outcome != activities.LookupFound || found.MID != sent[len(sent)-1].MessageID {
		t.Errorf("lookup = %+v, want found with Meta's mid %s", found, sent[len(sent)-1].MessageID)
	}
	// A mid that another message of ours already holds is not this one.
	if out := findSent(t, a, page, "msg-other", "not sent", since); out.Outcome != activities.LookupAbsent {
		t.Errorf("lookup of a message Meta never got = %+v, want absent", out)
	}
	// The customer's own "hello" is never taken for the page's.
	if out := findSent(t, a, page, "msg-x", "hello", time.Now().Add(time.Hour)); out.Outcome != activities.LookupAbsent {
		t.Errorf("lookup after the only match = %+v, want absent", out)
	}

	// Without the permissions: the page says so, and Meta would refuse.
	fake.SetPageScopes(pageID, []string{"pages_messaging"})
	checkToken(t, a, page, []string{"pages_messaging"})
	if out := findSent(t, a, page, "msg-accepted", "hello", since); out.Outcome != activities.LookupUnavailable || out.Reason == "" {
		t.Errorf("lookup without the permissions = %+v, want unavailable with the reason", out)
	}
	checkToken(t, a, page, []string{"pages_messaging", "pages_read_engagement", "pages_manage_metadata"})
	if out := findSent(t, a, page, "msg-accepted", "hello", since); out.Outcome != activities.LookupUnavailable || !strings.Contains(out.Reason, "code 10") {
		t.Errorf("lookup refused by Meta = %+v, want unavailable with Meta's code", out)
	}
}

// Issue 6, defect 5: failures before Meta is called are typed: retried, or
// permanent with the reason; never "Meta's outcome unknown".
func TestSendMessageFailuresBeforeMeta(t *testing.T) {
	a, _, page := senderEnv(t)
	ctx := context.Background()
	var s testsuite.WorkflowTestSuite
	run := func(pageRef string) error {
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(a.SendMessage)
		_, err := env.ExecuteActivity(a.SendMessage, activities.SendInput{
			MessageID: "m", PageRef: pageRef, FacebookPageID: pageID, PSID: psid, Text: "hi", MessagingType: messenger.MessagingTypeResponse,
		})
		return err
	}
	if err := a.Store.DeletePage(ctx, page.ID); err != nil {
		t.Fatal(err)
	}
	var ae *temporal.ApplicationError
	if err := run(page.ID); !errors.As(err, &ae) || ae.Type() != activities.SendImpossibleErrorType || !ae.NonRetryable() || !strings.Contains(ae.Message(), "deleted") {
		t.Errorf("deleted page: %v, want a non-retryable %s saying the page was deleted", err, activities.SendImpossibleErrorType)
	}
	if err := a.Store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := run(page.ID); !errors.As(err, &ae) || ae.Type() != activities.SendNotAttemptedErrorType || ae.NonRetryable() {
		t.Errorf("database closed: %v, want a retryable %s", err, activities.SendNotAttemptedErrorType)
	}
}

// Issue 6, defect 5: invalid input is not retried forever.
func TestMarkMessageFailedOnAnUnknownMessageIsNotRetried(t *testing.T) {
	a, _, _ := senderEnv(t)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a.MarkMessageFailed)
	_, err := env.ExecuteActivity(a.MarkMessageFailed, activities.MarkFailedInput{MessageID: "no-such-message", Reason: "x"})
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || !ae.NonRetryable() {
		t.Errorf("MarkMessageFailed(unknown) = %v, want a non-retryable error", err)
	}
}
