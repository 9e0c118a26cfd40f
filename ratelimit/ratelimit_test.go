package ratelimit

import (
	"testing"
	"time"
)

// A burst goes at once, then calls are spaced by the rate; a pause in the
// traffic refills the burst.
func TestReserveSpacesCallsAfterTheBurst(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	l := Limits{Rate: 10, Burst: 3}
	var tat time.Time
	var waits []time.Duration
	for range 6 {
		var w time.Duration
		tat, w = Reserve(tat, t0, l)
		waits = append(waits, w)
	}
	want := []time.Duration{0, 0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	// A second later the lane is idle again: the burst is back.
	if _, w := Reserve(tat, t0.Add(2*time.Second), l); w != 0 {
		t.Errorf("after an idle second: wait %v, want 0", w)
	}
}

func TestScaledAndFactor(t *testing.T) {
	if l := Meta[LaneText].Scaled(FactorFor(80)); l.Rate != 150 || l.Burst != 150 {
		t.Errorf("text at 80%% used: %+v, want half", l)
	}
	if l := Meta[LaneMedia].Scaled(FactorFor(95)); l.Rate != 1 || l.Burst != 1 {
		t.Errorf("media at 95%% used: %+v, want 1/s", l)
	}
	if FactorFor(50) != 1 || LaneOf("video") != LaneMedia || LaneOf("image") != LaneText {
		t.Error("factor or lane")
	}
}
