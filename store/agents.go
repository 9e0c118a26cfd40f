package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// Agent is a person who answers customers. Agents authenticate with API
// keys of the agent role bound to them (APIKey.AgentID).
type Agent struct {
	ID        string
	Name      string
	Email     string // lowercased; unique among live agents
	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt *time.Time
}

// maxEmailLength is the longest address SMTP can carry (RFC 5321).
const maxEmailLength = 254

// CanonicalEmail returns email lowercased and whether it is a bare address
// (local@domain: no display name, no angle brackets, no spaces around).
func CanonicalEmail(email string) (string, bool) {
	if len(email) > maxEmailLength {
		return "", false
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email {
		return "", false
	}
	return strings.ToLower(email), true
}

type agentRow struct {
	ID        string       `db:"id"`
	Name      string       `db:"name"`
	Email     string       `db:"email"`
	CreatedAt time.Time    `db:"created_at"`
	UpdatedAt time.Time    `db:"updated_at"`
	DeletedAt sql.NullTime `db:"deleted_at"`
}

const agentColumns = `id, name, email, created_at, updated_at, deleted_at`

func (r agentRow) agent() Agent {
	return Agent{
		ID:        r.ID,
		Name:      r.Name,
		Email:     r.Email,
		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
		DeletedAt: timePtr(r.DeletedAt),
	}
}

// CreateAgent stores a new agent. The email is stored lowercased, so that
// addresses differing only in case collide: ErrConflict. An empty name or a
// malformed email is ErrInvalid.
func (s *Store) CreateAgent(ctx context.Context, name, email string) (_ Agent, err error) {
	defer wrap(&err, "store.CreateAgent(%q)", email)
	if strings.TrimSpace(name) == "" {
		return Agent{}, invalidf("agent name is required")
	}
	canon, ok := CanonicalEmail(email)
	if !ok {
		return Agent{}, invalidf("email %q is not an address like alice@example.com", email)
	}
	id, err := newID()
	if err != nil {
		return Agent{}, err
	}
	now := s.clock()
	r := agentRow{ID: id, Name: name, Email: canon, CreatedAt: now, UpdatedAt: now}
	_, err = exec(ctx, s.db, `INSERT INTO agents (id, name, email, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		r.ID, r.Name, r.Email, s.timestamp(r.CreatedAt), s.timestamp(r.UpdatedAt))
	if isUniqueViolation(err) {
		return Agent{}, fmt.Errorf("%w: an agent with email %s exists: %w", ErrConflict, canon, err)
	}
	if err != nil {
		return Agent{}, err
	}
	return r.agent(), nil
}

// GetAgent returns a live agent.
func (s *Store) GetAgent(ctx context.Context, id string) (_ Agent, err error) {
	defer wrap(&err, "store.GetAgent(%q)", id)
	var r agentRow
	if err := get(ctx, s.db, &r, `SELECT `+agentColumns+` FROM agents WHERE id = ? AND deleted_at IS NULL`, id); err != nil {
		return Agent{}, err
	}
	return r.agent(), nil
}

// ListAgents returns the live agents, oldest first.
func (s *Store) ListAgents(ctx context.Context) (_ []Agent, err error) {
	defer wrap(&err, "store.ListAgents")
	var rows []agentRow
	if err := list(ctx, s.db, &rows, `SELECT `+agentColumns+` FROM agents WHERE deleted_at IS NULL ORDER BY created_at, id`); err != nil {
		return nil, err
	}
	out := make([]Agent, len(rows))
	for i, r := range rows {
		out[i] = r.agent()
	}
	return out, nil
}
