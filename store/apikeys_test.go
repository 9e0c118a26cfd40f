package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAPIKeys(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clock := newFakeClock(s)
		k, secret, err := s.CreateAPIKey(ctx, "alice", RoleAgent, "agent-alice")
		if err != nil {
			t.Fatal(err)
		}
		// "pk_" + 32 bytes in base64url without padding.
		if !strings.HasPrefix(secret, "pk_") || len(secret) != 3+43 {
			t.Errorf("secret %q, want pk_ and 43 characters", secret)
		}
		if k.ID == "" || k.Name != "alice" || k.Role != RoleAgent || k.AgentID != "agent-alice" || k.LastUsedAt != nil || k.RevokedAt != nil {
			t.Errorf("CreateAPIKey = %+v", k)
		}
		if k.Prefix != secret[:9] {
			t.Errorf("Prefix = %q, want %q", k.Prefix, secret[:9])
		}

		// Only the hash is stored.
		for _, row := range readAll(t, s, "api_keys") {
			for col, v := range row {
				if strings.Contains(v, secret) || strings.Contains(v, secret[9:]) {
					t.Errorf("api_keys.%s holds the secret", col)
				}
			}
		}

		got, err := s.AuthenticateAPIKey(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != k.ID || got.Role != RoleAgent || got.AgentID != "agent-alice" || got.LastUsedAt == nil {
			t.Fatalf("AuthenticateAPIKey = %+v", got)
		}
		firstUse := *got.LastUsedAt
		// Within a minute: no write.
		again, err := s.AuthenticateAPIKey(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		if stored := lastUsed(t, s, k.ID); again.LastUsedAt == nil || *again.LastUsedAt != firstUse || stored != firstUse {
			t.Errorf("second use within a minute: LastUsedAt %v, stored %v; want %v", again.LastUsedAt, stored, firstUse)
		}
		// Later: recorded.
		clock.Advance(2 * time.Minute)
		later, err := s.AuthenticateAPIKey(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		if later.LastUsedAt == nil || !later.LastUsedAt.After(firstUse.Add(time.Minute)) || lastUsed(t, s, k.ID) != *later.LastUsedAt {
			t.Errorf("use after two minutes: LastUsedAt %v (first %v)", later.LastUsedAt, firstUse)
		}

		for _, wrong := range []string{"", "pk_wrong", secret + "x", strings.ToUpper(secret)} {
			if _, err := s.AuthenticateAPIKey(ctx, wrong); !errors.Is(err, ErrNotFound) {
				t.Errorf("AuthenticateAPIKey(wrong) = %v, want ErrNotFound", err)
			}
		}

		admin, adminSecret, err := s.CreateAPIKey(ctx, "ops", RoleAdmin, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeAPIKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AuthenticateAPIKey(ctx, secret); !errors.Is(err, ErrNotFound) {
			t.Errorf("AuthenticateAPIKey(revoked) = %v, want ErrNotFound", err)
		}
		if _, err := s.AuthenticateAPIKey(ctx, adminSecret); err != nil {
			t.Errorf("AuthenticateAPIKey(other key) = %v", err)
		}
		revokedAt := revokedAtOf(t, s, k.ID)
		clock.Advance(time.Hour)
		if err := s.RevokeAPIKey(ctx, k.ID); err != nil {
			t.Errorf("RevokeAPIKey twice = %v, want nil", err)
		}
		if got := revokedAtOf(t, s, k.ID); got != revokedAt {
			t.Errorf("RevokedAt after second revocation = %v, want %v", got, revokedAt)
		}
		if err := s.RevokeAPIKey(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("RevokeAPIKey(unknown) = %v, want ErrNotFound", err)
		}

		list, err := s.ListAPIKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != k.ID || list[0].RevokedAt == nil || list[1].ID != admin.ID || list[1].RevokedAt != nil {
			t.Errorf("ListAPIKeys = %+v", list)
		}

		if _, _, err := s.CreateAPIKey(ctx, "x", "root", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateAPIKey(role root) = %v, want ErrInvalid", err)
		}
	})
}

func TestEnsureAPIKey(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const secret = "bootstrap-admin-key-0123456789"
		k1, err := s.EnsureAPIKey(ctx, "bootstrap", RoleAdmin, secret)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := s.EnsureAPIKey(ctx, "bootstrap", RoleAdmin, secret)
		if err != nil {
			t.Fatal(err)
		}
		if k1.ID == "" || k1.ID != k2.ID || k1.Role != RoleAdmin {
			t.Errorf("EnsureAPIKey twice = %+v, %+v; want the same key", k1, k2)
		}
		// A short, arbitrary secret shows at most a quarter of itself.
		if len(k1.Prefix) > len(secret)/4 || !strings.HasPrefix(secret, k1.Prefix) {
			t.Errorf("Prefix = %q", k1.Prefix)
		}
		if got, err := s.AuthenticateAPIKey(ctx, secret); err != nil || got.ID != k1.ID {
			t.Errorf("AuthenticateAPIKey(bootstrap) = %+v, %v", got, err)
		}
		if list, err := s.ListAPIKeys(ctx); err != nil || len(list) != 1 {
			t.Errorf("ListAPIKeys = %+v, %v; want one key", list, err)
		}
		if _, err := s.EnsureAPIKey(ctx, "bootstrap", "boss", secret); !errors.Is(err, ErrInvalid) {
			t.Errorf("EnsureAPIKey(bad role) = %v, want ErrInvalid", err)
		}
		if _, err := s.EnsureAPIKey(ctx, "bootstrap", RoleAdmin, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("EnsureAPIKey(empty secret) = %v, want ErrInvalid", err)
		}
	})
}

func lastUsed(t *testing.T, s *Store, id string) time.Time {
	t.Helper()
	keys, err := s.ListAPIKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ID == id && k.LastUsedAt != nil {
			return *k.LastUsedAt
		}
	}
	t.Fatalf("key %s: no LastUsedAt", id)
	return time.Time{}
}

func revokedAtOf(t *testing.T, s *Store, id string) time.Time {
	t.Helper()
	keys, err := s.ListAPIKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ID == id && k.RevokedAt != nil {
			return *k.RevokedAt
		}
	}
	t.Fatalf("key %s: not revoked", id)
	return time.Time{}
}
