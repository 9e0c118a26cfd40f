package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"parley/api"
	"parley/testenv"
)

// Who may do what (README, "REST API"): every route of /api/v1 against
// every principal. A route added without a row here fails the test.
//
// ok: allowed (any status but 401, 403 and, on the caller's own
// conversation, 404); other statuses are what the caller must get.
type access struct{ admin, supervisor, agent, otherAgent int }

const ok = 0

var (
	adminOnly = access{ok, http.StatusForbidden, http.StatusForbidden, http.StatusForbidden}
	readAll   = access{ok, ok, ok, ok} // lists are filtered for agents
	readConv  = access{ok, ok, ok, http.StatusNotFound}
	agentOnly = access{http.StatusForbidden, http.StatusForbidden, ok, http.StatusNotFound}
	assigners = access{ok, ok, http.StatusForbidden, http.StatusForbidden}
	closers   = access{ok, ok, ok, http.StatusNotFound}
	// An offer or a queued conversation is not yet any agent's: another
	// agent reaches it and is refused by the workflow (409).
	offerActs = access{http.StatusForbidden, http.StatusForbidden, ok, ok}
)

var routeAccess = map[string]access{
	"POST /api/v1/accounts":                   adminOnly,
	"GET /api/v1/accounts":                    adminOnly,
	"GET /api/v1/accounts/:id":                adminOnly,
	"PATCH /api/v1/accounts/:id":              adminOnly,
	"DELETE /api/v1/accounts/:id":             adminOnly,
	"POST /api/v1/accounts/:id/pages":         adminOnly,
	"GET /api/v1/accounts/:id/pages":          adminOnly,
	"GET /api/v1/pages":                       adminOnly,
	"GET /api/v1/pages/:id":                   adminOnly,
	"DELETE /api/v1/pages/:id":                adminOnly,
	"PUT /api/v1/pages/:id/access-token":      adminOnly,
	"POST /api/v1/pages/:id/check":            adminOnly,
	"POST /api/v1/workstreams":                adminOnly,
	"GET /api/v1/workstreams":                 adminOnly,
	"GET /api/v1/workstreams/:id":             adminOnly,
	"PATCH /api/v1/workstreams/:id":           adminOnly,
	"DELETE /api/v1/workstreams/:id":          adminOnly,
	"GET /api/v1/workstreams/:id/post-survey": adminOnly,
	"PUT /api/v1/workstreams/:id/post-survey": adminOnly,
	"GET /api/v1/workstreams/:id/pre-survey":  adminOnly,
	"PUT /api/v1/workstreams/:id/pre-survey":  adminOnly,
	"GET /api/v1/reports/csat":                assigners, // admins and supervisors
	"GET /api/v1/metrics/queues":              assigners, // admins and supervisors
	"POST /api/v1/agents":                     adminOnly,
	"GET /api/v1/agents":                      adminOnly,
	"GET /api/v1/agents/:id":                  adminOnly,
	"POST /api/v1/agents/:id/api-keys":        adminOnly,
	"POST /api/v1/api-keys":                   adminOnly,
	"GET /api/v1/api-keys":                    adminOnly,
	"DELETE /api/v1/api-keys/:id":             adminOnly,
	"GET /api/v1/conversations":               readAll,
	"GET /api/v1/conversations/:id":           readConv,
	"GET /api/v1/conversations/:id/messages":  readConv,
	"POST /api/v1/conversations/:id/messages": agentOnly,
	"POST /api/v1/conversations/:id/assign":   assigners,
	"POST /api/v1/conversations/:id/waiting":  agentOnly,
	"POST /api/v1/conversations/:id/end":      agentOnly,
	"POST /api/v1/conversations/:id/close":    closers,

	// Operations (issue 10): thread control, like closing; page settings.
	"POST /api/v1/conversations/:id/take-control": closers,
	"POST /api/v1/conversations/:id/pass-control": closers,
	"PATCH /api/v1/pages/:id":                     adminOnly,

	// Routing configuration (issue 7). An agent may read itself and set
	// its own presence (api/agents_self_test.go); the principals here name
	// another agent's id.
	"PATCH /api/v1/agents/:id":                   adminOnly,
	"PUT /api/v1/agents/:id/presence":            adminOnly,
	"POST /api/v1/queues":                        adminOnly,
	"GET /api/v1/queues":                         adminOnly,
	"GET /api/v1/queues/:id":                     adminOnly,
	"PATCH /api/v1/queues/:id":                   adminOnly,
	"DELETE /api/v1/queues/:id":                  adminOnly,
	"PUT /api/v1/queues/:id/agents/:agent_id":    adminOnly,
	"DELETE /api/v1/queues/:id/agents/:agent_id": adminOnly,

	// Distribution (issue 7): agents answer offers and pick; the agent,
	// supervisors and admins transfer; everyone reads the live events and
	// the queues (agents only theirs).
	"POST /api/v1/conversations/:id/accept":   offerActs,
	"POST /api/v1/conversations/:id/reject":   offerActs,
	"POST /api/v1/conversations/:id/pick":     offerActs,
	"POST /api/v1/conversations/:id/transfer": closers,
	"GET /api/v1/queues/:id/conversations":    readAll,
	"GET /api/v1/events":                      readAll,

	// Contacts (issue 8): everyone reads and edits them; supervisors and
	// admins delete; an agent links its own conversation's customer.
	"POST /api/v1/contacts":                  readAll,
	"GET /api/v1/contacts":                   readAll,
	"GET /api/v1/contacts/:id":               readAll,
	"PATCH /api/v1/contacts/:id":             readAll,
	"DELETE /api/v1/contacts/:id":            assigners,
	"GET /api/v1/contacts/:id/summary":       readAll,
	"POST /api/v1/conversations/:id/contact": closers,

	// Files and erasure (issue 8). The conversation has no such file: who
	// may read it is tested with real files in attachments_in_test.go.
	"GET /api/v1/conversations/:id/attachments/:attachment_id": {http.StatusNotFound, http.StatusNotFound, http.StatusNotFound, http.StatusNotFound},
	"POST /api/v1/pages/:id/customers/:psid/erase":             assigners,
	// An agent's file goes like a reply (attachments_out_test.go).
	"POST /api/v1/conversations/:id/attachments": agentOnly,

	// Temporal Web's codec (issue 8): supervisors and admins. With the key
	// in the path, the path's key counts (here the literal ":key"), not the
	// header's: api/codec_test.go tests it with real keys.
	"POST /api/v1/temporal-codec/:operation":        assigners,
	"POST /api/v1/temporal-codec/k/:key/:operation": {http.StatusUnauthorized, http.StatusUnauthorized, http.StatusUnauthorized, http.StatusUnauthorized},
}

