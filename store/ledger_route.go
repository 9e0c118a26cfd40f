package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"parley/routing"
)

// maxTransferHops bounds the overflow transfers of one routing.
const maxTransferHops = 5

// Estimated wait of a queue: the average time the customers of its last
// estimateSamples assignments within estimateWindow waited (from
// waiting_since to the assignment), 0 when there are none. Simple to
// explain ("about the wait of the last 20 customers served today") and one
// indexed query (assignments_queue).
const (
	estimateSamples = 20
	estimateWindow  = 24 * time.Hour
)

// RouteAndEnqueue chooses the queue (rules, overflow, transfers; at most a
// few hops, never a loop) and, unless an overflow rule ends the
// conversation, queues it, in one transaction. Any earlier queue item or
// hold of the conversation is replaced: an open offer is withdrawn, and an
// assignment (a transfer to a queue) gives the agent's capacity back.
//
// Candidates are the rules' queues (routing.Candidates) unless r.QueueID
// is set; the first that exists and is not overflowing wins, else the
// fallback queue (ErrNotFound when it does not exist). The chosen queue's
// before-queueing overflow then applies: end (RouteEnded, nothing queued),
// transfer (the target's rules apply in turn, at most 5 hops; a queue
// already visited, or a missing target, queues the conversation there), or
// queue. Waiting counts the queue's other conversations; the estimated wait
// is the average wait of the queue's last 20 assignments within 24 hours.
//
// A retried call (the queue item carries the same RouteID) returns the
// same result, its position recomputed, and changes nothing.
func (s *Store) RouteAndEnqueue(ctx context.Context, r Route) (_ RouteResult, err error) {
	defer wrap(&err, "store.RouteAndEnqueue(%s)", r.ConversationID)
	if r.ConversationID == "" || r.WorkflowID == "" {
		return RouteResult{}, invalidf("a conversation id and a workflow id are required")
	}
	d := routeDefaults(r.Distribution)
	if d.Mode != routing.ModePush && d.Mode != routing.ModePick {
		return RouteResult{}, invalidf("distribution mode %q is not push or pick", d.Mode)
	}
	if d.CapacityUnits < 0 {
		return RouteResult{}, invalidf("capacity units %d is negative", d.CapacityUnits)
	}
	now := utc(r.Now)
	if r.Now.IsZero() {
		now = s.clock()
	}
	waitingSince := utc(r.WaitingSince)
	if r.WaitingSince.IsZero() {
		waitingSince = now
	}
	var res RouteResult
	err = s.ledgerTx(ctx, func(tx *sqlx.Tx) error {
		item, queued, err := getItem(ctx, tx, r.ConversationID)
		if err != nil {
			return err
		}
		if queued && r.RouteID != "" && item.RouteID == r.RouteID {
			res, err = s.routeRetry(ctx, tx, item, now)
			return err
		}
		ch, err := s.chooseQueue(ctx, tx, r, d, now)
		if err != nil {
			return err
		}
		res = RouteResult{
			QueueID: ch.queue.ID, QueueName: ch.queue.Name, EstimatedWait: ch.est, Trigger: ch.trigger,
			OutOfHours: ch.outOfHours, Reason: strings.Join(ch.reason, "; "),
		}
		// What the conversation had goes: its queue place, an offer, an agent.
		var evs []NewEvent
		var agents []string
		hold, held, err := getHold(ctx, tx, r.ConversationID)
		if err != nil {
			return err
		}
		if held {
			ev, err := deleteHold(ctx, tx, hold, DeclineWithdrawn)
			if err != nil {
				return err
			}
			evs = append(evs, ev...)
			agents = append(agents, hold.AgentID)
		}
		if _, err := exec(ctx, tx, `DELETE FROM queue_items WHERE conversation_id = ?`, r.ConversationID); err != nil {
			return fmt.Errorf("delete queue item: %w", err)
		}
		if ch.ended {
			res.Outcome = RouteEnded
			res.Waiting = ch.waiting
		} else {
			res.Outcome = RouteQueued
			res.WhileQueued = ch.queue.Overflow.WhileQueued
			if _, err := exec(ctx, tx, `INSERT INTO queue_items (conversation_id, workflow_id, queue_id, page_ref, mode, units,
					priority, waiting_since, enqueued_at, allowed_presences, preferred_agent_id, preferred_until, declined,
					offer_id, offer_round, offer_timeout_ms, note, route_id)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', '', '', ?, ?, ?)`,
				r.ConversationID, r.WorkflowID, ch.queue.ID, r.PageRef, d.Mode, d.CapacityUnits,
				r.Priority, s.timestamp(waitingSince), s.timestamp(now), encodeStrings(d.AllowedPresences),
				preferredAgent(r), s.nullTimestamp(preferredUntil(r)), d.OfferTimeout.D().Milliseconds(), r.Note, r.RouteID); err != nil {
				return fmt.Errorf("insert queue item: %w", err)
			}
			if res.Position, err = itemPosition(ctx, tx, r.ConversationID); err != nil {
				return err
			}
			res.Waiting = ch.waiting + 1
			ev := NewEvent{Type: EventConversationQueued, QueueID: ch.queue.ID, ConversationID: r.ConversationID,
				Data: queuedEvent{ConversationID: r.ConversationID, QueueID: ch.queue.ID, QueueName: ch.queue.Name,
					Position: res.Position, WaitingSince: waitingSince, Reason: res.Reason, Trigger: res.Trigger,
					OutOfHours: res.OutOfHours}}
			if r.RouteID != "" {
				ev.DedupeKey = queuedDedupeKey(r.ConversationID, r.RouteID)
			}
			evs = append(evs, ev)
			if err := s.recordQueued(ctx, tx, r, ch.queue.ID, item, queued, hold, held, now); err != nil {
				return err
			}
		}
		if err := s.refreshAgents(ctx, tx, agents...); err != nil {
			return err
		}
		return s.appendEvents(ctx, tx, evs...)
	})
	if err != nil {
		return RouteResult{}, err
	}
	return res, nil
}

