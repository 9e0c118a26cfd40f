package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"parley/migrations"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url, driver, dialect, dsnPrefix string
	}{
		{"postgres://u:p@h/db?sslmode=disable", "pgx", DialectPostgres, "postgres://u:p@h/db?sslmode=disable"},
		{"postgresql://h/db", "pgx", DialectPostgres, "postgresql://h/db"},
		{"sqlite:/var/lib/parley/parley.db", "sqlite", DialectSQLite, "/var/lib/parley/parley.db?_pragma="},
		{"sqlite:///var/lib/parley/parley.db", "sqlite", DialectSQLite, "/var/lib/parley/parley.db?_pragma="},
		{"sqlite:data/parley.sqlite", "sqlite", DialectSQLite, "data/parley.sqlite?_pragma="},
		{"file:parley.db?mode=rwc", "sqlite", DialectSQLite, "file:parley.db?mode=rwc&_pragma="},
		{"file:parley.db", "sqlite", DialectSQLite, "file:parley.db?_pragma="},
		{"./parley.db", "sqlite", DialectSQLite, "./parley.db?_pragma="},
		{":memory:", "sqlite", DialectSQLite, ":memory:?_pragma="},
	} {
		driver, dsn, dialect, err := parseURL(tc.url)
		if err != nil {
			t.Errorf("parseURL(%q): %v", tc.url, err)
			continue
		}
		if driver != tc.driver || dialect != tc.dialect || !strings.HasPrefix(dsn, tc.dsnPrefix) {
			t.Errorf("parseURL(%q) = %q, %q, %q; want %q, %q, prefix %q", tc.url, driver, dsn, dialect, tc.driver, tc.dialect, tc.dsnPrefix)
		}
	}
	for _, u := range []string{"", "mysql://h/db", "sqlite:", "parley.sqlite", "http://x/y.db"} {
		if _, _, _, err := parseURL(u); !errors.Is(err, ErrInvalid) {
			t.Errorf("parseURL(%q) error = %v, want ErrInvalid", u, err)
		}
	}
}

func TestOpenMemory(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, ":memory:", newTestBox(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Dialect() != DialectSQLite {
		t.Errorf("Dialect = %q", s.Dialect())
	}
	a := mustCreateAccount(t, s, "memory")
	if _, err := s.GetAccount(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
}

func TestSQLitePragmas(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, DialectSQLite)
	for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000"} {
		var got string
		if err := s.db.GetContext(ctx, &got, "PRAGMA "+pragma); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
		}
	}
}

func TestMigrate(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		// newTestStore migrated once; again is a no-op, twice.
		for range 2 {
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		dialect := goose.DialectSQLite3
		if s.Dialect() == DialectPostgres {
			dialect = goose.DialectPostgres
		}
		p, err := goose.NewProvider(dialect, s.db.DB, migrations.FS)
		if err != nil {
			t.Fatal(err)
		}
		sources := p.ListSources()
		wantVersion := sources[len(sources)-1].Version
		var version int64
		if err := s.db.GetContext(ctx, &version, `SELECT MAX(version_id) FROM goose_db_version`); err != nil {
			t.Fatal(err)
		}
		if version != wantVersion {
			t.Errorf("schema version = %d, want %d", version, wantVersion)
		}

		// The Down sections work too, and Up runs again after them.
		if _, err := p.DownTo(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		mustCreateAccount(t, s, "after-down-up")
	})
}

// Issue 6, defect 18: several Parley processes starting at once on an empty
// database (`parley api` and `parley worker`), each with its own *sql.DB,
// all migrate it, one after the other, and each migration runs once.
func TestMigrateConcurrently(t *testing.T) {
	for _, dialect := range []string{DialectSQLite, DialectPostgres} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			for round := range 3 {
				url := testDatabaseURL(t, dialect)
				var wg sync.WaitGroup
				errs := make([]error, 4)
				for i := range errs {
					wg.Go(func() {
						s, err := Open(t.Context(), url, newTestBox(t))
						if err != nil {
							errs[i] = err
							return
						}
						errs[i] = errors.Join(s.Migrate(t.Context()), s.Close())
					})
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("round %d, process %d: %v", round, i, err)
					}
				}
				assertMigratedOnce(t, url)
			}
		})
	}
}

