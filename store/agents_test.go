package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCanonicalEmail(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.com":        "alice@example.com",
		"Alice.Smith@Example.COM":  "alice.smith@example.com",
		"a+support@sub.example.fr": "a+support@sub.example.fr",
		"bob@localhost":            "bob@localhost",
	} {
		if got, ok := CanonicalEmail(in); !ok || got != want {
			t.Errorf("CanonicalEmail(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{
		"", "alice", "alice@", "@example.com", "alice@@example.com", "alice example@x.com",
		" alice@example.com", "alice@example.com ", "Alice <alice@example.com>", "<alice@example.com>",
		"alice@example.com, bob@example.com", strings.Repeat("a", 250) + "@x.com",
	} {
		if got, ok := CanonicalEmail(in); ok {
			t.Errorf("CanonicalEmail(%q) = %q, ok; want refused", in, got)
		}
	}
}

func TestAgents(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		newFakeClock(s)
		a, err := s.CreateAgent(ctx, "Alice", "Alice@Example.com")
		if err != nil {
			t.Fatal(err)
		}
		if a.ID == "" || a.Name != "Alice" || a.Email != "alice@example.com" || a.CreatedAt.IsZero() || a.UpdatedAt != a.CreatedAt || a.DeletedAt != nil {
			t.Errorf("CreateAgent = %+v", a)
		}
		if got, err := s.GetAgent(ctx, a.ID); err != nil || !reflect.DeepEqual(got, a) {
			t.Errorf("GetAgent = %+v, %v\nwant %+v", got, err, a)
		}
		// Emails differing only in case are the same person.
		if _, err := s.CreateAgent(ctx, "Alice again", "alice@EXAMPLE.com"); !errors.Is(err, ErrConflict) {
			t.Errorf("CreateAgent(same email) = %v, want ErrConflict", err)
		}
		b, err := s.CreateAgent(ctx, "Bob", "bob@example.com")
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.ListAgents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || !reflect.DeepEqual(list[0], a) || !reflect.DeepEqual(list[1], b) {
			t.Errorf("ListAgents = %+v, want [Alice Bob]", list)
		}
		if _, err := s.GetAgent(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetAgent(unknown) = %v, want ErrNotFound", err)
		}
		for _, tc := range []struct{ name, email string }{
			{"", "carol@example.com"},
			{"  ", "carol@example.com"},
			{"Carol", ""},
			{"Carol", "carol"},
			{"Carol", "Carol <carol@example.com>"},
		} {
			if _, err := s.CreateAgent(ctx, tc.name, tc.email); !errors.Is(err, ErrInvalid) {
				t.Errorf("CreateAgent(%q, %q) = %v, want ErrInvalid", tc.name, tc.email, err)
			}
		}
		if list, err := s.ListAgents(ctx); err != nil || len(list) != 2 {
			t.Errorf("ListAgents after refusals = %+v, %v; want 2", list, err)
		}
	})
}
