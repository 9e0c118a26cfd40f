package store

import (
	"context"
	"fmt"
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

// The acknowledgement path's reads run as prepared statements on SQLite
// (stmtCache): a statement prepared before a message is recorded sees it
// afterwards, and more distinct queries than the cache holds still answer.
func TestDedupeReadsSeeNewMessagesAndAnyNumberOfKeys(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := messageFixture(t, s, "952", "psid-e")
		if got, err := s.UnrecordedDedupeKeys(ctx, c.FacebookPageID, c.PSID, []string{"k1"}); err != nil || len(got) != 1 {
			t.Fatalf("before the message: %q, %v; want [k1]", got, err)
		}
		if _, err := s.InsertMessages(ctx, []Message{inbound(c, 1, "k1", mustUTC(t, "2025-08-01T10:00:00Z"))}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.UnrecordedDedupeKeys(ctx, c.FacebookPageID, c.PSID, []string{"k1"}); err != nil || len(got) != 0 {
			t.Fatalf("after the message: %q, %v; want none (Meta's retry of a recorded message)", got, err)
		}
		for n := 1; n <= maxCachedStatements+16; n++ {
			keys := []string{"k1"}
			for i := 1; i < n; i++ {
				keys = append(keys, fmt.Sprintf("new-%d", i))
			}
			got, err := s.UnrecordedDedupeKeys(ctx, c.FacebookPageID, c.PSID, keys)
			if err != nil {
				t.Fatalf("%d keys: %v", n, err)
			}
			if !reflect.DeepEqual(got, keys[1:]) && !(n == 1 && got == nil) {
				t.Fatalf("%d keys: %d unrecorded, want %d", n, len(got), n-1)
			}
		}
		if sc, ok := s.rdb.(*stmtCache); ok && len(sc.stmts) != maxCachedStatements {
			t.Errorf("%d statements cached, want the cache full at %d", len(sc.stmts), maxCachedStatements)
		}
	})
}
