package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"parley/routing"
)

// DistributeRound makes, in one transaction, the offers routing.Match
// decides for the push-mode conversations waiting now: each reserves the
// conversation's units of the agent's capacity until it is accepted,
// declined or withdrawn. round identifies the round: a retried round
// returns the offers it made that are still open and makes no others.
//
// Match sees the live queues with their live members, the live agents that
// are members of a queue with the units they hold, and the push items that
// are neither offered nor held. The ledger checks each offer again before
// it takes capacity (a member of the item's queue, an allowed presence,
// units that fit): an offer breaking them is skipped and logged, so the
// capacity invariant does not rest on Match.
func (s *Store) DistributeRound(ctx context.Context, round string, now time.Time) (_ []OfferMade, err error) {
	defer wrap(&err, "store.DistributeRound(%s)", round)
	return s.distributeRound(ctx, round, now, true)
}

// DistributeRoundUnannounced is DistributeRound without the offer.created
// events: the caller signals each offer to its conversation first, then
// calls AnnounceOffers, so that an agent who accepts the moment the event
// reaches them finds the offer already known to the conversation.
func (s *Store) DistributeRoundUnannounced(ctx context.Context, round string, now time.Time) (_ []OfferMade, err error) {
	defer wrap(&err, "store.DistributeRoundUnannounced(%s)", round)
	return s.distributeRound(ctx, round, now, false)
}

// AnnounceOffers appends the offer.created events of offers that are still
// open (one declined or withdrawn meanwhile is not announced after its
// end). A repeated call appends nothing twice.
func (s *Store) AnnounceOffers(ctx context.Context, offers []OfferMade) (err error) {
	defer wrap(&err, "store.AnnounceOffers")
	if len(offers) == 0 {
		return nil
	}
	return s.ledgerTx(ctx, func(tx *sqlx.Tx) error {
		var open []string
		ids := make([]any, len(offers))
		for i, o := range offers {
			ids[i] = o.OfferID
		}
		if err := list(ctx, tx, &open, `SELECT offer_id FROM capacity_holds WHERE kind = 'offer' AND offer_id IN (`+
			placeholders(len(ids))+`)`, ids...); err != nil {
			return fmt.Errorf("open offers: %w", err)
		}
		var evs []NewEvent
		for _, o := range offers {
			if !slices.Contains(open, o.OfferID) {
				continue
			}
			evs = append(evs, offerCreatedEvent(o))
		}
		return s.appendEvents(ctx, tx, evs...)
	})
}

// offerCreatedEvent announces an offer to its agent (and supervisors).
func offerCreatedEvent(o OfferMade) NewEvent {
	return NewEvent{Type: EventOfferCreated, AgentID: o.AgentID, QueueID: o.QueueID, ConversationID: o.ConversationID,
		DedupeKey: EventOfferCreated + ":" + o.OfferID,
		Data: offerCreated{OfferID: o.OfferID, ConversationID: o.ConversationID, QueueID: o.QueueID, QueueName: o.QueueName,
			ExpiresAt: o.ExpiresAt, AgentName: o.AgentName, MadeAfterEvent: o.MadeAfterEvent}}
}

