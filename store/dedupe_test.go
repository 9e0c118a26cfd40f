package store

import (
	"context"
	"reflect"
	"testing"
)

// Meta's retries of recorded events, and mids other messages hold, are
// found per customer (issue 6, defects 1 and 6).
func TestUnrecordedDedupeKeysAndUnheldMIDs(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := messageFixture(t, s, "950", "psid-d")
		other := messageFixture(t, s, "951", "psid-d")
		at := mustUTC(t, "2025-08-01T10:00:00Z")
		if _, err := s.InsertMessages(ctx, []Message{inbound(c, 1, "k1", at), inbound(other, 1, "k2", at)}); err != nil {
			t.Fatal(err)
		}
		got, err := s.UnrecordedDedupeKeys(ctx, c.FacebookPageID, c.PSID, []string{"k3", "k1", "k2"})
		if err != nil {
			t.Fatal(err)
		}
		// k2 is another page's: news for this customer.
		if want := []string{"k3", "k2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("UnrecordedDedupeKeys = %q, want %q (order kept)", got, want)
		}
		mids, err := s.UnheldMIDs(ctx, c.FacebookPageID, c.PSID, []string{"m_k1", "m_new", "m_k2"})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"m_new", "m_k2"}; !reflect.DeepEqual(mids, want) {
			t.Errorf("UnheldMIDs = %q, want %q", mids, want)
		}
		if none, err := s.UnrecordedDedupeKeys(ctx, c.FacebookPageID, c.PSID, nil); err != nil || none != nil {
			t.Errorf("no keys: %q, %v", none, err)
		}
	})
}
