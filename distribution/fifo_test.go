package distribution_test

import (
	"encoding/json"
	"fmt"
	"time"

	"parley/store"
)

// fifoWatch replays the event log's queue: who waits where since when, and
// which agents each conversation may not be offered to (they rejected it or
// let it time out). At each offer it checks that no conversation the agent
// could have taken was ahead of it: one waiting longer in the same queue,
// or one waiting in a queue of higher priority the agent also serves.
type fifoWatch struct {
	members      map[string][]string // queue -> agents
	agentQueues  map[string][]string // agent -> queues
	priority     map[string]int      // queue -> priority
	items        map[string]fifoItem // conversation -> its queue place
	waiting      map[string]bool     // conversation -> waiting without an offer
	checks, skip int
}

type fifoItem struct {
	queue    string
	since    time.Time
	declined map[string]bool
}

func newFIFOWatch() *fifoWatch {
	return &fifoWatch{members: map[string][]string{}, agentQueues: map[string][]string{}, priority: map[string]int{},
		items: map[string]fifoItem{}, waiting: map[string]bool{}}
}

func (f *fifoWatch) member(queue, agent string) {
	f.members[queue] = append(f.members[queue], agent)
	f.agentQueues[agent] = append(f.agentQueues[agent], queue)
}

// mayTake: the ledger skips agents who declined, unless every member of
// the queue did.
func (f *fifoWatch) mayTake(it fifoItem, agent string) bool {
	if !it.declined[agent] {
		return true
	}
	for _, a := range f.members[it.queue] {
		if !it.declined[a] {
			return false
		}
	}
	return true
}

// onEvent returns a violation, or "".
func (f *fifoWatch) onEvent(ev event) string {
	switch ev.Type {
	case store.EventConversationQueued:
		var d struct {
			QueueID      string    `json:"queue_id"`
			WaitingSince time.Time `json:"waiting_since"`
		}
		if json.Unmarshal(ev.Data, &d) != nil {
			return ""
		}
		f.items[ev.ConversationID] = fifoItem{queue: d.QueueID, since: d.WaitingSince, declined: map[string]bool{}}
		f.waiting[ev.ConversationID] = true
	case store.EventOfferCreated:
		it, ok := f.items[ev.ConversationID]
		if !ok || !f.waiting[ev.ConversationID] {
			f.skip++
			return ""
		}
		delete(f.waiting, ev.ConversationID)
		f.checks++
		for conv := range f.waiting {
			w := f.items[conv]
			ahead := (w.queue == it.queue && w.since.Before(it.since)) ||
				(w.queue != it.queue && f.priority[w.queue] < f.priority[it.queue] && contains(f.agentQueues[ev.AgentID], w.queue))
			if ahead && f.mayTake(w, ev.AgentID) {
				return fmt.Sprintf("FIFO: %s (queue %s, waiting since %s) offered to %s while %s (queue %s, waiting since %s) was ahead",
					ev.ConversationID, it.queue, it.since.Format(time.StampMilli), ev.AgentID, conv, w.queue, w.since.Format(time.StampMilli))
			}
		}
	case store.EventOfferWithdrawn:
		var d offerData
		if json.Unmarshal(ev.Data, &d) != nil {
			return ""
		}
		it, ok := f.items[ev.ConversationID]
		if !ok {
			return ""
		}
		switch d.Reason {
		case "rejected", "timed_out":
			// Back in its queue, without this agent.
			it.declined[ev.AgentID] = true
			f.waiting[ev.ConversationID] = true
		case "accepted":
			delete(f.items, ev.ConversationID)
		default:
			// Withdrawn by its conversation (it moved on): whether it
			// waits again shows in the next queued or offer event.
			delete(f.waiting, ev.ConversationID)
		}
	}
	return ""
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
