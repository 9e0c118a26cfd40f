package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/routing"
)

// The tests of routing configuration (queues, agents' capacity and
// presence, workstream distribution) use these helpers of their own.

func mustCreateQueue(t *testing.T, s *Store, name string, priority int) Queue {
	t.Helper()
	q, err := s.CreateQueue(context.Background(), Queue{Name: name, Priority: priority})
	if err != nil {
		t.Fatalf("CreateQueue(%s): %v", name, err)
	}
	return q
}

func mustCreateTestAgent(t *testing.T, s *Store, name string) Agent {
	t.Helper()
	a, err := s.CreateAgent(context.Background(), name, strings.ToLower(name)+"@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// wantFieldError checks that err is a *FieldError for field (and ErrInvalid).
func wantFieldError(t *testing.T, what string, err error, field string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
		t.Errorf("%s = %v, want a FieldError for %s", what, err, field)
		return
	}
	if fe.Field != field {
		t.Errorf("%s: field %q (%s), want %q", what, fe.Field, fe.Message, field)
	}
}

// wantConflict checks that err is a *ConflictError whose message holds each of words.
func wantConflict(t *testing.T, what string, err error, words ...string) {
	t.Helper()
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) {
		t.Errorf("%s = %v, want a ConflictError", what, err)
		return
	}
	for _, w := range words {
		if !strings.Contains(ce.Message, w) {
			t.Errorf("%s: %q does not say %q", what, ce.Message, w)
		}
	}
}

