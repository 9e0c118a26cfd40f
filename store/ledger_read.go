package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"parley/routing"
)

// QueuedConversations lists a queue's waiting conversations in the order
// they are served (priority, higher first; then the customer's wait, FIFO;
// then conversation id), with their 1-based positions. A queue that never
// existed is ErrNotFound; a deleted one lists what still waits in it.
func (s *Store) QueuedConversations(ctx context.Context, queueID string) (_ []QueuedConversation, err error) {
	defer wrap(&err, "store.QueuedConversations(%s)", queueID)
	var n int
	if err := get(ctx, s.db, &n, `SELECT COUNT(*) FROM queues WHERE id = ?`, queueID); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("queue %s: %w", queueID, ErrNotFound)
	}
	var rows []queuedRow
	if err := list(ctx, s.db, &rows, `SELECT `+queuedColumns+`, 0 AS ahead
		FROM queue_items i
		LEFT JOIN capacity_holds h ON h.conversation_id = i.conversation_id AND h.kind = 'offer' AND h.offer_id = i.offer_id
			AND i.offer_id <> ''
		LEFT JOIN queues q ON q.id = i.queue_id AND q.deleted_at IS NULL
		WHERE i.queue_id = ?
		ORDER BY i.priority DESC, i.waiting_since, i.conversation_id`, queueID); err != nil {
		return nil, err
	}
	out := make([]QueuedConversation, len(rows))
	for i, r := range rows {
		r.Ahead = i
		out[i] = r.queued()
	}
	return out, nil
}

// queuedRow is a queue item with its open offer's agent and time-out, and
// how many items are served before it.
type queuedRow struct {
	ConversationID string       `db:"conversation_id"`
	QueueID        string       `db:"queue_id"`
	QueueName      string       `db:"queue_name"`
	Priority       int          `db:"priority"`
	WaitingSince   time.Time    `db:"waiting_since"`
	EnqueuedAt     time.Time    `db:"enqueued_at"`
	Mode           string       `db:"mode"`
	Note           string       `db:"note"`
	OfferedTo      string       `db:"offered_to"`
	ExpiresAt      sql.NullTime `db:"expires_at"`
	Ahead          int          `db:"ahead"`
}

// queuedColumns select a queuedRow (but ahead) from queue_items i joined
// with its offer's hold h and its queue q.
const queuedColumns = `i.conversation_id, i.queue_id, COALESCE(q.name, '') AS queue_name, i.priority, i.waiting_since, i.enqueued_at, i.mode, i.note,
	COALESCE(h.agent_id, '') AS offered_to, h.expires_at`

func (r queuedRow) queued() QueuedConversation {
	q := QueuedConversation{ConversationID: r.ConversationID, QueueID: r.QueueID, QueueName: r.QueueName, Position: r.Ahead + 1, Priority: r.Priority,
		WaitingSince: r.WaitingSince.UTC(), EnqueuedAt: r.EnqueuedAt.UTC(), Mode: r.Mode, OfferedTo: r.OfferedTo, Note: r.Note}
	if r.ExpiresAt.Valid {
		q.OfferExpiresAt = r.ExpiresAt.Time.UTC()
	}
	return q
}

// ConversationInQueue is where the conversation waits, if it does: its
// queue item with its position, and the open offer's agent and time-out.
func (s *Store) ConversationInQueue(ctx context.Context, conversationID string) (_ QueuedConversation, ok bool, err error) {
	defer wrap(&err, "store.ConversationInQueue(%s)", conversationID)
	var rows []queuedRow
	// One statement: the position is that of the same snapshot.
	if err := list(ctx, s.db, &rows, `SELECT `+queuedColumns+`,
			(SELECT COUNT(*) FROM queue_items o WHERE o.queue_id = i.queue_id AND (o.priority > i.priority
				OR (o.priority = i.priority AND (o.waiting_since < i.waiting_since
					OR (o.waiting_since = i.waiting_since AND o.conversation_id < i.conversation_id))))) AS ahead
		FROM queue_items i
		LEFT JOIN capacity_holds h ON h.conversation_id = i.conversation_id AND h.kind = 'offer' AND h.offer_id = i.offer_id
			AND i.offer_id <> ''
		LEFT JOIN queues q ON q.id = i.queue_id AND q.deleted_at IS NULL
		WHERE i.conversation_id = ?`, conversationID); err != nil {
		return QueuedConversation{}, false, err
	}
	if len(rows) == 0 {
		return QueuedConversation{}, false, nil
	}
	q := rows[0].queued()
	return q, true, nil
}

