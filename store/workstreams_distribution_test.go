package store

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"parley/routing"
)

func TestWorkstreamDistribution(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		newFakeClock(s)
		p := conversationFixture(t, s, "950")
		general := mustCreateQueue(t, s, "General", 2)
		billing := mustCreateQueue(t, s, "Billing", 1)
		fallbackColumn := func(id string) string {
			t.Helper()
			var v sql.NullString
			if err := get(ctx, s.db, &v, `SELECT fallback_queue_id FROM workstreams WHERE id = ?`, id); err != nil {
				t.Fatal(err)
			}
			return v.String
		}

		// Routing off: nothing stored, as before.
		w, err := s.CreateWorkstream(ctx, newWorkstream("Support", p.ID))
		if err != nil {
			t.Fatal(err)
		}
		if w.Distribution != nil || fallbackColumn(w.ID) != "" {
			t.Errorf("new workstream: distribution %+v, fallback %q; want none", w.Distribution, fallbackColumn(w.ID))
		}

		// On, with only a mode and a fallback queue: routing's defaults.
		rules := []routing.Rule{
			{Name: "invoices", QueueID: billing.ID, Conditions: []routing.Condition{
				{Field: routing.FieldFirstMessage, Operator: routing.OpContains, Value: "invoice"},
				{Field: routing.FieldLocale, Operator: routing.OpIn, Values: []string{"fr_FR", "fr_CA"}}}},
		}
		u, err := s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{Distribution: &routing.Distribution{
			Mode: routing.ModePush, FallbackQueueID: general.ID, Rules: rules}})
		if err != nil {
			t.Fatal(err)
		}
		want := routing.Distribution{Mode: routing.ModePush, FallbackQueueID: general.ID, Rules: rules}.WithDefaults()
		if u.Distribution == nil || !reflect.DeepEqual(*u.Distribution, want) {
			t.Errorf("distribution = %+v\nwant %+v", u.Distribution, want)
		}
		if d := u.Distribution; d != nil && (d.CapacityUnits != 1 || d.OfferTimeout.D() != routing.DefaultOfferTimeout ||
			!reflect.DeepEqual(d.AllowedPresences, []string{routing.PresenceAvailable, routing.PresenceBusy}) ||
			d.BlockCapacityDuringWrapUp.Mode != routing.WrapUpAlways) {
			t.Errorf("defaults not applied: %+v", d)
		}
		if got, err := s.GetWorkstream(ctx, w.ID); err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("GetWorkstream = %+v, %v\nwant %+v", got, err, u)
		}
		if got, err := s.EffectiveWorkstream(ctx, p.ID); err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("EffectiveWorkstream = %+v, %v\nwant %+v", got, err, u)
		}
		if fallbackColumn(w.ID) != general.ID {
			t.Errorf("fallback_queue_id = %q, want %q", fallbackColumn(w.ID), general.ID)
		}
		// Other updates leave the distribution alone.
		renamed, err := s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{Name: ptr("Support FR")})
		if err != nil || !reflect.DeepEqual(renamed.Distribution, u.Distribution) {
			t.Errorf("UpdateWorkstream(name) = %+v, %v; want the distribution kept", renamed.Distribution, err)
		}

		// The mode is fixed; an omitted mode keeps it.
		_, err = s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{Distribution: &routing.Distribution{Mode: routing.ModePick, FallbackQueueID: general.ID}})
		wantConflict(t, "UpdateWorkstream(mode change)", err, "distribution.mode", "new workstream")
		full := routing.Distribution{FallbackQueueID: billing.ID, CapacityUnits: 2,
			AllowedPresences: []string{routing.PresenceAvailable}, KeepSameAgent: routing.KeepSame{Enabled: true, Wait: routing.Duration(5 * time.Minute)},
			BlockCapacityDuringWrapUp: routing.WrapUpBlock{Mode: routing.WrapUpDuration, Duration: routing.Duration(90 * time.Second)},
			OfferTimeout:              routing.Duration(30 * time.Second), MissedOfferPresence: routing.PresenceInactive, Rules: []routing.Rule{}}
		u, err = s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{Distribution: &full})
		if err != nil {
			t.Fatal(err)
		}
		want = full
		want.Mode = routing.ModePush
		if u.Distribution == nil || !reflect.DeepEqual(*u.Distribution, want) {
			t.Errorf("replaced distribution = %+v\nwant %+v", u.Distribution, want)
		}
		if fallbackColumn(w.ID) != billing.ID {
			t.Errorf("fallback_queue_id = %q, want %q", fallbackColumn(w.ID), billing.ID)
		}

		// Routing cannot go off while a conversation of the page waits in a queue.
		if _, err := exec(ctx, s.db, `INSERT INTO queue_items (conversation_id, workflow_id, queue_id, page_ref, mode, units,
			waiting_since, enqueued_at, allowed_presences) VALUES ('c1', 'wf-c1', ?, ?, 'push', 1, ?, ?, '[]')`,
			billing.ID, p.ID, s.timestamp(s.clock()), s.timestamp(s.clock())); err != nil {
			t.Fatal(err)
		}
		_, err = s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{ClearDistribution: true})
		wantConflict(t, "UpdateWorkstream(off while queued)", err, "1 conversation")
		if _, err := exec(ctx, s.db, `DELETE FROM queue_items`); err != nil {
			t.Fatal(err)
		}
		off, err := s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{ClearDistribution: true})
		if err != nil || off.Distribution != nil || fallbackColumn(w.ID) != "" {
			t.Errorf("UpdateWorkstream(off) = %+v, %v, fallback %q; want no distribution", off.Distribution, err, fallbackColumn(w.ID))
		}
		// Off, then on again: a mode may be chosen afresh.
		pick, err := s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{Distribution: &routing.Distribution{Mode: routing.ModePick, FallbackQueueID: general.ID}})
		if err != nil || pick.Distribution == nil || pick.Distribution.Mode != routing.ModePick {
			t.Errorf("UpdateWorkstream(on again, pick) = %+v, %v", pick.Distribution, err)
		}
		if _, err := s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{ClearDistribution: true, Distribution: &full}); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpdateWorkstream(on and off) = %v, want ErrInvalid", err)
		}

		// Created with a distribution.
		p2 := conversationFixture(t, s, "951")
		w2 := newWorkstream("Sales", p2.ID)
		w2.Distribution = &routing.Distribution{Mode: routing.ModePick, FallbackQueueID: billing.ID}
		created, err := s.CreateWorkstream(ctx, w2)
		if err != nil || created.Distribution == nil || created.Distribution.Mode != routing.ModePick || fallbackColumn(created.ID) != billing.ID {
			t.Errorf("CreateWorkstream(with distribution) = %+v, %v", created.Distribution, err)
		}
		if got, err := s.GetWorkstream(ctx, created.ID); err != nil || !reflect.DeepEqual(got, created) {
			t.Errorf("GetWorkstream = %+v, %v\nwant %+v", got, err, created)
		}
	})
}