func TestQueues(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		newFakeClock(s)

		// Only a name and a priority: highest capacity, 24x7, no overflow.
		night := mustCreateQueue(t, s, "Night", 5)
		want := Queue{ID: night.ID, Name: "Night", Priority: 5, Method: routing.MethodHighestCapacity,
			Hours:    routing.OperatingHours{Periods: []routing.Period{}, Holidays: []string{}},
			AgentIDs: []string{}, ServiceLevel: DefaultServiceLevel, CreatedAt: night.CreatedAt, UpdatedAt: night.CreatedAt}
		if night.ID == "" || night.CreatedAt.IsZero() || !reflect.DeepEqual(night, want) {
			t.Errorf("CreateQueue = %+v\nwant %+v", night, want)
		}
		if got, err := s.GetQueue(ctx, night.ID); err != nil || !reflect.DeepEqual(got, night) {
			t.Errorf("GetQueue = %+v, %v\nwant %+v", got, err, night)
		}

		// Everything set: days lowercased, holidays sorted.
		in := Queue{Name: "Billing", Priority: 1, Method: routing.MethodRoundRobin,
			Hours: routing.OperatingHours{TimeZone: "Europe/Paris",
				Periods:  []routing.Period{{Day: "Monday", Start: "09:00", End: "17:30"}, {Day: "friday", Start: "22:00", End: "02:00"}, {Day: "sunday", Start: "00:00", End: "24:00"}},
				Holidays: []string{"2026-12-25", "2026-01-01"}},
			Overflow: routing.Overflow{
				OutOfHours:       &routing.OverflowAction{Action: routing.ActionTransfer, QueueID: night.ID},
				MaxWaiting:       &routing.MaxWaiting{Count: 10, OverflowAction: routing.OverflowAction{Action: routing.ActionEnd}},
				MaxEstimatedWait: &routing.MaxWait{After: routing.Duration(10 * time.Minute), OverflowAction: routing.OverflowAction{Action: routing.ActionQueue}},
				WhileQueued:      &routing.MaxWait{After: routing.Duration(30 * time.Minute), OverflowAction: routing.OverflowAction{Action: routing.ActionTransfer, QueueID: night.ID}},
			}}
		billing, err := s.CreateQueue(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		want = in
		want.ID, want.CreatedAt, want.UpdatedAt, want.AgentIDs = billing.ID, billing.CreatedAt, billing.CreatedAt, []string{}
		want.ServiceLevel = DefaultServiceLevel
		want.Hours.Periods = []routing.Period{{Day: "monday", Start: "09:00", End: "17:30"}, {Day: "friday", Start: "22:00", End: "02:00"}, {Day: "sunday", Start: "00:00", End: "24:00"}}
		want.Hours.Holidays = []string{"2026-01-01", "2026-12-25"}
		if !reflect.DeepEqual(billing, want) {
			t.Errorf("CreateQueue(everything) = %+v\nwant %+v", billing, want)
		}
		if got, err := s.GetQueue(ctx, billing.ID); err != nil || !reflect.DeepEqual(got, billing) {
			t.Errorf("GetQueue = %+v, %v\nwant %+v", got, err, billing)
		}
		// The ledger reads the same columns.
		if lq, ok, err := getLiveQueue(ctx, s.db, billing.ID); err != nil || !ok || !reflect.DeepEqual(lq.Hours, billing.Hours) || !reflect.DeepEqual(lq.Overflow, billing.Overflow) {
			t.Errorf("the ledger reads %+v, %v, %v; want the queue's hours and overflow", lq, ok, err)
		}

		// Names are unique among live queues.
		_, err = s.CreateQueue(ctx, Queue{Name: "Billing", Priority: 2})
		wantConflict(t, "CreateQueue(same name)", err, "Billing")

		list, err := s.ListQueues(ctx)
		if err != nil || len(list) != 2 || list[0].ID != billing.ID || list[1].ID != night.ID {
			t.Errorf("ListQueues = %+v, %v; want [Billing Night] (priority order)", list, err)
		}

		// Update: nil fields are left alone; hours and overflow are replaced.
		u, err := s.UpdateQueue(ctx, billing.ID, QueueUpdate{Name: ptr("Billing FR"), Overflow: &routing.Overflow{}})
		if err != nil {
			t.Fatal(err)
		}
		want = billing
		want.Name, want.Overflow, want.UpdatedAt = "Billing FR", routing.Overflow{}, u.UpdatedAt
		if !u.UpdatedAt.After(billing.UpdatedAt) || !reflect.DeepEqual(u, want) {
			t.Errorf("UpdateQueue = %+v\nwant %+v", u, want)
		}
		u, err = s.UpdateQueue(ctx, billing.ID, QueueUpdate{Priority: ptr(9), Method: ptr(routing.MethodHighestCapacity), Hours: &routing.OperatingHours{}})
		if err != nil {
			t.Fatal(err)
		}
		want.Priority, want.Method, want.UpdatedAt = 9, routing.MethodHighestCapacity, u.UpdatedAt
		want.Hours = routing.OperatingHours{Periods: []routing.Period{}, Holidays: []string{}}
		if !reflect.DeepEqual(u, want) {
			t.Errorf("UpdateQueue(priority, method, 24x7) = %+v\nwant %+v", u, want)
		}
		// Invalid updates change nothing.
		_, err = s.UpdateQueue(ctx, billing.ID, QueueUpdate{Name: ptr("Night")})
		wantConflict(t, "UpdateQueue(taken name)", err, "Night")
		_, err = s.UpdateQueue(ctx, billing.ID, QueueUpdate{Name: ptr("ok"), Priority: ptr(-1)})
		wantFieldError(t, "UpdateQueue(negative priority)", err, "priority")
		_, err = s.UpdateQueue(ctx, billing.ID, QueueUpdate{Overflow: &routing.Overflow{OutOfHours: &routing.OverflowAction{Action: routing.ActionTransfer, QueueID: billing.ID}}})
		wantFieldError(t, "UpdateQueue(transfer to itself)", err, "overflow.out_of_hours.queue")
		if got, err := s.GetQueue(ctx, billing.ID); err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("after invalid updates: %+v, %v\nwant %+v", got, err, u)
		}
		if _, err := s.UpdateQueue(ctx, "nope", QueueUpdate{Name: ptr("x")}); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateQueue(unknown) = %v, want ErrNotFound", err)
		}

		// Delete: gone, and its name free again.
		if err := s.DeleteQueue(ctx, night.ID); err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{
			"GetQueue":    func() error { _, err := s.GetQueue(ctx, night.ID); return err }(),
			"UpdateQueue": func() error { _, err := s.UpdateQueue(ctx, night.ID, QueueUpdate{}); return err }(),
			"DeleteQueue": s.DeleteQueue(ctx, night.ID),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s after delete = %v, want ErrNotFound", name, err)
			}
		}
		if list, err := s.ListQueues(ctx); err != nil || len(list) != 1 || list[0].ID != billing.ID {
			t.Errorf("ListQueues after delete = %+v, %v; want [Billing FR]", list, err)
		}
		night2 := mustCreateQueue(t, s, "Night", 5)
		if night2.ID == night.ID {
			t.Error("a new queue reuses the deleted queue's id")
		}
		// A transfer to a deleted queue is refused.
		_, err = s.UpdateQueue(ctx, billing.ID, QueueUpdate{Overflow: &routing.Overflow{
			WhileQueued: &routing.MaxWait{After: routing.Duration(time.Minute), OverflowAction: routing.OverflowAction{Action: routing.ActionTransfer, QueueID: night.ID}}}})
		wantFieldError(t, "UpdateQueue(transfer to a deleted queue)", err, "overflow.while_queued.queue")
	})
}