// queuedEvent is the data of a conversation.queued event. Reason, trigger
// and out_of_hours also let a retried RouteAndEnqueue return what the first
// call did.
type queuedEvent struct {
	ConversationID string    `json:"conversation_id"`
	QueueID        string    `json:"queue_id"`
	QueueName      string    `json:"queue_name"`
	Position       int       `json:"position"`
	WaitingSince   time.Time `json:"waiting_since"`
	Reason         string    `json:"reason,omitempty"`
	Trigger        string    `json:"trigger,omitempty"`
	OutOfHours     bool      `json:"out_of_hours,omitempty"`
}

func queuedDedupeKey(conversationID, routeID string) string {
	return EventConversationQueued + ":" + conversationID + ":" + routeID
}

// routeDefaults fills what a distribution left out (routing's defaults,
// applied here too so that the ledger never stores a zero).
func routeDefaults(d routing.Distribution) routing.Distribution {
	d = d.WithDefaults()
	if d.Mode == "" {
		d.Mode = routing.ModePush
	}
	if d.CapacityUnits == 0 {
		d.CapacityUnits = 1
	}
	if d.OfferTimeout <= 0 {
		d.OfferTimeout = routing.Duration(routing.DefaultOfferTimeout)
	}
	if len(d.AllowedPresences) == 0 {
		d.AllowedPresences = []string{routing.PresenceAvailable, routing.PresenceBusy}
	}
	return d
}

func preferredAgent(r Route) string {
	if r.PreferredUntil.IsZero() {
		return ""
	}
	return r.PreferredAgentID
}

func preferredUntil(r Route) *time.Time {
	if r.PreferredAgentID == "" || r.PreferredUntil.IsZero() {
		return nil
	}
	t := utc(r.PreferredUntil)
	return &t
}

// routeRetry is the result of a RouteAndEnqueue already done.
func (s *Store) routeRetry(ctx context.Context, tx *sqlx.Tx, item itemRow, now time.Time) (RouteResult, error) {
	res := RouteResult{Outcome: RouteQueued, QueueID: item.QueueID}
	q, err := queueOnly(ctx, tx, item.QueueID, false)
	if err != nil {
		return RouteResult{}, fmt.Errorf("queue %s: %w", item.QueueID, err)
	}
	res.QueueName, res.WhileQueued = q.Name, q.Overflow.WhileQueued
	waiting, est, err := s.queueStats(ctx, tx, q.ID, item.ConversationID, now)
	if err != nil {
		return RouteResult{}, err
	}
	res.Waiting, res.EstimatedWait = waiting+1, est
	if res.Position, err = itemPosition(ctx, tx, item.ConversationID); err != nil {
		return RouteResult{}, err
	}
	var data string
	err = get(ctx, tx, &data, `SELECT data FROM events WHERE dedupe_key = ?`, queuedDedupeKey(item.ConversationID, item.RouteID))
	switch {
	case errors.Is(err, ErrNotFound):
		res.Reason = "queued in " + q.Name
	case err != nil:
		return RouteResult{}, fmt.Errorf("queued event: %w", err)
	default:
		var ev queuedEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return RouteResult{}, fmt.Errorf("queued event: %w", err)
		}
		res.Reason, res.Trigger, res.OutOfHours = ev.Reason, ev.Trigger, ev.OutOfHours
	}
	return res, nil
}

