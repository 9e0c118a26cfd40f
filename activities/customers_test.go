package activities_test

import (
	"context"
	"testing"
	"time"

	"parley/activities"
	"parley/fakemeta"
	"parley/store"
)

// Meta refuses the profile: the PSID stays the identity, the name unknown
// (never a placeholder), and Meta is not asked again before the backoff.
// Once Meta gives it, the customer is named, and the name is not fetched
// again before a day.
func TestLoadProfileFallsBackToThePSIDAndRetriesLater(t *testing.T) {
	snd, fake, page := senderEnv(t)
	a := &activities.Customers{Store: snd.Store, Graph: snd.Graph}
	ctx := context.Background()
	const psid = "user-profile-1"
	profileCalls := func() int {
		n := 0
		for _, c := range fake.Calls() {
			if c.Op == fakemeta.OpProfile {
				n++
			}
		}
		return n
	}
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	load := func(at time.Time) activities.CustomerProfile {
		t.Helper()
		p, err := a.LoadProfile(ctx, activities.ProfileInput{PageRef: page.ID, PSID: psid, Now: at})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// The profile is hidden from the app (no Business Asset User Profile Access).
	fake.SetUserProfile(pageID, psid, "Ada", "Lovelace", false)
	p := load(t0)
	if p.Status != store.ProfileUnavailable || p.Name() != "" || p.Reason == "" || !p.NextAttemptAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("refused profile: %+v, want unavailable, no name, a reason, retry in 1 min", p)
	}
	if n := profileCalls(); n != 1 {
		t.Fatalf("%d profile calls, want 1", n)
	}
	// Before the backoff: nothing asked.
	if p := load(t0.Add(30 * time.Second)); p.Status != store.ProfileUnavailable || profileCalls() != 1 {
		t.Errorf("within the backoff: %+v after %d calls, want no new call", p, profileCalls())
	}
	// After it: asked again, refused again; the wait grows.
	if p := load(t0.Add(time.Minute)); !p.NextAttemptAt.Equal(t0.Add(6*time.Minute)) || profileCalls() != 2 {
		t.Errorf("second refusal: next attempt %v after %d calls, want %v after 2", p.NextAttemptAt, profileCalls(), t0.Add(6*time.Minute))
	}
	// The app gains access: the next due attempt names the customer.
	fake.SetUserProfile(pageID, psid, "Ada", "Lovelace", true)
	p = load(t0.Add(6 * time.Minute))
	if p.Status != store.ProfileKnown || p.Name() != "Ada Lovelace" || p.Reason != "" || !p.NextAttemptAt.IsZero() {
		t.Fatalf("granted profile: %+v", p)
	}
	c, err := snd.Store.GetCustomer(ctx, page.ID, psid)
	if err != nil || c.PictureURL == "" {
		t.Errorf("stored customer: %+v, %v: want the picture kept", c, err)
	}
	calls := profileCalls()
	if p := load(t0.Add(23 * time.Hour)); p.Name() != "Ada Lovelace" || profileCalls() != calls {
		t.Errorf("within a day: %+v after %d calls, want no new call", p, profileCalls()-calls)
	}
	if load(t0.Add(6*time.Minute + activities.ProfileRefresh)); profileCalls() != calls+1 {
		t.Errorf("after a day: %d new calls, want 1 (refresh)", profileCalls()-calls)
	}
}

func TestProfileBackoffGrowsToADay(t *testing.T) {
	want := []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 12 * time.Hour, 24 * time.Hour, 24 * time.Hour}
	for i, w := range want {
		if got := activities.ProfileBackoff(i + 1); got != w {
			t.Errorf("after %d failures: %v, want %v", i+1, got, w)
		}
	}
}
