package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func newWorkstream(name, pageRef string) Workstream {
	w := DefaultWorkstream()
	w.Name, w.PageRef = name, pageRef
	return w
}

func TestDefaultWorkstream(t *testing.T) {
	d := DefaultWorkstream()
	day := 24 * time.Hour
	if d.Language != "en" || d.HumanAgentTag || !d.CustomerAttachments || !d.AgentAttachments ||
		d.AutoCloseOpen != 30*day || d.AutoCloseActive != 30*day || d.AutoCloseWaiting != 7*day || d.WrapUpDuration != day ||
		d.AutomatedMessages == nil || len(d.AutomatedMessages) != 0 {
		t.Errorf("DefaultWorkstream = %+v", d)
	}
	// Each call is a fresh value: callers may change its map.
	d.AutomatedMessages[TriggerConversationEnded] = AutomatedMessage{Enabled: true, Text: "bye"}
	if len(DefaultWorkstream().AutomatedMessages) != 0 {
		t.Error("DefaultWorkstream shares its map")
	}
}

func TestCanonicalLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"en": "en", "EN": "en", "fr-CA": "fr-CA", "fr-ca": "fr-CA", "Pt-br": "pt-BR", "es-419": "es-419", "fil": "fil", "yue-HK": "yue-HK",
	} {
		if got, ok := CanonicalLanguage(in); !ok || got != want {
			t.Errorf("CanonicalLanguage(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "e", "english", "en-", "en-USA", "en-1", "en_US", "en-US-x", " en", "fr-CA ", "éé", "12"} {
		if got, ok := CanonicalLanguage(in); ok {
			t.Errorf("CanonicalLanguage(%q) = %q, ok; want refused", in, got)
		}
	}
}

func TestWorkstreams(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		newFakeClock(s)
		p := conversationFixture(t, s, "900")
		if _, err := s.WorkstreamForPage(ctx, p.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("WorkstreamForPage(no workstream) = %v, want ErrNotFound", err)
		}
		def := DefaultWorkstream()
		def.PageRef = p.ID
		if got, err := s.EffectiveWorkstream(ctx, p.ID); err != nil || !reflect.DeepEqual(got, def) {
			t.Errorf("EffectiveWorkstream(no workstream) = %+v, %v; want the defaults", got, err)
		}

		in := newWorkstream("Support", p.ID)
		in.Language = "FR-ca"
		in.HumanAgentTag = true
		in.CustomerAttachments = false
		in.AutoCloseWaiting = 90 * time.Second
		in.WrapUpDuration = 1500 * time.Millisecond
		in.AutomatedMessages = map[string]AutomatedMessage{TriggerConversationEnded: {Enabled: true, Text: "Merci, à bientôt !"}}
		w, err := s.CreateWorkstream(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		want := in
		want.ID, want.Language, want.CreatedAt, want.UpdatedAt = w.ID, "fr-CA", w.CreatedAt, w.CreatedAt
		if w.ID == "" || w.CreatedAt.IsZero() || !reflect.DeepEqual(w, want) {
			t.Errorf("CreateWorkstream = %+v\nwant %+v", w, want)
		}
		// The caller's map is not shared with the result.
		in.AutomatedMessages[TriggerConversationEnded] = AutomatedMessage{}
		if w.AutomatedMessages[TriggerConversationEnded].Text == "" {
			t.Error("CreateWorkstream returned the caller's map")
		}
		if got, err := s.GetWorkstream(ctx, w.ID); err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("GetWorkstream = %+v, %v\nwant %+v", got, err, w)
		}
		if got, err := s.WorkstreamForPage(ctx, p.ID); err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("WorkstreamForPage = %+v, %v\nwant %+v", got, err, w)
		}
		if got, err := s.EffectiveWorkstream(ctx, p.ID); err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("EffectiveWorkstream = %+v, %v\nwant %+v", got, err, w)
		}

		// One live workstream per page.
		if _, err := s.CreateWorkstream(ctx, newWorkstream("Again", p.ID)); !errors.Is(err, ErrConflict) {
			t.Errorf("CreateWorkstream(second for the page) = %v, want ErrConflict", err)
		}
		if _, err := s.CreateWorkstream(ctx, newWorkstream("Nowhere", "no-such-page")); !errors.Is(err, ErrNotFound) {
			t.Errorf("CreateWorkstream(unknown page) = %v, want ErrNotFound", err)
		}
		gone := mustCreatePage(t, s, p.AccountID, "901")
		if err := s.DeletePage(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateWorkstream(ctx, newWorkstream("Gone", gone.ID)); !errors.Is(err, ErrNotFound) {
			t.Errorf("CreateWorkstream(deleted page) = %v, want ErrNotFound", err)
		}

		// Nil automated messages read back as an empty map.
		p2 := mustCreatePage(t, s, p.AccountID, "902")
		bare := newWorkstream("Sales", p2.ID)
		bare.AutomatedMessages = nil
		w2, err := s.CreateWorkstream(ctx, bare)
		if err != nil {
			t.Fatal(err)
		}
		if w2.AutomatedMessages == nil || len(w2.AutomatedMessages) != 0 {
			t.Errorf("AutomatedMessages = %#v, want an empty map", w2.AutomatedMessages)
		}
		list, err := s.ListWorkstreams(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || !reflect.DeepEqual(list[0], w) || !reflect.DeepEqual(list[1], w2) {
			t.Errorf("ListWorkstreams = %+v, want [Support Sales]", list)
		}

		// Update: nil fields are left alone.
		name := "Support FR"
		u, err := s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		want = w
		want.Name, want.UpdatedAt = name, u.UpdatedAt
		if !u.UpdatedAt.After(w.UpdatedAt) || !reflect.DeepEqual(u, want) {
			t.Errorf("UpdateWorkstream(name) = %+v\nwant %+v", u, want)
		}
		none := map[string]AutomatedMessage{}
		u, err = s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{
			Language: ptr("de"), HumanAgentTag: ptr(false), CustomerAttachments: ptr(true), AgentAttachments: ptr(false),
			AutoCloseOpen: ptr(time.Duration(0)), AutoCloseActive: ptr(time.Hour), AutoCloseWaiting: ptr(2 * time.Hour),
			WrapUpDuration: ptr(time.Duration(0)), AutomatedMessages: &none,
		})
		if err != nil {
			t.Fatal(err)
		}
		want.Language, want.HumanAgentTag, want.CustomerAttachments, want.AgentAttachments = "de", false, true, false
		want.AutoCloseOpen, want.AutoCloseActive, want.AutoCloseWaiting, want.WrapUpDuration = 0, time.Hour, 2*time.Hour, 0
		want.AutomatedMessages, want.UpdatedAt = none, u.UpdatedAt
		if !reflect.DeepEqual(u, want) {
			t.Errorf("UpdateWorkstream(everything) = %+v\nwant %+v", u, want)
		}
		if got, err := s.GetWorkstream(ctx, w.ID); err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("GetWorkstream after update = %+v, %v\nwant %+v", got, err, u)
		}
		// An invalid update changes nothing.
		if _, err := s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{Name: ptr("ok"), AutoCloseActive: ptr(-time.Second)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpdateWorkstream(negative) = %v, want ErrInvalid", err)
		}
		if got, err := s.GetWorkstream(ctx, w.ID); err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("after an invalid update: %+v, %v\nwant %+v", got, err, u)
		}
		if _, err := s.UpdateWorkstream(ctx, "nope", WorkstreamUpdate{Name: &name}); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateWorkstream(unknown) = %v, want ErrNotFound", err)
		}

		// Delete: gone, and the page may get a new workstream.
		if err := s.DeleteWorkstream(ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{
			"GetWorkstream":     func() error { _, err := s.GetWorkstream(ctx, w.ID); return err }(),
			"WorkstreamForPage": func() error { _, err := s.WorkstreamForPage(ctx, p.ID); return err }(),
			"UpdateWorkstream":  func() error { _, err := s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{}); return err }(),
			"DeleteWorkstream":  s.DeleteWorkstream(ctx, w.ID),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s after delete = %v, want ErrNotFound", name, err)
			}
		}
		if list, err := s.ListWorkstreams(ctx); err != nil || len(list) != 1 || list[0].ID != w2.ID {
			t.Errorf("ListWorkstreams after delete = %+v, %v; want [Sales]", list, err)
		}
		w3, err := s.CreateWorkstream(ctx, newWorkstream("Support v2", p.ID))
		if err != nil {
			t.Fatalf("CreateWorkstream after delete: %v", err)
		}
		if got, err := s.WorkstreamForPage(ctx, p.ID); err != nil || got.ID != w3.ID {
			t.Errorf("WorkstreamForPage = %+v, %v; want the new workstream", got, err)
		}
	})
}

