package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"parley/routing"
)

// Agent is a person who answers customers. Agents authenticate with API
// keys of the agent role bound to them (APIKey.AgentID). The queues an
// agent belongs to: QueueIDsOfAgent.
type Agent struct {
	ID    string
	Name  string
	Email string // lowercased; unique among live agents
	// CapacityUnits is how much work the agent takes at once (0 to
	// MaxCapacityUnits; DefaultCapacityUnits for a new agent): each
	// conversation takes its workstream's units.
	CapacityUnits int
	// Skills are free labels (none by default), in the order given.
	Skills []string
	// Presence is what the agent (or an admin) chose, one of
	// routing.ChoosablePresences, or the system's routing.PresenceInactive
	// after a missed offer. New agents are offline.
	Presence string
	// ShownPresence is the effective presence, shown and used to
	// distribute: routing.EffectivePresence of Presence and the load.
	ShownPresence string
	// PresenceChangedAt is when Presence or ShownPresence last changed
	// (nil: never, the agent has been offline since it was created).
	PresenceChangedAt *time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
	DeletedAt         *time.Time
}

// AgentUpdate changes the non-nil fields of an agent; Skills replaces the list.
type AgentUpdate struct {
	Name          *string
	CapacityUnits *int
	Skills        *[]string
}

// Limits of an agent's settings.
const (
	DefaultCapacityUnits = 3
	MaxCapacityUnits     = 100
	MaxSkills            = 50
	MaxSkillLength       = 50
	MaxAgentNameLength   = 200
)

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
	ID                string       `db:"id"`
	Name              string       `db:"name"`
	Email             string       `db:"email"`
	CapacityUnits     int          `db:"capacity_units"`
	Skills            string       `db:"skills"`
	Presence          string       `db:"presence"`
	ShownPresence     string       `db:"shown_presence"`
	PresenceChangedAt sql.NullTime `db:"presence_changed_at"`
	CreatedAt         time.Time    `db:"created_at"`
	UpdatedAt         time.Time    `db:"updated_at"`
	DeletedAt         sql.NullTime `db:"deleted_at"`
}

const agentColumns = `id, name, email, capacity_units, skills, presence, shown_presence, presence_changed_at,
	created_at, updated_at, deleted_at`

func (r agentRow) agent() (Agent, error) {
	skills := []string{}
	if strings.TrimSpace(r.Skills) != "" {
		if err := json.Unmarshal([]byte(r.Skills), &skills); err != nil {
			return Agent{}, fmt.Errorf("agent %s: skills: %w", r.ID, err)
		}
		if skills == nil {
			skills = []string{}
		}
	}
	return Agent{
		ID:                r.ID,
		Name:              r.Name,
		Email:             r.Email,
		CapacityUnits:     r.CapacityUnits,
		Skills:            skills,
		Presence:          r.Presence,
		ShownPresence:     r.ShownPresence,
		PresenceChangedAt: timePtr(r.PresenceChangedAt),
		CreatedAt:         r.CreatedAt.UTC(),
		UpdatedAt:         r.UpdatedAt.UTC(),
		DeletedAt:         timePtr(r.DeletedAt),
	}, nil
}