func (s *Store) distributeRound(ctx context.Context, round string, now time.Time, announce bool) (_ []OfferMade, err error) {
	if round == "" {
		return nil, invalidf("a round id is required")
	}
	now = utc(now)
	if now.IsZero() {
		now = s.clock()
	}
	var out []OfferMade
	err = s.ledgerTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if out, err = roundOffers(ctx, tx, round); err != nil || len(out) > 0 {
			return err
		}
		in, err := loadMatchInput(ctx, tx)
		if err != nil {
			return err
		}
		if len(in.items) == 0 || len(in.agents) == 0 {
			return nil
		}
		offers := routing.Match(now, in.queues, in.agents, in.items)
		var madeAfter int64
		if !announce {
			// Ledger transactions are serialized: no ledger event can
			// come between this read and the commit.
			if err := get(ctx, tx, &madeAfter, `SELECT last FROM event_counter WHERE id = 1`); err != nil {
				return fmt.Errorf("last event: %w", err)
			}
		}
		var evs []NewEvent
		var offered []string
		var holdArgs, itemArgs, itemIDs []any
		for _, o := range offers {
			it, a := in.itemByID[o.ConversationID], in.agentByID[o.AgentID]
			if why := in.refuse(it, a); why != "" {
				slog.WarnContext(ctx, "routing.Match offer refused by the ledger", "conversation", o.ConversationID, "agent", o.AgentID, "why", why)
				continue
			}
			offerID, err := newID()
			if err != nil {
				return err
			}
			timeout := time.Duration(it.row.OfferTimeoutMS) * time.Millisecond
			if timeout <= 0 {
				timeout = routing.DefaultOfferTimeout
			}
			expires := now.Add(timeout)
			holdArgs = append(holdArgs, it.row.ConversationID, a.info.ID, it.row.Units, offerID, s.timestamp(expires), false,
				it.row.WorkflowID, it.row.QueueID, s.timestamp(now))
			itemArgs = append(itemArgs, it.row.ConversationID, offerID)
			itemIDs = append(itemIDs, it.row.ConversationID)
			it.offered = true
			a.info.Used += it.row.Units
			if !slices.Contains(offered, a.info.ID) {
				offered = append(offered, a.info.ID)
			}
			qname := in.queueName[it.row.QueueID]
			o := OfferMade{OfferID: offerID, ConversationID: it.row.ConversationID, WorkflowID: it.row.WorkflowID,
				AgentID: a.info.ID, AgentName: a.name, QueueID: it.row.QueueID, QueueName: qname, ExpiresAt: expires,
				MadeAfterEvent: madeAfter}
			out = append(out, o)
			if err := s.recordConvEvent(ctx, tx, ConversationEvent{ConversationID: o.ConversationID, Kind: ConvEventOffered,
				Ref: offerID, QueueID: o.QueueID, AgentID: o.AgentID, At: now}); err != nil {
				return err
			}
			if announce {
				evs = append(evs, offerCreatedEvent(o))
			}
		}
		// A few statements for the whole round, in chunks well under the
		// databases' limits on parameters.
		const chunk = 500
		for i := 0; i < len(itemIDs); i += chunk {
			j := min(i+chunk, len(itemIDs))
			n := j - i
			if _, err := exec(ctx, tx, `INSERT INTO capacity_holds (conversation_id, agent_id, units, kind, offer_id, expires_at,
					forced, workflow_id, queue_id, created_at) VALUES `+
				strings.TrimSuffix(strings.Repeat(`(?, ?, ?, 'offer', ?, ?, ?, ?, ?, ?), `, n), ", "),
				holdArgs[i*9:j*9]...); err != nil {
				return fmt.Errorf("insert offer holds: %w", err)
			}
			args := append(slices.Clone(itemArgs[i*2:j*2]), round)
			args = append(args, itemIDs[i:j]...)
			changed, err := exec(ctx, tx, `UPDATE queue_items SET offer_id = CASE conversation_id`+
				strings.Repeat(` WHEN ? THEN ?`, n)+` END, offer_round = ?
				WHERE offer_id = '' AND conversation_id IN (`+placeholders(n)+`)`, args...)
			if err != nil {
				return fmt.Errorf("mark queue items offered: %w", err)
			}
			if changed != int64(n) {
				return fmt.Errorf("marked %d queue items offered, want %d", changed, n)
			}
		}
		if len(offered) > 0 {
			args := []any{s.timestamp(now)}
			for _, id := range offered {
				args = append(args, id)
			}
			if _, err := exec(ctx, tx, `UPDATE agents SET last_offered_at = ? WHERE id IN (`+placeholders(len(offered))+`)`, args...); err != nil {
				return fmt.Errorf("last offered: %w", err)
			}
		}
		if err := s.refreshAgents(ctx, tx, offered...); err != nil {
			return err
		}
		return s.appendEvents(ctx, tx, evs...)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// offerCreated is the data of an offer.created event.
type offerCreated struct {
	OfferID        string    `json:"offer_id"`
	ConversationID string    `json:"conversation_id"`
	QueueID        string    `json:"queue_id"`
	QueueName      string    `json:"queue_name"`
	ExpiresAt      time.Time `json:"expires_at"`
	AgentName      string    `json:"agent_name"`
	MadeAfterEvent int64     `json:"made_after_event,omitempty"`
}

// roundOffers returns the open offers a round made.
func roundOffers(ctx context.Context, tx *sqlx.Tx, round string) ([]OfferMade, error) {
	var rows []struct {
		OfferID        string       `db:"offer_id"`
		ConversationID string       `db:"conversation_id"`
		WorkflowID     string       `db:"workflow_id"`
		AgentID        string       `db:"agent_id"`
		AgentName      string       `db:"agent_name"`
		QueueID        string       `db:"queue_id"`
		QueueName      string       `db:"queue_name"`
		ExpiresAt      sql.NullTime `db:"expires_at"`
	}
	if err := list(ctx, tx, &rows, `SELECT h.offer_id, i.conversation_id, i.workflow_id, h.agent_id, a.name AS agent_name,
			i.queue_id, q.name AS queue_name, h.expires_at
		FROM queue_items i
		JOIN capacity_holds h ON h.conversation_id = i.conversation_id AND h.offer_id = i.offer_id AND h.kind = 'offer'
		JOIN agents a ON a.id = h.agent_id
		JOIN queues q ON q.id = i.queue_id
		WHERE i.offer_round = ? AND i.offer_id <> ''
		ORDER BY h.offer_id`, round); err != nil {
		return nil, fmt.Errorf("offers of the round: %w", err)
	}
	out := make([]OfferMade, len(rows))
	for i, r := range rows {
		out[i] = OfferMade{OfferID: r.OfferID, ConversationID: r.ConversationID, WorkflowID: r.WorkflowID, AgentID: r.AgentID,
			AgentName: r.AgentName, QueueID: r.QueueID, QueueName: r.QueueName, ExpiresAt: r.ExpiresAt.Time.UTC()}
	}
	return out, nil
}

// matchInput is what Match needs, loaded in a few queries.
type matchInput struct {
	queues    []routing.QueueInfo
	agents    []routing.AgentInfo
	items     []routing.Item
	queueName map[string]string
	members   map[string]map[string]bool // queue -> agent
	itemByID  map[string]*matchItem
	agentByID map[string]*matchAgent
}

type matchItem struct {
	row     itemRow
	allowed []string
	offered bool
}

type matchAgent struct {
	info routing.AgentInfo
	name string
}

// refuse says why the ledger does not make an offer Match decided ("" to make it).
func (in *matchInput) refuse(it *matchItem, a *matchAgent) string {
	switch {
	case it == nil:
		return "not a waiting conversation"
	case it.offered:
		return "offered twice in the round"
	case a == nil:
		return "not an agent in a queue"
	case !in.members[it.row.QueueID][a.info.ID]:
		return "not a member of the conversation's queue"
	case a.info.Used+it.row.Units > a.info.Capacity:
		return fmt.Sprintf("%d units used of %d: %d more do not fit", a.info.Used, a.info.Capacity, it.row.Units)
	case !slices.Contains(it.allowed, routing.EffectivePresence(a.info.Presence, a.info.Used, a.info.Capacity)):
		return "presence " + routing.EffectivePresence(a.info.Presence, a.info.Used, a.info.Capacity) + " not allowed"
	}
	return ""
}

func loadMatchInput(ctx context.Context, tx *sqlx.Tx) (*matchInput, error) {
	in := &matchInput{queueName: map[string]string{}, members: map[string]map[string]bool{},
		itemByID: map[string]*matchItem{}, agentByID: map[string]*matchAgent{}}
	var queues []queueRow
	if err := list(ctx, tx, &queues, `SELECT id, name, priority, assignment_method FROM queues WHERE deleted_at IS NULL ORDER BY id`); err != nil {
		return nil, fmt.Errorf("queues: %w", err)
	}
	var members []struct {
		QueueID string `db:"queue_id"`
		AgentID string `db:"agent_id"`
	}
	if err := list(ctx, tx, &members, `SELECT qa.queue_id, qa.agent_id FROM queue_agents qa
		JOIN agents a ON a.id = qa.agent_id AND a.deleted_at IS NULL
		ORDER BY qa.queue_id, qa.agent_id`); err != nil {
		return nil, fmt.Errorf("queue members: %w", err)
	}
	byQueue := map[string][]string{}
	for _, m := range members {
		byQueue[m.QueueID] = append(byQueue[m.QueueID], m.AgentID)
		if in.members[m.QueueID] == nil {
			in.members[m.QueueID] = map[string]bool{}
		}
		in.members[m.QueueID][m.AgentID] = true
	}
	for _, q := range queues {
		in.queueName[q.ID] = q.Name
		in.queues = append(in.queues, routing.QueueInfo{ID: q.ID, Priority: q.Priority, Method: q.Method, AgentIDs: byQueue[q.ID]})
	}
	var agents []struct {
		ID             string       `db:"id"`
		Name           string       `db:"name"`
		Presence       string       `db:"presence"`
		Capacity       int          `db:"capacity_units"`
		Used           int          `db:"used"`
		LastOfferedAt  sql.NullTime `db:"last_offered_at"`
		LastAssignedAt sql.NullTime `db:"last_assigned_at"`
	}
	if err := list(ctx, tx, &agents, `SELECT a.id, a.name, a.presence, a.capacity_units, COALESCE(u.used, 0) AS used,
			a.last_offered_at, a.last_assigned_at
		FROM agents a
		LEFT JOIN (SELECT agent_id, SUM(units) AS used FROM capacity_holds GROUP BY agent_id) u ON u.agent_id = a.id
		WHERE a.deleted_at IS NULL AND EXISTS (SELECT 1 FROM queue_agents qa WHERE qa.agent_id = a.id)
		ORDER BY a.id`); err != nil {
		return nil, fmt.Errorf("agents: %w", err)
	}
	in.agents = make([]routing.AgentInfo, len(agents))
	for i, a := range agents {
		in.agents[i] = routing.AgentInfo{ID: a.ID, Presence: a.Presence, Capacity: a.Capacity, Used: a.Used,
			LastOfferedAt: a.LastOfferedAt.Time.UTC(), LastAssignedAt: a.LastAssignedAt.Time.UTC()}
		if !a.LastOfferedAt.Valid {
			in.agents[i].LastOfferedAt = time.Time{}
		}
		if !a.LastAssignedAt.Valid {
			in.agents[i].LastAssignedAt = time.Time{}
		}
		in.agentByID[a.ID] = &matchAgent{info: in.agents[i], name: a.Name}
	}
	// Under load every agent is full: then no item can be offered, and the
	// round ends without reading them. Only the queues with a member that
	// has room for the smallest waiting item are read.
	var smallest struct {
		Units int `db:"units"`
		N     int `db:"n"`
	}
	if err := get(ctx, tx, &smallest, `SELECT COALESCE(MIN(units), 0) AS units, COUNT(*) AS n FROM queue_items
		WHERE offer_id = '' AND mode = 'push'`); err != nil {
		return nil, fmt.Errorf("waiting conversations: %w", err)
	}
	var open []any
	for _, q := range in.queues {
		if slices.ContainsFunc(q.AgentIDs, func(id string) bool {
			a := in.agentByID[id]
			return a != nil && a.info.Capacity-a.info.Used >= smallest.Units
		}) {
			open = append(open, q.ID)
		}
	}
	if smallest.N == 0 || len(open) == 0 {
		return in, nil
	}
	var items []itemRow
	if err := list(ctx, tx, &items, `SELECT i.conversation_id, i.workflow_id, i.queue_id, i.units, i.priority, i.waiting_since,
			i.allowed_presences, i.preferred_agent_id, i.preferred_until, i.declined, i.offer_timeout_ms
		FROM queue_items i
		WHERE i.offer_id = '' AND i.mode = 'push' AND i.queue_id IN (`+placeholders(len(open))+`)
			AND NOT EXISTS (SELECT 1 FROM capacity_holds h WHERE h.conversation_id = i.conversation_id)`, open...); err != nil {
		return nil, fmt.Errorf("waiting conversations: %w", err)
	}
	decoded := map[string][]string{} // allowed presences: mostly the same few lists
	in.items = make([]routing.Item, len(items))
	for i, r := range items {
		allowed, ok := decoded[r.AllowedPresences]
		if !ok {
			var err error
			if allowed, err = decodeStrings(r.AllowedPresences); err != nil {
				return nil, fmt.Errorf("conversation %s: allowed presences: %w", r.ConversationID, err)
			}
			decoded[r.AllowedPresences] = allowed
		}
		declined, err := decodeStrings(r.Declined)
		if err != nil {
			return nil, fmt.Errorf("conversation %s: declined: %w", r.ConversationID, err)
		}
		in.items[i] = routing.Item{ConversationID: r.ConversationID, QueueID: r.QueueID, Mode: routing.ModePush, Units: r.Units,
			Priority: r.Priority, WaitingSince: r.WaitingSince.UTC(), AllowedPresences: allowed,
			PreferredAgentID: r.PreferredAgentID, Declined: declined}
		if r.PreferredUntil.Valid {
			in.items[i].PreferredUntil = r.PreferredUntil.Time.UTC()
		}
		in.itemByID[r.ConversationID] = &matchItem{row: r, allowed: allowed}
	}
	return in, nil
}

// AcceptOffer turns the offer into an assignment: the hold becomes active
// and the conversation leaves its queue. ErrOfferGone when the offer is not
// the conversation's current one, or not the agent's. Retrying an accepted
// offer returns the same assignment. The offer's time-out is the caller's
// (the workflow's clock): the ledger does not compare expires_at with now.
func (s *Store) AcceptOffer(ctx context.Context, conversationID, offerID, agentID string, now time.Time) (_ Assignment, err error) {
	defer wrap(&err, "store.AcceptOffer(%s)", conversationID)
	if conversationID == "" || offerID == "" || agentID == "" {
		return Assignment{}, invalidf("a conversation, an offer and an agent are required")
	}
	now = utc(now)
	if now.IsZero() {
		now = s.clock()
	}
	var res Assignment
	err = s.ledgerTx(ctx, func(tx *sqlx.Tx) error {
		hold, held, err := getHold(ctx, tx, conversationID)
		if err != nil {
			return err
		}
		if !held || hold.OfferID != offerID || hold.AgentID != agentID {
			return ErrOfferGone
		}
		if hold.Kind != holdOffer { // accepted already: a retry
			res, err = acceptedBefore(ctx, tx, hold)
			return err
		}
		item, queued, err := getItem(ctx, tx, conversationID)
		if err != nil {
			return err
		}
		var waited, inQueue int64
		var note string
		if queued {
			waited, note = sinceMS(now, item.WaitingSince), item.Note
			inQueue = sinceMS(now, item.EnqueuedAt)
		}
		if err := execOne(ctx, tx, `UPDATE capacity_holds SET kind = 'active', expires_at = NULL
			WHERE conversation_id = ? AND offer_id = ? AND kind = 'offer'`, conversationID, offerID); err != nil {
			return fmt.Errorf("activate hold: %w", err)
		}
		if _, err := exec(ctx, tx, `DELETE FROM queue_items WHERE conversation_id = ?`, conversationID); err != nil {
			return fmt.Errorf("delete queue item: %w", err)
		}
		if _, err := exec(ctx, tx, `UPDATE agents SET last_assigned_at = ? WHERE id = ?`, s.timestamp(now), agentID); err != nil {
			return fmt.Errorf("last assigned: %w", err)
		}
		// The offer id names the assignment: a retry finds it.
		if _, err := exec(ctx, tx, `INSERT INTO assignments (id, conversation_id, queue_id, agent_id, how, waited_ms, created_at)
			VALUES (?, ?, ?, ?, 'accept', ?, ?)`, offerID, conversationID, hold.QueueID, agentID, waited, s.timestamp(now)); err != nil {
			return fmt.Errorf("insert assignment: %w", err)
		}
		if res.AgentName, err = agentName(ctx, tx, agentID); err != nil {
			return err
		}
		if res.QueueName, err = queueName(ctx, tx, hold.QueueID); err != nil {
			return err
		}
		if err := s.recordConvEvent(ctx, tx, ConversationEvent{ConversationID: conversationID, Kind: ConvEventAccepted, Ref: offerID,
			QueueID: hold.QueueID, AgentID: agentID, WaitedMS: waitedMS(inQueue), At: now}); err != nil {
			return err
		}
		res.ConversationID, res.AgentID, res.QueueID, res.How = conversationID, agentID, hold.QueueID, "accept"
		res.Waited, res.Note, res.Forced = time.Duration(waited)*time.Millisecond, note, hold.Forced
		if err := s.refreshAgents(ctx, tx, agentID); err != nil {
			return err
		}
		ev := withdrawnEvent(hold, "accepted")
		ev.Data = offerWithdrawn{OfferID: offerID, ConversationID: conversationID, QueueID: hold.QueueID, Reason: "accepted", Note: note}
		ev.DedupeKey = acceptedDedupeKey(offerID)
		return s.appendEvents(ctx, tx, ev)
	})
	if err != nil {
		return Assignment{}, err
	}
	return res, nil
}

func acceptedDedupeKey(offerID string) string { return EventOfferWithdrawn + ":accepted:" + offerID }

// acceptedBefore is the assignment an accepted offer made.
func acceptedBefore(ctx context.Context, tx *sqlx.Tx, hold holdRow) (Assignment, error) {
	var a assignmentRow
	err := get(ctx, tx, &a, `SELECT id, conversation_id, queue_id, agent_id, how, waited_ms FROM assignments WHERE id = ?`, hold.OfferID)
	if errors.Is(err, ErrNotFound) {
		return Assignment{}, ErrOfferGone
	}
	if err != nil {
		return Assignment{}, fmt.Errorf("assignment: %w", err)
	}
	res, err := a.assignment(ctx, tx)
	if err != nil {
		return Assignment{}, err
	}
	res.Forced = hold.Forced
	var data string
	if err := get(ctx, tx, &data, `SELECT data FROM events WHERE dedupe_key = ?`, acceptedDedupeKey(hold.OfferID)); err == nil {
		var ev offerWithdrawn
		if json.Unmarshal([]byte(data), &ev) == nil {
			res.Note = ev.Note
		}
	} else if !errors.Is(err, ErrNotFound) {
		return Assignment{}, fmt.Errorf("accepted event: %w", err)
	}
	return res, nil
}

// assignmentRow is a row of assignments.
type assignmentRow struct {
	ID             string `db:"id"`
	ConversationID string `db:"conversation_id"`
	QueueID        string `db:"queue_id"`
	AgentID        string `db:"agent_id"`
	How            string `db:"how"`
	WaitedMS       int64  `db:"waited_ms"`
}

func (a assignmentRow) assignment(ctx context.Context, q querier) (Assignment, error) {
	res := Assignment{ConversationID: a.ConversationID, AgentID: a.AgentID, QueueID: a.QueueID, How: a.How,
		Waited: time.Duration(a.WaitedMS) * time.Millisecond}
	var err error
	if res.AgentName, err = agentName(ctx, q, a.AgentID); err != nil {
		return Assignment{}, err
	}
	if res.QueueName, err = queueName(ctx, q, a.QueueID); err != nil {
		return Assignment{}, err
	}
	return res, nil
}

// DeclineOffer releases the offer's hold and, unless withdrawn, queues the
// conversation again at its place with the agent recorded as having
// declined it (a withdrawn offer leaves the queue item as it was, offer
// cleared: the caller releases or routes the conversation). With
// SetInactive the agent's presence becomes inactive, unless the agent has
// chosen away or offline meanwhile. Idempotent: a gone offer changes
// nothing (false). d.AgentID, when set, must be the offer's agent.
func (s *Store) DeclineOffer(ctx context.Context, d Decline) (_ bool, err error) {
	defer wrap(&err, "store.DeclineOffer(%s)", d.ConversationID)
	switch d.Why {
	case DeclineRejected, DeclineTimedOut, DeclineWithdrawn:
	default:
		return false, invalidf("why %q is not %s, %s or %s", d.Why, DeclineRejected, DeclineTimedOut, DeclineWithdrawn)
	}
	if d.ConversationID == "" || d.OfferID == "" {
		return false, invalidf("a conversation and an offer are required")
	}
	now := utc(d.Now)
	if d.Now.IsZero() {
		now = s.clock()
	}
	changed := false
	err = s.ledgerTx(ctx, func(tx *sqlx.Tx) error {
		changed = false
		hold, held, err := getHold(ctx, tx, d.ConversationID)
		if err != nil {
			return err
		}
		if !held || hold.Kind != holdOffer || hold.OfferID != d.OfferID || (d.AgentID != "" && hold.AgentID != d.AgentID) {
			return nil
		}
		evs, err := deleteHold(ctx, tx, hold, d.Why)
		if err != nil {
			return err
		}
		item, queued, err := getItem(ctx, tx, d.ConversationID)
		if err != nil {
			return err
		}
		if queued && item.OfferID == d.OfferID {
			declined := item.Declined
			if d.Why != DeclineWithdrawn {
				list, err := decodeStrings(item.Declined)
				if err != nil {
					return fmt.Errorf("declined: %w", err)
				}
				if !slices.Contains(list, hold.AgentID) {
					list = append(list, hold.AgentID)
				}
				declined = encodeStrings(list)
			}
			if _, err := exec(ctx, tx, `UPDATE queue_items SET offer_id = '', offer_round = '', declined = ? WHERE conversation_id = ?`,
				declined, d.ConversationID); err != nil {
				return fmt.Errorf("requeue: %w", err)
			}
		}
		if d.SetInactive {
			if _, err := exec(ctx, tx, `UPDATE agents SET presence = ?, presence_changed_at = ?
				WHERE id = ? AND presence NOT IN (?, ?, ?)`, routing.PresenceInactive, s.timestamp(now), hold.AgentID,
				routing.PresenceInactive, routing.PresenceOffline, routing.PresenceAway); err != nil {
				return fmt.Errorf("set inactive: %w", err)
			}
		}
		if err := s.refreshAgents(ctx, tx, hold.AgentID); err != nil {
			return err
		}
		changed = true
		return s.appendEvents(ctx, tx, evs...)
	})
	if err != nil {
		return false, err
	}
	return changed, nil
}
