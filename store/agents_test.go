package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"parley/routing"
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

func TestAgentDefaultsAndUpdate(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		newFakeClock(s)
		a, err := s.CreateAgent(ctx, "Ada", "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if a.CapacityUnits != DefaultCapacityUnits || a.Skills == nil || len(a.Skills) != 0 ||
			a.Presence != routing.PresenceOffline || a.ShownPresence != routing.PresenceOffline || a.PresenceChangedAt != nil {
			t.Errorf("new agent = %+v, want capacity 3, no skills, offline", a)
		}

		u, err := s.UpdateAgent(ctx, a.ID, AgentUpdate{Name: ptr("Ada L."), CapacityUnits: ptr(5), Skills: &[]string{" billing ", "Français"}})
		if err != nil {
			t.Fatal(err)
		}
		want := a
		want.Name, want.CapacityUnits, want.Skills, want.UpdatedAt = "Ada L.", 5, []string{"billing", "Français"}, u.UpdatedAt
		if !u.UpdatedAt.After(a.UpdatedAt) || !reflect.DeepEqual(u, want) {
			t.Errorf("UpdateAgent = %+v\nwant %+v", u, want)
		}
		if got, err := s.GetAgent(ctx, a.ID); err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("GetAgent = %+v, %v\nwant %+v", got, err, u)
		}
		// Nil fields are left alone; an empty list clears the skills.
		u, err = s.UpdateAgent(ctx, a.ID, AgentUpdate{Skills: &[]string{}})
		if err != nil || u.Name != "Ada L." || u.CapacityUnits != 5 || u.Skills == nil || len(u.Skills) != 0 {
			t.Errorf("UpdateAgent(no skills) = %+v, %v", u, err)
		}

		many := make([]string, MaxSkills+1)
		for i := range many {
			many[i] = fmt.Sprintf("skill %d", i)
		}
		for _, tc := range []struct {
			what  string
			u     AgentUpdate
			field string
		}{
			{"blank name", AgentUpdate{Name: ptr(" ")}, "name"},
			{"long name", AgentUpdate{Name: ptr(strings.Repeat("x", MaxAgentNameLength+1))}, "name"},
			{"negative capacity", AgentUpdate{CapacityUnits: ptr(-1)}, "capacity_units"},
			{"capacity too high", AgentUpdate{CapacityUnits: ptr(MaxCapacityUnits + 1)}, "capacity_units"},
			{"too many skills", AgentUpdate{Skills: &many}, "skills"},
			{"blank skill", AgentUpdate{Skills: &[]string{"billing", " "}}, "skills[1]"},
			{"long skill", AgentUpdate{Skills: &[]string{strings.Repeat("é", MaxSkillLength+1)}}, "skills[0]"},
			{"duplicate skill", AgentUpdate{Skills: &[]string{"billing", "sales", "Billing"}}, "skills[2]"},
		} {
			_, err := s.UpdateAgent(ctx, a.ID, tc.u)
			wantFieldError(t, "UpdateAgent("+tc.what+")", err, tc.field)
		}
		if got, err := s.GetAgent(ctx, a.ID); err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("after refused updates: %+v, %v\nwant %+v", got, err, u)
		}
		// The limits themselves are fine.
		if _, err := s.UpdateAgent(ctx, a.ID, AgentUpdate{CapacityUnits: ptr(0), Skills: ptr(many[:MaxSkills])}); err != nil {
			t.Errorf("UpdateAgent(at the limits) = %v", err)
		}
		if _, err := s.UpdateAgent(ctx, "nope", AgentUpdate{Name: ptr("x")}); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateAgent(unknown) = %v, want ErrNotFound", err)
		}
	})
}

