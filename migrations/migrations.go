// Package migrations holds Parley's database schema as goose SQL migrations.
//
// The same files run on PostgreSQL and SQLite, so they use portable SQL only:
// TEXT ids (UUIDs generated in Go), TEXT/BIGINT/INTEGER/BOOLEAN columns,
// TIMESTAMP columns always written in UTC, partial indexes. JSON is stored as
// TEXT so that it round-trips byte for byte.
package migrations

import "embed"

// FS holds the migration files, named NNNNN_description.sql.
//
//go:embed *.sql
var FS embed.FS
