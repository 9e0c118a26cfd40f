package routing

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func mins(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

func agent(id string, capacity, used int) AgentInfo {
	return AgentInfo{ID: id, Presence: PresenceAvailable, Capacity: capacity, Used: used}
}

func queue(id string, priority int, method string, members ...string) QueueInfo {
	return QueueInfo{ID: id, Priority: priority, Method: method, AgentIDs: members}
}

// item is a push item of one unit, for available or busy agents.
func item(id, queue string, waitingSince time.Time) Item {
	return Item{ConversationID: id, QueueID: queue, Mode: ModePush, Units: 1, WaitingSince: waitingSince,
		AllowedPresences: []string{PresenceAvailable, PresenceBusy}}
}

func with(it Item, f func(*Item)) Item { f(&it); return it }

// offers writes offers as "conversation>agent", for short comparisons.
func offers(os []Offer) string {
	var s []string
	for _, o := range os {
		s = append(s, o.ConversationID+">"+o.AgentID)
	}
	return strings.Join(s, " ")
}

func TestMatch(t *testing.T) {
	now := mins(60)
	hc, rr := MethodHighestCapacity, MethodRoundRobin
	for _, tc := range []struct {
		what   string
		queues []QueueInfo
		agents []AgentInfo
		items  []Item
		want   string
	}{
		{
			what:   "FIFO within a priority",
			queues: []QueueInfo{queue("q", 1, hc, "ada")},
			agents: []AgentInfo{agent("ada", 2, 0)},
			items:  []Item{item("c1", "q", mins(2)), item("c2", "q", mins(1)), item("c3", "q", mins(3))},
			want:   "c2>ada c1>ada",
		},
		{
			what:   "FIFO ties by conversation id",
			queues: []QueueInfo{queue("q", 1, hc, "ada")},
			agents: []AgentInfo{agent("ada", 1, 0)},
			items:  []Item{item("c2", "q", mins(1)), item("c1", "q", mins(1))},
			want:   "c1>ada",
		},
		{
			what:   "item priority before FIFO",
			queues: []QueueInfo{queue("q", 1, hc, "ada")},
			agents: []AgentInfo{agent("ada", 1, 0)},
			items:  []Item{item("old", "q", mins(1)), with(item("urgent", "q", mins(50)), func(i *Item) { i.Priority = 5 })},
			want:   "urgent>ada",
		},
		{
			what:   "queue priority first for an agent in two queues",
			queues: []QueueInfo{queue("general", 2, hc, "ada", "bob"), queue("billing", 1, hc, "ada")},
			agents: []AgentInfo{agent("ada", 1, 0), agent("bob", 1, 1)},
			items: []Item{item("waited-long", "general", mins(1)),
				with(item("urgent-general", "general", mins(2)), func(i *Item) { i.Priority = 9 }),
				item("new-billing", "billing", mins(30))},
			want: "new-billing>ada",
		},
		{
			what:   "the other queue's agent serves it",
			queues: []QueueInfo{queue("general", 2, hc, "ada", "bob"), queue("billing", 1, hc, "ada")},
			agents: []AgentInfo{agent("ada", 1, 0), agent("bob", 1, 0)},
			items:  []Item{item("waited-long", "general", mins(1)), item("new-billing", "billing", mins(30))},
			want:   "new-billing>ada waited-long>bob",
		},
		{
			what:   "capacity is never exceeded across several items",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{agent("ada", 3, 1), agent("bob", 2, 1)},
			items: []Item{item("c1", "q", mins(1)),
				with(item("c2", "q", mins(2)), func(i *Item) { i.Units = 2 }),
				item("c3", "q", mins(3)), item("c4", "q", mins(4)), item("c5", "q", mins(5))},
			// ada takes c1 (2 free over 1); c2 fits nobody; 1 free each:
			// c3 to bob, offered less recently; c4 to ada, the last unit.
			want: "c1>ada c3>bob c4>ada",
		},
		{
			what:   "an agent above capacity gets nothing",
			queues: []QueueInfo{queue("q", 1, hc, "ada")},
			agents: []AgentInfo{agent("ada", 2, 3)},
			items:  []Item{item("c1", "q", mins(1))},
			want:   "",
		},
		{
			what:   "units above one",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{agent("ada", 4, 2), agent("bob", 3, 0)},
			items:  []Item{with(item("c1", "q", mins(1)), func(i *Item) { i.Units = 3 }), with(item("c2", "q", mins(2)), func(i *Item) { i.Units = 2 })},
			want:   "c1>bob c2>ada",
		},
		{
			what:   "units below one count as one",
			queues: []QueueInfo{queue("q", 1, hc, "ada")},
			agents: []AgentInfo{agent("ada", 1, 0)},
			items:  []Item{with(item("c1", "q", mins(1)), func(i *Item) { i.Units = 0 }), with(item("c2", "q", mins(2)), func(i *Item) { i.Units = -1 })},
			want:   "c1>ada",
		},
		{
			what:   "a decliner is skipped",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{agent("ada", 5, 0), agent("bob", 1, 0)},
			items:  []Item{with(item("c1", "q", mins(1)), func(i *Item) { i.Declined = []string{"ada"} })},
			want:   "c1>bob",
		},
		{
			what:   "declined by every member: offered again",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{agent("ada", 5, 0), agent("bob", 1, 0)},
			items:  []Item{with(item("c1", "q", mins(1)), func(i *Item) { i.Declined = []string{"bob", "ada"} })},
			want:   "c1>ada",
		},
		{
			what:   "declined by one member and an outsider",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{agent("ada", 5, 0), agent("bob", 1, 0), agent("cy", 1, 0)},
			items:  []Item{with(item("c1", "q", mins(1)), func(i *Item) { i.Declined = []string{"ada", "cy"} })},
			want:   "c1>bob",
		},
		{
			what:   "the only eligible member declined: it waits",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{agent("ada", 5, 0), with2(agent("bob", 1, 0), PresenceAway)},
			items:  []Item{with(item("c1", "q", mins(1)), func(i *Item) { i.Declined = []string{"ada"} }), item("c2", "q", mins(2))},
			want:   "c2>ada",
		},
		{
			what:   "the preferred agent is honoured",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{agent("ada", 1, 0), agent("bob", 5, 0)},
			items:  []Item{with(item("c1", "q", mins(1)), func(i *Item) { i.PreferredAgentID, i.PreferredUntil = "ada", now.Add(time.Second) })},
			want:   "c1>ada",
		},
		{
			what:   "the preferred agent is away: the item waits, later ones do not",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{with2(agent("ada", 1, 0), PresenceAway), agent("bob", 5, 0)},
			items: []Item{with(item("c1", "q", mins(1)), func(i *Item) { i.PreferredAgentID, i.PreferredUntil = "ada", now.Add(time.Minute) }),
				item("c2", "q", mins(2))},
			want: "c2>bob",
		},
		{
			what:   "the preferred agent is full: the item waits",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{agent("ada", 1, 1), agent("bob", 5, 0)},
			items:  []Item{with(item("c1", "q", mins(1)), func(i *Item) { i.PreferredAgentID, i.PreferredUntil = "ada", now.Add(time.Minute) })},
			want:   "",
		},
		{
			what:   "the preference lapses at its end",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{with2(agent("ada", 1, 0), PresenceAway), agent("bob", 5, 0)},
			items:  []Item{with(item("c1", "q", mins(1)), func(i *Item) { i.PreferredAgentID, i.PreferredUntil = "ada", now })},
			want:   "c1>bob",
		},
		{
			what:   "the preference is over once the preferred agent declined",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{agent("ada", 9, 0), agent("bob", 1, 0)},
			items: []Item{with(item("c1", "q", mins(1)), func(i *Item) {
				i.PreferredAgentID, i.PreferredUntil, i.Declined = "ada", now.Add(time.Minute), []string{"ada"}
			})},
			want: "c1>bob",
		},
		{
			what:   "a preferred agent outside the queue is not waited for",
			queues: []QueueInfo{queue("q", 1, hc, "bob"), queue("other", 1, hc, "ada")},
			agents: []AgentInfo{agent("ada", 9, 0), agent("bob", 1, 0)},
			items:  []Item{with(item("c1", "q", mins(1)), func(i *Item) { i.PreferredAgentID, i.PreferredUntil = "ada", now.Add(time.Minute) })},
			want:   "c1>bob",
		},
		{
			what:   "highest capacity: most free units",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob", "cy")},
			agents: []AgentInfo{agent("ada", 3, 2), agent("bob", 5, 2), agent("cy", 2, 0)},
			items:  []Item{item("c1", "q", mins(1))},
			want:   "c1>bob",
		},
		{
			what:   "highest capacity: ties by earliest last offer",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob", "cy")},
			agents: []AgentInfo{offered(agent("ada", 3, 1), mins(5)), offered(agent("bob", 2, 0), mins(4)), offered(agent("cy", 1, 0), mins(1))},
			items:  []Item{item("c1", "q", mins(1))},
			want:   "c1>bob",
		},
		{
			what:   "highest capacity: then earliest last assignment",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{assigned(offered(agent("ada", 2, 0), mins(4)), mins(3)), assigned(offered(agent("bob", 2, 0), mins(4)), mins(2))},
			items:  []Item{item("c1", "q", mins(1))},
			want:   "c1>bob",
		},
		{
			what:   "highest capacity: then agent id",
			queues: []QueueInfo{queue("q", 1, hc, "bob", "ada")},
			agents: []AgentInfo{agent("bob", 2, 0), agent("ada", 2, 0)},
			items:  []Item{item("c1", "q", mins(1))},
			want:   "c1>ada",
		},
		{
			what:   "highest capacity over several items",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob")},
			agents: []AgentInfo{agent("ada", 3, 0), agent("bob", 2, 0)},
			items:  []Item{item("c1", "q", mins(1)), item("c2", "q", mins(2)), item("c3", "q", mins(3)), item("c4", "q", mins(4))},
			// ada 3 free; 2 each, bob never offered; ada 2 over 1; 1 each,
			// both offered now: by id.
			want: "c1>ada c2>bob c3>ada c4>ada",
		},
		{
			what:   "round robin: earliest last offer, whatever the free units",
			queues: []QueueInfo{queue("q", 1, rr, "ada", "bob", "cy")},
			agents: []AgentInfo{offered(agent("ada", 9, 0), mins(5)), offered(agent("bob", 2, 1), mins(3)), offered(agent("cy", 5, 0), mins(4))},
			items:  []Item{item("c1", "q", mins(1))},
			want:   "c1>bob",
		},
		{
			what:   "round robin: ties by earliest last assignment",
			queues: []QueueInfo{queue("q", 1, rr, "ada", "bob")},
			agents: []AgentInfo{assigned(agent("ada", 9, 0), mins(2)), assigned(agent("bob", 2, 1), mins(1))},
			items:  []Item{item("c1", "q", mins(1))},
			want:   "c1>bob",
		},
		{
			what:   "round robin: then agent id",
			queues: []QueueInfo{queue("q", 1, rr, "cy", "bob")},
			agents: []AgentInfo{agent("cy", 9, 0), agent("bob", 2, 1)},
			items:  []Item{item("c1", "q", mins(1))},
			want:   "c1>bob",
		},
		{
			what:   "round robin turns",
			queues: []QueueInfo{queue("q", 1, rr, "ada", "bob", "cy")},
			agents: []AgentInfo{agent("ada", 9, 0), agent("bob", 9, 0), offered(agent("cy", 9, 0), mins(-1))},
			items:  []Item{item("c1", "q", mins(1)), item("c2", "q", mins(2)), item("c3", "q", mins(3)), item("c4", "q", mins(4))},
			want:   "c1>ada c2>bob c3>cy c4>ada",
		},
		{
			what:   "pick, offered and unknown-queue items are skipped",
			queues: []QueueInfo{queue("q", 1, hc, "ada")},
			agents: []AgentInfo{agent("ada", 9, 0)},
			items: []Item{with(item("pick", "q", mins(1)), func(i *Item) { i.Mode = ModePick }),
				with(item("offered", "q", mins(1)), func(i *Item) { i.Offered = true }),
				item("lost", "gone", mins(1)), item("push", "q", mins(2))},
			want: "push>ada",
		},
		{
			what:   "one offer per conversation",
			queues: []QueueInfo{queue("q", 1, hc, "ada"), queue("r", 1, hc, "bob")},
			agents: []AgentInfo{agent("ada", 9, 0), agent("bob", 9, 0)},
			items:  []Item{item("c1", "q", mins(1)), item("c1", "r", mins(1)), item("c1", "q", mins(1))},
			want:   "c1>ada",
		},
		{
			what:   "only members",
			queues: []QueueInfo{queue("q", 1, hc, "bob", "nobody")},
			agents: []AgentInfo{agent("ada", 9, 0), with2(agent("bob", 1, 0), PresenceAway)},
			items:  []Item{item("c1", "q", mins(1))},
			want:   "",
		},
		{
			what:   "allowed presences, with the load of earlier offers",
			queues: []QueueInfo{queue("q", 1, hc, "ada", "bob", "cy", "dan")},
			agents: []AgentInfo{agent("ada", 3, 0), agent("bob", 1, 0), with2(agent("cy", 9, 0), PresenceAway), with2(agent("dan", 9, 0), PresenceDoNotDisturb)},
			items: []Item{
				with(item("c1", "q", mins(1)), func(i *Item) { i.AllowedPresences = []string{PresenceAvailable} }),
				with(item("c2", "q", mins(2)), func(i *Item) { i.AllowedPresences = []string{PresenceAvailable} }), // ada is busy now
				with(item("c3", "q", mins(3)), func(i *Item) { i.AllowedPresences = []string{PresenceAvailable} }),
				with(item("c4", "q", mins(4)), func(i *Item) { i.AllowedPresences = []string{PresenceBusy, PresenceAway} }),
			},
			want: "c1>ada c2>bob c4>cy",
		},
		{
			what:   "full agents are do_not_disturb",
			queues: []QueueInfo{queue("q", 1, hc, "ada")},
			agents: []AgentInfo{agent("ada", 2, 1)},
			items: []Item{
				with(item("c1", "q", mins(1)), func(i *Item) { i.AllowedPresences = []string{PresenceDoNotDisturb} }),
				with(item("c2", "q", mins(2)), func(i *Item) { i.AllowedPresences = []string{PresenceBusy} }),
			},
			want: "c2>ada",
		},
		{
			what:   "an offer that makes an agent eligible serves the earlier item first",
			queues: []QueueInfo{queue("q", 1, hc, "ada")},
			agents: []AgentInfo{agent("ada", 3, 0)},
			items: []Item{
				with(item("busy-only", "q", mins(1)), func(i *Item) { i.AllowedPresences = []string{PresenceBusy} }),
				item("any", "q", mins(2)),
				with(item("busy-only-later", "q", mins(3)), func(i *Item) { i.AllowedPresences = []string{PresenceBusy} }),
			},
			want: "any>ada busy-only>ada busy-only-later>ada",
		},
		{
			what:   "an unknown method is highest capacity",
			queues: []QueueInfo{queue("q", 1, "", "ada", "bob")},
			agents: []AgentInfo{offered(agent("ada", 2, 0), mins(9)), agent("bob", 1, 0)},
			items:  []Item{item("c1", "q", mins(1))},
			want:   "c1>ada",
		},
		{
			what:   "nothing to do",
			queues: []QueueInfo{queue("q", 1, hc, "ada")},
			agents: nil,
			items:  []Item{item("c1", "q", mins(1))},
			want:   "",
		},
	} {
		t.Run(tc.what, func(t *testing.T) {
			agents := slices.Clone(tc.agents)
			got := Match(now, tc.queues, tc.agents, tc.items)
			if s := offers(got); s != tc.want {
				t.Fatalf("Match = %q, want %q", s, tc.want)
			}
			for _, o := range got {
				i := slices.IndexFunc(tc.items, func(it Item) bool { return it.ConversationID == o.ConversationID })
				if o.QueueID != tc.items[i].QueueID {
					t.Fatalf("offer %+v names queue %s, want %s", o, o.QueueID, tc.items[i].QueueID)
				}
			}
			if !reflect.DeepEqual(agents, tc.agents) {
				t.Fatalf("Match changed its input agents: %+v, was %+v", tc.agents, agents)
			}
		})
	}
}

func with2(a AgentInfo, presence string) AgentInfo { a.Presence = presence; return a }

func offered(a AgentInfo, at time.Time) AgentInfo { a.LastOfferedAt = at; return a }

func assigned(a AgentInfo, at time.Time) AgentInfo { a.LastAssignedAt = at; return a }

// TestMatchInvariants checks Match on random inputs: no agent above its
// capacity, no conversation offered twice, offers only to eligible
// members, FIFO, and no eligible agent left idle by an item that could
// take it.
func TestMatchInvariants(t *testing.T) {
	presences := append(ChoosablePresences(), PresenceInactive)
	now := mins(60)
	for seed := range uint64(3000) {
		r := rand.New(rand.NewPCG(seed, 7))
		pick := func(n int) int { return r.IntN(n) }
		someOf := func(all []string) []string {
			var out []string
			for _, v := range all {
				if pick(2) == 0 {
					out = append(out, v)
				}
			}
			return out
		}
		times := []time.Time{{}, mins(1), mins(2), mins(3)}

		var agents []AgentInfo
		var agentIDs []string
		for i := range 1 + pick(8) {
			c := pick(5)
			a := AgentInfo{ID: fmt.Sprintf("a%d", i), Presence: presences[pick(len(presences))], Capacity: c, Used: pick(c + 2),
				LastOfferedAt: times[pick(len(times))], LastAssignedAt: times[pick(len(times))]}
			if pick(2) == 0 {
				a.Presence = PresenceAvailable
			}
			agents = append(agents, a)
			agentIDs = append(agentIDs, a.ID)
		}
		var queues []QueueInfo
		for i := range 1 + pick(4) {
			method := MethodHighestCapacity
			if pick(2) == 0 {
				method = MethodRoundRobin
			}
			members := someOf(append(agentIDs, "ghost"))
			queues = append(queues, QueueInfo{ID: fmt.Sprintf("q%d", i), Priority: pick(3), Method: method, AgentIDs: members})
		}
		var items []Item
		for i := range pick(16) {
			it := Item{ConversationID: fmt.Sprintf("c%d", i), QueueID: fmt.Sprintf("q%d", pick(len(queues)+1)), Mode: ModePush,
				Units: 1 + pick(3), Priority: pick(2), WaitingSince: mins(pick(5)),
				AllowedPresences: []string{PresenceAvailable, PresenceBusy}}
			if pick(4) == 0 {
				it.AllowedPresences = someOf(presences)
			}
			if pick(10) == 0 {
				it.Mode = ModePick
			}
			if pick(10) == 0 {
				it.Offered = true
			}
			if pick(4) == 0 {
				it.Declined = someOf(append(agentIDs, "ghost"))
			}
			if pick(4) == 0 {
				it.PreferredAgentID = agentIDs[pick(len(agentIDs))]
				it.PreferredUntil = now.Add(time.Duration(pick(3)-1) * time.Minute)
			}
			if i > 0 && pick(8) == 0 { // the same conversation in another queue
				other := items[pick(i)].ConversationID
				if !slices.ContainsFunc(items, func(x Item) bool { return x.ConversationID == other && x.QueueID == it.QueueID }) {
					it.ConversationID = other
				}
			}
			items = append(items, it)
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			got := Match(now, queues, agents, items)
			checkMatch(t, now, queues, agents, items, got)

			// The same on shuffled inputs.
			q2 := slices.Clone(queues)
			for i := range q2 {
				q2[i].AgentIDs = slices.Clone(q2[i].AgentIDs)
				r.Shuffle(len(q2[i].AgentIDs), func(a, b int) { q2[i].AgentIDs[a], q2[i].AgentIDs[b] = q2[i].AgentIDs[b], q2[i].AgentIDs[a] })
			}
			a2, i2 := slices.Clone(agents), slices.Clone(items)
			r.Shuffle(len(q2), func(a, b int) { q2[a], q2[b] = q2[b], q2[a] })
			r.Shuffle(len(a2), func(a, b int) { a2[a], a2[b] = a2[b], a2[a] })
			r.Shuffle(len(i2), func(a, b int) { i2[a], i2[b] = i2[b], i2[a] })
			if again := Match(now, q2, a2, i2); !slices.Equal(again, got) {
				t.Fatalf("Match depends on the order of its input:\n%v\n%v", got, again)
			}
		})
	}
}