// Presence follows the load unless the agent chose otherwise; each change
// of the shown presence is one presence.changed event.
func TestPresenceFollowsLoad(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		newFakeClock(s)
		a := mustCreateTestAgent(t, s, "Ada")
		hold := func(conv string, units int) {
			t.Helper()
			if _, err := exec(ctx, s.db, `INSERT INTO capacity_holds (conversation_id, agent_id, units, kind, workflow_id, created_at)
				VALUES (?, ?, ?, 'active', 'wf', ?)`, conv, a.ID, units, s.timestamp(s.clock())); err != nil {
				t.Fatal(err)
			}
		}
		check := func(what string, got Agent, err error, chosen, shown string) {
			t.Helper()
			if err != nil || got.Presence != chosen || got.ShownPresence != shown {
				t.Errorf("%s: chosen %s, shown %s (%v); want %s, %s", what, got.Presence, got.ShownPresence, err, chosen, shown)
			}
			if read, err := s.GetAgent(ctx, a.ID); err != nil || !reflect.DeepEqual(read, got) {
				t.Errorf("%s: GetAgent = %+v, %v\nwant %+v", what, read, err, got)
			}
		}

		got, err := s.SetPresence(ctx, a.ID, routing.PresenceAvailable)
		check("available, free", got, err, routing.PresenceAvailable, routing.PresenceAvailable)
		if got.PresenceChangedAt == nil {
			t.Error("presence_changed_at not set")
		}
		changedAt := *got.PresenceChangedAt
		got, err = s.SetPresence(ctx, a.ID, routing.PresenceAvailable)
		check("available again", got, err, routing.PresenceAvailable, routing.PresenceAvailable)
		if got.PresenceChangedAt == nil || !got.PresenceChangedAt.Equal(changedAt) {
			t.Errorf("setting the same presence moved presence_changed_at from %v to %v", changedAt, got.PresenceChangedAt)
		}

		hold("c1", 1) // 1 of 3 units
		got, err = s.SetPresence(ctx, a.ID, routing.PresenceAvailable)
		check("available, partly used", got, err, routing.PresenceAvailable, routing.PresenceBusy)
		if !got.PresenceChangedAt.After(changedAt) {
			t.Errorf("presence_changed_at %v, want after %v", got.PresenceChangedAt, changedAt)
		}
		got, err = s.UpdateAgent(ctx, a.ID, AgentUpdate{CapacityUnits: ptr(1)})
		check("capacity down to the load", got, err, routing.PresenceAvailable, routing.PresenceDoNotDisturb)
		got, err = s.UpdateAgent(ctx, a.ID, AgentUpdate{Name: ptr("Ada L.")})
		check("renamed", got, err, routing.PresenceAvailable, routing.PresenceDoNotDisturb)
		got, err = s.UpdateAgent(ctx, a.ID, AgentUpdate{CapacityUnits: ptr(4)})
		check("capacity up", got, err, routing.PresenceAvailable, routing.PresenceBusy)
		got, err = s.SetPresence(ctx, a.ID, routing.PresenceAway)
		check("away", got, err, routing.PresenceAway, routing.PresenceAway)
		hold("c2", 3) // full, but away
		got, err = s.SetPresence(ctx, a.ID, routing.PresenceAvailable)
		check("available, full", got, err, routing.PresenceAvailable, routing.PresenceDoNotDisturb)

		// The ledger releases: refreshPresence in its transaction.
		if _, err := exec(ctx, s.db, `DELETE FROM capacity_holds WHERE agent_id = ?`, a.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.inTx(ctx, func(tx *sqlx.Tx) error { return s.refreshPresence(ctx, tx, a.ID) }); err != nil {
			t.Fatal(err)
		}
		got, err = s.GetAgent(ctx, a.ID)
		check("released", got, err, routing.PresenceAvailable, routing.PresenceAvailable)
		// Nothing changed: no event.
		if err := s.inTx(ctx, func(tx *sqlx.Tx) error { return s.refreshPresence(ctx, tx, a.ID) }); err != nil {
			t.Fatal(err)
		}

		for _, p := range []string{routing.PresenceInactive, "", "Available", "lunch"} {
			_, err := s.SetPresence(ctx, a.ID, p)
			wantFieldError(t, "SetPresence("+p+")", err, "presence")
		}
		if _, err := s.SetPresence(ctx, "nope", routing.PresenceAway); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetPresence(unknown agent) = %v, want ErrNotFound", err)
		}
		if err := s.refreshPresence(ctx, s.db, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("refreshPresence(unknown agent) = %v, want ErrNotFound", err)
		}

		want := []map[string]string{
			{"agent_id": a.ID, "presence": routing.PresenceAvailable, "chosen": routing.PresenceAvailable},
			{"agent_id": a.ID, "presence": routing.PresenceBusy, "chosen": routing.PresenceAvailable},
			{"agent_id": a.ID, "presence": routing.PresenceDoNotDisturb, "chosen": routing.PresenceAvailable},
			{"agent_id": a.ID, "presence": routing.PresenceBusy, "chosen": routing.PresenceAvailable},
			{"agent_id": a.ID, "presence": routing.PresenceAway, "chosen": routing.PresenceAway},
			{"agent_id": a.ID, "presence": routing.PresenceDoNotDisturb, "chosen": routing.PresenceAvailable},
			{"agent_id": a.ID, "presence": routing.PresenceAvailable, "chosen": routing.PresenceAvailable},
		}
		if got := presenceEvents(t, s, a.ID); !reflect.DeepEqual(got, want) {
			t.Errorf("presence events:\n%v\nwant\n%v", got, want)
		}
	})
}
