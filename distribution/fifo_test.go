package distribution_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"parley/store"
)

// fifoWatch replays the event log's queues: who waits where since when,
// and which agents each conversation may not be offered to (they rejected
// it or let it time out). At each offer it checks that no conversation the
// agent could have taken was ahead of it: one waiting longer in the same
// queue, or one waiting in a queue of higher priority the agent also
// serves.
//
// An offer is announced after its conversation has it, a little after the
// round made it (seconds later on a loaded machine); its made_after_event
// places it among the ledger's events. So the watch keeps each
// conversation's history by position in the event log, and checks a
// round's offers, together, against the queues as they were then. An
// event's position is 2×id; an offer's is 2×made_after_event+1, just after
// the last event its round saw: from there on its conversation is not
// waiting, even for a later round checked before the offer is announced.
type fifoWatch struct {
	members     map[string][]string // queue -> agents
	agentQueues map[string][]string // agent -> queues
	priority    map[string]int      // queue -> priority
	history     map[string][]fifoState
	// round is the batch of offers being announced (one made_after_event);
	// rounds, those announced, checked once the log is read (done).
	round       []fifoOffer
	roundAfter  int64
	rounds      []fifoRound
	checks      int
	uncheckable int
}

// fifoState is a conversation's place from position pos on.
type fifoState struct {
	pos      int64
	waiting  bool
	queue    string
	since    time.Time
	declined map[string]bool
}

type fifoOffer struct {
	conversation, agent string
}

type fifoRound struct {
	offers []fifoOffer
	after  int64
}

func newFIFOWatch() *fifoWatch {
	return &fifoWatch{members: map[string][]string{}, agentQueues: map[string][]string{}, priority: map[string]int{},
		history: map[string][]fifoState{}}
}

func (f *fifoWatch) member(queue, agent string) {
	f.members[queue] = append(f.members[queue], agent)
	f.agentQueues[agent] = append(f.agentQueues[agent], queue)
}

func (f *fifoWatch) current(conv string) (fifoState, bool) {
	h := f.history[conv]
	if len(h) == 0 {
		return fifoState{}, false
	}
	return h[len(h)-1], true
}

// eventPos and offerPos place events and offers in one order.
func eventPos(id int64) int64    { return 2 * id }
func offerPos(after int64) int64 { return 2*after + 1 }

// at is the conversation's place as of position pos.
func (f *fifoWatch) at(conv string, pos int64) (fifoState, bool) {
	h := f.history[conv]
	i, found := slices.BinarySearchFunc(h, pos, func(s fifoState, pos int64) int {
		switch {
		case s.pos < pos:
			return -1
		case s.pos > pos:
			return 1
		}
		return 0
	})
	if found {
		return h[i], true
	}
	if i == 0 {
		return fifoState{}, false
	}
	return h[i-1], true
}

// set records the conversation's place from s.pos on, in order: an offer
// announced late goes back to where its round was made.
func (f *fifoWatch) set(conv string, s fifoState) {
	h := f.history[conv]
	i := len(h)
	for i > 0 && h[i-1].pos > s.pos {
		i--
	}
	f.history[conv] = slices.Insert(h, i, s)
}

// mayTake: the ledger skips agents who declined, unless every member of
// the queue did.
func (f *fifoWatch) mayTake(s fifoState, agent string) bool {
	if !s.declined[agent] {
		return true
	}
	for _, a := range f.members[s.queue] {
		if !s.declined[a] {
			return false
		}
	}
	return true
}

// onEvent follows the queues; done reports the violations.
func (f *fifoWatch) onEvent(ev event) {
	if ev.Type != store.EventOfferCreated {
		f.flush()
	}
	switch ev.Type {
	case store.EventConversationQueued:
		var d struct {
			QueueID      string    `json:"queue_id"`
			WaitingSince time.Time `json:"waiting_since"`
		}
		if json.Unmarshal(ev.Data, &d) == nil {
			f.set(ev.ConversationID, fifoState{pos: eventPos(ev.ID), waiting: true, queue: d.QueueID, since: d.WaitingSince, declined: map[string]bool{}})
		}
	case store.EventOfferCreated:
		var d struct {
			MadeAfterEvent int64 `json:"made_after_event"`
		}
		if json.Unmarshal(ev.Data, &d) != nil {
			return
		}
		if d.MadeAfterEvent != f.roundAfter {
			f.flush()
		}
		f.roundAfter = d.MadeAfterEvent
		f.round = append(f.round, fifoOffer{conversation: ev.ConversationID, agent: ev.AgentID})
		if s, ok := f.current(ev.ConversationID); ok {
			s.pos, s.waiting = eventPos(ev.ID), false
			if d.MadeAfterEvent > 0 {
				s.pos = offerPos(d.MadeAfterEvent)
			}
			f.set(ev.ConversationID, s)
		}
	case store.EventOfferWithdrawn:
		var d offerData
		if json.Unmarshal(ev.Data, &d) != nil {
			return
		}
		s, ok := f.current(ev.ConversationID)
		if !ok {
			return
		}
		s.pos = eventPos(ev.ID)
		switch d.Reason {
		case "rejected", "timed_out":
			// Back in its queue, without this agent.
			s.declined = maps.Clone(s.declined)
			s.declined[ev.AgentID] = true
			s.waiting = true
		default:
			// Accepted, or withdrawn by its conversation (it moved on):
			// whether it waits again shows in its next events.
			s.waiting = false
		}
		f.set(ev.ConversationID, s)
	}
}

