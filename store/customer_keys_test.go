package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"parley/secrets"
)

// A customer's data key is created once and read back the same; customers
// (the same PSID on another page included) and the system key differ; the
// key is stored wrapped with the master key, never in clear.
func TestCustomerKeys(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		k1, err := s.CustomerKey(ctx, "page-1", "psid-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(k1.Key) != secrets.KeySize || k1.ID == "" || k1.Kind != DataKeyCustomer || k1.FacebookPageID != "page-1" || k1.PSID != "psid-1" || k1.CreatedAt.IsZero() {
			t.Fatalf("customer key: %+v", k1)
		}
		again, err := s.CustomerKey(ctx, "page-1", "psid-1")
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != k1.ID || !bytes.Equal(again.Key, k1.Key) {
			t.Errorf("second read %s, want the key created first %s", again.ID, k1.ID)
		}
		byID, err := s.KeyByID(ctx, k1.ID)
		if err != nil {
			t.Fatal(err)
		}
		if byID.ID != k1.ID || !bytes.Equal(byID.Key, k1.Key) || byID.PSID != "psid-1" {
			t.Errorf("KeyByID = %+v, want %+v", byID, k1)
		}
		other, err := s.CustomerKey(ctx, "page-2", "psid-1")
		if err != nil {
			t.Fatal(err)
		}
		sys, err := s.SystemKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sys2, err := s.SystemKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sys.Kind != DataKeySystem || sys.FacebookPageID != "" || sys.PSID != "" || sys2.ID != sys.ID || !bytes.Equal(sys2.Key, sys.Key) {
			t.Errorf("system key %+v then %+v", sys, sys2)
		}
		for _, k := range []DataKey{other, sys} {
			if k.ID == k1.ID || bytes.Equal(k.Key, k1.Key) {
				t.Errorf("key %s (%s/%s) is customer 1's", k.ID, k.FacebookPageID, k.PSID)
			}
		}

		var wrapped string
		if err := get(ctx, s.db, &wrapped, `SELECT wrapped_key FROM customer_keys WHERE key_id = ?`, k1.ID); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(wrapped, "v1:") || strings.Contains(wrapped, base64.StdEncoding.EncodeToString(k1.Key)) {
			t.Errorf("stored key %q is not sealed", wrapped)
		}
		// A wrapped key moved to another row does not open.
		if _, err := exec(ctx, s.db, `UPDATE customer_keys SET wrapped_key = ? WHERE key_id = ?`, wrapped, other.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.KeyByID(ctx, other.ID); err == nil {
			t.Error("a wrapped key copied into another row opened")
		}

		if _, err := s.KeyByID(ctx, "no-such-key"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown key: %v, want ErrNotFound", err)
		}
		if _, err := s.CustomerKey(ctx, "", "psid-1"); !errors.Is(err, ErrInvalid) {
			t.Errorf("no page: %v, want ErrInvalid", err)
		}
		if _, err := s.CustomerKey(ctx, "page-1", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("no PSID: %v, want ErrInvalid", err)
		}
	})
}

// Erasing a customer's key deletes it for good (a later message gets a new
// key); other customers and the system key stay.
func TestEraseCustomerKey(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		k1, err := s.CustomerKey(ctx, "page-1", "psid-1")
		if err != nil {
			t.Fatal(err)
		}
		k2, err := s.CustomerKey(ctx, "page-1", "psid-2")
		if err != nil {
			t.Fatal(err)
		}
		sys, err := s.SystemKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := s.EraseCustomerKey(ctx, "page-1", "psid-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != k1.ID {
			t.Errorf("erased %v, want [%s]", ids, k1.ID)
		}
		if _, err := s.KeyByID(ctx, k1.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("erased key: %v, want ErrNotFound", err)
		}
		for _, k := range []DataKey{k2, sys} {
			if _, err := s.KeyByID(ctx, k.ID); err != nil {
				t.Errorf("key %s (%s/%s) after another customer's erasure: %v", k.ID, k.FacebookPageID, k.PSID, err)
			}
		}
		if ids, err := s.EraseCustomerKey(ctx, "page-1", "psid-1"); err != nil || len(ids) != 0 {
			t.Errorf("erasing again: %v, %v; want nothing erased", ids, err)
		}
		if _, err := s.EraseCustomerKey(ctx, "", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("erasing the system key: %v, want ErrInvalid", err)
		}
		fresh, err := s.CustomerKey(ctx, "page-1", "psid-1")
		if err != nil {
			t.Fatal(err)
		}
		if fresh.ID == k1.ID || bytes.Equal(fresh.Key, k1.Key) {
			t.Error("the key after erasure is the erased one")
		}
	})
}

// Processes creating the same customer's key at once all get one key.
func TestCustomerKeyRace(t *testing.T) {
	for _, dialect := range []string{DialectSQLite, DialectPostgres} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url, box := testDatabaseURL(t, dialect), newTestBox(t)
			stores := make([]*Store, 4)
			for i := range stores {
				s, err := Open(ctx, url, box)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := s.Close(); err != nil {
						t.Error(err)
					}
				})
				if i == 0 {
					if err := s.Migrate(ctx); err != nil {
						t.Fatal(err)
					}
				}
				stores[i] = s
			}
			for round := range 5 {
				psid := fmt.Sprintf("psid-%d", round)
				keys := make([]DataKey, 4*len(stores))
				errs := make([]error, len(keys))
				var wg sync.WaitGroup
				for i := range keys {
					wg.Go(func() {
						s := stores[i%len(stores)]
						if round%2 == 1 {
							keys[i], errs[i] = s.SystemKey(ctx)
							return
						}
						keys[i], errs[i] = s.CustomerKey(ctx, "page", psid)
					})
				}
				wg.Wait()
				for i, k := range keys {
					if errs[i] != nil {
						t.Fatalf("round %d, caller %d: %v", round, i, errs[i])
					}
					if k.ID != keys[0].ID || !bytes.Equal(k.Key, keys[0].Key) {
						t.Errorf("round %d: caller %d got key %s, caller 0 %s", round, i, k.ID, keys[0].ID)
					}
				}
			}
		})
	}
}
