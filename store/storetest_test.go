package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/secrets"
)

// postgresEnv names the PostgreSQL server used by the tests; without it the
// PostgreSQL variants are skipped.
const postgresEnv = "PARLEY_TEST_POSTGRES_URL"

// forEachDB runs test on a fresh, migrated SQLite database and, when
// PARLEY_TEST_POSTGRES_URL is set, on a fresh PostgreSQL schema; both run
// in parallel.
func forEachDB(t *testing.T, test func(t *testing.T, s *Store)) {
	t.Helper()
	for _, dialect := range []string{DialectSQLite, DialectPostgres} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			test(t, newTestStore(t, dialect))
		})
	}
}

// newTestStore opens and migrates a store on a fresh database, removed when
// the test ends.
func newTestStore(t *testing.T, dialect string) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, testDatabaseURL(t, dialect), newTestBox(t))
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

// testDatabaseURL returns the URL of a new empty database: a temporary
// SQLite file, or a new PostgreSQL schema (first on the search_path)
// dropped at the end of the test.
func testDatabaseURL(t *testing.T, dialect string) string {
	t.Helper()
	if dialect == DialectSQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), "parley.db")
	}
	base := os.Getenv(postgresEnv)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s, e.g. from the repository root: export \"$(scripts/testpg.sh start)\"", postgresEnv)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", postgresEnv, err)
	}
	schema := "test_" + randomHex(t, 8)
	admin := postgresAdmin(t, base)
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	// pgx sends unknown parameters as run-time parameters.
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

var (
	adminOnce sync.Once
	adminDB   *sql.DB
	adminErr  error
)

// postgresAdmin is a connection shared by the tests to create and drop
// schemas; the process exit closes it.
func postgresAdmin(t *testing.T, url string) *sql.DB {
	t.Helper()
	adminOnce.Do(func() {
		adminDB, adminErr = sql.Open("pgx", url)
		if adminErr == nil {
			adminErr = adminDB.PingContext(context.Background())
		}
	})
	if adminErr != nil {
		t.Fatalf("%s: %v", postgresEnv, adminErr)
	}
	return adminDB
}

func newTestBox(t *testing.T) *secrets.Box {
	t.Helper()
	enc, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := secrets.ParseKey(enc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := secrets.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// fakeClock advances one second per reading, so that rows created one
// after the other have distinct, ordered times.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(s *Store) *fakeClock {
	c := &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	s.now = c.Now
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// raceCreates runs create from n goroutines at once and returns how many
// succeeded; every failure must be ErrConflict.
func raceCreates(t *testing.T, n int, create func() error) int {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = create() })
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, ErrConflict):
			t.Errorf("concurrent create = %v, want nil or ErrConflict", err)
		}
	}
	return created
}

func mustCreateAccount(t *testing.T, s *Store, name string) Account {
	t.Helper()
	a, err := s.CreateAccount(context.Background(), NewAccount{Name: name, AppID: "app-" + name, AppSecret: "app-secret-" + randomHex(t, 16)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustCreatePage(t *testing.T, s *Store, accountID, fbPageID string) Page {
	t.Helper()
	p, err := s.CreatePage(context.Background(), NewPage{AccountID: accountID, Name: "Page " + fbPageID, PageID: fbPageID, AccessToken: "EAAB" + randomHex(t, 24)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// mustUTC parses an RFC 3339 time.
func mustUTC(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

func containsFold(s, substr string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(substr))
}

// encodeCursorRaw builds a cursor from arbitrary text, to test bad ones.
func encodeCursorRaw(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
