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
		"name": "Acme", "page": page.ID, "auto_create_contacts": true,
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
			Contact              *struct{ ID, Name string }
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
	if named.Customer.Contact == nil || named.Customer.Contact.Name != "Ada Lovelace" {
		t.Errorf("named customer's contact: %+v, want one created as Ada Lovelace (auto_create_contacts)", named.Customer.Contact)
	}
	if named.Queue.QueueName != "VIP" {
		t.Errorf("named customer queued in %s, want VIP (rule on the name)", named.Queue.QueueName)
	}

	hidden := queued("psid-hidden")
	if c := hidden.Customer; c.NameKnown || c.Name != "" || c.FirstName != "" || c.PSID != "psid-hidden" ||
		c.ProfileStatus != "unavailable" || !strings.Contains(c.ProfileError, "code 100") || c.NextProfileAttemptAt == nil {
		t.Errorf("customer with a hidden profile: %+v, want the PSID, no name, why, and when to retry", c)
	}
	if hidden.Customer.Contact != nil {
		t.Errorf("customer with a hidden profile got a contact %+v: a contact is never named by a placeholder", hidden.Customer.Contact)
	}
	if hidden.Queue.QueueName != "General" {
		t.Errorf("customer with a hidden profile queued in %s, want General (the fallback)", hidden.Queue.QueueName)
	}
}

// Issue 8, acceptance 2: an agent links its customer to a contact; the
// customer's next conversation is linked by itself, and both the
// conversation and the contact's summary list the past conversations.
func TestLinkingAContactLinksTheNextConversation(t *testing.T) {
	r := setupReplies(t, testenv.Options{TemporalInMemory: true}, "psid-contact")
	e := r.e
	var ct struct{ ID string }
	if st, raw := e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/contacts", map[string]any{
		"name": "Ada Lovelace", "emails": []string{"Ada@Example.com"}, "phones": []string{"+44 20 7946 0958"}}); st != http.StatusCreated {
		t.Fatalf("create contact: %d %s", st, raw)
	} else {
		decodeJSON(t, raw, &ct)
	}
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"emails": []string{"x@y.z"}}, "name"},
		{map[string]any{"name": "x", "emails": []string{"nope"}}, "emails[0]"},
		{map[string]any{"name": "x", "phones": []string{"call me"}}, "phones[0]"},
	} {
		st, raw := e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/contacts", tc.body)
		if st != http.StatusBadRequest || !strings.Contains(string(raw), tc.field) {
			t.Errorf("contact %v: %d %s, want 400 naming %s", tc.body, st, raw, tc.field)
		}
	}
	var found struct{ Data []struct{ ID string } }
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/contacts?q=example.com", nil, &found)
	if len(found.Data) != 1 || found.Data[0].ID != ct.ID {
		t.Errorf("search by email: %+v", found.Data)
	}
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/contacts?q=7946", nil, &found)
	if len(found.Data) != 1 {
		t.Errorf("search by phone: %+v", found.Data)
	}

	// The agent links its conversation's customer, then closes it.
	if st, raw := e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/contact", map[string]string{"contact_id": ct.ID}); st != http.StatusOK {
		t.Fatalf("link: %d %s", st, raw)
	}
	if st, raw := e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/contact", map[string]string{"contact_id": "nope"}); st != http.StatusBadRequest {
		t.Errorf("link to an unknown contact: %d %s, want 400", st, raw)
	}
	other := e.CreateAgent("Bo", "bo@example.com")
	if st, raw := e.DoWithKey(other.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/contact", map[string]string{"contact_id": ct.ID}); st != http.StatusNotFound {
		t.Errorf("another agent links: %d %s, want 404", st, raw)
	}
	if st, raw := e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/close", nil); st != http.StatusOK {
		t.Fatalf("close: %d %s", st, raw)
	}

	// The customer writes again: a new conversation, linked by itself.
	if _, err := e.Meta.CustomerSends(t.Context(), pageID, "psid-contact", "Me again"); err != nil {
		t.Fatal(err)
	}
	var next string
	deadline := time.Now().Add(30 * time.Second)
	for next == "" {
		var list struct{ Data []struct{ ID string } }
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?psid=psid-contact", nil, &list)
		for _, c := range list.Data {
			if c.ID != r.convID {
				next = c.ID
			}
		}
		if next == "" {
			if time.Now().After(deadline) {
				t.Fatal("no second conversation")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var cv struct {
		Customer struct {
			Contact *struct {
				ID, Name string
			}
			PastConversations []struct {
				ID      string
				State   string
				AgentID string `json:"agent_id"`
			} `json:"past_conversations"`
		}
	}
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+next, nil, &cv)
	if cv.Customer.Contact == nil || cv.Customer.Contact.ID != ct.ID || cv.Customer.Contact.Name != "Ada Lovelace" {
		t.Errorf("the next conversation's contact: %+v, want Ada Lovelace", cv.Customer.Contact)
	}
	if p := cv.Customer.PastConversations; len(p) != 1 || p[0].ID != r.convID || p[0].State != "closed" || p[0].AgentID != r.agent.ID {
		t.Errorf("past conversations: %+v, want the first one, closed, with its agent", p)
	}
	var sum struct {
		Customers     []struct{ PSID string }
		Conversations []struct{ ID string }
	}
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/contacts/"+ct.ID+"/summary", nil, &sum)
	if len(sum.Customers) != 1 || sum.Customers[0].PSID != "psid-contact" || len(sum.Conversations) != 2 || sum.Conversations[0].ID != next {
		t.Errorf("summary: %+v, want the customer and both conversations, newest first", sum)
	}
}