// Issue 6, defect 12.
func TestEveryRouteAgainstEveryRole(t *testing.T) {
	r := setupReplies(t, testenv.Options{}, "psid-roles")
	e := r.e
	keyOf := func(role string) (id, secret string) {
		var out struct {
			APIKey struct{ ID string } `json:"api_key"`
			Secret string              `json:"secret"`
		}
		e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/api-keys", map[string]string{"name": role + " key", "role": role}, &out)
		return out.APIKey.ID, out.Secret
	}
	_, supervisor := keyOf("supervisor")
	revokedID, revoked := keyOf("supervisor")
	e.MustDo(http.StatusNoContent, http.MethodDelete, "/api/v1/api-keys/"+revokedID, nil, nil)
	other := e.CreateAgent("Bo", "bo@example.com")

	routes := e.App.Handler().(*api.Server).Echo().Routes()
	seen := map[string]bool{}
	var v1 []string
	for _, rt := range routes {
		// Echo adds a catch-all for a group's unknown paths: not a route.
		if !strings.HasPrefix(rt.Path, "/api/v1/") || strings.HasSuffix(rt.Path, "*") || seen[rt.Method+" "+rt.Path] {
			continue
		}
		seen[rt.Method+" "+rt.Path] = true
		key := rt.Method + " " + rt.Path
		if _, ok := routeAccess[key]; !ok {
			t.Errorf("route %s has no row in routeAccess: decide who may use it", key)
			continue
		}
		v1 = append(v1, key)
	}
	for key := range routeAccess {
		if !seen[key] {
			t.Errorf("routeAccess has %s, which the server does not serve", key)
		}
	}

	// The conversation routes name the agent's conversation; others an id
	// that need not exist (their role check comes first).
	path := func(p string) string {
		if strings.HasPrefix(p, "/api/v1/conversations/:id") {
			return strings.Replace(p, ":id", r.convID, 1)
		}
		return strings.Replace(p, ":id", "00000000-0000-0000-0000-000000000000", 1)
	}
	principals := []struct {
		name, key string
		want      func(access) int
	}{
		{"no key", "", func(access) int { return http.StatusUnauthorized }},
		{"revoked key", revoked, func(access) int { return http.StatusUnauthorized }},
		{"another agent", other.Key, func(a access) int { return a.otherAgent }},
		{"the conversation's agent", r.agent.Key, func(a access) int { return a.agent }},
		{"supervisor", supervisor, func(a access) int { return a.supervisor }},
		{"admin", e.AdminKey, func(a access) int { return a.admin }},
	}
	// Destructive routes last, so that the others see the resources.
	for _, p := range principals {
		for _, key := range v1 {
			method, tmpl, _ := strings.Cut(key, " ")
			var body any
			if method == http.MethodPost || method == http.MethodPatch || method == http.MethodPut {
				body = map[string]any{}
			}
			var status int
			var raw []byte
			if key == "GET /api/v1/events" {
				status = streamStatus(t, e, p.key) // a stream: only its status
			} else {
				status, raw = e.DoWithKey(p.key, method, path(tmpl), body)
			}
			want := p.want(routeAccess[key])
			switch {
			case want == ok && (status == http.StatusUnauthorized || status == http.StatusForbidden ||
				(strings.Contains(tmpl, "/conversations/:id") && status == http.StatusNotFound)):
				t.Errorf("%s: %s got %d %s, want allowed", key, p.name, status, raw)
			case want != ok && status != want:
				t.Errorf("%s: %s got %d %s, want %d", key, p.name, status, raw, want)
			case status == http.StatusForbidden && routeAccess[key] == agentOnly && !strings.Contains(string(raw), "may assign or close"):
				t.Errorf("%s: %s got %s, want a message saying what they may do", key, p.name, raw)
			}
		}
	}
}

