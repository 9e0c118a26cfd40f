package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
)

// Event is one entry of the live event log that GET /api/v1/events streams
// to agents and supervisors. IDs grow in commit order (event_counter) and
// are dense: 1, 2, 3… with no hole, so a hole in what a reader gets means
// the events were pruned.
type Event struct {
	ID             int64           `db:"id"`
	Type           string          `db:"type"`
	AgentID        string          `db:"agent_id"`
	QueueID        string          `db:"queue_id"`
	ConversationID string          `db:"conversation_id"`
	Data           json.RawMessage `db:"data"`
	CreatedAt      time.Time       `db:"created_at"`
}

// Event types.
const (
	EventOfferCreated        = "offer.created"
	EventOfferWithdrawn      = "offer.withdrawn" // data.reason: accepted, rejected, timed_out, withdrawn
	EventConversationQueued  = "conversation.queued"
	EventConversationState   = "conversation.state"
	EventConversationMessage = "conversation.message"
	// EventConversationThread: another app took the Messenger thread,
	// Parley has it again, or another app asks Parley for it (handover
	// protocol).
	EventConversationThread = "conversation.thread"
	EventPresenceChanged    = "presence.changed"
)

// EventsChannel is the PostgreSQL channel appendEvents notifies (at
// commit) and ListenEvents listens on.
const EventsChannel = "parley_events"

// NewEvent is an event to append. Data is marshalled to JSON. A non-empty
// DedupeKey makes a retried append a no-op.
type NewEvent struct {
	Type           string
	AgentID        string
	QueueID        string
	ConversationID string
	Data           any
	DedupeKey      string
}

// AppendEvents appends events in their own transaction.
func (s *Store) AppendEvents(ctx context.Context, evs ...NewEvent) (err error) {
	defer wrap(&err, "store.AppendEvents")
	if len(evs) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.appendEvents(ctx, tx, evs...) })
}

// appendEvents appends events inside the caller's transaction (given a
// *sqlx.DB instead, it opens its own).
//
// It first locks the event_counter row, which stays locked until the
// transaction ends: appenders take turns, so ids become visible in order,
// and a reader that saw id n never sees a smaller one later. An id is
// consumed only by an inserted row (a duplicate DedupeKey takes none), so
// ids have no holes. Call it last in a transaction, so that the lock is held
// briefly.
//
// On PostgreSQL it also notifies EventsChannel, which PostgreSQL delivers
// at commit (and never on rollback): listening API processes wake at once.
func (s *Store) appendEvents(ctx context.Context, q querier, evs ...NewEvent) error {
	if len(evs) == 0 {
		return nil
	}
	if _, ok := q.(*sqlx.Tx); !ok {
		return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.appendEvents(ctx, tx, evs...) })
	}
	rows := make([][]byte, len(evs))
	for i, e := range evs {
		data, err := json.Marshal(e.Data)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", e.Type, err)
		}
		rows[i] = data
	}
	// The row lock (a no-op update): taken before looking for duplicates,
	// so that two appenders of the same DedupeKey cannot both miss the other.
	var last int64
	if err := get(ctx, q, &last, `UPDATE event_counter SET last = last WHERE id = 1 RETURNING last`); err != nil {
		return fmt.Errorf("lock event counter: %w", err)
	}
	// Read the clock under the lock: created_at follows the ids (within a process).
	now := s.timestamp(s.clock())
	next := last
	for i, e := range evs {
		n, err := exec(ctx, q, `INSERT INTO events (id, type, agent_id, queue_id, conversation_id, data, dedupe_key, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING`,
			next+1, e.Type, e.AgentID, e.QueueID, e.ConversationID, string(rows[i]), nullString(e.DedupeKey), now)
		if err != nil {
			return fmt.Errorf("insert %s event: %w", e.Type, err)
		}
		if n == 1 {
			next++
		}
	}
	if next == last {
		return nil // all duplicates
	}
	if _, err := exec(ctx, q, `UPDATE event_counter SET last = ? WHERE id = 1`, next); err != nil {
		return fmt.Errorf("advance event counter: %w", err)
	}
	if s.dialect == DialectPostgres {
		if _, err := exec(ctx, q, `SELECT pg_notify(?, ?)`, EventsChannel, strconv.FormatInt(next, 10)); err != nil {
			return fmt.Errorf("notify %s: %w", EventsChannel, err)
		}
	}
	return nil
}

// eventRow is Event as scanned: data is TEXT.
type eventRow struct {
	ID             int64     `db:"id"`
	Type           string    `db:"type"`
	AgentID        string    `db:"agent_id"`
	QueueID        string    `db:"queue_id"`
	ConversationID string    `db:"conversation_id"`
	Data           string    `db:"data"`
	CreatedAt      time.Time `db:"created_at"`
}

