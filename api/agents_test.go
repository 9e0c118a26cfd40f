package api_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"parley/testenv"
)

type agent struct {
	ID                string     `json:"id"`
	Name              string     `json:"name"`
	Email             string     `json:"email"`
	CapacityUnits     int        `json:"capacity_units"`
	Skills            []string   `json:"skills"`
	Presence          string     `json:"presence"`
	ChosenPresence    string     `json:"chosen_presence"`
	PresenceChangedAt *time.Time `json:"presence_changed_at"`
	Queues            []string   `json:"queues"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

type apiKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	AgentID    string     `json:"agent_id"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

type issuedKey struct {
	APIKey apiKey `json:"api_key"`
	Secret string `json:"secret"`
}

// wantForbidden checks that key is a valid key (403, not 401) without
// the role for an admin route.
func wantForbidden(t *testing.T, e *testenv.Env, what, key string) {
	t.Helper()
	s, raw := e.DoWithKey(key, http.MethodGet, "/api/v1/accounts", nil)
	wantError(t, what+" on an admin route", s, raw, http.StatusForbidden, "")
}

func TestAgentsAPI(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})

	var created struct {
		Agent  agent  `json:"agent"`
		APIKey apiKey `json:"api_key"`
		Secret string `json:"secret"`
	}
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/agents", map[string]any{"name": "Alice", "email": "Alice@Example.com"}, &created)
	a, k := created.Agent, created.APIKey
	if a.ID == "" || a.Name != "Alice" || a.Email != "alice@example.com" || a.CreatedAt.IsZero() || !a.UpdatedAt.Equal(a.CreatedAt) ||
		a.CapacityUnits != 3 || a.Skills == nil || len(a.Skills) != 0 || a.Presence != "offline" || a.ChosenPresence != "offline" ||
		a.PresenceChangedAt != nil || a.Queues == nil || len(a.Queues) != 0 {
		t.Errorf("agent = %+v, want capacity 3, no skills, offline, no queues", a)
	}
	if k.ID == "" || k.Role != "agent" || k.AgentID != a.ID || k.Name != "agent alice@example.com" || k.RevokedAt != nil ||
		!strings.HasPrefix(created.Secret, "pk_") || !strings.HasPrefix(created.Secret, k.Prefix) {
		t.Errorf("api key = %+v, secret %q", k, created.Secret)
	}
	// The secret works as a Bearer key with the agent role.
	wantForbidden(t, e, "agent key", created.Secret)

	// The secret is shown once: nothing else returns it.
	var got agent
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/agents/"+a.ID, nil, &got)
	if !reflect.DeepEqual(got, a) {
		t.Errorf("get = %+v, want %+v", got, a)
	}
	for _, path := range []string{"/api/v1/agents", "/api/v1/agents/" + a.ID, "/api/v1/api-keys"} {
		s, raw := e.Do(http.MethodGet, path, nil)
		if s != http.StatusOK || strings.Contains(string(raw), created.Secret) || strings.Contains(string(raw), created.Secret[len(k.Prefix):]) {
			t.Errorf("GET %s: %d, and the secret must not be in %s", path, s, raw)
		}
	}
	var keys struct{ Data []apiKey }
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/api-keys", nil, &keys)
	if len(keys.Data) != 1 || keys.Data[0].ID != k.ID || keys.Data[0].AgentID != a.ID {
		t.Errorf("api keys = %+v, want the agent's key", keys.Data)
	}

	s, raw := e.Do(http.MethodPost, "/api/v1/agents", map[string]any{"name": "Alice again", "email": "alice@EXAMPLE.com"})
	wantError(t, "duplicate email", s, raw, http.StatusConflict, "")
	for _, tc := range []struct {
		what  string
		body  any
		field string
	}{
		{"no email", map[string]any{"name": "Bob"}, "email"},
		{"malformed email", map[string]any{"name": "Bob", "email": "bob"}, "email"},
		{"email with a display name", map[string]any{"name": "Bob", "email": "Bob <bob@example.com>"}, "email"},
		{"email as a number", map[string]any{"name": "Bob", "email": 5}, "email"},
		{"no name", map[string]any{"email": "bob@example.com"}, "name"},
		{"unknown field", map[string]any{"name": "Bob", "email": "bob@example.com", "role": "admin"}, "role"},
	} {
		s, raw := e.Do(http.MethodPost, "/api/v1/agents", tc.body)
		wantError(t, tc.what, s, raw, http.StatusBadRequest, tc.field)
	}
	var list struct{ Data []agent }
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/agents", nil, &list)
	if len(list.Data) != 1 || !reflect.DeepEqual(list.Data[0], a) {
		t.Errorf("list = %+v, want [Alice]", list.Data)
	}
	s, raw = e.Do(http.MethodGet, "/api/v1/agents/no-such-agent", nil)
	wantError(t, "unknown agent", s, raw, http.StatusNotFound, "")

	// Another key for the agent; both work, each can be revoked alone.
	var second issuedKey
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/agents/"+a.ID+"/api-keys", nil, &second)
	if second.APIKey.ID == k.ID || second.APIKey.Role != "agent" || second.APIKey.AgentID != a.ID || second.Secret == created.Secret || !strings.HasPrefix(second.Secret, "pk_") {
		t.Errorf("second key = %+v, secret %q", second.APIKey, second.Secret)
	}
	wantForbidden(t, e, "second agent key", second.Secret)
	doJSON(t, e, http.StatusNoContent, http.MethodDelete, "/api/v1/api-keys/"+k.ID, nil, nil)
	s, raw = e.DoWithKey(created.Secret, http.MethodGet, "/api/v1/accounts", nil)
	wantError(t, "revoked agent key", s, raw, http.StatusUnauthorized, "")
	wantForbidden(t, e, "second agent key after revoking the first", second.Secret)
	s, raw = e.Do(http.MethodPost, "/api/v1/agents/no-such-agent/api-keys", nil)
	wantError(t, "key for an unknown agent", s, raw, http.StatusNotFound, "")
}