// flush sets the round's offers aside, to be checked by done: an offer
// of an earlier round may still be announced after them.
func (f *fifoWatch) flush() {
	if len(f.round) > 0 {
		f.rounds = append(f.rounds, fifoRound{offers: f.round, after: f.roundAfter})
	}
	f.round, f.roundAfter = nil, 0
}

// done checks every round's offers against the queues as they were when
// the round was made, once the whole log is known.
func (f *fifoWatch) done() []string {
	f.flush()
	var out []string
	for _, r := range f.rounds {
		out = append(out, f.check(r.offers, r.after)...)
	}
	f.rounds = nil
	return out
}

// check checks one round's offers.
func (f *fifoWatch) check(round []fifoOffer, after int64) []string {
	if after == 0 {
		f.uncheckable += len(round) // a retried round: its place is unknown
		return nil
	}
	inRound := map[string]bool{}
	for _, o := range round {
		inRound[o.conversation] = true
	}
	var out []string
	for _, o := range round {
		it, ok := f.at(o.conversation, eventPos(after))
		if !ok || !it.waiting {
			f.uncheckable++
			continue
		}
		f.checks++
		for conv := range f.history {
			if inRound[conv] {
				continue
			}
			w, ok := f.at(conv, eventPos(after))
			if !ok || !w.waiting {
				continue
			}
			ahead := (w.queue == it.queue && w.since.Before(it.since)) ||
				(w.queue != it.queue && f.priority[w.queue] < f.priority[it.queue] && slices.Contains(f.agentQueues[o.agent], w.queue))
			if ahead && f.mayTake(w, o.agent) {
				out = append(out, fmt.Sprintf("FIFO: %s (queue %s, waiting since %s) offered to %s after event %d while %s (queue %s, waiting since %s) was ahead",
					o.conversation, it.queue, it.since.Format(time.StampMilli), o.agent, after, conv, w.queue, w.since.Format(time.StampMilli)))
			}
		}
	}
	return out
}

// The watch itself: an offer out of turn is caught, and one allowed by a
// decline, or made before the other conversation came back, is not.
func TestFIFOWatchFindsAnOfferOutOfTurn(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	queued := func(id int64, conv string, since time.Duration) event {
		d, _ := json.Marshal(map[string]any{"queue_id": "q", "waiting_since": t0.Add(since)})
		return event{ID: id, Type: store.EventConversationQueued, ConversationID: conv, QueueID: "q", Data: d}
	}
	offer := func(id int64, conv, agent string, after int64) event {
		d, _ := json.Marshal(map[string]any{"made_after_event": after})
		return event{ID: id, Type: store.EventOfferCreated, ConversationID: conv, AgentID: agent, QueueID: "q", Data: d}
	}
	withdrawn := func(id int64, conv, agent, reason string) event {
		d, _ := json.Marshal(map[string]any{"reason": reason})
		return event{ID: id, Type: store.EventOfferWithdrawn, ConversationID: conv, AgentID: agent, QueueID: "q", Data: d}
	}
	run := func(evs ...event) []string {
		f := newFIFOWatch()
		f.priority["q"] = 1
		f.member("q", "ada")
		f.member("q", "bob")
		for _, ev := range evs {
			f.onEvent(ev)
		}
		return f.done()
	}
	if v := run(queued(1, "a", 0), queued(2, "b", time.Second), offer(3, "b", "ada", 2)); len(v) != 1 {
		t.Errorf("b offered before a, who waited longer: %v, want one violation", v)
	}
	if v := run(queued(1, "a", 0), queued(2, "b", time.Second), offer(3, "a", "bob", 2), offer(4, "b", "ada", 2)); len(v) != 0 {
		t.Errorf("a and b offered in one round: %v", v)
	}
	if v := run(queued(1, "a", 0), offer(2, "a", "ada", 1), withdrawn(3, "a", "ada", "rejected"),
		queued(4, "b", time.Second), offer(5, "b", "ada", 4)); len(v) != 0 {
		t.Errorf("b offered to the agent who rejected a: %v", v)
	}
	// a came back (bob let it time out) after the round that offered b was made.
	if v := run(queued(1, "a", 0), offer(2, "a", "bob", 1), queued(3, "b", time.Second),
		withdrawn(4, "a", "bob", "timed_out"), offer(5, "b", "ada", 3)); len(v) != 0 {
		t.Errorf("b offered in a round made before a came back: %v", v)
	}
	if v := run(queued(1, "a", 0), offer(2, "a", "bob", 1), queued(3, "b", time.Second),
		withdrawn(4, "a", "bob", "timed_out"), offer(5, "b", "ada", 4)); len(v) != 1 {
		t.Errorf("b offered to ada in a round made after a came back: %v, want one violation", v)
	}
	// a's offer, made in the round after event 2, is announced late (event
	// 5), after b's, made in the next round (after event 3): a was not
	// waiting when b's round ran.
	if v := run(queued(1, "a", 0), queued(2, "b", time.Second), queued(3, "c", 2*time.Second),
		offer(4, "b", "ada", 3), offer(5, "a", "bob", 2)); len(v) != 0 {
		t.Errorf("a's offer announced after b's, made in an earlier round: %v", v)
	}
	// Without a's offer made earlier, b's round passed a over.
	if v := run(queued(1, "a", 0), queued(2, "b", time.Second), queued(3, "c", 2*time.Second),
		offer(4, "b", "ada", 3), offer(5, "a", "bob", 4)); len(v) != 1 {
		t.Errorf("b offered in a round that passed a over: %v, want one violation", v)
	}
}
