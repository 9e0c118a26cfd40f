package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Serialization of the ledger.
//
// Every ledger transaction that reads capacity or queue state and then
// writes holds or queue items runs through ledgerTx, which makes ledger
// transactions run one at a time across every process sharing the database:
//
//   - PostgreSQL: the transaction first takes a transaction-scoped advisory
//     lock, pg_advisory_xact_lock(ledgerLockClass, hash of the schema),
//     released at commit or rollback. Under READ COMMITTED every later
//     statement of the transaction sees all that earlier ledger transactions
//     committed, so "read used units, then insert a hold" cannot interleave
//     with another process doing the same. One lock for the whole ledger is
//     the simplest proof; a round of distribution reads every agent and queue
//     anyway, so row locks (SELECT … FOR UPDATE on the agents involved) would
//     lock nearly the same set, with deadlock risks. Each transaction lasts
//     milliseconds, so one lock serves hundreds of ledger changes a second.
//     The scaling path is to shard the lock by routing domain (a set of
//     queues and the agents that are members of them, sharing no agent with
//     another domain): the lock key becomes the domain's.
//   - SQLite: Open sets _txlock=immediate, so every transaction begins with
//     BEGIN IMMEDIATE and holds the database's single write lock from its
//     first statement: transactions are serialized within a process (one
//     connection) and across processes (other processes wait on the lock
//     for busy_timeout). A deferred transaction could read, then fail with
//     SQLITE_BUSY when it upgrades to write; immediate ones cannot.
//
// Belt and braces: a transaction that fails with a transient error
// (SQLITE_BUSY after the busy timeout, a PostgreSQL deadlock with a
// transaction outside the ledger, a serialization failure) runs again from
// the start, a few times. Ledger transactions have no effect outside the
// database, so running one again is safe.

// ledgerLockClass is the first key of the ledger's advisory lock; the
// second is a hash of the schema, so that two schemas (tests, or two
// deployments on one database) do not wait for each other.
const ledgerLockClass = 0x70617279 // "pary"

// ledgerAttempts bounds the runs of a ledger transaction failing transiently.
const ledgerAttempts = 5

// ledgerTx runs fn in a ledger transaction (see above).
func (s *Store) ledgerTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.inTx(ctx, func(tx *sqlx.Tx) error {
			if s.dialect == DialectPostgres {
				if _, err := exec(ctx, tx, `SELECT pg_advisory_xact_lock(?, hashtext(COALESCE(current_schema(), '')))`, ledgerLockClass); err != nil {
					return fmt.Errorf("ledger lock: %w", err)
				}
			}
			return fn(tx)
		})
		if err == nil || attempt >= ledgerAttempts || !isTransient(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(attempt*attempt) * 10 * time.Millisecond):
		}
	}
}

// isTransient reports an error after which the whole transaction may run again.
func isTransient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01" // serialization_failure, deadlock_detected
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		c := liteErr.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// holdRow is a row of capacity_holds.
type holdRow struct {
	ConversationID string       `db:"conversation_id"`
	AgentID        string       `db:"agent_id"`
	Units          int          `db:"units"`
	Kind           string       `db:"kind"`
	OfferID        string       `db:"offer_id"`
	ExpiresAt      sql.NullTime `db:"expires_at"`
	Forced         bool         `db:"forced"`
	WorkflowID     string       `db:"workflow_id"`
	QueueID        string       `db:"queue_id"`
	CreatedAt      time.Time    `db:"created_at"`
}

// Hold kinds.
const (
	holdOffer  = "offer"
	holdActive = "active"
	holdWrapUp = "wrap_up"
)

const holdColumns = `conversation_id, agent_id, units, kind, offer_id, expires_at, forced, workflow_id, queue_id, created_at`

// getHold returns the conversation's hold, if any.
func getHold(ctx context.Context, q querier, conversationID string) (holdRow, bool, error) {
	var h holdRow
	err := get(ctx, q, &h, `SELECT `+holdColumns+` FROM capacity_holds WHERE conversation_id = ?`, conversationID)
	if errors.Is(err, ErrNotFound) {
		return holdRow{}, false, nil
	}
	if err != nil {
		return holdRow{}, false, fmt.Errorf("hold: %w", err)
	}
	return h, true, nil
}

// itemRow is a row of queue_items.
type itemRow struct {
	ConversationID   string       `db:"conversation_id"`
	WorkflowID       string       `db:"workflow_id"`
	QueueID          string       `db:"queue_id"`
	PageRef          string       `db:"page_ref"`
	Mode             string       `db:"mode"`
	Units            int          `db:"units"`
	Priority         int          `db:"priority"`
	WaitingSince     time.Time    `db:"waiting_since"`
	EnqueuedAt       time.Time    `db:"enqueued_at"`
	AllowedPresences string       `db:"allowed_presences"`
	PreferredAgentID string       `db:"preferred_agent_id"`
	PreferredUntil   sql.NullTime `db:"preferred_until"`
	Declined         string       `db:"declined"`
	OfferID          string       `db:"offer_id"`
	OfferRound       string       `db:"offer_round"`
	OfferTimeoutMS   int64        `db:"offer_timeout_ms"`
	Note             string       `db:"note"`
	RouteID          string       `db:"route_id"`
}

