// Package eventstest gives the live-event tests their databases: a SQLite
// file, or a fresh schema of the PostgreSQL server named by
// PARLEY_TEST_POSTGRES_URL (export "$(scripts/testpg.sh start)").
package eventstest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"parley/secrets"
	"parley/store"
)

// PostgresEnv names the PostgreSQL server of the tests.
const PostgresEnv = "PARLEY_TEST_POSTGRES_URL"

// Dialects are the databases to test on.
var Dialects = []string{store.DialectSQLite, store.DialectPostgres}

// DatabaseURL returns the URL of a new, empty database of the dialect,
// removed when the test ends; the PostgreSQL variant is skipped unless
// PARLEY_TEST_POSTGRES_URL is set.
func DatabaseURL(t testing.TB, dialect string) string {
	t.Helper()
	if dialect == store.DialectSQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), "parley.db")
	}
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("PostgreSQL variant skipped: set %s, e.g. from the repository root: export \"$(scripts/testpg.sh start)\"", PostgresEnv)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "events_test_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema) // pgx sends it as a run-time parameter
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenStore opens (and migrates) the database at url, as one process
// would; it is closed when the test ends.
func OpenStore(t testing.TB, url string) *store.Store {
	t.Helper()
	enc, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := secrets.ParseKey(enc)
	if err != nil {
		t.Fatal(err)
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := store.Open(ctx, url, box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}
