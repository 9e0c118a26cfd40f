package store

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/ratelimit"
)

// Workers sharing a page's limiter: the burst goes at once, the next calls
// wait their turn; a throttled page waits for Meta's pause; a page whose
// budget is nearly spent is slowed down.
func TestSendLimitsAreSharedPausedAndSlowed(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		// 40 "workers" reserve 5 media calls each at the same instant: every
		// one gets its place, however many contend for the page.
		var mu sync.Mutex
		var waits []time.Duration
		var wg sync.WaitGroup
		for range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					w, _, err := s.ReserveSend(ctx, "page-1", ratelimit.LaneMedia, t0)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					waits = append(waits, w)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(waits) != 200 {
			t.Fatalf("%d reservations, want 200", len(waits))
		}
		immediate, longest := 0, time.Duration(0)
		for _, w := range waits {
			if w == 0 {
				immediate++
			}
			longest = max(longest, w)
		}
		// 10/s with a burst of 10: 10 at once, the 200th 19 s later.
		if immediate != 10 || longest != 19*time.Second {
			t.Errorf("%d at once, longest wait %v; want 10 and 19s", immediate, longest)
		}
		// Another page is not held up.
		if w, _, err := s.ReserveSend(ctx, "page-2", ratelimit.LaneMedia, t0); err != nil || w != 0 {
			t.Errorf("another page: wait %v, %v", w, err)
		}

		if err := s.PauseSends(ctx, "page-2", t0.Add(19*time.Minute), "Meta throttles the page (code 613)"); err != nil {
			t.Fatal(err)
		}
		w, why, err := s.ReserveSend(ctx, "page-2", ratelimit.LaneText, t0.Add(time.Minute))
		if err != nil || w != 18*time.Minute || !strings.Contains(why, "613") {
			t.Errorf("paused page: wait %v (%q), %v; want 18 min with the reason", w, why, err)
		}
		if w, _, _ := s.ReserveSend(ctx, "page-2", ratelimit.LaneText, t0.Add(20*time.Minute)); w != 0 {
			t.Errorf("after the pause: wait %v", w)
		}

		if err := s.SlowSends(ctx, "page-3", 0.1, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		var slowed time.Duration
		for range 31 {
			if slowed, _, err = s.ReserveSend(ctx, "page-3", ratelimit.LaneText, t0); err != nil {
				t.Fatal(err)
			}
		}
		// 30/s with a burst of 30: the 31st waits a thirtieth of a second.
		if slowed <= 0 || slowed > 40*time.Millisecond {
			t.Errorf("31st text call on a slowed page: wait %v, want about 33ms", slowed)
		}
	})
}