func TestWorkstreamValidation(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p := conversationFixture(t, s, "910")
		for name, change := range map[string]func(w *Workstream){
			"no name":          func(w *Workstream) { w.Name = "" },
			"blank name":       func(w *Workstream) { w.Name = " \t" },
			"no page":          func(w *Workstream) { w.PageRef = "" },
			"no language":      func(w *Workstream) { w.Language = "" },
			"bad language":     func(w *Workstream) { w.Language = "english" },
			"negative open":    func(w *Workstream) { w.AutoCloseOpen = -time.Hour },
			"negative active":  func(w *Workstream) { w.AutoCloseActive = -1 },
			"negative waiting": func(w *Workstream) { w.AutoCloseWaiting = -time.Millisecond },
			"negative wrap-up": func(w *Workstream) { w.WrapUpDuration = -time.Minute },
			"microseconds":     func(w *Workstream) { w.WrapUpDuration = time.Second + time.Microsecond },
			"unknown trigger": func(w *Workstream) {
				w.AutomatedMessages = map[string]AutomatedMessage{"greeting_typo": {Enabled: true, Text: "hi"}}
			},
			"enabled, no text": func(w *Workstream) {
				w.AutomatedMessages = map[string]AutomatedMessage{TriggerConversationEnded: {Enabled: true, Text: "  "}}
			},
			"text too long": func(w *Workstream) {
				w.AutomatedMessages = map[string]AutomatedMessage{TriggerConversationEnded: {Text: strings.Repeat("é", MaxAutomatedMessageText+1)}}
			},
		} {
			w := newWorkstream("Support", p.ID)
			change(&w)
			if _, err := s.CreateWorkstream(ctx, w); !errors.Is(err, ErrInvalid) {
				t.Errorf("CreateWorkstream(%s) = %v, want ErrInvalid", name, err)
			}
		}
		if list, err := s.ListWorkstreams(ctx); err != nil || len(list) != 0 {
			t.Errorf("ListWorkstreams = %+v, %v; want none", list, err)
		}
		// The limits themselves are fine: disabled without text, 2000
		// characters, zero durations.
		w := newWorkstream("Support", p.ID)
		w.AutoCloseOpen, w.AutoCloseActive, w.AutoCloseWaiting, w.WrapUpDuration = 0, 0, 0, 0
		w.AutomatedMessages = map[string]AutomatedMessage{TriggerConversationEnded: {Text: strings.Repeat("é", MaxAutomatedMessageText)}}
		if _, err := s.CreateWorkstream(ctx, w); err != nil {
			t.Errorf("CreateWorkstream(at the limits) = %v", err)
		}
	})
}

func TestCreateWorkstreamConcurrently(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p := conversationFixture(t, s, "920")
		created := raceCreates(t, 8, func() error {
			_, err := s.CreateWorkstream(ctx, newWorkstream("Racer", p.ID))
			return err
		})
		if created != 1 {
			t.Errorf("%d workstreams created for one page, want 1", created)
		}
	})
}