// Issue 6, defect 18: a process migrating a new SQLite database makes the
// others wait for it, for a bounded time, and they then find the schema
// current.
func TestMigrateWaitsForAnotherProcessOnSQLite(t *testing.T) {
	ctx := t.Context()
	url := testDatabaseURL(t, DialectSQLite)
	other, err := Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := other.Close(); err != nil {
			t.Error(err)
		}
	}()
	s, err := Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	unlock, err := other.lockSQLiteMigrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.migrationLockWait = 0
	if unlockToo, err := s.lockSQLiteMigrations(ctx); err == nil {
		if err := unlockToo(); err != nil {
			t.Error(err)
		}
		t.Skip("no file locks on this system")
	}

	// The other process never finishes: a clear error, in time.
	s.migrationLockWait = 200 * time.Millisecond
	start := time.Now()
	err = s.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "another Parley process") {
		t.Fatalf("Migrate while another process holds the lock: %v, want an error naming it", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 10*time.Second {
		t.Errorf("Migrate gave up after %v, want after its 200ms wait", d)
	}

	// The other process migrates, then releases the lock: Migrate, which
	// was waiting, finds nothing left to do.
	s.migrationLockWait = time.Minute
	done := make(chan error, 1)
	go func() { done <- s.Migrate(ctx) }()
	p, err := goose.NewProvider(goose.DialectSQLite3, other.db.DB, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("Migrate returned %v while another process held the lock", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	assertMigratedOnce(t, url)
}

// Processes naming one SQLite file differently (path, file: URI with an
// authority or escapes) take the same migration lock, beside the file.
func TestSQLiteMigrationLockFollowsTheFile(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "with space")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "parley.db")
	holder, err := Open(ctx, "sqlite:"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := holder.Close(); err != nil {
			t.Error(err)
		}
	}()
	unlock, err := holder.lockSQLiteMigrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".migrate-lock"); err != nil {
		t.Errorf("no lock file beside the database: %v", err)
	}
	escaped := strings.ReplaceAll(filepath.ToSlash(path), " ", "%20")
	for _, url := range []string{"file:" + escaped, "file://localhost" + escaped} {
		s, err := Open(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.migrationLockWait = 0
		if _, err := s.lockSQLiteMigrations(ctx); err == nil || !strings.Contains(err.Error(), "another Parley process") {
			t.Errorf("%s: lock while %s holds it: %v, want another process named", url, path, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, "file://localhost"+escaped, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	assertMigratedOnce(t, "sqlite:"+path)
}

// Issue 6, defect 18: a process that finds a new SQLite file being switched
// to WAL by another one (which holds its write lock) waits instead of
// failing with "database is locked", which SQLite reports at once there,
// without its busy timeout.
func TestOpenWhileAnotherProcessSwitchesToWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	other, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := other.Close(); err != nil {
			t.Error(err)
		}
	}()
	tx, err := other.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		released <- tx.Rollback()
	}()
	s, err := Open(t.Context(), "sqlite:"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := s.db.GetContext(t.Context(), &mode, `PRAGMA journal_mode`); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// assertMigratedOnce checks that every migration was applied exactly once
// to the database at url.
func assertMigratedOnce(t *testing.T, url string) {
	t.Helper()
	s, err := Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	var applied []int64
	if err := s.db.SelectContext(t.Context(), &applied,
		`SELECT version_id FROM goose_db_version WHERE version_id > 0 ORDER BY version_id`); err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, src := range migrationSources(t) {
		want = append(want, src.Version)
	}
	if !slices.Equal(applied, want) {
		t.Errorf("migrations applied %v, want %v, once each", applied, want)
	}
}

// migrationSources lists the migrations of package migrations.
func migrationSources(t *testing.T) []*goose.Source {
	t.Helper()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p.ListSources()
}

func TestTimesRoundTrip(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		paris, err := time.LoadLocation("Europe/Paris")
		if err != nil {
			t.Skip(err)
		}
		// Nanoseconds and a non-UTC zone: stored as UTC microseconds.
		at := time.Date(2025, 7, 14, 10, 30, 15, 123456789, paris)
		want := time.Date(2025, 7, 14, 8, 30, 15, 123456000, time.UTC)
		a := mustCreateAccount(t, s, "times")
		p := mustCreatePage(t, s, a.ID, "100")
		if err := s.MarkWebhookVerified(ctx, p.ID, at); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetPage(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.WebhookVerifiedAt == nil || *got.WebhookVerifiedAt != want {
			t.Errorf("WebhookVerifiedAt = %v, want %v", got.WebhookVerifiedAt, want)
		}
		if got.CreatedAt.Location() != time.UTC || got.CreatedAt.Nanosecond()%1000 != 0 {
			t.Errorf("CreatedAt = %v, want UTC microseconds", got.CreatedAt)
		}
		if got.CreatedAt != p.CreatedAt {
			t.Errorf("CreatedAt read back %v, CreatePage returned %v", got.CreatedAt, p.CreatedAt)
		}
	})
}

// TestSecretsAtRest reads every row of accounts and pages as raw values
// and finds neither app secrets nor page tokens in them.
func TestSecretsAtRest(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		appSecret := "app-secret-" + randomHex(t, 16)
		newSecret := "app-secret-" + randomHex(t, 16)
		token := "EAAB-token-" + randomHex(t, 24)
		newToken := "EAAB-token-" + randomHex(t, 24)
		a, err := s.CreateAccount(ctx, NewAccount{Name: "A", AppID: "1", AppSecret: appSecret})
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.CreateAccount(ctx, NewAccount{Name: "B", AppID: "2", AppSecret: newSecret})
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.CreatePage(ctx, NewPage{AccountID: a.ID, Name: "P", PageID: "42", AccessToken: token})
		if err != nil {
			t.Fatal(err)
		}
		dup, err := s.CreatePage(ctx, NewPage{AccountID: b.ID, Name: "P", PageID: "42", AccessToken: newToken})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateAccount(ctx, a.ID, AccountUpdate{AppSecret: &newSecret}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RotatePageToken(ctx, p.ID, newToken); err != nil {
			t.Fatal(err)
		}
		plaintexts := []string{appSecret, newSecret, token, newToken}
		for _, table := range []string{"accounts", "pages"} {
			rows := readAll(t, s, table)
			if len(rows) != 2 {
				t.Errorf("%s: %d rows, want 2", table, len(rows))
			}
			for _, row := range rows {
				for col, v := range row {
					for _, pt := range plaintexts {
						if strings.Contains(v, pt) {
							t.Errorf("%s.%s holds a plaintext secret", table, col)
						}
					}
				}
			}
		}

		// The secrets are still there for those who need them.
		if got, err := s.AccountAppSecret(ctx, a.ID); err != nil || got != newSecret {
			t.Errorf("AccountAppSecret = %q, %v; want the updated secret", got, err)
		}
		if got, err := s.PageAccessToken(ctx, p.ID); err != nil || got != newToken {
			t.Errorf("PageAccessToken = %q, %v; want the rotated token", got, err)
		}
		if got, err := s.PageAccessToken(ctx, dup.ID); err != nil || got != newToken {
			t.Errorf("PageAccessToken(duplicate) = %q, %v", got, err)
		}

		// A ciphertext copied into another row does not open there.
		if _, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE accounts SET app_secret_sealed = (SELECT app_secret_sealed FROM accounts WHERE id = ?) WHERE id = ?`), a.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := s.AccountAppSecret(ctx, b.ID); err == nil {
			t.Errorf("AccountAppSecret after swapping ciphertexts = %q, want an error", got)
		}
	})
}

// readAll returns every column of every row of table, as text.
func readAll(t *testing.T, s *Store, table string) []map[string]string {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), "SELECT * FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := rows.Close(); err != nil {
			t.Error(err)
		}
	}()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for rows.Next() {
		raw := make([]sql.RawBytes, len(cols))
		dest := make([]any, len(cols))
		for i := range raw {
			dest[i] = &raw[i]
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, c := range cols {
			row[c] = string(raw[i])
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
