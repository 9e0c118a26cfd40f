package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// An unknown {variable}, in a text or a translation, is refused with an
// error naming it and the trigger; translations are stored by canonical
// language and read back.
func TestAutomatedMessageVariablesAndTranslations(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p := conversationFixture(t, s, "911")
		for _, tc := range []struct {
			what, want string
			m          map[string]AutomatedMessage
		}{
			{"unknown variable", "{name}", map[string]AutomatedMessage{TriggerGreeting: {Enabled: true, Text: "Hello {name}"}}},
			{"unknown variable in a translation", "{agent_name}", map[string]AutomatedMessage{
				TriggerAgentAssigned: {Enabled: true, Text: "{agent}", Translations: map[string]string{"fr": "{agent_name}"}}}},
			{"bad translation language", "french", map[string]AutomatedMessage{
				TriggerGreeting: {Text: "Hi", Translations: map[string]string{"french": "Salut"}}}},
			{"translation given twice", "fr-CA", map[string]AutomatedMessage{
				TriggerGreeting: {Text: "Hi", Translations: map[string]string{"fr-CA": "Salut", "FR-ca": "Allô"}}}},
			{"step on another trigger", TriggerGreeting, map[string]AutomatedMessage{TriggerGreeting: {Text: "Hi", Step: 2}}},
		} {
			w := newWorkstream("Support", p.ID)
			w.AutomatedMessages = tc.m
			_, err := s.CreateWorkstream(ctx, w)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: CreateWorkstream = %v, want ErrInvalid naming %s", tc.what, err, tc.want)
			}
			for trigger := range tc.m {
				if err != nil && !strings.Contains(err.Error(), trigger) {
					t.Errorf("%s: error %v does not name the trigger %s", tc.what, err, trigger)
				}
			}
		}
		w := newWorkstream("Support", p.ID)
		all := "{first_name} {agent} {queue} {position} {wait} {hours}"
		w.AutomatedMessages = map[string]AutomatedMessage{
			TriggerQueuePosition: {Enabled: true, Text: all, Translations: map[string]string{"FR-ca": "Bonjour {first_name}"}, Step: 2, EveryMinutes: 5},
		}
		created, err := s.CreateWorkstream(ctx, w)
		if err != nil {
			t.Fatalf("CreateWorkstream(every variable) = %v", err)
		}
		got, err := s.GetWorkstream(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		m := got.AutomatedMessages[TriggerQueuePosition]
		if m.Text != all || m.Translations["fr-CA"] != "Bonjour {first_name}" || len(m.Translations) != 1 || m.Step != 2 || m.EveryMinutes != 5 {
			t.Errorf("read back %+v", m)
		}
	})
}

func TestMessageTextChoosesByLocale(t *testing.T) {
	tr := map[string]string{"fr": "Bonjour", "fr-CA": "Allô", "pt-BR": "Olá", "es-ES": "Hola"}
	for _, tc := range []struct{ locale, want string }{
		{"fr_CA", "Allô"},    // exact, Meta's form
		{"fr-CA", "Allô"},    // exact
		{"fr_FR", "Bonjour"}, // language prefix
		{"fr", "Bonjour"},
		{"pt_PT", "Olá"},   // another region of the language
		{"es", "Hola"},     // only a regional translation
		{"de_DE", "Hello"}, // none: the workstream's language
		{"", "Hello"},      // locale unknown
		{"not a locale", "Hello"},
	} {
		if got := MessageText("Hello", tr, tc.locale); got != tc.want {
			t.Errorf("MessageText(%q) = %q, want %q", tc.locale, got, tc.want)
		}
	}
	if got := MessageText("Hello", nil, "fr_FR"); got != "Hello" {
		t.Errorf("MessageText(no translations) = %q", got)
	}
}

func TestFillVariables(t *testing.T) {
	vars := map[string]string{VarFirstName: "Ada", VarQueue: "Billing", VarPosition: "3", VarWait: "5 min", VarHours: "24/7", VarAgent: "Tom"}
	text := "Hi {first_name}: {agent}, {queue} #{position}, {wait}, {hours}."
	if got, want := FillVariables(text, vars), "Hi Ada: Tom, Billing #3, 5 min, 24/7."; got != want {
		t.Errorf("FillVariables = %q, want %q", got, want)
	}
	// Unknown values are left out with the space before them, never named.
	if got, want := FillVariables("Hello {first_name}! Hello {first_name}, welcome.", map[string]string{}), "Hello! Hello, welcome."; got != want {
		t.Errorf("FillVariables(no name) = %q, want %q", got, want)
	}
	if got, want := FillVariables("{first_name}, you are number {position}. Thanks, {first_name}!", map[string]string{VarPosition: "2"}),
		"You are number 2. Thanks!"; got != want {
		t.Errorf("FillVariables(no name, comma) = %q, want %q", got, want)
	}
	if got := FillVariables("{not_a_variable} stays", nil); got != "{not_a_variable} stays" {
		t.Errorf("FillVariables(not a variable) = %q", got)
	}
	if v := UnknownVariable("{first_name} {oops} {queue}"); v != "oops" {
		t.Errorf("UnknownVariable = %q, want oops", v)
	}
	if v := UnknownVariable("no {} braces {first_name}"); v != "" {
		t.Errorf("UnknownVariable(empty braces) = %q", v)
	}
}
