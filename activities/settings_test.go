package activities_test

import (
	"testing"
	"time"

	"parley/activities"
	"parley/store"
)

// The workflow gets every enabled trigger's text, its translations and
// queue_position's rate limits; disabled messages stay out.
func TestSettingsOfCarriesAutomatedMessages(t *testing.T) {
	w := store.DefaultWorkstream()
	w.AutomatedMessages = map[string]store.AutomatedMessage{
		store.TriggerGreeting:          {Enabled: true, Text: "Hello {first_name}!", Translations: map[string]string{"fr": "Bonjour {first_name} !"}},
		store.TriggerHoliday:           {Enabled: true, Text: "Closed for a holiday."},
		store.TriggerTransferAccepted:  {Enabled: false, Text: "Transferred."},
		store.TriggerQueuePosition:     {Enabled: true, Text: "#{position}", Step: 3, EveryMinutes: 5},
		store.TriggerConversationEnded: {Enabled: true, Text: "Bye", Translations: map[string]string{"fr": "Au revoir"}},
	}
	s := activities.SettingsOf(w)
	if s.Messages[store.TriggerGreeting] != "Hello {first_name}!" || s.Messages[store.TriggerHoliday] != "Closed for a holiday." {
		t.Errorf("messages %v", s.Messages)
	}
	if _, ok := s.Messages[store.TriggerTransferAccepted]; ok {
		t.Errorf("a disabled message reached the workflow: %v", s.Messages)
	}
	if s.Translations[store.TriggerGreeting]["fr"] != "Bonjour {first_name} !" || s.Translations[store.TriggerConversationEnded]["fr"] != "Au revoir" {
		t.Errorf("translations %v", s.Translations)
	}
	if s.EndedMessage != "Bye" || s.PositionStep != 3 || s.PositionEvery != 5*time.Minute {
		t.Errorf("ended %q, step %d, every %s", s.EndedMessage, s.PositionStep, s.PositionEvery)
	}
}
