package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"parley/testenv"
)

// Issue 8, acceptance 1, on the whole stack: a customer whose profile Meta
// gives is named and routed by a rule on the name; one whose profile Meta
// refuses keeps the PSID as identity, with the name unknown (no
// placeholder), why, and when Parley asks again.
func TestCustomerProfileNamesAndRoutesOrFallsBackToThePSID(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server")
	}
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	queue := func(name string, priority int) string {
		var q struct{ ID string }
		e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/queues", map[string]any{"name": name, "priority": priority}, &q)
		return q.ID
	}
	general, vip := queue("General", 2), queue("VIP", 1)
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{
		"name": "Acme", "page": page.ID,
		"distribution": map[string]any{"mode": "push", "fallback_queue": general, "routing_rules": []any{
			map[string]any{"name": "Lovelaces", "queue": vip, "conditions": []any{
				map[string]any{"field": "customer_name", "operator": "contains", "value": "Lovelace"}}}}},
	}, nil)
	e.Meta.SetUserProfile(pageID, "psid-named", "Ada", "Lovelace", true)
	e.Meta.SetUserProfile(pageID, "psid-hidden", "Grace", "Hopper", false) // no Business Asset User Profile Access

	type conv struct {
		ID       string
		Customer struct {
			PSID                 string     `json:"psid"`
			NameKnown            bool       `json:"name_known"`
			Name                 string     `json:"name"`
			FirstName            string     `json:"first_name"`
			PictureURL           string     `json:"picture_url"`
			ProfileStatus        string     `json:"profile_status"`
			ProfileError         string     `json:"profile_error"`
			NextProfileAttemptAt *time.Time `json:"next_profile_attempt_at"`
		}
		Queue *struct {
			QueueName string `json:"queue_name"`
		}
	}
	queued := func(psid string) conv {
		t.Helper()
		sent := time.Now()
		if _, err := e.Meta.CustomerSends(t.Context(), pageID, psid, "hello"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			var list struct{ Data []conv }
			e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?psid="+psid, nil, &list)
			if len(list.Data) == 1 {
				var c conv
				e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+list.Data[0].ID, nil, &c)
				if c.Queue != nil {
					if c.Customer.NextProfileAttemptAt != nil {
						if wait := c.Customer.NextProfileAttemptAt.Sub(sent); wait < 50*time.Second || wait > 70*time.Second {
							t.Errorf("%s: next profile attempt %v after the message, want about 1 min", psid, wait)
						}
					}
					return c
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not queued within 30 s", psid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	named := queued("psid-named")
	if c := named.Customer; !c.NameKnown || c.Name != "Ada Lovelace" || c.FirstName != "Ada" || c.ProfileStatus != "known" ||
		c.PictureURL == "" || c.NextProfileAttemptAt != nil {
		t.Errorf("named customer: %+v", c)
	}
	if named.Queue.QueueName != "VIP" {
		t.Errorf("named customer queued in %s, want VIP (rule on the name)", named.Queue.QueueName)
	}

	hidden := queued("psid-hidden")
	if c := hidden.Customer; c.NameKnown || c.Name != "" || c.FirstName != "" || c.PSID != "psid-hidden" ||
		c.ProfileStatus != "unavailable" || !strings.Contains(c.ProfileError, "code 100") || c.NextProfileAttemptAt == nil {
		t.Errorf("customer with a hidden profile: %+v, want the PSID, no name, why, and when to retry", c)
	}
	if hidden.Queue.QueueName != "General" {
		t.Errorf("customer with a hidden profile queued in %s, want General (the fallback)", hidden.Queue.QueueName)
	}
}
