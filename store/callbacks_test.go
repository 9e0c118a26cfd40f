package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Issue 6, defect 11: the callback URL an admin pasted (one page's) carries
// every page of the account, so it outlives its page but not its account.
func TestCallbackPage(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := mustCreateAccount(t, s, "callbacks")
		pasted := mustCreatePage(t, s, a.ID, "8001")
		mustCreatePage(t, s, a.ID, "8002")

		got, err := s.CallbackPage(ctx, pasted.CallbackKey)
		if err != nil || got.ID != pasted.ID || got.DeletedAt != nil {
			t.Fatalf("live page: %+v, %v", got, err)
		}
		if err := s.DeletePage(ctx, pasted.ID); err != nil {
			t.Fatal(err)
		}
		got, err = s.CallbackPage(ctx, pasted.CallbackKey)
		if err != nil || got.ID != pasted.ID || got.AccountID != a.ID || got.DeletedAt == nil {
			t.Errorf("deleted page of a live account: %+v, %v; want the page, marked deleted", got, err)
		}
		if _, err := s.PageByCallbackKey(ctx, pasted.CallbackKey); !errors.Is(err, ErrNotFound) {
			t.Errorf("PageByCallbackKey of a deleted page = %v, want ErrNotFound (live pages only)", err)
		}

		for name, key := range map[string]string{"empty": "", "unknown": "no-such-key"} {
			if _, err := s.CallbackPage(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s key: %v, want ErrNotFound", name, err)
			}
		}

		if err := s.DeleteAccount(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		_, err = s.CallbackPage(ctx, pasted.CallbackKey)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted account: %v, want ErrNotFound", err)
		}
		if err != nil && strings.Contains(err.Error(), pasted.CallbackKey) {
			t.Errorf("the error names the callback key: %v", err)
		}
	})
}
