package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/jmoiron/sqlx"
)

// maxCachedStatements bounds a stmtCache: the hot reads are a handful of
// queries (an IN list per count of keys), anything beyond runs unprepared.
const maxCachedStatements = 64

// stmtCache is a pool of SQLite reader connections that prepares each query
// once and keeps it. modernc's driver parses every query anew, which was
// half the cost of the webhook's dedupe read; pgx caches statements itself,
// so PostgreSQL does not use this. database/sql prepares a statement on
// each connection of the pool as it is used there.
type stmtCache struct {
	*sqlx.DB
	mu    sync.Mutex
	stmts map[string]*sqlx.Stmt
}

func newStmtCache(db *sqlx.DB) *stmtCache {
	return &stmtCache{DB: db, stmts: map[string]*sqlx.Stmt{}}
}

// stmt is the prepared statement for query, or nil when the cache is full.
func (c *stmtCache) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	if len(c.stmts) >= maxCachedStatements {
		return nil, nil
	}
	// Preparing under the lock: it happens once per query, and two callers
	// would otherwise prepare it twice.
	st, err := c.DB.PreparexContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil || st == nil {
		return c.DB.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (c *stmtCache) QueryxContext(ctx context.Context, query string, args ...any) (*sqlx.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil || st == nil {
		return c.DB.QueryxContext(ctx, query, args...)
	}
	return st.QueryxContext(ctx, args...)
}

func (c *stmtCache) QueryRowxContext(ctx context.Context, query string, args ...any) *sqlx.Row {
	st, err := c.stmt(ctx, query)
	if err != nil || st == nil {
		return c.DB.QueryRowxContext(ctx, query, args...)
	}
	return st.QueryRowxContext(ctx, args...)
}

// Close closes the statements, then the pool.
func (c *stmtCache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.stmts {
		errs = append(errs, st.Close())
		delete(c.stmts, q)
	}
	return errors.Join(append(errs, c.DB.Close())...)
}