func checkMatch(t *testing.T, now time.Time, queues []QueueInfo, agents []AgentInfo, items []Item, got []Offer) {
	t.Helper()
	queue := map[string]QueueInfo{}
	for _, q := range queues {
		queue[q.ID] = q
	}
	state := map[string]*AgentInfo{}
	for _, a := range agents {
		state[a.ID] = &a
	}
	live := func(it Item) bool { _, ok := queue[it.QueueID]; return ok && !it.Offered && it.Mode != ModePick }
	members := func(it Item) []string { // known members, once each
		var out []string
		for _, id := range queue[it.QueueID].AgentIDs {
			if state[id] != nil && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		return out
	}
	declined := func(it Item) []string {
		for _, id := range members(it) {
			if !slices.Contains(it.Declined, id) {
				return it.Declined
			}
		}
		return nil // every member declined: ignored
	}
	preferred := func(it Item) string {
		p := it.PreferredAgentID
		if now.Before(it.PreferredUntil) && slices.Contains(members(it), p) && !slices.Contains(declined(it), p) {
			return p
		}
		return ""
	}
	// eligible is the spec of an agent that may take it, in state.
	eligible := func(it Item, id string) bool {
		a := state[id]
		return slices.Contains(members(it), id) && a.Capacity-a.Used >= max(it.Units, 1) &&
			slices.Contains(it.AllowedPresences, EffectivePresence(a.Presence, a.Used, a.Capacity)) &&
			!slices.Contains(declined(it), id) && (preferred(it) == "" || preferred(it) == id)
	}

	served := map[string]bool{}
	for _, o := range got {
		if served[o.ConversationID] {
			t.Fatalf("%s offered twice: %v", o.ConversationID, got)
		}
		served[o.ConversationID] = true
		i := slices.IndexFunc(items, func(it Item) bool {
			return it.ConversationID == o.ConversationID && it.QueueID == o.QueueID && live(it)
		})
		if i < 0 {
			t.Fatalf("offer %+v is for no queued push item", o)
		}
		it := items[i]
		if state[o.AgentID] == nil || !eligible(it, o.AgentID) {
			t.Fatalf("offer %+v to an agent not eligible for %+v: %+v", o, it, state[o.AgentID])
		}
		a := state[o.AgentID]
		a.Used += max(it.Units, 1)
		if a.Used > a.Capacity {
			t.Fatalf("agent %s above capacity: %d of %d", a.ID, a.Used, a.Capacity)
		}
	}
	// In Match's order: queue priority, item priority, wait, id.
	before := func(x, y Item) bool {
		if px, py := queue[x.QueueID].Priority, queue[y.QueueID].Priority; px != py {
			return px < py
		}
		if x.Priority != y.Priority {
			return x.Priority > y.Priority
		}
		if !x.WaitingSince.Equal(y.WaitingSince) {
			return x.WaitingSince.Before(y.WaitingSince)
		}
		return x.ConversationID < y.ConversationID
	}
	for _, x := range items {
		if !live(x) || served[x.ConversationID] {
			continue
		}
		// No agent is left for an unserved item ...
		for _, id := range members(x) {
			if eligible(x, id) {
				t.Fatalf("%s unserved though %s could take it: %+v", x.ConversationID, id, *state[id])
			}
		}
		// ... and, when nobody is excluded from it, no later item like it
		// was served (FIFO).
		if len(x.Declined) > 0 || (x.PreferredAgentID != "" && now.Before(x.PreferredUntil)) {
			continue
		}
		for _, o := range got {
			y := items[slices.IndexFunc(items, func(it Item) bool {
				return it.ConversationID == o.ConversationID && it.QueueID == o.QueueID && live(it)
			})]
			if y.QueueID == x.QueueID && y.Units == x.Units && slices.Equal(y.AllowedPresences, x.AllowedPresences) && before(x, y) {
				t.Fatalf("FIFO: %s served before %s, which is ahead of it", y.ConversationID, x.ConversationID)
			}
		}
	}
}