func TestWorkstreamDistributionValidation(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p := conversationFixture(t, s, "960")
		q := mustCreateQueue(t, s, "General", 1)
		gone := mustCreateQueue(t, s, "Gone", 1)
		if err := s.DeleteQueue(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		cond := routing.Condition{Field: routing.FieldFirstMessage, Operator: routing.OpContains, Value: "refund"}
		rule := func(c ...routing.Condition) routing.Rule {
			return routing.Rule{Name: "refunds", QueueID: q.ID, Conditions: c}
		}
		for _, tc := range []struct {
			what   string
			change func(d *routing.Distribution)
			field  string
		}{
			{"no mode", func(d *routing.Distribution) { d.Mode = "" }, "distribution.mode"},
			{"mode", func(d *routing.Distribution) { d.Mode = "broadcast" }, "distribution.mode"},
			{"negative capacity", func(d *routing.Distribution) { d.CapacityUnits = -1 }, "distribution.capacity_units"},
			{"capacity too high", func(d *routing.Distribution) { d.CapacityUnits = MaxCapacityUnits + 1 }, "distribution.capacity_units"},
			{"allowed presence", func(d *routing.Distribution) { d.AllowedPresences = []string{"available", "asleep"} }, "distribution.allowed_presences[1]"},
			{"allowed presence twice", func(d *routing.Distribution) { d.AllowedPresences = []string{"busy", "busy"} }, "distribution.allowed_presences[1]"},
			{"keep same agent wait", func(d *routing.Distribution) {
				d.KeepSameAgent = routing.KeepSame{Enabled: true, Wait: routing.Duration(-time.Second)}
			}, "distribution.keep_same_agent.wait"},
			{"wrap-up mode", func(d *routing.Distribution) { d.BlockCapacityDuringWrapUp.Mode = "sometimes" }, "distribution.block_capacity_during_wrap_up.mode"},
			{"wrap-up duration too short", func(d *routing.Distribution) {
				d.BlockCapacityDuringWrapUp = routing.WrapUpBlock{Mode: routing.WrapUpDuration, Duration: routing.Duration(10 * time.Second)}
			}, "distribution.block_capacity_during_wrap_up.duration"},
			{"wrap-up duration too long", func(d *routing.Distribution) {
				d.BlockCapacityDuringWrapUp = routing.WrapUpBlock{Mode: routing.WrapUpDuration, Duration: routing.Duration(2 * time.Hour)}
			}, "distribution.block_capacity_during_wrap_up.duration"},
			{"wrap-up duration with always", func(d *routing.Distribution) {
				d.BlockCapacityDuringWrapUp = routing.WrapUpBlock{Mode: routing.WrapUpAlways, Duration: routing.Duration(time.Minute)}
			}, "distribution.block_capacity_during_wrap_up.duration"},
			{"offer timeout too short", func(d *routing.Distribution) { d.OfferTimeout = routing.Duration(time.Second) }, "distribution.offer_timeout"},
			{"offer timeout too long", func(d *routing.Distribution) { d.OfferTimeout = routing.Duration(2 * time.Hour) }, "distribution.offer_timeout"},
			{"missed offer presence", func(d *routing.Distribution) { d.MissedOfferPresence = routing.PresenceAvailable }, "distribution.missed_offer_presence"},
			{"no fallback queue", func(d *routing.Distribution) { d.FallbackQueueID = "" }, "distribution.fallback_queue"},
			{"unknown fallback queue", func(d *routing.Distribution) { d.FallbackQueueID = "no-such-queue" }, "distribution.fallback_queue"},
			{"deleted fallback queue", func(d *routing.Distribution) { d.FallbackQueueID = gone.ID }, "distribution.fallback_queue"},
			{"rule to an unknown queue", func(d *routing.Distribution) {
				r := rule(cond)
				r.QueueID = "no-such-queue"
				d.Rules = []routing.Rule{rule(cond), r}
			}, "distribution.routing_rules[1].queue"},
			{"too many rules", func(d *routing.Distribution) {
				d.Rules = make([]routing.Rule, MaxRoutingRules+1)
				for i := range d.Rules {
					d.Rules[i] = rule(cond)
				}
			}, "distribution.routing_rules"},
			// Routing's own validation of the rules (routing.RuleError).
			{"unknown operator", func(d *routing.Distribution) {
				d.Rules = []routing.Rule{rule(cond), rule(cond, routing.Condition{Field: routing.FieldLocale, Operator: "sounds_like", Value: "fr"})}
			}, "distribution.routing_rules[1].conditions[1].operator"},
			{"unknown field", func(d *routing.Distribution) {
				d.Rules = []routing.Rule{rule(routing.Condition{Field: "shoe_size", Operator: routing.OpEquals, Value: "42"})}
			}, "distribution.routing_rules[0].conditions[0].field"},
			{"bad regular expression", func(d *routing.Distribution) {
				d.Rules = []routing.Rule{rule(routing.Condition{Field: routing.FieldFirstMessage, Operator: routing.OpMatches, Value: "(unclosed"})}
			}, "distribution.routing_rules[0].conditions[0].value"},
		} {
			d := routing.Distribution{Mode: routing.ModePush, FallbackQueueID: q.ID}
			tc.change(&d)
			w := newWorkstream("Support", p.ID)
			w.Distribution = &d
			_, err := s.CreateWorkstream(ctx, w)
			wantFieldError(t, "CreateWorkstream("+tc.what+")", err, tc.field)
			if fe := (*FieldError)(nil); errors.As(err, &fe) && strings.TrimSpace(fe.Message) == "" {
				t.Errorf("CreateWorkstream(%s): an empty message", tc.what)
			}
		}
		if list, err := s.ListWorkstreams(ctx); err != nil || len(list) != 0 {
			t.Errorf("ListWorkstreams = %+v, %v; want none", list, err)
		}
	})
}
