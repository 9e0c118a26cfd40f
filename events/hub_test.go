package events_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"parley/events"
	"parley/events/eventstest"
	"parley/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newHub(t *testing.T, s *store.Store, opts events.Options) *events.Hub {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	h := events.New(s, opts)
	h.Start()
	t.Cleanup(h.Close)
	return h
}

func sqliteStore(t *testing.T) *store.Store {
	t.Helper()
	return eventstest.OpenStore(t, eventstest.DatabaseURL(t, store.DialectSQLite))
}

func appendN(t *testing.T, s *store.Store, n int, tag string) {
	t.Helper()
	for i := range n {
		if err := s.AppendEvents(context.Background(), store.NewEvent{Type: store.EventPresenceChanged, AgentID: tag,
			Data: map[string]int{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
}

// next reads one item within d.
func next(t *testing.T, st *events.Stream, d time.Duration) (events.Item, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return st.Next(ctx)
}

// readIDs reads n events (no resets) from st.
func readIDs(t *testing.T, st *events.Stream, n int) []int64 {
	t.Helper()
	var ids []int64
	for len(ids) < n {
		it, err := next(t, st, 5*time.Second)
		if err != nil {
			t.Fatalf("after %v: %v", ids, err)
		}
		if it.Reset != nil {
			t.Fatalf("after %v: unexpected reset %+v", ids, it.Reset)
		}
		ids = append(ids, it.Event.ID)
	}
	return ids
}

func seq(from, to int64) []int64 {
	var ids []int64
	for i := from; i <= to; i++ {
		ids = append(ids, i)
	}
	return ids
}

func TestEverySubscriberGetsEveryEventInOrder(t *testing.T) {
	s := sqliteStore(t)
	appendN(t, s, 3, "before") // not part of "from now"
	h := newHub(t, s, events.Options{PollInterval: 10 * time.Millisecond, Batch: 7})
	ctx := context.Background()
	var streams []*events.Stream
	for range 3 {
		st, err := h.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		streams = append(streams, st)
	}
	appendN(t, s, 40, "a")
	for i, st := range streams {
		if got := readIDs(t, st, 40); fmt.Sprint(got) != fmt.Sprint(seq(4, 43)) {
			t.Errorf("stream %d: %v, want 4..43", i, got)
		}
	}
	if h.Last() != 43 {
		t.Errorf("hub at %d, want 43", h.Last())
	}
}

func TestSlowSubscriberIsDroppedWithoutBlockingOthers(t *testing.T) {
	s := sqliteStore(t)
	// One event per read (woken after each append), so that only the
	// subscriber that does not read overflows.
	h := newHub(t, s, events.Options{PollInterval: time.Hour, Buffer: 4})
	ctx := context.Background()
	slow, _, err := h.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fast, _, err := h.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range fast.C() {
			got = append(got, ev.ID)
			if len(got) == 30 {
				return
			}
		}
	}()
	for i := range 30 {
		appendN(t, s, 1, "x")
		h.Wake()
		for h.Last() != int64(i+1) {
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the fast subscriber got %v, stuck behind the slow one?", got)
	}
	if fmt.Sprint(got) != fmt.Sprint(seq(1, 30)) {
		t.Errorf("fast subscriber got %v", got)
	}
	// The slow one keeps what was queued, then its channel closes: ErrSlow.
	var queued []int64
	for ev := range slow.C() {
		queued = append(queued, ev.ID)
	}
	if fmt.Sprint(queued) != fmt.Sprint(seq(1, 4)) || !errors.Is(slow.Err(), events.ErrSlow) {
		t.Errorf("slow subscriber: queued %v, err %v; want [1 2 3 4], ErrSlow", queued, slow.Err())
	}
	if n := h.Subscribers(); n != 1 {
		t.Errorf("%d subscribers, want 1", n)
	}
	fast.Close()
	fast.Close() // twice is fine
	if n := h.Subscribers(); n != 0 {
		t.Errorf("%d subscribers after Close, want 0", n)
	}
}

// A stream that ends (disconnect, or dropped as slow) and resumes from its
// last id gets exactly the events after it, while writers keep appending:
// the switch from replay to live loses and repeats nothing.
func TestResumeHasNoGapAndNoDuplicate(t *testing.T) {
	for _, dialect := range eventstest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			s := eventstest.OpenStore(t, eventstest.DatabaseURL(t, dialect))
			h := newHub(t, s, events.Options{PollInterval: 5 * time.Millisecond, Batch: 16, Buffer: 8})
			ctx := context.Background()
			const total = 600
			var writers sync.WaitGroup
			for w := range 3 {
				writers.Go(func() {
					for i := range total / 3 {
						if err := s.AppendEvents(ctx, store.NewEvent{Type: store.EventPresenceChanged, AgentID: fmt.Sprint(w),
							Data: map[string]int{"i": i}}); err != nil {
							t.Error(err)
							return
						}
						if i%20 == 0 {
							time.Sleep(time.Millisecond)
						}
					}
				})
			}
			var got []int64
			st, err := h.OpenAfter(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			reconnects, drops := 0, 0
			for len(got) < total {
				it, err := next(t, st, 10*time.Second)
				if errors.Is(err, events.ErrSlow) {
					drops++
				} else if err != nil {
					t.Fatalf("after %d events: %v", len(got), err)
				} else {
					if it.Reset != nil {
						t.Fatalf("unexpected reset %+v", it.Reset)
					}
					got = append(got, it.Event.ID)
					if len(got)%37 != 0 {
						continue
					}
				}
				// Disconnect and resume from the last id.
				st.Close()
				reconnects++
				last := int64(0)
				if len(got) > 0 {
					last = got[len(got)-1]
				}
				if st, err = h.OpenAfter(ctx, last); err != nil {
					t.Fatal(err)
				}
			}
			st.Close()
			writers.Wait()
			if fmt.Sprint(got) != fmt.Sprint(seq(1, total)) {
				t.Errorf("got %d events %v..., want 1..%d each once in order", len(got), got[:min(len(got), 20)], total)
			}
			t.Logf("%d reconnects, %d dropped as slow", reconnects, drops)
		})
	}
}

func TestResumeAfterPruningStartsWithAReset(t *testing.T) {
	s := sqliteStore(t)
	ctx := context.Background()
	appendN(t, s, 5, "old")
	if _, err := s.PruneEvents(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 3, "new") // 6, 7, 8
	h := newHub(t, s, events.Options{PollInterval: 10 * time.Millisecond})

	// Last-Event-ID 2: 3..5 are gone.
	st, err := h.OpenAfter(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	it, err := next(t, st, 5*time.Second)
	if err != nil || it.Reset == nil || it.Reset.ID != 5 || it.Reset.Reason != "pruned" {
		t.Fatalf("first item %+v, %v; want a reset continuing after 5", it, err)
	}
	if got := readIDs(t, st, 3); fmt.Sprint(got) != "[6 7 8]" {
		t.Errorf("after the reset: %v, want [6 7 8]", got)
	}
	st.Close()

	// Last-Event-ID 5 (one before the oldest retained): nothing is missing.
	st, err = h.OpenAfter(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got := readIDs(t, st, 3); fmt.Sprint(got) != "[6 7 8]" {
		t.Errorf("from 5: %v, want [6 7 8]", got)
	}
	st.Close()

	// An id beyond the latest (another database?): reset to the latest.
	st, err = h.OpenAfter(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	it, err = next(t, st, 5*time.Second)
	if err != nil || it.Reset == nil || it.Reset.ID != 8 || it.Reset.Reason != "unknown_id" {
		t.Fatalf("from 1000: %+v, %v; want a reset continuing after 8", it, err)
	}
	appendN(t, s, 1, "later")
	if got := readIDs(t, st, 1); fmt.Sprint(got) != "[9]" {
		t.Errorf("after the reset: %v, want [9]", got)
	}
	st.Close()

	// Everything pruned, nothing new: the reset comes at once.
	if _, err := s.PruneEvents(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	st, err = h.OpenAfter(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	it, err = next(t, st, 5*time.Second)
	if err != nil || it.Reset == nil || it.Reset.ID != 9 {
		t.Fatalf("all pruned: %+v, %v; want a reset continuing after 9", it, err)
	}
}

func TestPrunerDeletesEventsPastTheRetention(t *testing.T) {
	s := sqliteStore(t)
	ctx := context.Background()
	appendN(t, s, 4, "x")
	var now atomic.Int64
	now.Store(time.Now().Add(-time.Hour).UnixNano())
	newHub(t, s, events.Options{PollInterval: 10 * time.Millisecond, Retention: 30 * time.Minute,
		PruneInterval: 10 * time.Millisecond, Now: func() time.Time { return time.Unix(0, now.Load()) }})
	time.Sleep(50 * time.Millisecond)
	if oldest, err := s.OldestEventID(ctx); err != nil || oldest != 1 {
		t.Fatalf("pruned too early: oldest %d, %v", oldest, err)
	}
	now.Store(time.Now().Add(time.Hour).UnixNano())
	deadline := time.Now().Add(5 * time.Second)
	for {
		oldest, err := s.OldestEventID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if oldest == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not pruned: oldest %d", oldest)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	s := sqliteStore(t)
	h := events.New(s, events.Options{Logger: quiet})
	h.Start()
	st, err := h.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(20 * time.Millisecond); h.Close() }()
	if _, err := next(t, st, 5*time.Second); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	if _, err := h.Open(context.Background()); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Open after Close = %v, want ErrClosed", err)
	}
	// A hub closed before it knew where the log stands does not hang.
	h2 := events.New(s, events.Options{Logger: quiet})
	h2.Close()
	if _, err := h2.Open(context.Background()); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Open on a hub never started = %v, want ErrClosed", err)
	}
}

// On PostgreSQL the hub does not wait for its poll: the commit's NOTIFY
// wakes it. With an hour-long poll interval, only the notification can
// deliver within a second.
func TestNotifyWakesThePollerOnPostgres(t *testing.T) {
	url := eventstest.DatabaseURL(t, store.DialectPostgres)
	s := eventstest.OpenStore(t, url)
	writer := eventstest.OpenStore(t, url) // another process
	h := newHub(t, s, events.Options{PollInterval: time.Hour})
	ctx := context.Background()
	st, err := h.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The first poll happens when LISTEN is in place (its first wake).
	time.Sleep(200 * time.Millisecond)
	var worst time.Duration
	for i := range 10 {
		start := time.Now()
		if err := writer.AppendEvents(ctx, store.NewEvent{Type: store.EventPresenceChanged, AgentID: "pg"}); err != nil {
			t.Fatal(err)
		}
		it, err := next(t, st, time.Second)
		if err != nil {
			t.Fatalf("event %d not delivered within 1s with an hour-long poll: %v", i+1, err)
		}
		if it.Event.ID != int64(i+1) {
			t.Fatalf("got %+v, want id %d", it, i+1)
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("append (commit) to delivery: worst %v of 10", worst)
}

// flakyListen is a store whose first LISTEN connection fails at once; the
// second one hands out its wake function.
type flakyListen struct {
	*store.Store
	calls atomic.Int32
	wakes chan func()
}

func (f *flakyListen) ListenEvents(ctx context.Context, wake func()) error {
	if f.calls.Add(1) == 1 {
		return errors.New("connection reset by peer")
	}
	wake()
	f.wakes <- wake
	<-ctx.Done()
	return nil
}

// A lost LISTEN connection is opened again; notifications then wake the
// poller as before.
func TestListenerReconnects(t *testing.T) {
	src := &flakyListen{Store: sqliteStore(t), wakes: make(chan func(), 1)}
	h := events.New(src, events.Options{PollInterval: time.Hour, Logger: quiet})
	h.Start()
	defer h.Close()
	st, err := h.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var wake func()
	select {
	case wake = <-src.wakes:
	case <-time.After(5 * time.Second):
		t.Fatalf("LISTEN not retried (%d attempts)", src.calls.Load())
	}
	appendN(t, src.Store, 1, "x")
	wake() // the notification
	if it, err := next(t, st, time.Second); err != nil || it.Event.ID != 1 {
		t.Fatalf("after the notification: %+v, %v", it, err)
	}
}
