package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func TestAccounts(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		newFakeClock(s)
		a, err := s.CreateAccount(ctx, NewAccount{Name: "Acme", AppID: "1234", AppSecret: "0123456789abcdef"})
		if err != nil {
			t.Fatal(err)
		}
		if a.ID == "" || a.Name != "Acme" || a.AppID != "1234" || a.Channel != "facebook" || a.AppSecretHint != "…cdef" || a.DeletedAt != nil {
			t.Errorf("CreateAccount = %+v", a)
		}
		if a.CreatedAt.IsZero() || a.UpdatedAt != a.CreatedAt {
			t.Errorf("CreatedAt = %v, UpdatedAt = %v", a.CreatedAt, a.UpdatedAt)
		}
		got, err := s.GetAccount(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Errorf("GetAccount = %+v\nwant %+v", got, a)
		}
		if secret, err := s.AccountAppSecret(ctx, a.ID); err != nil || secret != "0123456789abcdef" {
			t.Errorf("AccountAppSecret = %q, %v", secret, err)
		}

		b := mustCreateAccount(t, s, "Beta")
		list, err := s.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
			t.Errorf("ListAccounts = %+v, want [Acme Beta]", list)
		}

		// Update: nil fields are left alone.
		name := "Acme Inc"
		u, err := s.UpdateAccount(ctx, a.ID, AccountUpdate{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != name || u.AppID != "1234" || u.AppSecretHint != "…cdef" || !u.UpdatedAt.After(a.UpdatedAt) || u.CreatedAt != a.CreatedAt {
			t.Errorf("UpdateAccount(name) = %+v", u)
		}
		appID, secret := "5678", "fedcba9876543210"
		u, err = s.UpdateAccount(ctx, a.ID, AccountUpdate{AppID: &appID, AppSecret: &secret})
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != name || u.AppID != appID || u.AppSecretHint != "…3210" {
			t.Errorf("UpdateAccount(app) = %+v", u)
		}
		if got, err := s.GetAccount(ctx, a.ID); err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("GetAccount after update = %+v, %v\nwant %+v", got, err, u)
		}
		if got, err := s.AccountAppSecret(ctx, a.ID); err != nil || got != secret {
			t.Errorf("AccountAppSecret after update = %q, %v", got, err)
		}

		// Delete hides the account and its pages, keeps other accounts.
		p := mustCreatePage(t, s, a.ID, "111")
		other := mustCreatePage(t, s, b.ID, "222")
		if err := s.DeleteAccount(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{
			"GetAccount":       errOf(s.GetAccount(ctx, a.ID)),
			"AccountAppSecret": errOf(s.AccountAppSecret(ctx, a.ID)),
			"UpdateAccount":    errOf(s.UpdateAccount(ctx, a.ID, AccountUpdate{Name: &name})),
			"DeleteAccount":    s.DeleteAccount(ctx, a.ID),
			"GetPage":          errOf(s.GetPage(ctx, p.ID)),
			"CallbackKey":      errOf(s.PageByCallbackKey(ctx, p.CallbackKey)),
			"CreatePage":       errOf(s.CreatePage(ctx, NewPage{AccountID: a.ID, PageID: "333", AccessToken: "t"})),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s after DeleteAccount: %v, want ErrNotFound", name, err)
			}
		}
		if list, err := s.ListAccounts(ctx); err != nil || len(list) != 1 || list[0].ID != b.ID {
			t.Errorf("ListAccounts after delete = %+v, %v", list, err)
		}
		if pages, err := s.ListPages(ctx, ""); err != nil || len(pages) != 1 || pages[0].ID != other.ID {
			t.Errorf("ListPages after delete = %+v, %v", pages, err)
		}
		// Soft delete: the rows are still there.
		var n int
		if err := s.db.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM pages WHERE account_id = ? AND deleted_at IS NOT NULL`), a.ID); err != nil || n != 1 {
			t.Errorf("deleted pages kept = %d, %v; want 1", n, err)
		}

		for _, unknown := range []string{"", "nope"} {
			if _, err := s.GetAccount(ctx, unknown); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetAccount(%q) = %v, want ErrNotFound", unknown, err)
			}
		}
	})
}

func TestAccountsInvalid(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, na := range []NewAccount{
			{AppID: "1", AppSecret: "s"},
			{Name: "n", AppSecret: "s"},
			{Name: "n", AppID: "1"},
		} {
			if _, err := s.CreateAccount(ctx, na); !errors.Is(err, ErrInvalid) {
				t.Errorf("CreateAccount(%+v) = %v, want ErrInvalid", na, err)
			}
		}
		a := mustCreateAccount(t, s, "x")
		empty := ""
		if _, err := s.UpdateAccount(ctx, a.ID, AccountUpdate{AppSecret: &empty}); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpdateAccount(empty secret) = %v, want ErrInvalid", err)
		}
	})
}

// errOf drops a result, keeping the error.
func errOf[T any](_ T, err error) error { return err }