func TestQueueValidation(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		other := mustCreateQueue(t, s, "Other", 1)
		act := func(a string) routing.OverflowAction { return routing.OverflowAction{Action: a} }
		wait := func(d time.Duration, a routing.OverflowAction) *routing.MaxWait {
			return &routing.MaxWait{After: routing.Duration(d), OverflowAction: a}
		}
		for _, tc := range []struct {
			what   string
			change func(q *Queue)
			field  string
		}{
			{"no name", func(q *Queue) { q.Name = "" }, "name"},
			{"blank name", func(q *Queue) { q.Name = "  " }, "name"},
			{"long name", func(q *Queue) { q.Name = strings.Repeat("é", MaxQueueNameLength+1) }, "name"},
			{"negative priority", func(q *Queue) { q.Priority = -1 }, "priority"},
			{"priority too high", func(q *Queue) { q.Priority = MaxQueuePriority + 1 }, "priority"},
			{"method", func(q *Queue) { q.Method = "random" }, "assignment_method"},
			{"time zone", func(q *Queue) { q.Hours.TimeZone = "Mars/Olympus" }, "operating_hours.time_zone"},
			{"Local time zone", func(q *Queue) { q.Hours.TimeZone = "Local" }, "operating_hours.time_zone"},
			{"periods without a time zone", func(q *Queue) {
				q.Hours.Periods = []routing.Period{{Day: "monday", Start: "09:00", End: "17:00"}}
			}, "operating_hours.time_zone"},
			{"holidays without a time zone", func(q *Queue) { q.Hours.Holidays = []string{"2026-12-25"} }, "operating_hours.time_zone"},
			{"day", func(q *Queue) {
				q.Hours = routing.OperatingHours{TimeZone: "UTC", Periods: []routing.Period{{Day: "monday", Start: "09:00", End: "17:00"}, {Day: "funday", Start: "09:00", End: "17:00"}}}
			}, "operating_hours.periods[1].day"},
			{"start", func(q *Queue) {
				q.Hours = routing.OperatingHours{TimeZone: "UTC", Periods: []routing.Period{{Day: "monday", Start: "9am", End: "17:00"}}}
			}, "operating_hours.periods[0].start"},
			{"start 24:00", func(q *Queue) {
				q.Hours = routing.OperatingHours{TimeZone: "UTC", Periods: []routing.Period{{Day: "monday", Start: "24:00", End: "17:00"}}}
			}, "operating_hours.periods[0].start"},
			{"end", func(q *Queue) {
				q.Hours = routing.OperatingHours{TimeZone: "UTC", Periods: []routing.Period{{Day: "monday", Start: "09:00", End: "17:60"}}}
			}, "operating_hours.periods[0].end"},
			{"empty period", func(q *Queue) {
				q.Hours = routing.OperatingHours{TimeZone: "UTC", Periods: []routing.Period{{Day: "monday", Start: "09:00", End: "09:00"}}}
			}, "operating_hours.periods[0].end"},
			{"holiday", func(q *Queue) {
				q.Hours = routing.OperatingHours{TimeZone: "UTC", Holidays: []string{"2026-12-25", "25/12/2026"}}
			}, "operating_hours.holidays[1]"},
			{"holiday twice", func(q *Queue) {
				q.Hours = routing.OperatingHours{TimeZone: "UTC", Holidays: []string{"2026-12-25", "2026-12-25"}}
			}, "operating_hours.holidays[1]"},
			{"out_of_hours action", func(q *Queue) { q.Overflow.OutOfHours = &routing.OverflowAction{Action: "panic"} }, "overflow.out_of_hours.action"},
			{"out_of_hours transfer without a queue", func(q *Queue) { q.Overflow.OutOfHours = &routing.OverflowAction{Action: routing.ActionTransfer} }, "overflow.out_of_hours.queue"},
			{"out_of_hours queue without transfer", func(q *Queue) {
				q.Overflow.OutOfHours = &routing.OverflowAction{Action: routing.ActionEnd, QueueID: other.ID}
			}, "overflow.out_of_hours.queue"},
			{"out_of_hours transfer to a missing queue", func(q *Queue) {
				q.Overflow.OutOfHours = &routing.OverflowAction{Action: routing.ActionTransfer, QueueID: "no-such-queue"}
			}, "overflow.out_of_hours.queue"},
			{"max_waiting count", func(q *Queue) {
				q.Overflow.MaxWaiting = &routing.MaxWaiting{Count: -1, OverflowAction: act(routing.ActionEnd)}
			}, "overflow.max_waiting.count"},
			{"max_waiting action", func(q *Queue) { q.Overflow.MaxWaiting = &routing.MaxWaiting{Count: 3} }, "overflow.max_waiting.action"},
			{"max_estimated_wait after", func(q *Queue) { q.Overflow.MaxEstimatedWait = wait(0, act(routing.ActionEnd)) }, "overflow.max_estimated_wait.after"},
			{"max_estimated_wait action", func(q *Queue) { q.Overflow.MaxEstimatedWait = wait(time.Minute, act("wait")) }, "overflow.max_estimated_wait.action"},
			{"while_queued after", func(q *Queue) { q.Overflow.WhileQueued = wait(-time.Minute, act(routing.ActionEnd)) }, "overflow.while_queued.after"},
			{"while_queued queue anyway", func(q *Queue) { q.Overflow.WhileQueued = wait(time.Minute, act(routing.ActionQueue)) }, "overflow.while_queued.action"},
			{"while_queued transfer to a missing queue", func(q *Queue) {
				q.Overflow.WhileQueued = wait(time.Minute, routing.OverflowAction{Action: routing.ActionTransfer, QueueID: "gone"})
			}, "overflow.while_queued.queue"},
		} {
			q := Queue{Name: "Support", Priority: 1}
			tc.change(&q)
			_, err := s.CreateQueue(ctx, q)
			wantFieldError(t, "CreateQueue("+tc.what+")", err, tc.field)
		}
		if list, err := s.ListQueues(ctx); err != nil || len(list) != 1 {
			t.Errorf("ListQueues = %+v, %v; want only Other", list, err)
		}
		// The limits themselves are fine.
		q, err := s.CreateQueue(ctx, Queue{Name: strings.Repeat("é", MaxQueueNameLength), Priority: MaxQueuePriority,
			Hours: routing.OperatingHours{TimeZone: "America/Argentina/Buenos_Aires",
				Periods: []routing.Period{{Day: "saturday", Start: "23:59", End: "00:00"}}},
			Overflow: routing.Overflow{MaxWaiting: &routing.MaxWaiting{Count: 0, OverflowAction: act(routing.ActionQueue)}}})
		if err != nil {
			t.Errorf("CreateQueue(at the limits) = %+v, %v", q, err)
		}
	})
}

