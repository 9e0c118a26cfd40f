package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A failed fetch leaves the name unknown (never a placeholder) with when to
// try again; a success names the customer; a later failed refresh keeps
// the name.
func TestCustomerProfile(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		if _, err := s.GetCustomer(ctx, "page", "psid-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a customer never seen: %v, want ErrNotFound", err)
		}
		c, err := s.SaveProfileFailure(ctx, "page", "psid-1", "Meta refused the profile (code 100, subcode 33)", t0, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if c.ProfileStatus != ProfileUnavailable || c.FirstName != "" || c.LastName != "" || c.ProfileAttempts != 1 ||
			!c.NextProfileAttemptAt.Equal(t0.Add(time.Minute)) || c.ProfileError == "" || !c.ProfileFetchedAt.IsZero() {
			t.Errorf("after a failure: %+v", c)
		}
		c, err = s.SaveProfileFailure(ctx, "page", "psid-1", "again", t0.Add(time.Minute), t0.Add(6*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if c.ProfileAttempts != 2 || c.ProfileError != "again" || !c.NextProfileAttemptAt.Equal(t0.Add(6*time.Minute)) {
			t.Errorf("after a second failure: %+v", c)
		}
		c, err = s.SaveProfile(ctx, "page", "psid-1", ProfileFetched{FirstName: "Ada", LastName: "Lovelace", PictureURL: "https://pic", At: t0.Add(7 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if c.ProfileStatus != ProfileKnown || c.FirstName != "Ada" || c.LastName != "Lovelace" || c.ProfileAttempts != 0 ||
			c.ProfileError != "" || !c.NextProfileAttemptAt.IsZero() || !c.ProfileFetchedAt.Equal(t0.Add(7*time.Minute)) {
			t.Errorf("after a success: %+v", c)
		}
		c, err = s.SaveProfileFailure(ctx, "page", "psid-1", "refresh failed", t0.Add(25*time.Hour), t0.Add(26*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if c.ProfileStatus != ProfileKnown || c.FirstName != "Ada" || c.ProfileError != "refresh failed" {
			t.Errorf("after a failed refresh: %+v, want the name kept", c)
		}
		// Another page's customer with the same PSID is another person.
		if _, err := s.GetCustomer(ctx, "other-page", "psid-1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("same PSID on another page: %v", err)
		}
		if _, err := s.SaveProfile(ctx, "", "psid-1", ProfileFetched{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("no page: %v, want ErrInvalid", err)
		}
	})
}
