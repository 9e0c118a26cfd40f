package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"parley/routing"
)

// Claim kinds (Claim.How).
const (
	ClaimPick     = "pick"
	ClaimAssign   = "assign"
	ClaimTransfer = "transfer"
)

// ClaimConversation assigns a conversation to an agent within its capacity
// (a *CapacityError otherwise, unless forced): any earlier hold (another
// agent's, an offer) is released and the conversation leaves its queue. A
// pick of a conversation that is not queued (any more) is ErrConflict; an
// assign or a transfer need not be queued. A live agent is required
// (ErrNotFound). When the conversation already holds the same agent
// actively, the existing assignment is returned (a retry) and nothing
// changes.
//
// Units: c.Units, else the queue item's, else the earlier hold's, else 1.
// A forced claim records forced=true only when it exceeds the capacity.
func (s *Store) ClaimConversation(ctx context.Context, c Claim) (_ Assignment, err error) {
	defer wrap(&err, "store.ClaimConversation(%s)", c.ConversationID)
	switch c.How {
	case ClaimPick, ClaimAssign, ClaimTransfer:
	default:
		return Assignment{}, invalidf("how %q is not %s, %s or %s", c.How, ClaimPick, ClaimAssign, ClaimTransfer)
	}
	if c.ConversationID == "" || c.AgentID == "" {
		return Assignment{}, invalidf("a conversation and an agent are required")
	}
	if c.Units < 0 {
		return Assignment{}, invalidf("units %d is negative", c.Units)
	}
	now := utc(c.Now)
	if c.Now.IsZero() {
		now = s.clock()
	}
	var res Assignment
	err = s.ledgerTx(ctx, func(tx *sqlx.Tx) error {
		hold, held, err := getHold(ctx, tx, c.ConversationID)
		if err != nil {
			return err
		}
		if held && hold.AgentID == c.AgentID && hold.Kind == holdActive {
			res, err = claimedBefore(ctx, tx, hold, c)
			return err
		}
		item, queued, err := getItem(ctx, tx, c.ConversationID)
		if err != nil {
			return err
		}
		if c.How == ClaimPick && !queued {
			return fmt.Errorf("%w: the conversation is not waiting in a queue", ErrConflict)
		}
		agent, err := getLedgerAgent(ctx, tx, c.AgentID)
		if err != nil {
			return err
		}
		units, workflowID, queueID := c.Units, c.WorkflowID, ""
		if held {
			queueID = hold.QueueID
			if units == 0 {
				units = hold.Units
			}
			if workflowID == "" {
				workflowID = hold.WorkflowID
			}
		}
		var waited int64
		note := c.Note
		if queued {
			queueID = item.QueueID
			if c.Units == 0 {
				units = item.Units
			}
			if workflowID == "" {
				workflowID = item.WorkflowID
			}
			waited = sinceMS(now, item.WaitingSince)
			if note == "" {
				note = item.Note
			}
		}
		if units == 0 && !queued && !held {
			units = 1
		}
		var evs []NewEvent
		agents := []string{c.AgentID}
		if held {
			if evs, err = deleteHold(ctx, tx, hold, DeclineWithdrawn); err != nil {
				return err
			}
			agents = append(agents, hold.AgentID)
			if hold.AgentID == c.AgentID {
				agent.Used -= hold.Units
			}
		}
		over := agent.Used+units > agent.Capacity
		if over && !c.Force {
			return &CapacityError{AgentID: agent.ID, Presence: routing.EffectivePresence(agent.Presence, agent.Used, agent.Capacity),
				Used: agent.Used, Capacity: agent.Capacity, Units: units}
		}
		if _, err := exec(ctx, tx, `DELETE FROM queue_items WHERE conversation_id = ?`, c.ConversationID); err != nil {
			return fmt.Errorf("delete queue item: %w", err)
		}
		if _, err := exec(ctx, tx, `INSERT INTO capacity_holds (conversation_id, agent_id, units, kind, offer_id, expires_at,
				forced, workflow_id, queue_id, created_at) VALUES (?, ?, ?, 'active', '', NULL, ?, ?, ?, ?)`,
			c.ConversationID, c.AgentID, units, over, workflowID, queueID, s.timestamp(now)); err != nil {
			return fmt.Errorf("insert hold: %w", err)
		}
		if _, err := exec(ctx, tx, `UPDATE agents SET last_assigned_at = ? WHERE id = ?`, s.timestamp(now), c.AgentID); err != nil {
			return fmt.Errorf("last assigned: %w", err)
		}
		id, err := newID()
		if err != nil {
			return err
		}
		if _, err := exec(ctx, tx, `INSERT INTO assignments (id, conversation_id, queue_id, agent_id, how, waited_ms, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, id, c.ConversationID, queueID, c.AgentID, c.How, waited, s.timestamp(now)); err != nil {
			return fmt.Errorf("insert assignment: %w", err)
		}
		if err := s.recordClaim(ctx, tx, c, id, queueID, item, queued, hold, held, now); err != nil {
			return err
		}
		qname, err := queueName(ctx, tx, queueID)
		if err != nil {
			return err
		}
		res = Assignment{ConversationID: c.ConversationID, AgentID: c.AgentID, AgentName: agent.Name, QueueID: queueID,
			QueueName: qname, How: c.How, Waited: time.Duration(waited) * time.Millisecond, Note: note, Forced: over}
		if held && hold.Kind == holdOffer {
			res.WithdrawnOfferID = hold.OfferID
		}
		if err := s.refreshAgents(ctx, tx, agents...); err != nil {
			return err
		}
		return s.appendEvents(ctx, tx, evs...)
	})
	if err != nil {
		return Assignment{}, err
	}
	return res, nil
}

// claimedBefore is the assignment that gave the conversation its active
// hold with the same agent: the latest of theirs.
func claimedBefore(ctx context.Context, tx *sqlx.Tx, hold holdRow, c Claim) (Assignment, error) {
	var a assignmentRow
	err := get(ctx, tx, &a, `SELECT id, conversation_id, queue_id, agent_id, how, waited_ms FROM assignments
		WHERE conversation_id = ? AND agent_id = ? ORDER BY created_at DESC, id DESC LIMIT 1`, hold.ConversationID, hold.AgentID)
	if errors.Is(err, ErrNotFound) {
		a = assignmentRow{ConversationID: hold.ConversationID, QueueID: hold.QueueID, AgentID: hold.AgentID, How: c.How}
	} else if err != nil {
		return Assignment{}, fmt.Errorf("assignment: %w", err)
	}
	res, err := a.assignment(ctx, tx)
	if err != nil {
		return Assignment{}, err
	}
	res.Forced, res.Note = hold.Forced, c.Note
	return res, nil
}

// ReleaseConversation gives back the conversation's capacity and takes it
// out of its queue (withdrawing an open offer). Idempotent: releasing a
// conversation that holds nothing and waits nowhere returns a zero Released.
func (s *Store) ReleaseConversation(ctx context.Context, conversationID string, now time.Time) (_ Released, err error) {
	defer wrap(&err, "store.ReleaseConversation(%s)", conversationID)
	if conversationID == "" {
		return Released{}, invalidf("a conversation is required")
	}
	var res Released
	err = s.ledgerTx(ctx, func(tx *sqlx.Tx) error {
		res = Released{}
		hold, held, err := getHold(ctx, tx, conversationID)
		if err != nil {
			return err
		}
		item, queued, err := getItem(ctx, tx, conversationID)
		if err != nil {
			return err
		}
		var evs []NewEvent
		if held {
			if evs, err = deleteHold(ctx, tx, hold, DeclineWithdrawn); err != nil {
				return err
			}
			res.AgentID, res.Units = hold.AgentID, hold.Units
			if hold.Kind == holdOffer {
				res.OfferID = hold.OfferID
			}
		}
		if queued {
			if _, err := exec(ctx, tx, `DELETE FROM queue_items WHERE conversation_id = ?`, conversationID); err != nil {
				return fmt.Errorf("delete queue item: %w", err)
			}
			res.QueueID = item.QueueID
		}
		if err := s.refreshAgents(ctx, tx, res.AgentID); err != nil {
			return err
		}
		return s.appendEvents(ctx, tx, evs...)
	})
	if err != nil {
		return Released{}, err
	}
	return res, nil
}

// HoldForWrapUp keeps the conversation's active hold as a wrap-up hold
// (the same units: no capacity is taken, so no ledger lock is needed).
// Idempotent; no hold is not an error.
func (s *Store) HoldForWrapUp(ctx context.Context, conversationID string, now time.Time) (err error) {
	defer wrap(&err, "store.HoldForWrapUp(%s)", conversationID)
	_, err = exec(ctx, s.db, `UPDATE capacity_holds SET kind = 'wrap_up' WHERE conversation_id = ? AND kind = 'active'`, conversationID)
	return err
}

// recordClaim records the assignment (with its wait in the queue when it
// takes the conversation out of one: an answer) and, when the conversation
// was answered already by another agent, its transfer out of that queue
// (conversation events).
func (s *Store) recordClaim(ctx context.Context, tx *sqlx.Tx, c Claim, assignmentID, queueID string, item itemRow, queued bool,
	hold holdRow, held bool, now time.Time) error {
	if held && hold.Kind != holdOffer && hold.AgentID != c.AgentID {
		if err := s.recordConvEvent(ctx, tx, ConversationEvent{ConversationID: c.ConversationID, Kind: ConvEventTransfer,
			Ref: assignmentID, QueueID: hold.QueueID, AgentID: hold.AgentID, Detail: "agent:" + c.AgentID, At: now}); err != nil {
			return err
		}
	}
	e := ConversationEvent{ConversationID: c.ConversationID, Kind: ConvEventAssigned, Ref: assignmentID, QueueID: queueID,
		AgentID: c.AgentID, Detail: c.How, At: now}
	if queued {
		e.WaitedMS = waitedMS(sinceMS(now, item.EnqueuedAt))
	}
	return s.recordConvEvent(ctx, tx, e)
}