// CreateAgent stores a new agent: DefaultCapacityUnits, no skills,
// offline. The email is stored lowercased, so that addresses differing only
// in case collide: ErrConflict. An empty name or a malformed email is
// ErrInvalid.
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
	r := agentRow{ID: id, Name: name, Email: canon, CapacityUnits: DefaultCapacityUnits, Skills: "[]",
		Presence: routing.PresenceOffline, ShownPresence: routing.PresenceOffline, CreatedAt: now, UpdatedAt: now}
	_, err = exec(ctx, s.db, `INSERT INTO agents (id, name, email, capacity_units, skills, presence, shown_presence, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Name, r.Email, r.CapacityUnits, r.Skills, r.Presence, r.ShownPresence, s.timestamp(r.CreatedAt), s.timestamp(r.UpdatedAt))
	if isUniqueViolation(err) {
		return Agent{}, fmt.Errorf("%w: an agent with email %s exists: %w", ErrConflict, canon, err)
	}
	if err != nil {
		return Agent{}, err
	}
	return r.agent()
}

// GetAgent returns a live agent.
func (s *Store) GetAgent(ctx context.Context, id string) (_ Agent, err error) {
	defer wrap(&err, "store.GetAgent(%q)", id)
	return getAgent(ctx, s.db, id, "")
}

// getAgent returns a live agent; lock is appended to the query (" FOR
// UPDATE" on PostgreSQL, or "").
func getAgent(ctx context.Context, q querier, id, lock string) (Agent, error) {
	var r agentRow
	if err := get(ctx, q, &r, `SELECT `+agentColumns+` FROM agents WHERE id = ? AND deleted_at IS NULL`+lock, id); err != nil {
		return Agent{}, err
	}
	return r.agent()
}

// ListAgents returns the live agents, oldest first.
func (s *Store) ListAgents(ctx context.Context) (_ []Agent, err error) {
	defer wrap(&err, "store.ListAgents")
	var rows []agentRow
	if err := list(ctx, s.db, &rows, `SELECT `+agentColumns+` FROM agents WHERE deleted_at IS NULL ORDER BY created_at, id`); err != nil {
		return nil, err
	}
	return decodeRows(rows, agentRow.agent)
}

// normalizeSkills checks a skill list (field names as in the API) and
// returns it trimmed, never nil.
func normalizeSkills(skills []string) ([]string, error) {
	if len(skills) > MaxSkills {
		return nil, fieldErrorf("skills", "must have at most %d skills, got %d", MaxSkills, len(skills))
	}
	out := make([]string, 0, len(skills))
	for i, sk := range skills {
		field := fmt.Sprintf("skills[%d]", i)
		sk = strings.TrimSpace(sk)
		if sk == "" {
			return nil, fieldErrorf(field, "must not be blank")
		}
		if utf8.RuneCountInString(sk) > MaxSkillLength {
			return nil, fieldErrorf(field, "must be at most %d characters", MaxSkillLength)
		}
		if slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, sk) }) {
			return nil, fieldErrorf(field, "%q is listed twice", sk)
		}
		out = append(out, sk)
	}
	return out, nil
}

// UpdateAgent changes the fields of u that are not nil: the name (not
// blank, at most MaxAgentNameLength characters), the capacity (0 to
// MaxCapacityUnits) and the skills (at most MaxSkills, each 1 to
// MaxSkillLength characters, no duplicates regardless of case). Invalid
// values are a *FieldError (ErrInvalid) and change nothing. A capacity
// change recomputes the shown presence (refreshPresence), in the same
// transaction.
func (s *Store) UpdateAgent(ctx context.Context, id string, u AgentUpdate) (_ Agent, err error) {
	defer wrap(&err, "store.UpdateAgent(%q)", id)
	if u.Name != nil {
		if strings.TrimSpace(*u.Name) == "" {
			return Agent{}, fieldErrorf("name", "is required")
		}
		if utf8.RuneCountInString(*u.Name) > MaxAgentNameLength {
			return Agent{}, fieldErrorf("name", "must be at most %d characters", MaxAgentNameLength)
		}
	}
	if u.CapacityUnits != nil && (*u.CapacityUnits < 0 || *u.CapacityUnits > MaxCapacityUnits) {
		return Agent{}, fieldErrorf("capacity_units", "must be from 0 to %d, got %d", MaxCapacityUnits, *u.CapacityUnits)
	}
	var skills []string
	if u.Skills != nil {
		if skills, err = normalizeSkills(*u.Skills); err != nil {
			return Agent{}, err
		}
	}
	lock := ""
	if s.dialect == DialectPostgres {
		lock = ` FOR UPDATE`
	}
	var out Agent
	// A ledger transaction: the capacity must not change while the ledger
	// reads it to place an offer.
	err = s.ledgerTx(ctx, func(tx *sqlx.Tx) error {
		a, err := getAgent(ctx, tx, id, lock)
		if err != nil {
			return err
		}
		capacityChanged := u.CapacityUnits != nil && *u.CapacityUnits != a.CapacityUnits
		setIf(&a.Name, u.Name)
		setIf(&a.CapacityUnits, u.CapacityUnits)
		if u.Skills != nil {
			a.Skills = skills
		}
		enc, err := json.Marshal(a.Skills)
		if err != nil {
			return err
		}
		a.UpdatedAt = s.clock()
		if err := execOne(ctx, tx, `UPDATE agents SET name = ?, capacity_units = ?, skills = ?, updated_at = ?
			WHERE id = ? AND deleted_at IS NULL`, a.Name, a.CapacityUnits, string(enc), s.timestamp(a.UpdatedAt), id); err != nil {
			return err
		}
		if capacityChanged {
			if err := s.refreshPresence(ctx, tx, id); err != nil {
				return err
			}
		}
		out, err = getAgent(ctx, tx, id, "")
		return err
	})
	return out, err
}

// SetPresence sets the presence an agent chose (one of
// routing.ChoosablePresences; anything else is a *FieldError for
// "presence"), then recomputes its shown presence (refreshPresence), in
// one ledger transaction. Setting the current presence again changes
// nothing.
func (s *Store) SetPresence(ctx context.Context, agentID, presence string) (_ Agent, err error) {
	defer wrap(&err, "store.SetPresence(%q, %q)", agentID, presence)
	if !slices.Contains(routing.ChoosablePresences(), presence) {
		return Agent{}, fieldErrorf("presence", "must be one of %s, got %q", strings.Join(routing.ChoosablePresences(), ", "), presence)
	}
	lock := ""
	if s.dialect == DialectPostgres {
		lock = ` FOR UPDATE`
	}
	var out Agent
	err = s.ledgerTx(ctx, func(tx *sqlx.Tx) error {
		a, err := getAgent(ctx, tx, agentID, lock)
		if err != nil {
			return err
		}
		if a.Presence != presence {
			if _, err := exec(ctx, tx, `UPDATE agents SET presence = ?, presence_changed_at = ? WHERE id = ?`,
				presence, s.timestamp(s.clock()), agentID); err != nil {
				return err
			}
		}
		if err := s.refreshPresence(ctx, tx, agentID); err != nil {
			return err
		}
		out, err = getAgent(ctx, tx, agentID, "")
		return err
	})
	return out, err
}

// presenceChanged is the data of a presence.changed event.
type presenceChanged struct {
	AgentID  string `json:"agent_id"`
	Presence string `json:"presence"` // shown (effective)
	Chosen   string `json:"chosen"`
}

// refreshPresence recomputes an agent's shown presence,
// routing.EffectivePresence of its chosen presence, the units it holds in
// the capacity ledger (SUM of capacity_holds.units) and its capacity. When
// it differs from the stored shown_presence, it stores it, sets
// presence_changed_at, and appends a presence.changed event (EventPresenceChanged,
// AgentID set, data {agent_id, presence, chosen}).
//
// It runs inside the caller's transaction q (any querier: a *sqlx.Tx
// normally), so that the presence shown always matches the ledger as
// committed with it; call it after any change of an agent's holds, chosen
// presence or capacity. It appends the event through appendEvents, which
// locks the event counter until the transaction ends: call it near the end
// of the transaction. A missing agent (deleted agents included) is
// ErrNotFound.
func (s *Store) refreshPresence(ctx context.Context, q querier, agentID string) error {
	var a struct {
		Presence string `db:"presence"`
		Shown    string `db:"shown_presence"`
		Capacity int    `db:"capacity_units"`
		Used     int    `db:"used"`
	}
	if err := get(ctx, q, &a, `SELECT a.presence, a.shown_presence, a.capacity_units,
			COALESCE((SELECT SUM(h.units) FROM capacity_holds h WHERE h.agent_id = a.id), 0) AS used
		FROM agents a WHERE a.id = ?`, agentID); err != nil {
		return fmt.Errorf("agent %s: %w", agentID, err)
	}
	shown := routing.EffectivePresence(a.Presence, a.Used, a.Capacity)
	if shown == a.Shown {
		return nil
	}
	if _, err := exec(ctx, q, `UPDATE agents SET shown_presence = ?, presence_changed_at = ? WHERE id = ?`,
		shown, s.timestamp(s.clock()), agentID); err != nil {
		return fmt.Errorf("shown presence of agent %s: %w", agentID, err)
	}
	return s.appendEvents(ctx, q, NewEvent{Type: EventPresenceChanged, AgentID: agentID,
		Data: presenceChanged{AgentID: agentID, Presence: shown, Chosen: a.Presence}})
}
