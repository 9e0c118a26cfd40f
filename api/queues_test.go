package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/api"
	"parley/store"
	"parley/testenv"
)

// queue is the queue JSON; strictDecode fails on any other key.
type queue struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Priority         int      `json:"priority"`
	AssignmentMethod string   `json:"assignment_method"`
	OperatingHours   hours    `json:"operating_hours"`
	Overflow         overflow `json:"overflow"`
	// ServiceLevelThreshold is "1m0s" unless set (issue 10).
	ServiceLevelThreshold string    `json:"service_level_threshold"`
	Agents                []string  `json:"agents"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
}

type hours struct {
	TimeZone string   `json:"time_zone"`
	Periods  []period `json:"periods"`
	Holidays []string `json:"holidays"`
}

type period struct {
	Day   string `json:"day"`
	Start string `json:"start"`
	End   string `json:"end"`
}

type overflow struct {
	OutOfHours       *overflowRule `json:"out_of_hours"`
	MaxWaiting       *overflowRule `json:"max_waiting"`
	MaxEstimatedWait *overflowRule `json:"max_estimated_wait"`
	WhileQueued      *overflowRule `json:"while_queued"`
}

type overflowRule struct {
	Count  *int   `json:"count"`
	After  string `json:"after"`
	Action string `json:"action"`
	Queue  string `json:"queue"`
}

// distribution is a workstream's distribution JSON.
type distribution struct {
	Mode             string   `json:"mode"`
	CapacityUnits    int      `json:"capacity_units"`
	AllowedPresences []string `json:"allowed_presences"`
	KeepSameAgent    struct {
		Enabled bool   `json:"enabled"`
		Wait    string `json:"wait"`
	} `json:"keep_same_agent"`
	BlockCapacityDuringWrapUp struct {
		Mode     string `json:"mode"`
		Duration string `json:"duration"`
	} `json:"block_capacity_during_wrap_up"`
	OfferTimeout        string        `json:"offer_timeout"`
	MissedOfferPresence string        `json:"missed_offer_presence"`
	FallbackQueue       string        `json:"fallback_queue"`
	RoutingRules        []routingRule `json:"routing_rules"`
}

type routingRule struct {
	Name       string             `json:"name"`
	Conditions []routingCondition `json:"conditions"`
	Queue      string             `json:"queue"`
}

type routingCondition struct {
	Field    string   `json:"field"`
	Operator string   `json:"operator"`
	Value    string   `json:"value,omitempty"`
	Values   []string `json:"values,omitempty"`
}

func createQueue(t *testing.T, e *testenv.Env, name string, priority int) queue {
	t.Helper()
	var q queue
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/queues", map[string]any{"name": name, "priority": priority}, &q)
	return q
}

func TestQueuesAPI(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})

	// Only name and priority: the defaults.
	night := createQueue(t, e, "Night", 5)
	if night.ID == "" || night.Name != "Night" || night.Priority != 5 || night.AssignmentMethod != "highest_capacity" ||
		!reflect.DeepEqual(night.OperatingHours, hours{Periods: []period{}, Holidays: []string{}}) ||
		night.Overflow != (overflow{}) || night.Agents == nil || len(night.Agents) != 0 || !night.UpdatedAt.Equal(night.CreatedAt) {
		t.Errorf("created with defaults: %+v", night)
	}

	// Everything.
	body := map[string]any{
		"name": "Billing", "priority": 1, "assignment_method": "round_robin",
		"operating_hours": map[string]any{"time_zone": "Europe/Paris",
			"periods":  []any{map[string]any{"day": "monday", "start": "09:00", "end": "17:30"}},
			"holidays": []string{"2026-12-25", "2026-01-01"}},
		"overflow": map[string]any{
			"out_of_hours":       map[string]any{"action": "transfer", "queue": night.ID},
			"max_waiting":        map[string]any{"count": 10, "action": "end"},
			"max_estimated_wait": map[string]any{"after": "10m", "action": "queue"},
			"while_queued":       map[string]any{"after": "30m", "action": "transfer", "queue": night.ID},
		},
	}
	var billing queue
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/queues", body, &billing)
	ten := 10
	wantOverflow := overflow{
		OutOfHours:       &overflowRule{Action: "transfer", Queue: night.ID},
		MaxWaiting:       &overflowRule{Count: &ten, Action: "end"},
		MaxEstimatedWait: &overflowRule{After: "10m0s", Action: "queue"},
		WhileQueued:      &overflowRule{After: "30m0s", Action: "transfer", Queue: night.ID},
	}
	wantHours := hours{TimeZone: "Europe/Paris", Periods: []period{{"monday", "09:00", "17:30"}}, Holidays: []string{"2026-01-01", "2026-12-25"}}
	if billing.AssignmentMethod != "round_robin" || !reflect.DeepEqual(billing.OperatingHours, wantHours) || !reflect.DeepEqual(billing.Overflow, wantOverflow) {
		t.Errorf("created = %+v\noverflow %+v", billing, billing.Overflow)
	}
	var got queue
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/queues/"+billing.ID, nil, &got)
	if !reflect.DeepEqual(got, billing) {
		t.Errorf("get = %+v\nwant %+v", got, billing)
	}
	var list struct{ Data []queue }
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/queues", nil, &list)
	if len(list.Data) != 2 || list.Data[0].ID != billing.ID || list.Data[1].ID != night.ID {
		t.Errorf("list = %+v, want [Billing Night]", list.Data)
	}

	s, raw := e.Do(http.MethodPost, "/api/v1/queues", map[string]any{"name": "Billing", "priority": 3})
	wantError(t, "duplicate name", s, raw, http.StatusConflict, "")
	if !strings.Contains(string(raw), "Billing") {
		t.Errorf("duplicate name: %s does not name the queue", raw)
	}

	// PATCH: a subset; overflow and hours replace the whole object.
	var patched queue
	doJSON(t, e, http.StatusOK, http.MethodPatch, "/api/v1/queues/"+billing.ID,
		map[string]any{"name": "Billing FR", "overflow": map[string]any{"max_waiting": map[string]any{"count": 0, "action": "queue"}}, "operating_hours": map[string]any{}}, &patched)
	zero := 0
	want := billing
	want.Name, want.UpdatedAt = "Billing FR", patched.UpdatedAt
	want.Overflow = overflow{MaxWaiting: &overflowRule{Count: &zero, Action: "queue"}}
	want.OperatingHours = hours{Periods: []period{}, Holidays: []string{}}
	if !reflect.DeepEqual(patched, want) {
		t.Errorf("patched = %+v\nwant %+v", patched, want)
	}
	s, raw = e.Do(http.MethodPatch, "/api/v1/queues/"+billing.ID, map[string]any{"name": "Night"})
	wantError(t, "rename to a taken name", s, raw, http.StatusConflict, "")

	valid := func(extra map[string]any) map[string]any {
		b := map[string]any{"name": "Sales", "priority": 2}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	hoursWith := func(p map[string]any) map[string]any {
		return map[string]any{"operating_hours": map[string]any{"time_zone": "UTC", "periods": []any{p}}}
	}
	ov := func(rule string, v any) map[string]any { return map[string]any{"overflow": map[string]any{rule: v}} }
	for _, tc := range []struct {
		what  string
		body  any
		field string
	}{
		{"no name", map[string]any{"priority": 1}, "name"},
		{"blank name", valid(map[string]any{"name": " "}), "name"},
		{"no priority", map[string]any{"name": "Sales"}, "priority"},
		{"priority as a string", valid(map[string]any{"priority": "high"}), "priority"},
		{"negative priority", valid(map[string]any{"priority": -1}), "priority"},
		{"assignment_method", valid(map[string]any{"assignment_method": "random"}), "assignment_method"},
		{"unknown field", valid(map[string]any{"colour": "red"}), "colour"},
		{"operating_hours as a string", valid(map[string]any{"operating_hours": "9-5"}), "operating_hours"},
		{"unknown operating_hours field", valid(map[string]any{"operating_hours": map[string]any{"tz": "UTC"}}), "operating_hours.tz"},
		{"time_zone", valid(map[string]any{"operating_hours": map[string]any{"time_zone": "Mars/Base"}}), "operating_hours.time_zone"},
		{"periods without a time zone", valid(map[string]any{"operating_hours": map[string]any{"periods": []any{map[string]any{"day": "monday", "start": "09:00", "end": "17:00"}}}}), "operating_hours.time_zone"},
		{"periods as an object", valid(map[string]any{"operating_hours": map[string]any{"time_zone": "UTC", "periods": map[string]any{}}}), "operating_hours.periods"},
		{"day", valid(hoursWith(map[string]any{"day": "someday", "start": "09:00", "end": "17:00"})), "operating_hours.periods[0].day"},
		{"start", valid(hoursWith(map[string]any{"day": "monday", "start": "9", "end": "17:00"})), "operating_hours.periods[0].start"},
		{"end", valid(hoursWith(map[string]any{"day": "monday", "start": "09:00", "end": "25:00"})), "operating_hours.periods[0].end"},
		{"unknown period field", valid(hoursWith(map[string]any{"day": "monday", "start": "09:00", "end": "17:00", "lunch": "12:00"})), "operating_hours.periods[0].lunch"},
		{"holiday", valid(map[string]any{"operating_hours": map[string]any{"time_zone": "UTC", "holidays": []any{"2026-12-25", "Christmas"}}}), "operating_hours.holidays[1]"},
		{"holiday as a number", valid(map[string]any{"operating_hours": map[string]any{"time_zone": "UTC", "holidays": []any{20261225}}}), "operating_hours.holidays[0]"},
		{"overflow as an array", valid(map[string]any{"overflow": []any{}}), "overflow"},
		{"unknown overflow rule", valid(ov("on_fire", map[string]any{"action": "end"})), "overflow.on_fire"},
		{"out_of_hours without action", valid(ov("out_of_hours", map[string]any{})), "overflow.out_of_hours.action"},
		{"out_of_hours action", valid(ov("out_of_hours", map[string]any{"action": "panic"})), "overflow.out_of_hours.action"},
		{"out_of_hours transfer without queue", valid(ov("out_of_hours", map[string]any{"action": "transfer"})), "overflow.out_of_hours.queue"},
		{"out_of_hours transfer to an unknown queue", valid(ov("out_of_hours", map[string]any{"action": "transfer", "queue": "nope"})), "overflow.out_of_hours.queue"},
		{"out_of_hours with a count", valid(ov("out_of_hours", map[string]any{"action": "end", "count": 3})), "overflow.out_of_hours.count"},
		{"max_waiting action", valid(ov("max_waiting", map[string]any{"count": 3, "action": "wait"})), "overflow.max_waiting.action"},
		{"max_waiting without count", valid(ov("max_waiting", map[string]any{"action": "end"})), "overflow.max_waiting.count"},
		{"max_waiting negative count", valid(ov("max_waiting", map[string]any{"count": -1, "action": "end"})), "overflow.max_waiting.count"},
		{"max_waiting count as a string", valid(ov("max_waiting", map[string]any{"count": "3", "action": "end"})), "overflow.max_waiting.count"},
		{"max_estimated_wait without after", valid(ov("max_estimated_wait", map[string]any{"action": "end"})), "overflow.max_estimated_wait.after"},
		{"max_estimated_wait after", valid(ov("max_estimated_wait", map[string]any{"after": "soon", "action": "end"})), "overflow.max_estimated_wait.after"},
		{"while_queued queue anyway", valid(ov("while_queued", map[string]any{"after": "10m", "action": "queue"})), "overflow.while_queued.action"},
		{"while_queued negative after", valid(ov("while_queued", map[string]any{"after": "-10m", "action": "end"})), "overflow.while_queued.after"},
	} {
		s, raw := e.Do(http.MethodPost, "/api/v1/queues", tc.body)
		wantError(t, tc.what, s, raw, http.StatusBadRequest, tc.field)
	}
	s, raw = e.Do(http.MethodPatch, "/api/v1/queues/"+billing.ID, map[string]any{"overflow": map[string]any{"out_of_hours": map[string]any{"action": "transfer", "queue": billing.ID}}})
	wantError(t, "transfer to itself", s, raw, http.StatusBadRequest, "overflow.out_of_hours.queue")
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/queues", nil, &list)
	if len(list.Data) != 2 {
		t.Errorf("queues after refusals: %+v", list.Data)
	}

	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/queues/no-such-queue"},
		{http.MethodPatch, "/api/v1/queues/no-such-queue"},
		{http.MethodDelete, "/api/v1/queues/no-such-queue"},
	} {
		var body any
		if r.method == http.MethodPatch {
			body = map[string]any{"name": "x"}
		}
		s, raw := e.Do(r.method, r.path, body)
		wantError(t, r.method+" unknown queue", s, raw, http.StatusNotFound, "")
	}

	// Night is Billing's transfer target no more: it may go.
	doJSON(t, e, http.StatusNoContent, http.MethodDelete, "/api/v1/queues/"+night.ID, nil, nil)
	s, raw = e.Do(http.MethodGet, "/api/v1/queues/"+night.ID, nil)
	wantError(t, "deleted queue", s, raw, http.StatusNotFound, "")
}

func TestQueueMembershipAPI(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	billing, sales := createQueue(t, e, "Billing", 2), createQueue(t, e, "Sales", 1)
	ada, bob := e.CreateAgent("Ada", "ada@example.com"), e.CreateAgent("Bob", "bob@example.com")

	var q queue
	for range 2 { // idempotent
		doJSON(t, e, http.StatusOK, http.MethodPut, "/api/v1/queues/"+billing.ID+"/agents/"+ada.ID, nil, &q)
	}
	doJSON(t, e, http.StatusOK, http.MethodPut, "/api/v1/queues/"+billing.ID+"/agents/"+bob.ID, nil, &q)
	doJSON(t, e, http.StatusOK, http.MethodPut, "/api/v1/queues/"+sales.ID+"/agents/"+ada.ID, nil, nil)
	members := []string{ada.ID, bob.ID}
	slices.Sort(members)
	if !slices.Equal(q.Agents, members) {
		t.Errorf("members = %v, want %v", q.Agents, members)
	}
	var a agent
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/agents/"+ada.ID, nil, &a)
	if !slices.Equal(a.Queues, []string{sales.ID, billing.ID}) {
		t.Errorf("ada's queues = %v, want [Sales Billing] (priority order)", a.Queues)
	}
	var agents struct{ Data []agent }
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/agents", nil, &agents)
	for _, ag := range agents.Data {
		want := map[string][]string{ada.ID: {sales.ID, billing.ID}, bob.ID: {billing.ID}}[ag.ID]
		if !slices.Equal(ag.Queues, want) {
			t.Errorf("list: %s's queues = %v, want %v", ag.Name, ag.Queues, want)
		}
	}

	for range 2 { // idempotent
		doJSON(t, e, http.StatusOK, http.MethodDelete, "/api/v1/queues/"+billing.ID+"/agents/"+ada.ID, nil, &q)
	}
	if !slices.Equal(q.Agents, []string{bob.ID}) {
		t.Errorf("members after removing ada = %v, want [bob]", q.Agents)
	}
	for _, r := range []struct{ method, path, what string }{
		{http.MethodPut, "/api/v1/queues/" + billing.ID + "/agents/no-such-agent", "agent"},
		{http.MethodPut, "/api/v1/queues/no-such-queue/agents/" + ada.ID, "queue"},
		{http.MethodDelete, "/api/v1/queues/" + billing.ID + "/agents/no-such-agent", "agent"},
		{http.MethodDelete, "/api/v1/queues/no-such-queue/agents/" + ada.ID, "queue"},
	} {
		s, raw := e.Do(r.method, r.path, nil)
		wantError(t, r.method+" "+r.path, s, raw, http.StatusNotFound, "")
		if !strings.Contains(string(raw), r.what) {
			t.Errorf("%s %s: %s does not name the %s", r.method, r.path, raw, r.what)
		}
	}
	// Agents may not manage queues, not even their own membership.
	s, raw := e.DoWithKey(ada.Key, http.MethodPut, "/api/v1/queues/"+billing.ID+"/agents/"+ada.ID, nil)
	wantError(t, "agent joining a queue", s, raw, http.StatusForbidden, "")
}

func TestDeleteQueueInUseAPI(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	general, billing, night := createQueue(t, e, "General", 3), createQueue(t, e, "Billing", 1), createQueue(t, e, "Night", 2)
	doJSON(t, e, http.StatusOK, http.MethodPatch, "/api/v1/queues/"+billing.ID,
		map[string]any{"overflow": map[string]any{"while_queued": map[string]any{"after": "1h", "action": "transfer", "queue": night.ID}}}, nil)
	var ws workstream
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Support", "page": page.ID,
		"distribution": map[string]any{"mode": "push", "fallback_queue": general.ID, "routing_rules": []any{
			map[string]any{"name": "invoices", "queue": billing.ID, "conditions": []any{map[string]any{"field": "first_message", "operator": "contains", "value": "invoice"}}},
		}}}, &ws)

	for _, tc := range []struct {
		q     queue
		words []string
	}{
		{general, []string{"fallback queue", "Support"}},
		{billing, []string{"routing rule", "invoices", "Support"}},
		{night, []string{"while_queued", "Billing"}},
	} {
		s, raw := e.Do(http.MethodDelete, "/api/v1/queues/"+tc.q.ID, nil)
		wantError(t, "delete "+tc.q.Name, s, raw, http.StatusConflict, "")
		for _, w := range tc.words {
			if !strings.Contains(string(raw), w) {
				t.Errorf("delete %s: %s does not say %q", tc.q.Name, raw, w)
			}
		}
	}
	var list struct{ Data []queue }
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/queues", nil, &list)
	if len(list.Data) != 3 {
		t.Errorf("queues after refused deletions: %d, want 3", len(list.Data))
	}
}

func TestWorkstreamDistributionAPI(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	page2 := e.CreatePage(acct, "200000000000052", "Acme Sales", "EAApage-token-for-api-tests-sales-0123")
	general, billing := createQueue(t, e, "General", 2), createQueue(t, e, "Billing", 1)

	// Routing off by default: distribution null.
	var w workstream
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Support", "page": page.ID}, &w)
	if w.Distribution != nil {
		t.Errorf("new workstream: distribution %+v, want null", w.Distribution)
	}
	if s, raw := e.Do(http.MethodGet, "/api/v1/workstreams/"+w.ID, nil); s != http.StatusOK || !strings.Contains(string(raw), `"distribution":null`) {
		t.Errorf("GET: %d %s, want distribution null", s, raw)
	}

	// On: omitted settings take the defaults.
	rules := []any{
		map[string]any{"name": "invoices", "queue": billing.ID, "conditions": []any{
			map[string]any{"field": "first_message", "operator": "contains", "value": "invoice"},
			map[string]any{"field": "locale", "operator": "in", "values": []string{"fr_FR", "fr_CA"}},
		}},
		map[string]any{"name": "ads", "queue": billing.ID, "conditions": []any{map[string]any{"field": "referral.ref", "operator": "exists"}}},
	}
	doJSON(t, e, http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+w.ID,
		map[string]any{"distribution": map[string]any{"mode": "push", "fallback_queue": general.ID, "routing_rules": rules}}, &w)
	d := w.Distribution
	if d == nil || d.Mode != "push" || d.CapacityUnits != 1 || !slices.Equal(d.AllowedPresences, []string{"available", "busy"}) ||
		d.KeepSameAgent.Enabled || d.KeepSameAgent.Wait != "0s" || d.BlockCapacityDuringWrapUp.Mode != "always" ||
		d.BlockCapacityDuringWrapUp.Duration != "" || d.OfferTimeout != "2m0s" || d.MissedOfferPresence != "" || d.FallbackQueue != general.ID {
		t.Errorf("distribution with defaults = %+v", d)
	}
	wantRules := []routingRule{
		{Name: "invoices", Queue: billing.ID, Conditions: []routingCondition{{Field: "first_message", Operator: "contains", Value: "invoice"}, {Field: "locale", Operator: "in", Values: []string{"fr_FR", "fr_CA"}}}},
		{Name: "ads", Queue: billing.ID, Conditions: []routingCondition{{Field: "referral.ref", Operator: "exists"}}},
	}
	if d != nil && !reflect.DeepEqual(d.RoutingRules, wantRules) {
		t.Errorf("rules = %+v\nwant %+v", d.RoutingRules, wantRules)
	}
	var got workstream
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/workstreams/"+w.ID, nil, &got)
	if !reflect.DeepEqual(got, w) {
		t.Errorf("GET = %+v\nwant %+v", got, w)
	}

	// Other settings leave it alone; a distribution replaces it whole (mode may be omitted).
	doJSON(t, e, http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+w.ID, map[string]any{"name": "Support FR"}, &got)
	if !reflect.DeepEqual(got.Distribution, w.Distribution) {
		t.Errorf("a name change changed the distribution: %+v", got.Distribution)
	}
	full := map[string]any{"capacity_units": 2, "allowed_presences": []string{"available"},
		"keep_same_agent": map[string]any{"enabled": true, "wait": "5m"}, "block_capacity_during_wrap_up": map[string]any{"mode": "duration", "duration": "90s"},
		"offer_timeout": "30s", "missed_offer_presence": "inactive", "fallback_queue": billing.ID}
	doJSON(t, e, http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+w.ID, map[string]any{"distribution": full}, &got)
	d = got.Distribution
	if d == nil || d.Mode != "push" || d.CapacityUnits != 2 || !slices.Equal(d.AllowedPresences, []string{"available"}) ||
		!d.KeepSameAgent.Enabled || d.KeepSameAgent.Wait != "5m0s" || d.BlockCapacityDuringWrapUp.Mode != "duration" ||
		d.BlockCapacityDuringWrapUp.Duration != "1m30s" || d.OfferTimeout != "30s" || d.MissedOfferPresence != "inactive" ||
		d.FallbackQueue != billing.ID || d.RoutingRules == nil || len(d.RoutingRules) != 0 {
		t.Errorf("replaced distribution = %+v", d)
	}

	// The mode is fixed.
	s, raw := e.Do(http.MethodPatch, "/api/v1/workstreams/"+w.ID, map[string]any{"distribution": map[string]any{"mode": "pick", "fallback_queue": general.ID}})
	wantError(t, "mode change", s, raw, http.StatusConflict, "")
	if !strings.Contains(string(raw), "distribution.mode") {
		t.Errorf("mode change: %s does not say why", raw)
	}
	// null turns routing off (no conversation waits); then any mode may be chosen.
	doJSON(t, e, http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+w.ID, map[string]any{"distribution": nil}, &got)
	if got.Distribution != nil {
		t.Errorf("after distribution null: %+v", got.Distribution)
	}
	doJSON(t, e, http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+w.ID, map[string]any{"distribution": map[string]any{"mode": "pick", "fallback_queue": general.ID}}, &got)
	if got.Distribution == nil || got.Distribution.Mode != "pick" {
		t.Errorf("on again with pick: %+v", got.Distribution)
	}

	// Each invalid field is named; page2 is free, so nothing else is wrong.
	dist := func(change map[string]any) map[string]any {
		d := map[string]any{"mode": "push", "fallback_queue": general.ID}
		for k, v := range change {
			d[k] = v
		}
		return map[string]any{"name": "Sales", "page": page2.ID, "distribution": d}
	}
	rule := func(cond map[string]any) []any {
		return []any{
			map[string]any{"name": "ok", "queue": billing.ID, "conditions": []any{map[string]any{"field": "psid", "operator": "equals", "value": "1"}}},
			map[string]any{"name": "broken", "queue": billing.ID, "conditions": []any{map[string]any{"field": "page", "operator": "exists"}, cond}},
		}
	}
	for _, tc := range []struct {
		what  string
		body  any
		field string
	}{
		{"distribution as a string", map[string]any{"name": "Sales", "page": page2.ID, "distribution": "push"}, "distribution"},
		{"unknown distribution field", dist(map[string]any{"colour": "red"}), "distribution.colour"},
		{"no mode", dist(map[string]any{"mode": nil}), "distribution.mode"},
		{"mode", dist(map[string]any{"mode": "broadcast"}), "distribution.mode"},
		{"capacity_units as a string", dist(map[string]any{"capacity_units": "one"}), "distribution.capacity_units"},
		{"capacity_units too high", dist(map[string]any{"capacity_units": 101}), "distribution.capacity_units"},
		{"allowed_presences as a string", dist(map[string]any{"allowed_presences": "available"}), "distribution.allowed_presences"},
		{"allowed presence", dist(map[string]any{"allowed_presences": []string{"available", "asleep"}}), "distribution.allowed_presences[1]"},
		{"keep_same_agent.wait", dist(map[string]any{"keep_same_agent": map[string]any{"enabled": true, "wait": "a while"}}), "distribution.keep_same_agent.wait"},
		{"keep_same_agent unknown field", dist(map[string]any{"keep_same_agent": map[string]any{"agent": "ada"}}), "distribution.keep_same_agent.agent"},
		{"wrap-up mode", dist(map[string]any{"block_capacity_during_wrap_up": map[string]any{"mode": "sometimes"}}), "distribution.block_capacity_during_wrap_up.mode"},
		{"wrap-up duration", dist(map[string]any{"block_capacity_during_wrap_up": map[string]any{"mode": "duration", "duration": "5s"}}), "distribution.block_capacity_during_wrap_up.duration"},
		{"offer_timeout", dist(map[string]any{"offer_timeout": "two minutes"}), "distribution.offer_timeout"},
		{"offer_timeout too long", dist(map[string]any{"offer_timeout": "3h"}), "distribution.offer_timeout"},
		{"missed_offer_presence", dist(map[string]any{"missed_offer_presence": "offline_forever"}), "distribution.missed_offer_presence"},
		{"no fallback queue", dist(map[string]any{"fallback_queue": nil}), "distribution.fallback_queue"},
		{"unknown fallback queue", dist(map[string]any{"fallback_queue": "nope"}), "distribution.fallback_queue"},
		{"routing_rules as an object", dist(map[string]any{"routing_rules": map[string]any{}}), "distribution.routing_rules"},
		{"unknown rule field", dist(map[string]any{"routing_rules": []any{map[string]any{"name": "x", "queue": billing.ID, "then": "go"}}}), "distribution.routing_rules[0].then"},
		{"rule to an unknown queue", dist(map[string]any{"routing_rules": []any{map[string]any{"name": "x", "queue": "nope", "conditions": []any{}}}}), "distribution.routing_rules[0].queue"},
		{"unknown condition field key", dist(map[string]any{"routing_rules": rule(map[string]any{"field": "psid", "operator": "equals", "value": "1", "negate": true})}), "distribution.routing_rules[1].conditions[1].negate"},
		{"unknown operator", dist(map[string]any{"routing_rules": rule(map[string]any{"field": "locale", "operator": "sounds_like", "value": "fr"})}), "distribution.routing_rules[1].conditions[1].operator"},
		{"unknown field", dist(map[string]any{"routing_rules": rule(map[string]any{"field": "shoe_size", "operator": "equals", "value": "42"})}), "distribution.routing_rules[1].conditions[1].field"},
		{"bad regular expression", dist(map[string]any{"routing_rules": rule(map[string]any{"field": "first_message", "operator": "matches", "value": "(unclosed"})}), "distribution.routing_rules[1].conditions[1].value"},
		{"values as a string", dist(map[string]any{"routing_rules": rule(map[string]any{"field": "locale", "operator": "in", "values": "fr_FR"})}), "distribution.routing_rules[1].conditions[1].values"},
	} {
		s, raw := e.Do(http.MethodPost, "/api/v1/workstreams", tc.body)
		wantError(t, tc.what, s, raw, http.StatusBadRequest, tc.field)
	}
	var list struct{ Data []workstream }
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/workstreams", nil, &list)
	if len(list.Data) != 1 {
		t.Errorf("workstreams after refusals: %d, want 1", len(list.Data))
	}
	// The same checks on PATCH.
	s, raw = e.Do(http.MethodPatch, "/api/v1/workstreams/"+w.ID, map[string]any{"distribution": map[string]any{"fallback_queue": general.ID,
		"routing_rules": rule(map[string]any{"field": "locale", "operator": "like", "value": "fr"})}})
	wantError(t, "PATCH unknown operator", s, raw, http.StatusBadRequest, "distribution.routing_rules[1].conditions[1].operator")
}

func TestAgentSelfAndPresenceAPI(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	ada, bob := e.CreateAgent("Ada", "ada@example.com"), e.CreateAgent("Bob", "bob@example.com")
	var sup issuedKey
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/api-keys", map[string]string{"name": "sup", "role": "supervisor"}, &sup)
	do := func(key, method, path string, body any, want int) []byte {
		t.Helper()
		s, raw := e.DoWithKey(key, method, path, body)
		if s != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, s, raw, want)
		}
		return raw
	}

	// An agent reads itself, not others.
	var self agent
	strictDecode(t, "self", do(ada.Key, http.MethodGet, "/api/v1/agents/"+ada.ID, nil, http.StatusOK), &self)
	if self.ID != ada.ID || self.Presence != "offline" || self.ChosenPresence != "offline" {
		t.Errorf("self = %+v", self)
	}
	s, raw := e.DoWithKey(ada.Key, http.MethodGet, "/api/v1/agents/"+bob.ID, nil)
	wantError(t, "agent reading another", s, raw, http.StatusForbidden, "")

	// Presence: the agent itself, or an admin.
	var a agent
	strictDecode(t, "presence", do(ada.Key, http.MethodPut, "/api/v1/agents/"+ada.ID+"/presence", map[string]string{"presence": "available"}, http.StatusOK), &a)
	if a.Presence != "available" || a.ChosenPresence != "available" || a.PresenceChangedAt == nil {
		t.Errorf("after available: %+v", a)
	}
	s, raw = e.DoWithKey(bob.Key, http.MethodPut, "/api/v1/agents/"+ada.ID+"/presence", map[string]string{"presence": "offline"})
	wantError(t, "agent setting another's presence", s, raw, http.StatusForbidden, "")
	s, raw = e.DoWithKey(sup.Secret, http.MethodPut, "/api/v1/agents/"+ada.ID+"/presence", map[string]string{"presence": "offline"})
	wantError(t, "supervisor setting a presence", s, raw, http.StatusForbidden, "")
	strictDecode(t, "admin presence", do(e.AdminKey, http.MethodPut, "/api/v1/agents/"+ada.ID+"/presence", map[string]string{"presence": "away"}, http.StatusOK), &a)
	if a.Presence != "away" || a.ChosenPresence != "away" {
		t.Errorf("after the admin's away: %+v", a)
	}
	for _, tc := range []struct {
		what  string
		body  any
		field string
	}{
		{"no presence", map[string]any{}, "presence"},
		{"inactive (the system's)", map[string]any{"presence": "inactive"}, "presence"},
		{"unknown presence", map[string]any{"presence": "lunch"}, "presence"},
		{"presence as a number", map[string]any{"presence": 1}, "presence"},
		{"unknown field", map[string]any{"presence": "busy", "until": "5pm"}, "until"},
	} {
		s, raw := e.DoWithKey(ada.Key, http.MethodPut, "/api/v1/agents/"+ada.ID+"/presence", tc.body)
		wantError(t, tc.what, s, raw, http.StatusBadRequest, tc.field)
	}
	s, raw = e.Do(http.MethodPut, "/api/v1/agents/no-such-agent/presence", map[string]string{"presence": "away"})
	wantError(t, "presence of an unknown agent", s, raw, http.StatusNotFound, "")

	// Capacity and skills: admins only.
	var u agent
	doJSON(t, e, http.StatusOK, http.MethodPatch, "/api/v1/agents/"+ada.ID, map[string]any{"name": "Ada L.", "capacity_units": 5, "skills": []string{"billing", "fr"}}, &u)
	if u.Name != "Ada L." || u.CapacityUnits != 5 || !slices.Equal(u.Skills, []string{"billing", "fr"}) || u.Email != "ada@example.com" {
		t.Errorf("patched = %+v", u)
	}
	s, raw = e.DoWithKey(ada.Key, http.MethodPatch, "/api/v1/agents/"+ada.ID, map[string]any{"capacity_units": 50})
	wantError(t, "agent raising its own capacity", s, raw, http.StatusForbidden, "")
	for _, tc := range []struct {
		what  string
		body  any
		field string
	}{
		{"blank name", map[string]any{"name": " "}, "name"},
		{"negative capacity", map[string]any{"capacity_units": -1}, "capacity_units"},
		{"capacity too high", map[string]any{"capacity_units": 101}, "capacity_units"},
		{"capacity as a string", map[string]any{"capacity_units": "3"}, "capacity_units"},
		{"skills as a string", map[string]any{"skills": "billing"}, "skills"},
		{"blank skill", map[string]any{"skills": []string{"billing", ""}}, "skills[1]"},
		{"duplicate skill", map[string]any{"skills": []string{"billing", "BILLING"}}, "skills[1]"},
		{"long skill", map[string]any{"skills": []string{strings.Repeat("x", 51)}}, "skills[0]"},
		{"email", map[string]any{"email": "new@example.com"}, "email"},
	} {
		s, raw := e.Do(http.MethodPatch, "/api/v1/agents/"+ada.ID, tc.body)
		wantError(t, tc.what, s, raw, http.StatusBadRequest, tc.field)
	}
	s, raw = e.Do(http.MethodPatch, "/api/v1/agents/no-such-agent", map[string]any{"capacity_units": 2})
	wantError(t, "unknown agent", s, raw, http.StatusNotFound, "")
}

// inProcess is the API over a store of its own, with hooks the full app
// does not set.
type inProcess struct {
	t     *testing.T
	url   string
	admin string
	st    *store.Store
}

func newInProcess(t *testing.T, opts api.Options) *inProcess {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "parley.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	opts.Store, opts.AdminAPIKey = st, "pk_admin_in_process_0123456789abcdef"
	srv := httptest.NewServer(api.New(opts))
	t.Cleanup(srv.Close)
	return &inProcess{t: t, url: srv.URL, admin: opts.AdminAPIKey, st: st}
}

// do calls the API with key and checks the exchange against the OpenAPI document.
func (p *inProcess) do(key, method, path string, body any) (int, []byte) {
	p.t.Helper()
	var sent []byte
	var rd io.Reader
	if body != nil {
		var err error
		if sent, err = json.Marshal(body); err != nil {
			p.t.Fatal(err)
		}
		rd = bytes.NewReader(sent)
	}
	req, err := http.NewRequest(method, p.url+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	validateExchange(p.t, req, sent, resp.StatusCode, resp.Header, raw)
	return resp.StatusCode, raw
}

// Presence, capacity and membership changes trigger distribution at once;
// when the trigger fails, the answer is 503 and the change is saved.
func TestAgentChangesTriggerDistribution(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	var fail bool
	p := newInProcess(t, api.Options{OnAgentChanged: func(ctx context.Context, agentID string) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, agentID)
		if fail {
			return errors.New("temporal unreachable")
		}
		return nil
	}})
	ctx := context.Background()
	ada, err := p.st.CreateAgent(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, adaKey, err := p.st.CreateAPIKey(ctx, "ada", api.RoleAgent, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	q, err := p.st.CreateQueue(ctx, store.Queue{Name: "Billing", Priority: 1})
	if err != nil {
		t.Fatal(err)
	}
	takeCalls := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := calls
		calls = nil
		return out
	}
	for _, r := range []struct {
		key, method, path string
		body              any
		calls             int
	}{
		{adaKey, http.MethodPut, "/api/v1/agents/" + ada.ID + "/presence", map[string]string{"presence": "available"}, 1},
		{p.admin, http.MethodPatch, "/api/v1/agents/" + ada.ID, map[string]any{"capacity_units": 5}, 1},
		{p.admin, http.MethodPatch, "/api/v1/agents/" + ada.ID, map[string]any{"skills": []string{"fr"}}, 0},
		{p.admin, http.MethodPut, "/api/v1/queues/" + q.ID + "/agents/" + ada.ID, nil, 1},
		{p.admin, http.MethodDelete, "/api/v1/queues/" + q.ID + "/agents/" + ada.ID, nil, 1},
	} {
		if s, raw := p.do(r.key, r.method, r.path, r.body); s != http.StatusOK {
			t.Fatalf("%s %s: %d %s", r.method, r.path, s, raw)
		}
		if got := takeCalls(); len(got) != r.calls || (r.calls == 1 && got[0] != ada.ID) {
			t.Errorf("%s %s: hook calls %v, want %d for %s", r.method, r.path, got, r.calls, ada.ID)
		}
	}

	mu.Lock()
	fail = true
	mu.Unlock()
	for _, r := range []struct {
		key, method, path string
		body              any
	}{
		{adaKey, http.MethodPut, "/api/v1/agents/" + ada.ID + "/presence", map[string]string{"presence": "busy"}},
		{p.admin, http.MethodPatch, "/api/v1/agents/" + ada.ID, map[string]any{"capacity_units": 2}},
		{p.admin, http.MethodPut, "/api/v1/queues/" + q.ID + "/agents/" + ada.ID, nil},
	} {
		s, raw := p.do(r.key, r.method, r.path, r.body)
		wantError(t, r.method+" "+r.path+" with a failing trigger", s, raw, http.StatusServiceUnavailable, "")
		if !strings.Contains(string(raw), "saved") || strings.Contains(string(raw), "temporal unreachable") {
			t.Errorf("%s %s: %s, want a message saying the change was saved (and no internal cause)", r.method, r.path, raw)
		}
	}
	// Each change was saved.
	a, err := p.st.GetAgent(ctx, ada.ID)
	if err != nil || a.Presence != "busy" || a.CapacityUnits != 2 {
		t.Errorf("agent after failed triggers = %+v, %v; want busy, capacity 2", a, err)
	}
	if ids, err := p.st.QueueIDsOfAgent(ctx, ada.ID); err != nil || !slices.Equal(ids, []string{q.ID}) {
		t.Errorf("queues after a failed trigger = %v, %v; want [%s]", ids, err, q.ID)
	}
}