// routeChoice is where the rules and overflow send a conversation.
type routeChoice struct {
	queue      Queue
	waiting    int // others waiting in queue
	est        time.Duration
	ended      bool
	trigger    string
	outOfHours bool
	reason     []string
}

// chooseQueue applies the rules, then the chosen queue's before-queueing
// overflow, following transfers.
func (s *Store) chooseQueue(ctx context.Context, tx *sqlx.Tx, r Route, d routing.Distribution, now time.Time) (routeChoice, error) {
	var ch routeChoice
	stats := func(q Queue) (int, time.Duration, error) {
		return s.queueStats(ctx, tx, q.ID, r.ConversationID, now)
	}
	found := false
	if r.QueueID != "" {
		q, ok, err := getLiveQueue(ctx, tx, r.QueueID)
		if err != nil {
			return ch, err
		}
		if !ok {
			return ch, fmt.Errorf("queue %s: %w", r.QueueID, ErrNotFound)
		}
		ch.queue, found = q, true
		ch.reason = append(ch.reason, "sent to queue "+q.Name)
		if ch.waiting, ch.est, err = stats(q); err != nil {
			return ch, err
		}
	} else {
		var skipped []string
		for _, id := range routing.Candidates(d.Rules, r.Context) {
			q, ok, err := getLiveQueue(ctx, tx, id)
			if err != nil {
				return ch, err
			}
			if !ok {
				skipped = append(skipped, "queue "+id+" (deleted)")
				continue
			}
			waiting, est, err := stats(q)
			if err != nil {
				return ch, err
			}
			if q.Overflow.Overflowing(waiting, est) {
				skipped = append(skipped, q.Name+" (overflowing)")
				continue
			}
			ch.queue, ch.waiting, ch.est, found = q, waiting, est, true
			msg := ruleName(d.Rules, r.Context, id) + " matched: queue " + q.Name
			if len(skipped) > 0 {
				msg = "skipped " + strings.Join(skipped, ", ") + "; " + msg
			}
			ch.reason = append(ch.reason, msg)
			break
		}
		if !found {
			q, ok, err := getLiveQueue(ctx, tx, d.FallbackQueueID)
			if err != nil {
				return ch, err
			}
			if !ok {
				return ch, fmt.Errorf("no queue for the conversation: no rule's queue took it and the fallback queue %q does not exist: %w", d.FallbackQueueID, ErrNotFound)
			}
			ch.queue = q
			if ch.waiting, ch.est, err = stats(q); err != nil {
				return ch, err
			}
			msg := "no rule matched: fallback queue " + q.Name
			if len(skipped) > 0 {
				msg = "skipped " + strings.Join(skipped, ", ") + ": fallback queue " + q.Name
			}
			ch.reason = append(ch.reason, msg)
		}
	}

	visited := map[string]bool{}
	for hop := 0; ; hop++ {
		q := ch.queue
		visited[q.ID] = true
		open := q.Hours.OpenAt(now)
		if !open {
			ch.outOfHours = true
		}
		trigger, action, fired := q.Overflow.BeforeQueueing(open, ch.waiting, ch.est)
		if !fired {
			if !open {
				ch.reason = append(ch.reason, q.Name+" is out of hours, without a rule for it: queued")
			}
			return ch, nil
		}
		ch.trigger = trigger
		why := triggerWords(trigger, q, ch.waiting, ch.est)
		switch action.Action {
		case routing.ActionEnd:
			ch.ended = true
			ch.reason = append(ch.reason, why+": ended")
			return ch, nil
		case routing.ActionTransfer:
			if hop >= maxTransferHops {
				ch.reason = append(ch.reason, why+": a transfer, but after "+strconv.Itoa(maxTransferHops)+" transfers it stays in "+q.Name)
				return ch, nil
			}
			target, ok, err := getLiveQueue(ctx, tx, action.QueueID)
			if err != nil {
				return ch, err
			}
			if !ok {
				ch.reason = append(ch.reason, why+": transfer to queue "+action.QueueID+", which does not exist: stays in "+q.Name)
				return ch, nil
			}
			ch.queue = target
			if ch.waiting, ch.est, err = stats(target); err != nil {
				return ch, err
			}
			if visited[target.ID] {
				ch.reason = append(ch.reason, why+": transferred back to "+target.Name+", already visited: queued there")
				return ch, nil
			}
			ch.reason = append(ch.reason, why+": transferred to "+target.Name)
		default: // routing.ActionQueue
			ch.reason = append(ch.reason, why+": queued anyway")
			return ch, nil
		}
	}
}

