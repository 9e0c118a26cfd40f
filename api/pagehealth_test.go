package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"parley/testenv"
	"parley/workflows"
)

// Issue 10, page health, on the real dev server: the schedule exists in
// Temporal; a run finds the token's data access ending in 2 days and the
// app unsubscribed by Meta (renewed); the page says expiring, and one
// alert is posted; a second run posts none.
func TestThePageHealthScheduleFindsAnExpiringPageAndAlertsOnce(t *testing.T) {
	var mu sync.Mutex
	var alerts []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var a map[string]any
		if err := json.Unmarshal(body, &a); err != nil {
			t.Error(err)
		}
		if !strings.HasPrefix(r.Header.Get("X-Parley-Signature-256"), "sha256=") {
			t.Errorf("alert without signature: %v", r.Header)
		}
		mu.Lock()
		alerts = append(alerts, a)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true, Config: map[string]string{
		"PARLEY_ALERT_URL": hook.URL, "PARLEY_ALERT_SECRET": "s3cret-for-alerts", "PARLEY_PAGE_HEALTH_EVERY": "1h"}})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	ctx := t.Context()

	// The worker creates the schedule once it runs.
	h := e.Temporal().ScheduleClient().GetHandle(ctx, workflows.PageHealthScheduleID)
	var d *client.ScheduleDescription
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		if d, err = h.Describe(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the page health schedule: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if iv := d.Schedule.Spec.Intervals; len(iv) != 1 || iv[0].Every != time.Hour {
		t.Errorf("schedule intervals %+v, want every hour", iv)
	}

	e.Meta.SetTokenExpiry(pageID, time.Time{}, time.Now().Add(48*time.Hour))
	e.Meta.DropSubscription(pageID, appID)
	run := func() {
		t.Helper()
		before, err := h.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			d, err := h.Describe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if d.Info.NumActions > before.Info.NumActions && len(d.Info.RunningWorkflows) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the triggered run did not end: %+v", d.Info)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	run()
	var p struct {
		ProvisioningState  string     `json:"provisioning_state"`
		ProvisioningReason string     `json:"provisioning_reason"`
		HealthCheckedAt    *time.Time `json:"health_checked_at"`
	}
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/pages/"+page.ID, nil, &p)
	if p.ProvisioningState != "expiring" || !strings.Contains(p.ProvisioningReason, "data access expires") || p.HealthCheckedAt == nil {
		t.Errorf("page after the check: %+v, want expiring with the reason", p)
	}
	if !e.Meta.Subscribed(pageID, appID) {
		t.Error("the dropped subscription was not renewed")
	}
	run()
	mu.Lock()
	defer mu.Unlock()
	if len(alerts) != 1 || alerts[0]["state"] != "expiring" || alerts[0]["previous_state"] != "running" || alerts[0]["facebook_page_id"] != pageID {
		t.Errorf("alerts %v, want one: running -> expiring", alerts)
	}
}
