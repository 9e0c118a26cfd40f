package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"parley/testenv"
)

// Automated messages' variables are checked on save (400 naming the
// trigger's field and the variable), translations are keyed by canonical
// language codes, and GET shows them.
func TestWorkstreamAutomatedMessagesVariablesAndTranslations(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)

	msgs := func(trigger string, m map[string]any) map[string]any {
		return map[string]any{"name": "Support", "page": page.ID, "automated_messages": map[string]any{trigger: m}}
	}
	for _, tc := range []struct {
		what, field, variable string
		body                  any
	}{
		{"unknown variable in a text", "automated_messages.greeting.text", "{name}",
			msgs("greeting", map[string]any{"enabled": true, "text": "Hello {name}!"})},
		{"unknown variable in a translation", "automated_messages.agent_assigned.translations.fr", "{agent_name}",
			msgs("agent_assigned", map[string]any{"enabled": true, "text": "{agent} is here", "translations": map[string]any{"fr": "{agent_name} est là"}})},
		{"translation keyed by no language", "automated_messages.greeting.translations.french", "",
			msgs("greeting", map[string]any{"enabled": true, "text": "Hi", "translations": map[string]any{"french": "Salut"}})},
		{"step on another trigger", "automated_messages.greeting", "",
			msgs("greeting", map[string]any{"step": 2})},
		{"negative step", "automated_messages.queue_position.step", "",
			msgs("queue_position", map[string]any{"step": -1})},
	} {
		s, raw := e.Do(http.MethodPost, "/api/v1/workstreams", tc.body)
		wantError(t, tc.what, s, raw, http.StatusBadRequest, tc.field)
		if tc.variable != "" && !strings.Contains(string(raw), tc.variable) {
			t.Errorf("%s: error %s does not name the variable %s", tc.what, raw, tc.variable)
		}
	}

	text := "Hello {first_name}, you are number {position} in {queue}: about {wait}; we are open {hours}. {agent}"
	body := msgs("queue_position", map[string]any{"enabled": true, "text": text,
		"translations": map[string]any{"FR-ca": "Bonjour {first_name}", "de": "Hallo {first_name}"}, "step": 3, "every_minutes": 5})
	s, raw := e.Do(http.MethodPost, "/api/v1/workstreams", body)
	if s != http.StatusCreated {
		t.Fatalf("create: %d %s", s, raw)
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &created); err != nil {
		t.Fatal(err)
	}
	s, raw = e.Do(http.MethodGet, "/api/v1/workstreams/"+created.ID, nil)
	if s != http.StatusOK {
		t.Fatalf("get: %d %s", s, raw)
	}
	var got struct {
		AutomatedMessages map[string]struct {
			Enabled      bool              `json:"enabled"`
			Text         string            `json:"text"`
			Translations map[string]string `json:"translations"`
			Step         int               `json:"step"`
			EveryMinutes int               `json:"every_minutes"`
		} `json:"automated_messages"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	m := got.AutomatedMessages["queue_position"]
	if !m.Enabled || m.Text != text || m.Translations["fr-CA"] != "Bonjour {first_name}" || m.Translations["de"] != "Hallo {first_name}" ||
		len(m.Translations) != 2 || m.Step != 3 || m.EveryMinutes != 5 {
		t.Errorf("GET shows queue_position %+v", m)
	}
	for _, trigger := range []string{"greeting", "holiday", "transfer_accepted"} {
		if _, ok := got.AutomatedMessages[trigger]; !ok {
			t.Errorf("GET does not list the %s trigger: %s", trigger, raw)
		}
	}

	// PATCH of the text alone keeps the translations; an unknown variable is refused.
	s, raw = e.Do(http.MethodPatch, "/api/v1/workstreams/"+created.ID, map[string]any{
		"automated_messages": map[string]any{"queue_position": map[string]any{"text": "You are number {postion}"}}})
	wantError(t, "patch with a misspelt variable", s, raw, http.StatusBadRequest, "automated_messages.queue_position.text")
	if !strings.Contains(string(raw), "{postion}") {
		t.Errorf("patch error %s does not name {postion}", raw)
	}
}
