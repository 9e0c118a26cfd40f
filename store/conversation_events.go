package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Conversation events (issue 10): the durable record of what happened to
// each conversation, for supervisors' metrics (QueueMetrics). Unlike the
// live events (events.go), they are never pruned. Each is written in the
// transaction of the change it records, and (conversation_id, kind, ref)
// is unique: a retried writer records it once.
//
//	queued      the conversation entered queue_id (RouteAndEnqueue; ref: the routing attempt)
//	offered     an offer to agent_id (DistributeRound; ref: the offer)
//	accepted    agent_id accepted the offer (AcceptOffer; ref: the offer); waited_ms: its wait in the queue
//	assigned    agent_id was given it by pick, assign or transfer (ClaimConversation; ref: the
//	            assignment; detail: how); waited_ms only when it was taken out of a queue
//	transfer    it left queue_id for another queue or another agent while waiting in it or
//	            while answered from it (RouteAndEnqueue, ClaimConversation; detail: queue:<id> | agent:<id>)
//	first_reply agent_id's first message that Meta accepted (MarkMessageSent, ConfirmEcho; ref: the agent)
//	ended       the conversation went to wrap-up: its agent ended it (SaveConversationState)
//	closed      it closed (SaveConversationState; detail: the reason)
//	abandoned   it closed while its last queue visit was never answered (SaveConversationState);
//	            waited_ms: from that visit's queued to the close
const (
	ConvEventQueued     = "queued"
	ConvEventOffered    = "offered"
	ConvEventAccepted   = "accepted"
	ConvEventAssigned   = "assigned"
	ConvEventTransfer   = "transfer"
	ConvEventFirstReply = "first_reply"
	ConvEventEnded      = "ended"
	ConvEventClosed     = "closed"
	ConvEventAbandoned  = "abandoned"
)

// ConversationEvent is a row of conversation_events.
type ConversationEvent struct {
	ID             string        `db:"id"`
	ConversationID string        `db:"conversation_id"`
	Kind           string        `db:"kind"`
	Ref            string        `db:"ref"`
	QueueID        string        `db:"queue_id"`
	WorkstreamID   string        `db:"workstream_id"`
	AgentID        string        `db:"agent_id"`
	WaitedMS       sql.NullInt64 `db:"waited_ms"`
	Detail         string        `db:"detail"`
	At             time.Time     `db:"at"`
}

const convEventColumns = `id, conversation_id, kind, ref, queue_id, workstream_id, agent_id, waited_ms, detail, at`

// ConversationEvents lists a conversation's events in order.
func (s *Store) ConversationEvents(ctx context.Context, conversationID string) (_ []ConversationEvent, err error) {
	defer wrap(&err, "store.ConversationEvents(%s)", conversationID)
	var out []ConversationEvent
	if err := list(ctx, s.db, &out, `SELECT `+convEventColumns+` FROM conversation_events
		WHERE conversation_id = ? ORDER BY at, kind, id`, conversationID); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, nil
}

// waitedMS is a wait for the waited_ms column.
func waitedMS(ms int64) sql.NullInt64 { return sql.NullInt64{Int64: max(ms, 0), Valid: true} }

