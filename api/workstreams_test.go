package api_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"parley/store"
	"parley/testenv"
)

type automatedMessage struct {
	Enabled bool   `json:"enabled"`
	Text    string `json:"text"`
}

// workstream is the workstream JSON; strictDecode fails on any other key.
type workstream struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Page          string `json:"page"`
	Language      string `json:"language"`
	HumanAgentTag bool   `json:"human_agent_tag"`
	Attachments   struct {
		Customer bool `json:"customer"`
		Agent    bool `json:"agent"`
	} `json:"attachments"`
	AutoCreateContacts bool `json:"auto_create_contacts"`
	StandbyOpens       bool `json:"standby_opens_conversations"`
	AutoClose          struct {
		Open    string `json:"open"`
		Active  string `json:"active"`
		Waiting string `json:"waiting"`
	} `json:"auto_close"`
	WrapUpDuration    string                      `json:"wrap_up_duration"`
	AutomatedMessages map[string]automatedMessage `json:"automated_messages"`
	Distribution      *distribution               `json:"distribution"`
	CreatedAt         time.Time                   `json:"created_at"`
	UpdatedAt         time.Time                   `json:"updated_at"`
}

// strictDecode decodes raw into out, refusing unknown fields.
func strictDecode(t *testing.T, what string, raw []byte, out any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("%s: decode %s: %v", what, raw, err)
	}
}

// doJSON calls the API with the admin key, wants status and decodes strictly.
func doJSON(t *testing.T, e *testenv.Env, want int, method, path string, body, out any) {
	t.Helper()
	status, raw := e.Do(method, path, body)
	if status != want {
		t.Fatalf("%s %s: got %d, want %d: %s", method, path, status, want, raw)
	}
	if out != nil {
		strictDecode(t, method+" "+path, raw, out)
	}
}

