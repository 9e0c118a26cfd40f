package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

func mustAppend(t *testing.T, s *Store, evs ...NewEvent) {
	t.Helper()
	if err := s.AppendEvents(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
}

func allEvents(t *testing.T, s *Store) []Event {
	t.Helper()
	evs, err := s.EventsAfter(context.Background(), 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// wantIDs checks that evs have exactly the ids from..to, in order.
func wantIDs(t *testing.T, what string, evs []Event, from, to int64) {
	t.Helper()
	var got []int64
	for _, e := range evs {
		got = append(got, e.ID)
	}
	var want []int64
	for id := from; id <= to; id++ {
		want = append(want, id)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: ids %v, want %v", what, got, want)
	}
}

func TestEventsAreReadInOrderWithTheirFields(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		newFakeClock(s)
		if id, err := s.LatestEventID(ctx); err != nil || id != 0 {
			t.Fatalf("LatestEventID of an empty log = %d, %v; want 0", id, err)
		}
		if id, err := s.OldestEventID(ctx); err != nil || id != 1 {
			t.Fatalf("OldestEventID of an empty log = %d, %v; want 1", id, err)
		}
		mustAppend(t, s, NewEvent{Type: EventOfferCreated, AgentID: "agent-1", QueueID: "queue-1", ConversationID: "conv-1",
			Data: map[string]any{"offer_id": "o1", "expires_at": "2025-03-01T12:02:00Z"}})
		mustAppend(t, s,
			NewEvent{Type: EventConversationQueued, QueueID: "queue-1", ConversationID: "conv-2", Data: map[string]int{"position": 2}},
			NewEvent{Type: EventPresenceChanged, AgentID: "agent-2", Data: nil})
		for i := range 7 {
			mustAppend(t, s, NewEvent{Type: EventConversationMessage, AgentID: "agent-1", ConversationID: "conv-1", Data: map[string]int{"n": i}})
		}
		evs := allEvents(t, s)
		wantIDs(t, "all", evs, 1, 10)
		first := evs[0]
		if first.Type != EventOfferCreated || first.AgentID != "agent-1" || first.QueueID != "queue-1" || first.ConversationID != "conv-1" {
			t.Errorf("first event = %+v", first)
		}
		var data map[string]string
		if err := json.Unmarshal(first.Data, &data); err != nil || data["offer_id"] != "o1" {
			t.Errorf("first event data %s (%v)", first.Data, err)
		}
		if string(evs[2].Data) != "null" || evs[2].QueueID != "" || evs[2].ConversationID != "" {
			t.Errorf("third event = %+v data %s", evs[2], evs[2].Data)
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].CreatedAt.Location() != time.UTC || evs[i].CreatedAt.Before(evs[i-1].CreatedAt) {
				t.Errorf("created_at %v before %v", evs[i].CreatedAt, evs[i-1].CreatedAt)
			}
		}
		page, err := s.EventsAfter(ctx, 3, 4)
		if err != nil {
			t.Fatal(err)
		}
		wantIDs(t, "after 3, limit 4", page, 4, 7)
		page, err = s.EventsAfter(ctx, 10, 4)
		if err != nil || len(page) != 0 {
			t.Errorf("after the last: %v, %v", page, err)
		}
		if _, err := s.EventsAfter(ctx, 0, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("limit 0: %v, want ErrInvalid", err)
		}
		if id, err := s.LatestEventID(ctx); err != nil || id != 10 {
			t.Errorf("LatestEventID = %d, %v; want 10", id, err)
		}
		if id, err := s.OldestEventID(ctx); err != nil || id != 1 {
			t.Errorf("OldestEventID = %d, %v; want 1", id, err)
		}
	})
}