// ruleName names the first rule that sends c to queueID.
func ruleName(rules []routing.Rule, c routing.Context, queueID string) string {
	for i := range rules {
		if rules[i].QueueID != queueID || len(routing.Candidates(rules[i:i+1], c)) == 0 {
			continue
		}
		if rules[i].Name != "" {
			return fmt.Sprintf("rule %q", rules[i].Name)
		}
		return "rule " + strconv.Itoa(i+1)
	}
	return "a rule"
}

// triggerWords says in plain words why an overflow rule fired.
func triggerWords(trigger string, q Queue, waiting int, est time.Duration) string {
	switch trigger {
	case routing.TriggerOutOfHours:
		return q.Name + " is out of hours (out-of-hours rule)"
	case routing.TriggerMaxWaiting:
		limit := ""
		if q.Overflow.MaxWaiting != nil {
			limit = fmt.Sprintf(", more than %d", q.Overflow.MaxWaiting.Count)
		}
		return fmt.Sprintf("%s has %d waiting%s (max-waiting rule)", q.Name, waiting, limit)
	case routing.TriggerEstimatedWait:
		limit := ""
		if q.Overflow.MaxEstimatedWait != nil {
			limit = ", over " + q.Overflow.MaxEstimatedWait.After.D().String()
		}
		return fmt.Sprintf("%s's estimated wait is %s%s (max-estimated-wait rule)", q.Name, est.Round(time.Second), limit)
	}
	return q.Name + ": overflow rule " + trigger
}

// queueStats returns how many conversations other than conversationID wait
// in the queue, and its estimated wait (see estimateSamples).
func (s *Store) queueStats(ctx context.Context, q querier, queueID, conversationID string, now time.Time) (int, time.Duration, error) {
	var waiting int
	if err := get(ctx, q, &waiting, `SELECT COUNT(*) FROM queue_items WHERE queue_id = ? AND conversation_id <> ?`,
		queueID, conversationID); err != nil {
		return 0, 0, fmt.Errorf("waiting in queue %s: %w", queueID, err)
	}
	var avg int64
	if err := get(ctx, q, &avg, `SELECT COALESCE(CAST(AVG(waited_ms) AS BIGINT), 0) FROM (
			SELECT waited_ms FROM assignments WHERE queue_id = ? AND created_at >= ?
			ORDER BY created_at DESC LIMIT ?) AS recent`,
		queueID, s.timestamp(now.Add(-estimateWindow)), estimateSamples); err != nil {
		return 0, 0, fmt.Errorf("estimated wait of queue %s: %w", queueID, err)
	}
	return waiting, time.Duration(avg) * time.Millisecond, nil
}

// itemPosition is the 1-based place of a queued conversation in its queue,
// in the order Match serves items: priority (higher first), then the wait
// (FIFO), then conversation id.
func itemPosition(ctx context.Context, q querier, conversationID string) (int, error) {
	var before int
	if err := get(ctx, q, &before, `SELECT COUNT(*) FROM queue_items o JOIN queue_items i ON i.conversation_id = ?
		WHERE o.queue_id = i.queue_id AND (o.priority > i.priority OR (o.priority = i.priority AND
			(o.waiting_since < i.waiting_since OR (o.waiting_since = i.waiting_since AND o.conversation_id < i.conversation_id))))`,
		conversationID); err != nil {
		return 0, fmt.Errorf("position in queue: %w", err)
	}
	return before + 1, nil
}

// recordQueued records the conversation's entry into queueID and, when it
// came from another queue or from an agent, its transfer out of the queue
// it was waiting in or answered from (conversation events).
func (s *Store) recordQueued(ctx context.Context, tx *sqlx.Tx, r Route, queueID string, item itemRow, queued bool,
	hold holdRow, held bool, now time.Time) error {
	ref := r.RouteID
	if ref == "" {
		var err error
		if ref, err = newID(); err != nil {
			return err
		}
	}
	from, answered := "", held && hold.Kind != holdOffer
	switch {
	case queued:
		from = item.QueueID
	case held:
		from = hold.QueueID
	}
	if from != "" && (answered || from != queueID) {
		if err := s.recordConvEvent(ctx, tx, ConversationEvent{ConversationID: r.ConversationID, Kind: ConvEventTransfer,
			Ref: ref, QueueID: from, AgentID: hold.AgentID, Detail: "queue:" + queueID, At: now}); err != nil {
			return err
		}
	}
	ws, err := workstreamOfPage(ctx, tx, r.PageRef)
	if err != nil {
		return err
	}
	return s.recordConvEvent(ctx, tx, ConversationEvent{ConversationID: r.ConversationID, Kind: ConvEventQueued, Ref: ref,
		QueueID: queueID, WorkstreamID: ws, At: now})
}