// EventsAfter returns up to limit events with an id above after, oldest first.
func (s *Store) EventsAfter(ctx context.Context, after int64, limit int) (_ []Event, err error) {
	defer wrap(&err, "store.EventsAfter(%d)", after)
	if limit <= 0 {
		return nil, invalidf("limit %d: want a positive number", limit)
	}
	var rows []eventRow
	if err := list(ctx, s.db, &rows, `SELECT id, type, agent_id, queue_id, conversation_id, data, created_at
		FROM events WHERE id > ? ORDER BY id LIMIT ?`, after, limit); err != nil {
		return nil, err
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = Event{ID: r.ID, Type: r.Type, AgentID: r.AgentID, QueueID: r.QueueID, ConversationID: r.ConversationID,
			Data: json.RawMessage(r.Data), CreatedAt: r.CreatedAt.UTC()}
	}
	return out, nil
}

// LatestEventID is the id of the last committed event (0 when none ever
// was), pruned or not.
func (s *Store) LatestEventID(ctx context.Context) (_ int64, err error) {
	defer wrap(&err, "store.LatestEventID")
	var last int64
	if err := get(ctx, s.db, &last, `SELECT last FROM event_counter WHERE id = 1`); err != nil {
		return 0, err
	}
	return last, nil
}

// OldestEventID is the id of the oldest retained event; when none is
// retained, the id the next event will get (LatestEventID + 1). A reader
// that saw id n misses nothing by reading EventsAfter(n) when n >=
// OldestEventID - 1.
func (s *Store) OldestEventID(ctx context.Context) (_ int64, err error) {
	defer wrap(&err, "store.OldestEventID")
	var r struct {
		Oldest sql.NullInt64 `db:"oldest"`
		Last   int64         `db:"last"`
	}
	// One statement: one snapshot of both.
	if err := get(ctx, s.db, &r, `SELECT (SELECT MIN(id) FROM events) AS oldest, last FROM event_counter WHERE id = 1`); err != nil {
		return 0, err
	}
	if !r.Oldest.Valid {
		return r.Last + 1, nil
	}
	return r.Oldest.Int64, nil
}

// pruneBatch bounds each DELETE of PruneEvents, so that writers (SQLite
// has one) wait briefly.
const pruneBatch = 5000

// PruneEvents deletes the events created before the given time and returns
// how many went. It deletes by id, up to the newest event created before
// then, so that the retained events are always an unbroken run of ids.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (_ int64, err error) {
	defer wrap(&err, "store.PruneEvents")
	var cut sql.NullInt64
	if err := get(ctx, s.db, &cut, `SELECT MAX(id) FROM events WHERE created_at < ?`, s.timestamp(before)); err != nil {
		return 0, err
	}
	if !cut.Valid {
		return 0, nil
	}
	var total int64
	for {
		n, err := exec(ctx, s.db, `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ? ORDER BY id LIMIT ?)`,
			cut.Int64, pruneBatch)
		if err != nil {
			return total, err
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

// ErrNoListen is returned by ListenEvents on a database without
// notifications (SQLite): readers poll.
var ErrNoListen = errors.New("this database has no LISTEN/NOTIFY")

// listenCheck is how long ListenEvents waits for a notification before it
// checks that its connection is still alive (a variable for the tests).
var listenCheck = 30 * time.Second

// ListenEvents listens on EventsChannel with a connection of its own and
// calls wake once listening, then at every notification (appended events
// committed, by any process). It blocks until ctx ends (returning nil) or
// the connection fails (returning the error: call it again). On SQLite it
// returns ErrNoListen at once.
func (s *Store) ListenEvents(ctx context.Context, wake func()) (err error) {
	defer wrap(&err, "store.ListenEvents")
	if s.dialect != DialectPostgres {
		return ErrNoListen
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close() //nolint:errcheck // already closed: Raw discarded it
	err = conn.Raw(func(dc any) error {
		// Always discard the connection afterwards: it must not go back
		// to the pool still listening.
		return discardConn{listen(ctx, dc, wake)}
	})
	if ctx.Err() != nil {
		return nil
	}
	var d discardConn
	if errors.As(err, &d) {
		return d.err
	}
	return err
}

func listen(ctx context.Context, dc any, wake func()) error {
	sc, ok := dc.(*stdlib.Conn)
	if !ok {
		return fmt.Errorf("unexpected driver connection %T", dc)
	}
	pc := sc.Conn()
	if _, err := pc.Exec(ctx, "LISTEN "+EventsChannel); err != nil {
		return err
	}
	// Events committed before LISTEN took effect are the poller's: look now.
	wake()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		_, err := pc.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			wake()
		case ctx.Err() != nil:
			return ctx.Err()
		case wctx.Err() != nil:
			// Quiet for a while: make sure the server is still there.
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := pc.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return err
		}
	}
}

// discardConn is an error that makes database/sql discard the connection
// (it wraps driver.ErrBadConn) while keeping the real error.
type discardConn struct{ err error }

func (d discardConn) Error() string {
	if d.err == nil {
		return "listen ended"
	}
	return d.err.Error()
}

func (d discardConn) Unwrap() []error { return []error{d.err, driver.ErrBadConn} }