func TestEventDedupeKeysAppendOnceAndTakeNoID(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		ev := func(key string, n int) NewEvent {
			return NewEvent{Type: EventConversationState, AgentID: "a", Data: map[string]int{"n": n}, DedupeKey: key}
		}
		mustAppend(t, s, ev("k1", 1))
		mustAppend(t, s, ev("k1", 2))              // retried: nothing
		mustAppend(t, s, ev("k2", 3), ev("k2", 4)) // twice in one batch: once
		mustAppend(t, s, ev("", 5), ev("", 6))     // no key: both
		mustAppend(t, s, ev("k1", 7), ev("k3", 8)) // one old, one new
		evs := allEvents(t, s)
		wantIDs(t, "deduplicated", evs, 1, 5)
		var ns []int
		for _, e := range evs {
			var d map[string]int
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			ns = append(ns, d["n"])
		}
		if fmt.Sprint(ns) != "[1 3 5 6 8]" {
			t.Errorf("kept %v, want the first of each key [1 3 5 6 8]", ns)
		}
		// Concurrent appenders of one key: exactly one row, no error.
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() { errs <- s.AppendEvents(ctx, ev("race", 9)) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent append of one key: %v", err)
			}
		}
		wantIDs(t, "after the race", allEvents(t, s), 1, 6)
	})
}

func TestRolledBackEventsTakeNoID(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		mustAppend(t, s, NewEvent{Type: EventPresenceChanged, AgentID: "a"})
		boom := errors.New("boom")
		err := s.inTx(ctx, func(tx *sqlx.Tx) error {
			if err := s.appendEvents(ctx, tx, NewEvent{Type: EventPresenceChanged, AgentID: "b"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("rolled back transaction: %v", err)
		}
		// Outside a transaction appendEvents opens its own.
		if err := s.appendEvents(ctx, s.db, NewEvent{Type: EventPresenceChanged, AgentID: "c"}); err != nil {
			t.Fatal(err)
		}
		evs := allEvents(t, s)
		wantIDs(t, "after a rollback", evs, 1, 2)
		if evs[1].AgentID != "c" {
			t.Errorf("second event %+v, want agent c's", evs[1])
		}
	})
}

func TestPruneEventsKeepsAnUnbrokenTail(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clock := newFakeClock(s)
		for i := range 5 {
			mustAppend(t, s, NewEvent{Type: EventPresenceChanged, AgentID: fmt.Sprint("old-", i)})
		}
		clock.Advance(time.Hour)
		cut := clock.Now()
		for i := range 3 {
			mustAppend(t, s, NewEvent{Type: EventPresenceChanged, AgentID: fmt.Sprint("new-", i)})
		}
		if n, err := s.PruneEvents(ctx, cut.Add(-2*time.Hour)); err != nil || n != 0 {
			t.Errorf("prune before everything: %d, %v; want 0", n, err)
		}
		n, err := s.PruneEvents(ctx, cut)
		if err != nil || n != 5 {
			t.Fatalf("prune the old ones: %d, %v; want 5", n, err)
		}
		wantIDs(t, "retained", allEvents(t, s), 6, 8)
		if id, err := s.OldestEventID(ctx); err != nil || id != 6 {
			t.Errorf("OldestEventID = %d, %v; want 6", id, err)
		}
		if id, err := s.LatestEventID(ctx); err != nil || id != 8 {
			t.Errorf("LatestEventID = %d, %v; want 8", id, err)
		}
		// Everything: the log is empty, ids go on.
		clock.Advance(time.Hour)
		if n, err := s.PruneEvents(ctx, clock.Now()); err != nil || n != 3 {
			t.Fatalf("prune all: %d, %v; want 3", n, err)
		}
		if id, err := s.OldestEventID(ctx); err != nil || id != 9 {
			t.Errorf("OldestEventID of an emptied log = %d, %v; want 9 (the next id)", id, err)
		}
		if id, err := s.LatestEventID(ctx); err != nil || id != 8 {
			t.Errorf("LatestEventID of an emptied log = %d, %v; want 8", id, err)
		}
		mustAppend(t, s, NewEvent{Type: EventPresenceChanged, AgentID: "later"})
		wantIDs(t, "after pruning all", allEvents(t, s), 9, 9)
	})
}

func TestPruneEventsInBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		total := pruneBatch + 123
		evs := make([]NewEvent, 0, 1000)
		for i := range total {
			evs = append(evs, NewEvent{Type: EventPresenceChanged, AgentID: fmt.Sprint(i)})
			if len(evs) == cap(evs) || i == total-1 {
				mustAppend(t, s, evs...)
				evs = evs[:0]
			}
		}
		n, err := s.PruneEvents(ctx, time.Now().Add(time.Hour))
		if err != nil || n != int64(total) {
			t.Errorf("pruned %d, %v; want %d", n, err, total)
		}
	})
}

