package activities_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/activities"
	"parley/fakemeta"
	"parley/store"
)

// The health check finds, in turn: nothing wrong; a subscription Meta
// dropped (renewed, the page stays running); a token whose data access
// ends in 3 days (expiring); a busy page gone silent; and an alert goes
// once per change, signed.
func TestPageHealthFindsExpiringUnsubscribedAndSilentPagesAndAlertsOncePerChange(t *testing.T) {
	snd, fake, page := senderEnv(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var alerts []activities.PageAlert
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte("alert-secret"))
		mac.Write(body)
		if got, want := r.Header.Get(activities.AlertSignatureHeader), "sha256="+hex.EncodeToString(mac.Sum(nil)); got != want {
			t.Errorf("alert signature %q, want %q", got, want)
		}
		var a activities.PageAlert
		if err := json.Unmarshal(body, &a); err != nil {
			t.Error(err)
		}
		mu.Lock()
		alerts = append(alerts, a)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	a := &activities.PageHealth{Store: snd.Store, Graph: snd.Graph, Now: func() time.Time { return now },
		Settings: activities.HealthSettings{AlertURL: hook.URL, AlertSecret: "alert-secret", SilenceAfter: 6 * time.Hour}}
	run := func(label string) activities.PageHealthResult {
		t.Helper()
		r, err := a.CheckPageHealth(ctx, page.ID)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		if r.Changed {
			if err := a.SendPageAlert(ctx, activities.PageAlert{PageRef: r.PageRef, FacebookPageID: r.FacebookPageID, State: r.State, PreviousState: r.PreviousState, Reason: r.Reason, At: now}); err != nil {
				t.Fatalf("%s: alert: %v", label, err)
			}
		}
		return r
	}
	// A page set up: webhook verified, app subscribed.
	if err := snd.Store.RecordSubscribed(ctx, page.ID, now); err != nil {
		t.Fatal(err)
	}
	if err := snd.Store.MarkWebhookVerified(ctx, page.ID, now); err != nil {
		t.Fatal(err)
	}
	if r := run("healthy"); r.State != store.ProvisioningRunning || r.Changed {
		t.Fatalf("healthy page: %+v, want running and no alert", r)
	}

	fake.DropSubscription(pageID, appID)
	if r := run("dropped"); r.State != store.ProvisioningRunning || !r.Resubscribed || !fake.Subscribed(pageID, appID) {
		t.Errorf("dropped subscription: %+v, subscribed again %v; want renewed, still running", r, fake.Subscribed(pageID, appID))
	}
	fake.DropSubscription(pageID, appID)
	fake.FailNext(fakemeta.Failure{Op: fakemeta.OpSubscribedApps, Code: 200, Times: 1})
	if r := run("refused"); r.State != store.ProvisioningUnsubscribed || !strings.Contains(r.Reason, "code 200") || !r.Changed {
		t.Errorf("subscription refused: %+v, want unsubscribed with Meta's code, alerted", r)
	}
	if r := run("refused again"); r.State != store.ProvisioningRunning {
		t.Errorf("once Meta accepts: %+v, want running again", r)
	}

	fake.SetTokenExpiry(pageID, time.Time{}, now.Add(3*24*time.Hour))
	r := run("expiring")
	if r.State != store.ProvisioningExpiring || !strings.Contains(r.Reason, "data access expires") || !strings.Contains(r.Reason, "3 days") {
		t.Errorf("data access ending: %+v, want expiring in 3 days", r)
	}
	if r := run("expiring again"); r.Changed {
		t.Errorf("same state an hour later: %+v, want no second alert", r)
	}
	fake.SetTokenExpiry(pageID, time.Time{}, now.Add(60*24*time.Hour))

	// Busy until 10 hours ago, silent since.
	last := now.Add(-10 * time.Hour)
	for i := range 4 {
		if err := snd.Store.UpsertConversation(ctx, store.Conversation{ID: fmt.Sprintf("c-%d", i), PageRef: page.ID, AccountID: page.AccountID,
			FacebookPageID: pageID, PSID: fmt.Sprintf("p-%d", i), State: "closed", StartedAt: last.Add(-time.Duration(i+1) * time.Hour), UpdatedAt: last}); err != nil {
			t.Fatal(err)
		}
	}
	if err := snd.Store.TouchWebhook(ctx, page.ID, last); err != nil {
		t.Fatal(err)
	}
	if r := run("silent"); r.State != store.ProvisioningSilent || !strings.Contains(r.Reason, "4 conversations") {
		t.Errorf("silent page: %+v", r)
	}
	// The page's own threshold is longer: not silent.
	if _, err := snd.Store.SetPageSilenceAfter(ctx, page.ID, 12*time.Hour); err != nil {
		t.Fatal(err)
	}
	if r := run("own threshold"); r.State != store.ProvisioningRunning {
		t.Errorf("with a 12 h threshold: %+v, want running", r)
	}

	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, al := range alerts {
		got = append(got, al.PreviousState+">"+al.State)
	}
	if strings.Join(got, " ") != "running>unsubscribed unsubscribed>running running>expiring expiring>silent silent>running" {
		t.Errorf("alerts %q", got)
	}
}
