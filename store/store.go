// Package store is Parley's storage layer: accounts, Facebook pages,
// conversations, their transcripts and API keys, on PostgreSQL or SQLite.
//
// Queries are written once with ? placeholders and rebound for the driver.
// Secrets (app secrets, page access tokens) are sealed with a secrets.Box
// before they reach the database; API keys are stored as SHA-256 hashes.
// Times are stored in UTC, truncated to microseconds (PostgreSQL's precision)
// so that values round-trip unchanged on both databases.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers driver "pgx"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite" // registers driver "sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"parley/migrations"
	"parley/secrets"
)

// Errors returned (wrapped) by the store; test them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	// ErrInvalid reports an argument the store refuses (unknown role, status...).
	ErrInvalid = errors.New("invalid")
	// ErrInvalidCursor is also an ErrInvalid.
	ErrInvalidCursor = fmt.Errorf("%w cursor", ErrInvalid)
)

// Dialects returned by Store.Dialect.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

func init() {
	// sqlx does not know modernc's driver name.
	sqlx.BindDriver("sqlite", sqlx.QUESTION)
}

// Store is Parley's database. It is safe for concurrent use.
type Store struct {
	db *sqlx.DB
	// rdb serves the reads on the webhook's acknowledgement path (dedupe
	// keys, data keys, callback pages). On an SQLite file it has
	// connections of its own: in WAL mode they read while the single
	// writer connection is busy with the worker's writes, instead of
	// queueing behind them, with their statements prepared (stmtCache).
	// Elsewhere it is db.
	rdb     querier
	box     *secrets.Box
	dialect string
	// migrationLockWait bounds how long Migrate waits for another
	// process's migrations on SQLite; tests shorten it.
	migrationLockWait time.Duration
	// now is the clock; tests replace it.
	now func() time.Time
}

// Open connects to the database named by url and checks the connection:
//
//   - postgres://… or postgresql://…: PostgreSQL, through pgx;
//   - sqlite:<path>, file:<path>, <path>.db or :memory:: SQLite (modernc).
//
// box seals secrets; it may be nil only if the caller never touches them.
func Open(ctx context.Context, url string, box *secrets.Box) (_ *Store, err error) {
	defer wrap(&err, "store.Open")
	driver, dsn, dialect, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	if dialect == DialectSQLite {
		// SQLite has one writer: a single connection serializes writes
		// in-process instead of failing with SQLITE_BUSY (and keeps a
		// :memory: database alive).
		db.SetMaxOpenConns(1)
	}
	if err := ping(ctx, db, dialect); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	var rdb querier = db
	if dialect == DialectSQLite && !strings.Contains(dsn, ":memory:") && !strings.Contains(dsn, "mode=memory") {
		// Opened after the writer switched the file to WAL; query_only
		// keeps these connections from ever taking the write lock.
		r, err := sqlx.Open(driver, dsn+"&_pragma=query_only(1)")
		if err != nil {
			return nil, errors.Join(err, db.Close())
		}
		r.SetMaxOpenConns(4)
		rdb = newStmtCache(r)
	}
	return &Store{db: db, rdb: rdb, box: box, dialect: dialect, migrationLockWait: migrationLockWait, now: time.Now}, nil
}

// ping checks the connection. Processes opening a new SQLite file at the
// same moment race to switch it to WAL, and the loser gets SQLITE_BUSY at
// once (the busy timeout does not cover it): it tries again, for a while.
func ping(ctx context.Context, db *sqlx.DB, dialect string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := db.PingContext(ctx)
		var liteErr *sqlite.Error
		if err == nil || dialect != DialectSQLite || !errors.As(err, &liteErr) ||
			liteErr.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sqlitePragmas: WAL lets readers of other processes run during writes;
// immediate transactions take the write lock up front, so that two
// processes never deadlock upgrading read locks (busy_timeout then waits).
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_txlock=immediate"

func parseURL(u string) (driver, dsn, dialect string, err error) {
	switch {
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return "pgx", u, DialectPostgres, nil
	case u == ":memory:":
		return "sqlite", ":memory:?" + sqlitePragmas, DialectSQLite, nil
	case strings.HasPrefix(u, "file:"):
		// An SQLite URI: modernc reads our parameters and SQLite the rest.
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		return "sqlite", u + sep + sqlitePragmas, DialectSQLite, nil
	case strings.HasPrefix(u, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(u, "sqlite:"), "//")
		if path == "" {
			return "", "", "", fmt.Errorf("%w: %q has no path", ErrInvalid, u)
		}
		return "sqlite", sqlitePath(path), DialectSQLite, nil
	case strings.HasSuffix(u, ".db") && !strings.Contains(u, "://"):
		return "sqlite", sqlitePath(u), DialectSQLite, nil
	}
	// Do not echo the URL: it may hold a password.
	return "", "", "", fmt.Errorf("%w database URL: want postgres://, postgresql://, sqlite:<path>, file:<path> or <path>.db", ErrInvalid)
}

func sqlitePath(path string) string {
	if strings.Contains(path, "?") {
		return path + "&" + sqlitePragmas
	}
	return path + "?" + sqlitePragmas
}

// Dialect is "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.dialect }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store.Ping: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	err := s.db.Close()
	if c, ok := s.rdb.(*stmtCache); ok {
		err = errors.Join(err, c.Close())
	}
	if err != nil {
		return fmt.Errorf("store.Close: %w", err)
	}
	return nil
}