func TestWorkstreamsAPI(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	page2 := e.CreatePage(acct, "200000000000052", "Acme Sales", "EAApage-token-for-api-tests-sales-0123")

	// Only name and page: every setting takes DefaultWorkstream's value.
	var w workstream
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Support", "page": page.ID}, &w)
	want := w
	want.Name, want.Page, want.Language, want.HumanAgentTag = "Support", page.ID, "en", false
	want.Attachments.Customer, want.Attachments.Agent = true, true
	want.AutoClose.Open, want.AutoClose.Active, want.AutoClose.Waiting = "720h0m0s", "720h0m0s", "168h0m0s"
	want.WrapUpDuration = "24h0m0s"
	want.AutomatedMessages = map[string]automatedMessage{}
	for _, trigger := range store.Triggers() {
		want.AutomatedMessages[trigger] = automatedMessage{} // every known trigger is listed
	}
	if w.ID == "" || w.CreatedAt.IsZero() || !w.UpdatedAt.Equal(w.CreatedAt) || !reflect.DeepEqual(w, want) {
		t.Errorf("created with defaults: %+v\nwant %+v", w, want)
	}

	s, raw := e.Do(http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Support again", "page": page.ID})
	wantError(t, "second workstream for a page", s, raw, http.StatusConflict, "")

	// Each invalid field is named by its dotted path; page2 is free, so
	// nothing else is wrong with these bodies.
	valid := func(extra map[string]any) map[string]any {
		body := map[string]any{"name": "Sales", "page": page2.ID}
		for k, v := range extra {
			body[k] = v
		}
		return body
	}
	for _, tc := range []struct {
		what  string
		body  any
		field string
	}{
		{"no name", map[string]any{"page": page2.ID}, "name"},
		{"blank name", valid(map[string]any{"name": "  "}), "name"},
		{"name as a number", valid(map[string]any{"name": 7}), "name"},
		{"no page", map[string]any{"name": "Sales"}, "page"},
		{"unknown page", valid(map[string]any{"page": "no-such-page"}), "page"},
		{"language", valid(map[string]any{"language": "english"}), "language"},
		{"language with a long region", valid(map[string]any{"language": "en-USA"}), "language"},
		{"human_agent_tag as a string", valid(map[string]any{"human_agent_tag": "yes"}), "human_agent_tag"},
		{"attachments as a number", valid(map[string]any{"attachments": 5}), "attachments"},
		{"attachments.customer as a string", valid(map[string]any{"attachments": map[string]any{"customer": "no"}}), "attachments.customer"},
		{"unknown attachments field", valid(map[string]any{"attachments": map[string]any{"fax": true}}), "attachments.fax"},
		{"auto_close.open", valid(map[string]any{"auto_close": map[string]any{"open": "forever"}}), "auto_close.open"},
		{"auto_close.active negative", valid(map[string]any{"auto_close": map[string]any{"active": "-1h"}}), "auto_close.active"},
		{"auto_close.waiting as a number", valid(map[string]any{"auto_close": map[string]any{"waiting": 3600}}), "auto_close.waiting"},
		{"auto_close.open in microseconds", valid(map[string]any{"auto_close": map[string]any{"open": "1500us"}}), "auto_close.open"},
		{"unknown auto_close state", valid(map[string]any{"auto_close": map[string]any{"closed": "1h"}}), "auto_close.closed"},
		{"wrap_up_duration", valid(map[string]any{"wrap_up_duration": "1 day"}), "wrap_up_duration"},
		{"wrap_up_duration negative", valid(map[string]any{"wrap_up_duration": "-5m"}), "wrap_up_duration"},
		{"automated_messages as an array", valid(map[string]any{"automated_messages": []any{}}), "automated_messages"},
		{"unknown trigger", valid(map[string]any{"automated_messages": map[string]any{"goodbye": map[string]any{"enabled": true, "text": "hi"}}}), "automated_messages.goodbye"},
		{"enabled without text", valid(map[string]any{"automated_messages": map[string]any{"conversation_ended": map[string]any{"enabled": true}}}), "automated_messages.conversation_ended.text"},
		{"text too long", valid(map[string]any{"automated_messages": map[string]any{"conversation_ended": map[string]any{"text": strings.Repeat("x", 2001)}}}), "automated_messages.conversation_ended.text"},
		{"enabled as a string", valid(map[string]any{"automated_messages": map[string]any{"conversation_ended": map[string]any{"enabled": "yes"}}}), "automated_messages.conversation_ended.enabled"},
		{"unknown message field", valid(map[string]any{"automated_messages": map[string]any{"conversation_ended": map[string]any{"colour": "red"}}}), "automated_messages.conversation_ended.colour"},
		{"unknown top-level field", valid(map[string]any{"distribution": "push"}), "distribution"},
	} {
		s, raw := e.Do(http.MethodPost, "/api/v1/workstreams", tc.body)
		wantError(t, tc.what, s, raw, http.StatusBadRequest, tc.field)
	}

	// Everything set; language canonicalized.
	var full workstream
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{
		"name": "Sales", "page": page2.ID, "language": "fr-ca", "human_agent_tag": true,
		"attachments":                 map[string]any{"customer": false, "agent": true},
		"auto_create_contacts":        true,
		"standby_opens_conversations": true,
		"auto_close":                  map[string]any{"open": "48h", "active": "0s", "waiting": "90s"},
		"wrap_up_duration":            "1500ms",
		"automated_messages":          map[string]any{"conversation_ended": map[string]any{"enabled": true, "text": "Merci, à bientôt !"}},
	}, &full)
	if full.Language != "fr-CA" || !full.HumanAgentTag || full.Attachments.Customer || !full.Attachments.Agent || !full.AutoCreateContacts || !full.StandbyOpens ||
		full.AutoClose.Open != "48h0m0s" || full.AutoClose.Active != "0s" || full.AutoClose.Waiting != "1m30s" || full.WrapUpDuration != "1.5s" ||
		full.AutomatedMessages["conversation_ended"] != (automatedMessage{Enabled: true, Text: "Merci, à bientôt !"}) {
		t.Errorf("created with every setting: %+v", full)
	}

	var list struct{ Data []workstream }
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/workstreams", nil, &list)
	if len(list.Data) != 2 || !reflect.DeepEqual(list.Data[0], w) || !reflect.DeepEqual(list.Data[1], full) {
		t.Errorf("list = %+v\nwant [%+v %+v]", list.Data, w, full)
	}
	var got workstream
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/workstreams/"+full.ID, nil, &got)
	if !reflect.DeepEqual(got, full) {
		t.Errorf("get = %+v\nwant %+v", got, full)
	}

	// PATCH merges nested objects field by field.
	var patched workstream
	doJSON(t, e, http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+full.ID, map[string]any{
		"automated_messages":   map[string]any{"conversation_ended": map[string]any{"enabled": false}},
		"auto_close":           map[string]any{"waiting": "2h"},
		"language":             "de",
		"auto_create_contacts": false,
	}, &patched)
	want = full
	want.AutomatedMessages = maps.Clone(full.AutomatedMessages)
	want.AutomatedMessages["conversation_ended"] = automatedMessage{Enabled: false, Text: "Merci, à bientôt !"}
	want.AutoClose.Waiting, want.Language, want.UpdatedAt, want.AutoCreateContacts = "2h0m0s", "de", patched.UpdatedAt, false
	if !patched.UpdatedAt.After(full.UpdatedAt) || !reflect.DeepEqual(patched, want) {
		t.Errorf("patched = %+v\nwant %+v", patched, want)
	}
	for _, tc := range []struct {
		what  string
		body  any
		field string
	}{
		{"patch page", map[string]any{"page": page.ID}, "page"},
		{"patch blank name", map[string]any{"name": ""}, "name"},
		{"patch auto_close.open", map[string]any{"name": "Renamed", "auto_close": map[string]any{"open": "soon"}}, "auto_close.open"},
		{"patch unknown trigger", map[string]any{"automated_messages": map[string]any{"bye": map[string]any{}}}, "automated_messages.bye"},
		{"patch enabling without text", map[string]any{"automated_messages": map[string]any{"conversation_ended": map[string]any{"text": "", "enabled": true}}}, "automated_messages.conversation_ended.text"},
	} {
		s, raw := e.Do(http.MethodPatch, "/api/v1/workstreams/"+full.ID, tc.body)
		wantError(t, tc.what, s, raw, http.StatusBadRequest, tc.field)
	}
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/workstreams/"+full.ID, nil, &got)
	if !reflect.DeepEqual(got, patched) {
		t.Errorf("after refused patches = %+v\nwant %+v", got, patched)
	}

	for _, r := range []struct {
		method string
		body   any
	}{{http.MethodGet, nil}, {http.MethodPatch, map[string]any{"name": "x"}}, {http.MethodDelete, nil}} {
		s, raw := e.Do(r.method, "/api/v1/workstreams/no-such-workstream", r.body)
		wantError(t, r.method+" unknown workstream", s, raw, http.StatusNotFound, "")
	}

	// Delete: gone, and the page may get another workstream.
	doJSON(t, e, http.StatusNoContent, http.MethodDelete, "/api/v1/workstreams/"+w.ID, nil, nil)
	s, raw = e.Do(http.MethodGet, "/api/v1/workstreams/"+w.ID, nil)
	wantError(t, "deleted workstream", s, raw, http.StatusNotFound, "")
	s, raw = e.Do(http.MethodDelete, "/api/v1/workstreams/"+w.ID, nil)
	wantError(t, "deleting twice", s, raw, http.StatusNotFound, "")
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/workstreams", nil, &list)
	if len(list.Data) != 1 || list.Data[0].ID != full.ID {
		t.Errorf("list after delete = %+v, want [Sales]", list.Data)
	}
	var again workstream
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Support v2", "page": page.ID}, &again)
	if again.ID == w.ID {
		t.Errorf("new workstream reuses the deleted one's id")
	}
}