// Issue 6, defect 12: a closed conversation says who closed it.
func TestCloseNamesWhoClosed(t *testing.T) {
	r := setupReplies(t, testenv.Options{}, "psid-close-agent")
	e := r.e
	var sup struct{ Secret string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/api-keys", map[string]string{"name": "Sue", "role": "supervisor"}, &sup)
	for _, tc := range []struct {
		psid, key, want string
	}{
		{"psid-close-agent", r.agent.Key, "closed by agent " + r.agent.ID},
		{"psid-close-supervisor", sup.Secret, "closed by a supervisor"},
		{"psid-close-admin", e.AdminKey, "closed by an administrator"},
	} {
		id := r.convID
		if tc.psid != "psid-close-agent" {
			id = waitForConversation(t, e, tc.psid)
			e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+id+"/assign", map[string]string{"agent_id": r.agent.ID}, nil)
		}
		status, raw := e.DoWithKey(tc.key, http.MethodPost, "/api/v1/conversations/"+id+"/close", nil)
		if status != http.StatusOK {
			t.Fatalf("%s: close: %d %s", tc.want, status, raw)
		}
		var c struct {
			State        string `json:"state"`
			ClosedReason string `json:"closed_reason"`
		}
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+id, nil, &c)
		if c.State != "closed" || c.ClosedReason != tc.want {
			t.Errorf("after close: %+v, want closed with %q", c, tc.want)
		}
	}
}

// waitForConversation has a customer write and returns the id of the
// conversation it opens.
func waitForConversation(t *testing.T, e *testenv.Env, psid string) string {
	t.Helper()
	if _, err := e.Meta.CustomerSends(t.Context(), pageID, psid, "hello?"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Data []convJSON }
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?psid="+psid, nil, &list)
		if len(list.Data) == 1 {
			return list.Data[0].ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("no conversation for %s", psid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// streamStatus opens the live event stream with key and returns its status
// without waiting for the stream to end.
func streamStatus(t *testing.T, e *testenv.Env, key string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /api/v1/events: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