// Migrate applies the pending migrations of package migrations. It is
// idempotent, and concurrent callers (several Parley processes starting
// together, e.g. `parley api` and `parley worker`) wait for each other: on
// PostgreSQL with an advisory lock, on SQLite with a lock on a file beside
// the database.
func (s *Store) Migrate(ctx context.Context) (err error) {
	defer wrap(&err, "store.Migrate")
	dialect := goose.DialectSQLite3
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if s.dialect == DialectSQLite {
		unlock, err := s.lockSQLiteMigrations(ctx)
		if err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer func() {
			if uerr := unlock(); uerr != nil {
				slog.WarnContext(ctx, "release the migration lock", "err", uerr)
			}
		}()
	}
	if s.dialect == DialectPostgres {
		dialect = goose.DialectPostgres
		id, err := s.migrationLockID(ctx)
		if err != nil {
			return err
		}
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(id), lock.WithLockTimeout(1, 300))
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.db.DB, migrations.FS, opts...)
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return err
	}
	for _, r := range results {
		slog.InfoContext(ctx, "database migration applied",
			"version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return err
	}
	slog.InfoContext(ctx, "database schema up to date", "dialect", s.dialect, "version", v, "applied", len(results))
	return nil
}

// lockSQLiteMigrations takes the SQLite migration lock: a lock on a file
// beside the database, waiting at most s.migrationLockWait for another
// process to release it.
func (s *Store) lockSQLiteMigrations(ctx context.Context) (unlock func() error, err error) {
	// SQLite's own absolute path of the file, whatever the URL's form
	// (relative, file: URI), so that all processes lock the same file.
	var file string
	if err := s.db.GetContext(ctx, &file, `SELECT file FROM pragma_database_list WHERE name = 'main'`); err != nil {
		return nil, fmt.Errorf("database file: %w", err)
	}
	if file == "" {
		// In memory: no other process can see this database.
		return func() error { return nil }, nil
	}
	return lockFile(ctx, file+".migrate-lock", s.migrationLockWait)
}

// migrationLockID scopes the advisory lock to the database and schema, so
// that migrations of unrelated schemas (tests) do not wait for each other.
func (s *Store) migrationLockID(ctx context.Context) (int64, error) {
	var scope string
	if err := s.db.GetContext(ctx, &scope, `SELECT current_database() || '.' || COALESCE(current_schema(), '')`); err != nil {
		return 0, err
	}
	h := fnv.New64a()
	if _, err := h.Write([]byte("parley-migrations/" + scope)); err != nil {
		return 0, err
	}
	return int64(h.Sum64() >> 1), nil
}

// wrap prefixes *errp with the operation, keeping the error chain.
func wrap(errp *error, format string, args ...any) {
	if *errp != nil {
		*errp = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), *errp)
	}
}

// querier is a *sqlx.DB or a *sqlx.Tx.
type querier = sqlx.ExtContext

// get runs a query returning one row into dest; no row is ErrNotFound.
func get(ctx context.Context, q querier, dest any, query string, args ...any) error {
	err := sqlx.GetContext(ctx, q, dest, q.Rebind(query), args...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// list runs a query into a slice.
func list(ctx context.Context, q querier, dest any, query string, args ...any) error {
	return sqlx.SelectContext(ctx, q, dest, q.Rebind(query), args...)
}

// decodeRows turns the rows a query read into the store's values.
func decodeRows[R, T any](rows []R, decode func(R) (T, error)) ([]T, error) {
	out := make([]T, len(rows))
	for i, r := range rows {
		var err error
		if out[i], err = decode(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// exec runs a statement and returns the number of rows it changed.
func exec(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	res, err := q.ExecContext(ctx, q.Rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execOne runs a statement that must change a row; none is ErrNotFound.
func execOne(ctx context.Context, q querier, query string, args ...any) error {
	n, err := exec(ctx, q, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// inTx runs fn in a transaction, committed when fn returns nil. fn must use
// tx only: on SQLite the pool has a single connection, held by tx.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
				err = errors.Join(err, fmt.Errorf("rollback: %w", rerr))
			}
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// isUniqueViolation reports whether err is a unique constraint violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		c := liteErr.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isForeignKeyViolation reports whether err is a foreign key violation.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// timestamp is how a time is written: UTC, microseconds. SQLite gets
// fixed-width text, so that comparisons in SQL (keyset pagination,
// watermarks) order like times; modernc parses it back into a time.Time for
// columns declared TIMESTAMP.
func (s *Store) timestamp(t time.Time) any {
	t = utc(t)
	if s.dialect == DialectSQLite {
		return t.Format(sqliteTimeFormat)
	}
	return t
}

const sqliteTimeFormat = "2006-01-02 15:04:05.000000Z"

// nullTimestamp is timestamp for a nullable column.
func (s *Store) nullTimestamp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.timestamp(*t)
}

// utc normalizes a time as stored.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// clock is the current time as stored.
func (s *Store) clock() time.Time { return utc(s.now()) }

// timePtr converts a nullable column.
func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// nullString stores "" as NULL.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// newID returns a new row id: a time-ordered UUID (v7), kind to B-trees.
func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// seal encrypts a secret for the row and column named by aad.
func (s *Store) seal(plaintext, aad string) (string, error) {
	if s.box == nil {
		return "", errors.New("no secrets.Box configured")
	}
	return s.box.Seal(plaintext, aad)
}

// open decrypts a sealed secret.
func (s *Store) open(sealed, aad string) (string, error) {
	if s.box == nil {
		return "", errors.New("no secrets.Box configured")
	}
	return s.box.Open(sealed, aad)
}

// invalidf returns an error wrapping ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// placeholders returns "?, ?, …" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
