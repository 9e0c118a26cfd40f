package routing

import (
	"cmp"
	"slices"
	"time"
)

// matchAgent is an agent's state during one Match call.
type matchAgent struct {
	AgentInfo
}

func (a *matchAgent) free() int { return a.Capacity - a.Used }

// matchItem is an item with what Match derives from it once.
type matchItem struct {
	*Item
	queue    *QueueInfo
	units    int
	members  []*matchAgent // the queue's members that are known agents
	member   map[*matchAgent]bool
	declined map[string]bool // empty when every member declined
	prefer   *matchAgent     // only this agent, while the preference lasts
}

func match(now time.Time, queues []QueueInfo, agents []AgentInfo, items []Item) []Offer {
	agentByID := make(map[string]*matchAgent, len(agents))
	for _, a := range agents {
		if _, dup := agentByID[a.ID]; !dup {
			agentByID[a.ID] = &matchAgent{a}
		}
	}
	queueByID := make(map[string]*QueueInfo, len(queues))
	membersOf := make(map[string][]*matchAgent, len(queues))
	for i := range queues {
		q := &queues[i]
		if _, dup := queueByID[q.ID]; dup {
			continue
		}
		queueByID[q.ID] = q
		var ms []*matchAgent
		for _, id := range q.AgentIDs {
			if a := agentByID[id]; a != nil && !slices.Contains(ms, a) {
				ms = append(ms, a)
			}
		}
		membersOf[q.ID] = ms
	}

	var work []*matchItem
	for i := range items {
		it := &items[i]
		q := queueByID[it.QueueID]
		if it.Offered || it.Mode == ModePick || q == nil || it.ConversationID == "" {
			continue
		}
		m := &matchItem{Item: it, queue: q, units: max(it.Units, 1), members: membersOf[q.ID],
			member: map[*matchAgent]bool{}, declined: map[string]bool{}}
		allDeclined := len(m.members) > 0
		for _, a := range m.members {
			m.member[a] = true
			allDeclined = allDeclined && slices.Contains(it.Declined, a.ID)
		}
		if !allDeclined {
			for _, id := range it.Declined {
				m.declined[id] = true
			}
		}
		// The preference lasts while the agent may still take the item:
		// waiting for one who left the queue or declined it is pointless.
		if p := agentByID[it.PreferredAgentID]; p != nil && now.Before(it.PreferredUntil) && m.member[p] && !m.declined[p.ID] {
			m.prefer = p
		}
		work = append(work, m)
	}
	slices.SortStableFunc(work, func(x, y *matchItem) int {
		return cmp.Or(
			cmp.Compare(x.queue.Priority, y.queue.Priority),
			cmp.Compare(y.Priority, x.Priority),
			x.WaitingSince.Compare(y.WaitingSince),
			cmp.Compare(x.ConversationID, y.ConversationID),
			cmp.Compare(x.QueueID, y.QueueID),
		)
	})

	var offers []Offer
	served := map[string]bool{}
	give := func(m *matchItem, a *matchAgent) {
		offers = append(offers, Offer{ConversationID: m.ConversationID, AgentID: a.ID, QueueID: m.QueueID})
		served[m.ConversationID] = true
		a.Used += m.units
		a.LastOfferedAt = now
	}
	for i, m := range work {
		if served[m.ConversationID] {
			continue
		}
		var best *matchAgent
		for _, a := range m.members {
			if m.eligible(a) && (best == nil || better(m.queue.Method, a, best)) {
				best = a
			}
		}
		if best == nil {
			continue
		}
		give(m, best)
		// An offer changes one agent, which may make it eligible for an
		// earlier item that found nobody (its load turned it from
		// available to busy, and only busy is allowed): earlier items
		// first, or FIFO breaks.
		for again := true; again; {
			again = false
			for _, e := range work[:i] {
				if !served[e.ConversationID] && e.eligible(best) {
					give(e, best)
					again = true
					break
				}
			}
		}
	}
	return offers
}

// eligible tells whether a may be offered m now.
func (m *matchItem) eligible(a *matchAgent) bool {
	return m.member[a] &&
		(m.prefer == nil || m.prefer == a) &&
		!m.declined[a.ID] &&
		a.free() >= m.units &&
		slices.Contains(m.AllowedPresences, EffectivePresence(a.Presence, a.Used, a.Capacity))
}

// better tells whether a beats b by method. Agent ids are unique, so the
// order is total and Match deterministic.
func better(method string, a, b *matchAgent) bool {
	c := 0
	if method != MethodRoundRobin { // highest_capacity, also the default
		c = cmp.Compare(b.free(), a.free())
	}
	c = cmp.Or(c,
		a.LastOfferedAt.Compare(b.LastOfferedAt),
		a.LastAssignedAt.Compare(b.LastAssignedAt),
		cmp.Compare(a.ID, b.ID),
	)
	return c < 0
}