func TestQueueMembership(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		newFakeClock(s)
		billing := mustCreateQueue(t, s, "Billing", 2)
		sales := mustCreateQueue(t, s, "Sales", 1)
		ada, bob := mustCreateTestAgent(t, s, "Ada"), mustCreateTestAgent(t, s, "Bob")
		for _, m := range [][2]string{{billing.ID, bob.ID}, {billing.ID, ada.ID}, {billing.ID, ada.ID}, {sales.ID, ada.ID}} {
			if err := s.AddQueueAgent(ctx, m[0], m[1]); err != nil {
				t.Fatalf("AddQueueAgent(%s, %s) = %v", m[0], m[1], err)
			}
		}
		members := []string{ada.ID, bob.ID}
		slices.Sort(members)
		got, err := s.GetQueue(ctx, billing.ID)
		if err != nil || !slices.Equal(got.AgentIDs, members) {
			t.Errorf("members = %v, %v; want %v (sorted, once each)", got.AgentIDs, err, members)
		}
		if !got.UpdatedAt.After(billing.UpdatedAt) {
			t.Errorf("a new member leaves updated_at at %v", got.UpdatedAt)
		}
		// Idempotent: adding again changes nothing, not even updated_at.
		if err := s.AddQueueAgent(ctx, billing.ID, ada.ID); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.GetQueue(ctx, billing.ID); !again.UpdatedAt.Equal(got.UpdatedAt) {
			t.Errorf("adding a member again moved updated_at from %v to %v", got.UpdatedAt, again.UpdatedAt)
		}
		if ids, err := s.QueueIDsOfAgent(ctx, ada.ID); err != nil || !slices.Equal(ids, []string{sales.ID, billing.ID}) {
			t.Errorf("QueueIDsOfAgent(ada) = %v, %v; want [Sales Billing] (priority order)", ids, err)
		}
		if ids, err := s.QueueIDsOfAgent(ctx, "nobody"); err != nil || ids == nil || len(ids) != 0 {
			t.Errorf("QueueIDsOfAgent(unknown) = %#v, %v; want []", ids, err)
		}
		list, err := s.ListQueues(ctx)
		if err != nil || len(list) != 2 || !slices.Equal(list[0].AgentIDs, []string{ada.ID}) || !slices.Equal(list[1].AgentIDs, members) {
			t.Errorf("ListQueues = %+v, %v; want Sales [ada], Billing %v", list, err, members)
		}

		for what, err := range map[string]error{
			"AddQueueAgent(unknown agent)":    s.AddQueueAgent(ctx, billing.ID, "no-such-agent"),
			"AddQueueAgent(unknown queue)":    s.AddQueueAgent(ctx, "no-such-queue", ada.ID),
			"RemoveQueueAgent(unknown agent)": s.RemoveQueueAgent(ctx, billing.ID, "no-such-agent"),
			"RemoveQueueAgent(unknown queue)": s.RemoveQueueAgent(ctx, "no-such-queue", ada.ID),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s = %v, want ErrNotFound", what, err)
			}
		}

		// Removing is idempotent.
		for range 2 {
			if err := s.RemoveQueueAgent(ctx, billing.ID, ada.ID); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.GetQueue(ctx, billing.ID); err != nil || !slices.Equal(got.AgentIDs, []string{bob.ID}) {
			t.Errorf("members after removing ada = %v, %v; want [bob]", got.AgentIDs, err)
		}
		// A deleted queue is nobody's.
		if err := s.DeleteQueue(ctx, sales.ID); err != nil {
			t.Fatal(err)
		}
		if ids, err := s.QueueIDsOfAgent(ctx, ada.ID); err != nil || len(ids) != 0 {
			t.Errorf("QueueIDsOfAgent after the queue's deletion = %v, %v; want none", ids, err)
		}
		if err := s.AddQueueAgent(ctx, sales.ID, ada.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("AddQueueAgent(deleted queue) = %v, want ErrNotFound", err)
		}
	})
}