// Agents and workstreams are configuration: admins only.
func TestAgentsAndWorkstreamsAreForAdmins(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	var ws workstream
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Support", "page": page.ID}, &ws)
	var ag struct {
		Agent  agent  `json:"agent"`
		Secret string `json:"secret"`
	}
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/agents", map[string]any{"name": "Alice", "email": "alice@example.com"}, &ag)
	var sup issuedKey
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/api-keys", map[string]string{"name": "sup", "role": "supervisor"}, &sup)

	routes := []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Other", "page": page.ID}},
		{http.MethodGet, "/api/v1/workstreams", nil},
		{http.MethodGet, "/api/v1/workstreams/" + ws.ID, nil},
		{http.MethodPatch, "/api/v1/workstreams/" + ws.ID, map[string]any{"name": "Mine"}},
		{http.MethodDelete, "/api/v1/workstreams/" + ws.ID, nil},
		{http.MethodPost, "/api/v1/agents", map[string]any{"name": "Eve", "email": "eve@example.com"}},
		{http.MethodGet, "/api/v1/agents", nil},
		{http.MethodPatch, "/api/v1/agents/" + ag.Agent.ID, map[string]any{"capacity_units": 9}},
		{http.MethodPost, "/api/v1/agents/" + ag.Agent.ID + "/api-keys", nil},
	}
	for _, key := range []struct{ role, secret string }{{"supervisor", sup.Secret}, {"agent", ag.Secret}} {
		for _, r := range routes {
			s, raw := e.DoWithKey(key.secret, r.method, r.path, r.body)
			wantError(t, key.role+" key: "+r.method+" "+r.path, s, raw, http.StatusForbidden, "")
		}
	}
	// A supervisor may not read an agent; the agent may read itself (TestAgentSelf).
	s, raw := e.DoWithKey(sup.Secret, http.MethodGet, "/api/v1/agents/"+ag.Agent.ID, nil)
	wantError(t, "supervisor key: GET /api/v1/agents/{id}", s, raw, http.StatusForbidden, "")
	// Nothing changed.
	var got workstream
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/workstreams/"+ws.ID, nil, &got)
	if got.Name != "Support" {
		t.Errorf("workstream after refused requests: %+v", got)
	}
	var agents struct{ Data []agent }
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/agents", nil, &agents)
	if len(agents.Data) != 1 || agents.Data[0].CapacityUnits != 3 {
		t.Errorf("agents after refused requests: %+v", agents.Data)
	}
}