// AgentLoads returns the load of every live agent, oldest agent first (the
// invariant checks and supervisors' views use it). Used and Holds come from
// one statement: a consistent view of the ledger.
func (s *Store) AgentLoads(ctx context.Context) (_ []AgentLoad, err error) {
	defer wrap(&err, "store.AgentLoads")
	var rows []struct {
		ID       string `db:"id"`
		Name     string `db:"name"`
		Presence string `db:"presence"`
		Capacity int    `db:"capacity_units"`
		Used     int    `db:"used"`
		Holds    int    `db:"holds"`
		Forced   int    `db:"forced"`
	}
	if err := list(ctx, s.db, &rows, `SELECT a.id, a.name, a.presence, a.capacity_units,
			COALESCE(u.used, 0) AS used, COALESCE(u.holds, 0) AS holds, COALESCE(u.forced, 0) AS forced
		FROM agents a
		LEFT JOIN (SELECT agent_id, SUM(units) AS used, COUNT(*) AS holds, MAX(CASE WHEN forced THEN 1 ELSE 0 END) AS forced
			FROM capacity_holds GROUP BY agent_id) u ON u.agent_id = a.id
		WHERE a.deleted_at IS NULL
		ORDER BY a.created_at, a.id`); err != nil {
		return nil, err
	}
	var members []struct {
		AgentID string `db:"agent_id"`
		QueueID string `db:"queue_id"`
	}
	if err := list(ctx, s.db, &members, `SELECT qa.agent_id, qa.queue_id FROM queue_agents qa
		JOIN queues q ON q.id = qa.queue_id AND q.deleted_at IS NULL
		ORDER BY q.priority, q.name, q.id`); err != nil {
		return nil, err
	}
	queues := map[string][]string{}
	for _, m := range members {
		queues[m.AgentID] = append(queues[m.AgentID], m.QueueID)
	}
	out := make([]AgentLoad, len(rows))
	for i, r := range rows {
		out[i] = AgentLoad{AgentID: r.ID, Capacity: r.Capacity, Used: r.Used,
			Presence: routing.EffectivePresence(r.Presence, r.Used, r.Capacity), Holds: r.Holds, Forced: r.Forced != 0,
			QueueIDs: queues[r.ID], AgentName: r.Name}
	}
	return out, nil
}

// QueuePlace is where a waiting conversation stands now.
type QueuePlace struct {
	QueueID       string        `json:"queue_id"`
	QueueName     string        `json:"queue_name"`
	Position      int           `json:"position"` // 1-based
	EstimatedWait time.Duration `json:"estimated_wait,omitempty"`
}

// QueuePlaceOf is the conversation's queue, position and the queue's
// estimated wait at now; ok is false when it waits in no queue.
func (s *Store) QueuePlaceOf(ctx context.Context, conversationID string, now time.Time) (_ QueuePlace, ok bool, err error) {
	defer wrap(&err, "store.QueuePlaceOf(%s)", conversationID)
	q, ok, err := s.ConversationInQueue(ctx, conversationID)
	if err != nil || !ok {
		return QueuePlace{}, false, err
	}
	_, est, err := s.queueStats(ctx, s.db, q.QueueID, conversationID, now)
	if err != nil {
		return QueuePlace{}, false, err
	}
	return QueuePlace{QueueID: q.QueueID, QueueName: q.QueueName, Position: q.Position, EstimatedWait: est}, true, nil
}