// distributionTo is a valid push distribution falling back to queueID.
func distributionTo(queueID string, rules ...routing.Rule) routing.Distribution {
	return routing.Distribution{Mode: routing.ModePush, FallbackQueueID: queueID, Rules: rules}
}

func ruleTo(name, queueID string) routing.Rule {
	return routing.Rule{Name: name, QueueID: queueID,
		Conditions: []routing.Condition{{Field: routing.FieldFirstMessage, Operator: routing.OpContains, Value: name}}}
}

func TestDeleteQueueInUse(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p := conversationFixture(t, s, "930")
		fallback := mustCreateQueue(t, s, "Fallback", 3)
		ruled := mustCreateQueue(t, s, "Ruled", 2)
		target := mustCreateQueue(t, s, "Target", 1)
		busy := mustCreateQueue(t, s, "Busy", 1)
		w := newWorkstream("Support", p.ID)
		d := distributionTo(fallback.ID, ruleTo("invoice", ruled.ID))
		w.Distribution = &d
		w, err := s.CreateWorkstream(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		overflowing, err := s.CreateQueue(ctx, Queue{Name: "Overflowing", Priority: 1, Overflow: routing.Overflow{
			MaxWaiting: &routing.MaxWaiting{Count: 5, OverflowAction: routing.OverflowAction{Action: routing.ActionTransfer, QueueID: target.ID}}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := exec(ctx, s.db, `INSERT INTO queue_items (conversation_id, workflow_id, queue_id, page_ref, mode, units,
			waiting_since, enqueued_at, allowed_presences) VALUES ('c1', 'wf-c1', ?, ?, 'push', 1, ?, ?, '[]')`,
			busy.ID, p.ID, s.timestamp(s.clock()), s.timestamp(s.clock())); err != nil {
			t.Fatal(err)
		}

		wantConflict(t, "DeleteQueue(fallback)", s.DeleteQueue(ctx, fallback.ID), "fallback queue", "Support")
		wantConflict(t, "DeleteQueue(in a rule)", s.DeleteQueue(ctx, ruled.ID), "routing rule 0", "invoice", "Support")
		wantConflict(t, "DeleteQueue(overflow target)", s.DeleteQueue(ctx, target.ID), "max_waiting", "Overflowing")
		wantConflict(t, "DeleteQueue(waiting conversations)", s.DeleteQueue(ctx, busy.ID), "1 conversation")
		if list, err := s.ListQueues(ctx); err != nil || len(list) != 5 {
			t.Fatalf("ListQueues after refusals = %d queues, %v; want 5", len(list), err)
		}

		// Once no longer in use, each may go.
		if _, err := s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{Distribution: ptr(distributionTo(busy.ID))}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateQueue(ctx, overflowing.ID, QueueUpdate{Overflow: &routing.Overflow{}}); err != nil {
			t.Fatal(err)
		}
		if _, err := exec(ctx, s.db, `DELETE FROM queue_items WHERE conversation_id = 'c1'`); err != nil {
			t.Fatal(err)
		}
		for _, q := range []Queue{fallback, ruled, target} {
			if err := s.DeleteQueue(ctx, q.ID); err != nil {
				t.Errorf("DeleteQueue(%s) = %v", q.Name, err)
			}
		}
		wantConflict(t, "DeleteQueue(the new fallback)", s.DeleteQueue(ctx, busy.ID), "fallback queue")
		// A deleted workstream holds no queue.
		if err := s.DeleteWorkstream(ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteQueue(ctx, busy.ID); err != nil {
			t.Errorf("DeleteQueue(fallback of a deleted workstream) = %v", err)
		}
	})
}

// A queue being deleted while a workstream takes it as its fallback: one
// of them fails, never a live workstream falling back to a deleted queue.
func TestDeleteQueueRacesWorkstreamUpdate(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p := conversationFixture(t, s, "940")
		first := mustCreateQueue(t, s, "First", 1)
		w := newWorkstream("Support", p.ID)
		w.Distribution = ptr(distributionTo(first.ID))
		w, err := s.CreateWorkstream(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			q := mustCreateQueue(t, s, fmt.Sprintf("Racer %d", i), 1)
			var wg sync.WaitGroup
			var updErr, delErr error
			wg.Go(func() {
				_, updErr = s.UpdateWorkstream(ctx, w.ID, WorkstreamUpdate{Distribution: ptr(distributionTo(q.ID))})
			})
			wg.Go(func() { delErr = s.DeleteQueue(ctx, q.ID) })
			wg.Wait()
			if updErr != nil && !errors.Is(updErr, ErrInvalid) {
				t.Errorf("round %d: UpdateWorkstream = %v, want nil or ErrInvalid", i, updErr)
			}
			if delErr != nil && !errors.Is(delErr, ErrConflict) {
				t.Errorf("round %d: DeleteQueue = %v, want nil or ErrConflict", i, delErr)
			}
			if (updErr == nil) == (delErr == nil) {
				t.Errorf("round %d: update %v, delete %v: want exactly one to succeed", i, updErr, delErr)
			}
			got, err := s.GetWorkstream(ctx, w.ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetQueue(ctx, got.Distribution.FallbackQueueID); err != nil {
				t.Fatalf("round %d: the workstream falls back to queue %s: %v", i, got.Distribution.FallbackQueueID, err)
			}
		}
	})
}

// presenceEvents returns the presence.changed events of an agent: data.
func presenceEvents(t *testing.T, s *Store, agentID string) []map[string]string {
	t.Helper()
	evs, err := s.EventsAfter(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, e := range evs {
		if e.Type != EventPresenceChanged || e.AgentID != agentID {
			continue
		}
		var m map[string]string
		if err := json.Unmarshal(e.Data, &m); err != nil {
			t.Fatalf("event %d data %s: %v", e.ID, e.Data, err)
		}
		out = append(out, m)
	}
	return out
}
