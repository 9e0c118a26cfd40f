package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"slices"
	"time"
)

// APIKey is a Bearer API key. Only the SHA-256 of its secret is stored.
type APIKey struct {
	ID         string
	Name       string
	Role       string // admin | supervisor | agent
	AgentID    string
	Prefix     string // the first characters of the secret, to recognize it
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// API key roles.
const (
	RoleAdmin      = "admin"
	RoleSupervisor = "supervisor"
	RoleAgent      = "agent"
)

var roles = []string{RoleAdmin, RoleSupervisor, RoleAgent}

// apiKeyPrefix starts generated secrets, so that leaked keys are easy to
// recognize (secret scanners, logs).
const apiKeyPrefix = "pk_"

// lastUsedGranularity limits the writes made by AuthenticateAPIKey.
const lastUsedGranularity = time.Minute

type apiKeyRow struct {
	ID         string       `db:"id"`
	Name       string       `db:"name"`
	Role       string       `db:"role"`
	AgentID    string       `db:"agent_id"`
	Prefix     string       `db:"prefix"`
	CreatedAt  time.Time    `db:"created_at"`
	LastUsedAt sql.NullTime `db:"last_used_at"`
	RevokedAt  sql.NullTime `db:"revoked_at"`
}

const apiKeyColumns = `id, name, role, agent_id, prefix, created_at, last_used_at, revoked_at`

func (r apiKeyRow) apiKey() APIKey {
	return APIKey{
		ID:         r.ID,
		Name:       r.Name,
		Role:       r.Role,
		AgentID:    r.AgentID,
		Prefix:     r.Prefix,
		CreatedAt:  r.CreatedAt.UTC(),
		LastUsedAt: timePtr(r.LastUsedAt),
		RevokedAt:  timePtr(r.RevokedAt),
	}
}

func hashAPIKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// secretPrefix is what is kept of a secret for display: at most 9
// characters ("pk_" and 6 more), and never more than a quarter of it.
func secretPrefix(secret string) string {
	return secret[:min(9, len(secret)/4)]
}

// CreateAPIKey creates a key and returns its secret, which is not stored
// and cannot be shown again.
func (s *Store) CreateAPIKey(ctx context.Context, name, role, agentID string) (_ APIKey, secret string, err error) {
	defer wrap(&err, "store.CreateAPIKey(%q, %q)", name, role)
	if !slices.Contains(roles, role) {
		return APIKey{}, "", invalidf("role %q: want admin, supervisor or agent", role)
	}
	random, err := randomToken(32)
	if err != nil {
		return APIKey{}, "", err
	}
	secret = apiKeyPrefix + random
	k, err := s.insertAPIKey(ctx, name, role, agentID, secret, false)
	if err != nil {
		return APIKey{}, "", err
	}
	return k, secret, nil
}

// EnsureAPIKey makes sure a key with this secret exists, creating it if
// needed: it registers the configured bootstrap admin key. An existing key
// is returned unchanged (a revoked one stays revoked).
func (s *Store) EnsureAPIKey(ctx context.Context, name, role, secret string) (_ APIKey, err error) {
	defer wrap(&err, "store.EnsureAPIKey(%q, %q)", name, role)
	if !slices.Contains(roles, role) {
		return APIKey{}, invalidf("role %q: want admin, supervisor or agent", role)
	}
	if secret == "" {
		return APIKey{}, invalidf("empty secret")
	}
	return s.insertAPIKey(ctx, name, role, "", secret, true)
}

// insertAPIKey inserts a key; with ifAbsent, an existing key with the same
// secret is returned instead (race-free, through the unique hash).
func (s *Store) insertAPIKey(ctx context.Context, name, role, agentID, secret string, ifAbsent bool) (APIKey, error) {
	id, err := newID()
	if err != nil {
		return APIKey{}, err
	}
	hash := hashAPIKey(secret)
	query := `INSERT INTO api_keys (id, name, role, agent_id, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`
	if ifAbsent {
		query += ` ON CONFLICT (key_hash) DO NOTHING`
	}
	if _, err := exec(ctx, s.db, query, id, name, role, agentID, secretPrefix(secret), hash, s.timestamp(s.clock())); err != nil {
		return APIKey{}, err
	}
	var r apiKeyRow
	if err := get(ctx, s.db, &r, `SELECT `+apiKeyColumns+` FROM api_keys WHERE key_hash = ?`, hash); err != nil {
		return APIKey{}, err
	}
	return r.apiKey(), nil
}

// AuthenticateAPIKey returns the live key with this secret; unknown and
// revoked keys are ErrNotFound. It records the use, at most once a minute
// per key so that authentication rarely writes.
func (s *Store) AuthenticateAPIKey(ctx context.Context, secret string) (_ APIKey, err error) {
	// Never put the secret in errors.
	defer wrap(&err, "store.AuthenticateAPIKey")
	if secret == "" {
		return APIKey{}, ErrNotFound
	}
	var r apiKeyRow
	if err := get(ctx, s.db, &r, `SELECT `+apiKeyColumns+` FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`, hashAPIKey(secret)); err != nil {
		return APIKey{}, err
	}
	k := r.apiKey()
	now := s.clock()
	if k.LastUsedAt != nil && now.Sub(*k.LastUsedAt) < lastUsedGranularity {
		return k, nil
	}
	// The condition keeps concurrent requests from writing more than once.
	n, err := exec(ctx, s.db, `
		UPDATE api_keys SET last_used_at = ?
		WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
		s.timestamp(now), k.ID, s.timestamp(now.Add(-lastUsedGranularity)))
	if err != nil {
		return APIKey{}, err
	}
	if n > 0 {
		k.LastUsedAt = &now
	}
	return k, nil
}

// ListAPIKeys returns every key, revoked ones included, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context) (_ []APIKey, err error) {
	defer wrap(&err, "store.ListAPIKeys")
	var rows []apiKeyRow
	if err := list(ctx, s.db, &rows, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`); err != nil {
		return nil, err
	}
	out := make([]APIKey, len(rows))
	for i, r := range rows {
		out[i] = r.apiKey()
	}
	return out, nil
}

// RevokeAPIKey revokes a key at once. Revoking a revoked key is a no-op;
// an unknown id is ErrNotFound.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) (err error) {
	defer wrap(&err, "store.RevokeAPIKey(%q)", id)
	// COALESCE keeps the first revocation time; the row still counts as
	// matched, so an existing key never reports ErrNotFound.
	return execOne(ctx, s.db, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, s.timestamp(s.clock()), id)
}