const itemColumns = `conversation_id, workflow_id, queue_id, page_ref, mode, units, priority, waiting_since, enqueued_at,
	allowed_presences, preferred_agent_id, preferred_until, declined, offer_id, offer_round, offer_timeout_ms, note, route_id`

// getItem returns the conversation's queue item, if any.
func getItem(ctx context.Context, q querier, conversationID string) (itemRow, bool, error) {
	var it itemRow
	err := get(ctx, q, &it, `SELECT `+itemColumns+` FROM queue_items WHERE conversation_id = ?`, conversationID)
	if errors.Is(err, ErrNotFound) {
		return itemRow{}, false, nil
	}
	if err != nil {
		return itemRow{}, false, fmt.Errorf("queue item: %w", err)
	}
	return it, true, nil
}

// ledgerAgent is an agent's capacity as the ledger checks it.
type ledgerAgent struct {
	ID       string `db:"id"`
	Name     string `db:"name"`
	Presence string `db:"presence"`
	Capacity int    `db:"capacity_units"`
	Used     int    `db:"used"`
}

// getLedgerAgent returns a live agent with the units it holds; a missing or
// deleted agent is ErrNotFound.
func getLedgerAgent(ctx context.Context, q querier, agentID string) (ledgerAgent, error) {
	var a ledgerAgent
	err := get(ctx, q, &a, `SELECT a.id, a.name, a.presence, a.capacity_units,
			COALESCE((SELECT SUM(h.units) FROM capacity_holds h WHERE h.agent_id = a.id), 0) AS used
		FROM agents a WHERE a.id = ? AND a.deleted_at IS NULL`, agentID)
	if errors.Is(err, ErrNotFound) {
		return ledgerAgent{}, fmt.Errorf("agent %s: %w", agentID, ErrNotFound)
	}
	return a, err
}

// agentName returns an agent's name, deleted or not ("" if unknown).
func agentName(ctx context.Context, q querier, agentID string) (string, error) {
	var name string
	err := get(ctx, q, &name, `SELECT name FROM agents WHERE id = ?`, agentID)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return name, err
}

// queueName returns a queue's name, deleted or not ("" if unknown or id is "").
func queueName(ctx context.Context, q querier, queueID string) (string, error) {
	if queueID == "" {
		return "", nil
	}
	var name string
	err := get(ctx, q, &name, `SELECT name FROM queues WHERE id = ?`, queueID)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return name, err
}

// getLiveQueue returns a live queue without its members; ok is false when
// it is missing or deleted.
func getLiveQueue(ctx context.Context, q querier, id string) (_ Queue, ok bool, _ error) {
	if id == "" {
		return Queue{}, false, nil
	}
	lq, err := queueOnly(ctx, q, id, true)
	if errors.Is(err, ErrNotFound) {
		return Queue{}, false, nil
	}
	if err != nil {
		return Queue{}, false, fmt.Errorf("queue %s: %w", id, err)
	}
	return lq, true, nil
}

// decodeStrings decodes a JSON array of strings ("" or null: none).
func decodeStrings(s string) ([]string, error) {
	if s == "" || s == "[]" || s == "null" {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// encodeStrings encodes a JSON array of strings, never null.
func encodeStrings(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, err := json.Marshal(v)
	if err != nil { // cannot fail for strings
		panic(err)
	}
	return string(b)
}

// offerWithdrawn is the data of an offer.withdrawn event.
type offerWithdrawn struct {
	OfferID        string `json:"offer_id"`
	ConversationID string `json:"conversation_id"`
	QueueID        string `json:"queue_id,omitempty"`
	Reason         string `json:"reason"` // accepted, rejected, timed_out, withdrawn
	Note           string `json:"note,omitempty"`
}

func withdrawnEvent(h holdRow, reason string) NewEvent {
	return NewEvent{
		Type: EventOfferWithdrawn, AgentID: h.AgentID, QueueID: h.QueueID, ConversationID: h.ConversationID,
		Data: offerWithdrawn{OfferID: h.OfferID, ConversationID: h.ConversationID, QueueID: h.QueueID, Reason: reason},
	}
}

// deleteHold deletes the conversation's hold; when it was an offer, it
// returns the offer.withdrawn event to append.
func deleteHold(ctx context.Context, q querier, h holdRow, reason string) ([]NewEvent, error) {
	if _, err := exec(ctx, q, `DELETE FROM capacity_holds WHERE conversation_id = ?`, h.ConversationID); err != nil {
		return nil, fmt.Errorf("delete hold: %w", err)
	}
	if h.Kind == holdOffer {
		return []NewEvent{withdrawnEvent(h, reason)}, nil
	}
	return nil, nil
}

// refreshAgents recomputes the effective presence of each agent once.
func (s *Store) refreshAgents(ctx context.Context, q querier, agentIDs ...string) error {
	var done []string
	for _, id := range agentIDs {
		if id == "" || slices.Contains(done, id) {
			continue
		}
		done = append(done, id)
		if err := s.refreshPresence(ctx, q, id); err != nil {
			return fmt.Errorf("presence of agent %s: %w", id, err)
		}
	}
	return nil
}

// sinceMS is now - t in milliseconds, never negative.
func sinceMS(now, t time.Time) int64 {
	d := now.Sub(t)
	if d < 0 {
		return 0
	}
	return d.Milliseconds()
}