// Many appenders at once and a reader that keeps reading after the last id
// it saw: the reader gets every id exactly once, in order, none skipped.
// This holds because ids are taken under the event_counter row lock: an id
// is visible only after every smaller one is.
func TestEventsConcurrentAppendsAreReadWithoutGaps(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const writers, perWriter = 16, 40
		total := int64(0)
		for w := range writers {
			for i := range perWriter {
				total += int64(1 + (w+i)%3)
			}
		}
		var done atomic.Bool
		readErr := make(chan error, 1)
		var reads atomic.Int64
		go func() {
			last := int64(0)
			for {
				finished := done.Load()
				evs, err := s.EventsAfter(ctx, last, 50)
				if err != nil {
					readErr <- err
					return
				}
				reads.Add(1)
				for _, e := range evs {
					if e.ID != last+1 {
						readErr <- fmt.Errorf("read id %d after %d: skipped or repeated", e.ID, last)
						return
					}
					last = e.ID
				}
				if finished && len(evs) == 0 {
					if last != total {
						readErr <- fmt.Errorf("read up to %d, want %d", last, total)
					} else {
						readErr <- nil
					}
					return
				}
			}
		}()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					var batch []NewEvent
					for k := range 1 + (w+i)%3 {
						batch = append(batch, NewEvent{Type: EventConversationMessage, AgentID: fmt.Sprint("agent-", w),
							Data: map[string]int{"i": i, "k": k}})
					}
					if err := s.AppendEvents(ctx, batch...); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		done.Store(true)
		select {
		case err := <-readErr:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the reader did not finish")
		}
		t.Logf("%d events by %d writers; the reader read %d times", total, writers, reads.Load())
		wantIDs(t, "stored", allEvents(t, s), 1, total)
	})
}

func TestListenEventsWakesAtCommit(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if s.Dialect() == DialectSQLite {
			if err := s.ListenEvents(ctx, func() {}); !errors.Is(err, ErrNoListen) {
				t.Errorf("SQLite ListenEvents = %v, want ErrNoListen", err)
			}
			return
		}
		// Quiet spells make it ping its connection: notifications still come after.
		saved := listenCheck
		listenCheck = 40 * time.Millisecond
		defer func() { listenCheck = saved }()
		wakes := make(chan struct{}, 100)
		ended := make(chan error, 1)
		go func() { ended <- s.ListenEvents(ctx, func() { wakes <- struct{}{} }) }()
		select {
		case <-wakes: // listening
		case <-time.After(10 * time.Second):
			t.Fatal("no first wake once listening")
		}
		// Nothing at rollback.
		_ = s.inTx(ctx, func(tx *sqlx.Tx) error {
			if err := s.appendEvents(ctx, tx, NewEvent{Type: EventPresenceChanged, AgentID: "x"}); err != nil {
				t.Error(err)
			}
			return errors.New("roll back")
		})
		select {
		case <-wakes:
			// Another test's schema in the same database may notify too:
			// the channel is per database. Tolerate, but say so.
			t.Log("woken after a rollback (another test's commit?)")
		case <-time.After(300 * time.Millisecond): // several checks of the connection
		}
		start := time.Now()
		mustAppend(t, s, NewEvent{Type: EventPresenceChanged, AgentID: "y"})
		select {
		case <-wakes:
			t.Logf("woken %v after the commit", time.Since(start))
		case <-time.After(time.Second):
			t.Fatal("no wake within 1s of a commit")
		}
		cancel()
		select {
		case err := <-ended:
			if err != nil {
				t.Errorf("ListenEvents after cancel = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("ListenEvents did not return after cancel")
		}
		// The listening connection did not go back to the pool: a new
		// connection is not listening (nothing to check directly), and the
		// store still works.
		mustAppend(t, s, NewEvent{Type: EventPresenceChanged, AgentID: "z"})
	})
}
