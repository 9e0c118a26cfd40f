package distribution_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"parley/testenv"
)

// In pick mode, the agents of a queue read what waits in it, to choose;
// an agent of another queue does not. The one who picks gets it, and a
// second pick is refused.
func TestPickModeMembersReadWhatWaitsAndOnePickWins(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server")
	}
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	queue := func(name string) string {
		var q struct{ ID string }
		e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/queues", map[string]any{"name": name, "priority": 1}, &q)
		return q.ID
	}
	support, other := queue("Support"), queue("Other")
	member := func(name, q string) testenv.Agent {
		a := e.CreateAgent(name, name+"@example.com")
		if st, raw := e.Do(http.MethodPut, "/api/v1/queues/"+q+"/agents/"+a.ID, nil); st >= 300 {
			t.Fatalf("membership: %d %s", st, raw)
		}
		if st, raw := e.DoWithKey(a.Key, http.MethodPut, "/api/v1/agents/"+a.ID+"/presence", map[string]string{"presence": "available"}); st != http.StatusOK {
			t.Fatalf("presence: %d %s", st, raw)
		}
		return a
	}
	ada, bob, cy := member("ada", support), member("bob", support), member("cy", other)
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{
		"name": "Acme", "page": page.ID, "distribution": map[string]any{"mode": "pick", "fallback_queue": support},
	}, nil)
	if _, err := e.Meta.CustomerSends(t.Context(), pageID, "psid-pick", "hello"); err != nil {
		t.Fatal(err)
	}
	var conv string
	deadline := time.Now().Add(30 * time.Second)
	for conv == "" {
		var l struct {
			Data []struct {
				ConversationID string `json:"conversation_id"`
			}
		}
		if st, raw := e.DoWithKey(ada.Key, http.MethodGet, "/api/v1/queues/"+support+"/conversations", nil); st == http.StatusOK {
			if err := json.Unmarshal(raw, &l); err != nil {
				t.Fatal(err)
			}
			if len(l.Data) == 1 {
				conv = l.Data[0].ConversationID
			}
		}
		if conv == "" {
			if time.Now().After(deadline) {
				t.Fatal("nothing waits in Support after 30 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, tc := range []struct {
		who  string
		key  string
		want int
	}{{"a member", ada.Key, http.StatusOK}, {"another member", bob.Key, http.StatusOK}, {"an agent of another queue", cy.Key, http.StatusNotFound}} {
		for _, path := range []string{"", "/messages"} {
			if st, raw := e.DoWithKey(tc.key, http.MethodGet, "/api/v1/conversations/"+conv+path, nil); st != tc.want {
				t.Errorf("%s reads /conversations/{id}%s: %d %s, want %d", tc.who, path, st, raw, tc.want)
			}
		}
	}
	// Both members pick at once: one wins, the other gets 409.
	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i, a := range []testenv.Agent{ada, bob} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = call(e, a.Key, http.MethodPost, "/api/v1/conversations/"+conv+"/pick", nil)
		}()
	}
	wg.Wait()
	winner, loser := ada, bob
	switch {
	case statuses[0] == http.StatusOK && statuses[1] == http.StatusConflict:
	case statuses[1] == http.StatusOK && statuses[0] == http.StatusConflict:
		winner, loser = bob, ada
	default:
		t.Fatalf("two picks at once: %v, want one 200 and one 409", statuses)
	}
	var cv struct {
		State   string `json:"state"`
		AgentID string `json:"agent_id"`
	}
	_, raw := e.DoWithKey(winner.Key, http.MethodGet, "/api/v1/conversations/"+conv, nil)
	if err := json.Unmarshal(raw, &cv); err != nil || cv.AgentID != winner.ID || cv.State != "active" {
		t.Errorf("after the picks: %s, want active with the winner", raw)
	}
	// Taken: the other member no longer reads it.
	if st, raw := e.DoWithKey(loser.Key, http.MethodGet, "/api/v1/conversations/"+conv, nil); st != http.StatusNotFound {
		t.Errorf("the other member reads the winner's conversation: %d %s, want 404", st, raw)
	}
}