// recordConvEvent inserts e unless the conversation has an event of the
// same kind and ref. A missing queue or workstream is the one of the
// conversation's latest queued, accepted or assigned event.
func (s *Store) recordConvEvent(ctx context.Context, q querier, e ConversationEvent) error {
	if e.QueueID == "" || e.WorkstreamID == "" {
		var last struct {
			QueueID      string `db:"queue_id"`
			WorkstreamID string `db:"workstream_id"`
		}
		err := get(ctx, q, &last, `SELECT queue_id, workstream_id FROM conversation_events
			WHERE conversation_id = ? AND kind IN ('queued', 'accepted', 'assigned') AND queue_id <> ''
			ORDER BY at DESC, CASE kind WHEN 'queued' THEN 0 ELSE 1 END DESC LIMIT 1`, e.ConversationID)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return fmt.Errorf("conversation event: last queue: %w", err)
		default:
			if e.QueueID == "" {
				e.QueueID = last.QueueID
			}
			if e.WorkstreamID == "" && e.QueueID == last.QueueID {
				e.WorkstreamID = last.WorkstreamID
			}
		}
	}
	id, err := newID()
	if err != nil {
		return err
	}
	if e.At.IsZero() {
		e.At = s.clock()
	}
	if _, err := exec(ctx, q, `INSERT INTO conversation_events (`+convEventColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (conversation_id, kind, ref) DO NOTHING`,
		id, e.ConversationID, e.Kind, e.Ref, e.QueueID, e.WorkstreamID, e.AgentID, e.WaitedMS, e.Detail, s.timestamp(e.At)); err != nil {
		return fmt.Errorf("conversation event %s: %w", e.Kind, err)
	}
	return nil
}

// workstreamOfPage is the page's live workstream id ("" when none).
func workstreamOfPage(ctx context.Context, q querier, pageRef string) (string, error) {
	var id string
	err := get(ctx, q, &id, `SELECT id FROM workstreams WHERE page_ref = ? AND deleted_at IS NULL`, pageRef)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("workstream of page %s: %w", pageRef, err)
	}
	return id, nil
}

// Conversation states that record events (the workflow's).
const (
	stateWrapUp = "wrap_up"
	stateClosed = "closed"
)

// SaveConversationState saves the conversation (UpsertConversation) and,
// in the same transaction, records its ended (state wrap_up) or closed
// event at `at` (zero: the closing time, else now); a conversation that
// closes while its last queue visit was never answered is also abandoned.
// Idempotent: each is recorded once per conversation.
func (s *Store) SaveConversationState(ctx context.Context, c Conversation, at time.Time) (err error) {
	defer wrap(&err, "store.SaveConversationState(%q)", c.ID)
	if at.IsZero() && c.State == stateClosed && c.ClosedAt != nil {
		at = *c.ClosedAt
	}
	if at.IsZero() {
		at = s.clock()
	}
	at = utc(at)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.upsertConversation(ctx, tx, c); err != nil {
			return err
		}
		switch c.State {
		case stateWrapUp:
			return s.recordConvEvent(ctx, tx, ConversationEvent{ConversationID: c.ID, Kind: ConvEventEnded, AgentID: c.AgentID, At: at})
		case stateClosed:
			if err := s.recordConvEvent(ctx, tx, ConversationEvent{ConversationID: c.ID, Kind: ConvEventClosed, AgentID: c.AgentID,
				Detail: c.ClosedReason, At: at}); err != nil {
				return err
			}
			return s.recordAbandoned(ctx, tx, c.ID, at)
		}
		return nil
	})
}

// recordAbandoned records the abandon of a conversation closing at `at`
// whose last queue visit (queued event) has no answer (accepted or
// assigned from a queue) at or after it.
func (s *Store) recordAbandoned(ctx context.Context, tx querier, conversationID string, at time.Time) error {
	var visit struct {
		QueueID      string    `db:"queue_id"`
		WorkstreamID string    `db:"workstream_id"`
		At           time.Time `db:"at"`
	}
	err := get(ctx, tx, &visit, `SELECT queue_id, workstream_id, at FROM conversation_events
		WHERE conversation_id = ? AND kind = 'queued' ORDER BY at DESC LIMIT 1`, conversationID)
	if errors.Is(err, ErrNotFound) {
		return nil // never queued
	}
	if err != nil {
		return fmt.Errorf("last queue visit: %w", err)
	}
	var answers int
	if err := get(ctx, tx, &answers, `SELECT COUNT(*) FROM conversation_events
		WHERE conversation_id = ? AND kind IN ('accepted', 'assigned') AND waited_ms IS NOT NULL AND at >= ?`,
		conversationID, s.timestamp(visit.At)); err != nil {
		return fmt.Errorf("answers: %w", err)
	}
	if answers > 0 {
		return nil
	}
	return s.recordConvEvent(ctx, tx, ConversationEvent{ConversationID: conversationID, Kind: ConvEventAbandoned,
		QueueID: visit.QueueID, WorkstreamID: visit.WorkstreamID, WaitedMS: waitedMS(at.Sub(visit.At.UTC()).Milliseconds()), At: at})
}

// recordFirstReply records the first reply of the agent who wrote the
// outbound message, if an agent did, at `at`.
func (s *Store) recordFirstReply(ctx context.Context, tx querier, messageID string, at time.Time) error {
	var m struct {
		ConversationID string `db:"conversation_id"`
		Sender         string `db:"sender"`
		AgentID        string `db:"agent_id"`
	}
	if err := get(ctx, tx, &m, `SELECT conversation_id, sender, agent_id FROM messages WHERE id = ?`, messageID); err != nil {
		return fmt.Errorf("message %s: %w", messageID, err)
	}
	if m.Sender != "agent" || m.ConversationID == "" {
		return nil
	}
	return s.recordConvEvent(ctx, tx, ConversationEvent{ConversationID: m.ConversationID, Kind: ConvEventFirstReply,
		Ref: m.AgentID, AgentID: m.AgentID, At: utc(at)})
}
