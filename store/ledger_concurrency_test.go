package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"parley/routing"
)

// forEachDBStores runs test on a fresh database of each kind, opened by n
// Stores: n processes sharing one database, as far as the ledger can tell
// (each Store has its own connections; on SQLite, its own single one).
func forEachDBStores(t *testing.T, n int, test func(t *testing.T, stores []*Store)) {
	t.Helper()
	for _, dialect := range []string{DialectSQLite, DialectPostgres} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			url := testDatabaseURL(t, dialect)
			stores := make([]*Store, n)
			for i := range stores {
				s, err := Open(context.Background(), url, newTestBox(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := s.Close(); err != nil {
						t.Error(err)
					}
				})
				if i == 0 {
					if err := s.Migrate(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				stores[i] = s
			}
			test(t, stores)
		})
	}
}

// TestLedgerPickRace: agents of two processes pick one conversation at
// once: one wins, the others get ErrConflict, and it is held once.
func TestLedgerPickRace(t *testing.T) {
	forEachDBStores(t, 2, func(t *testing.T, stores []*Store) {
		s := stores[0]
		q := insertQueue(t, s, testQueue{Name: "Billing", Priority: 1})
		agents := make([]string, 16)
		for i := range agents {
			agents[i] = insertAgent(t, s, fmt.Sprintf("A%02d", i), 3, routing.PresenceAvailable, q)
		}
		for round := range 5 {
			conv := fmt.Sprintf("c%d", round)
			enqueue(t, s, conv, q, ledgerNow)
			var next atomic.Int32
			won := raceCreates(t, len(agents), func() error {
				i := next.Add(1) - 1
				_, err := stores[int(i)%len(stores)].ClaimConversation(context.Background(), Claim{ConversationID: conv, WorkflowID: "wf",
					AgentID: agents[i], How: ClaimPick, Now: ledgerNow})
				return err
			})
			if won != 1 {
				t.Errorf("%s picked %d times, want once", conv, won)
			}
			st := checkLedger(t, s, conv)
			if h, ok := st.holds[conv]; !ok || h.Kind != holdActive {
				t.Errorf("%s not held: %+v", conv, h)
			}
			if _, err := s.ReleaseConversation(context.Background(), conv, ledgerNow); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestLedgerCapacityRace: 24 claims for one agent of capacity 3, from two
// processes at once: exactly 3 succeed, the others get a CapacityError.
func TestLedgerCapacityRace(t *testing.T) {
	forEachDBStores(t, 2, func(t *testing.T, stores []*Store) {
		s := stores[0]
		q := insertQueue(t, s, testQueue{Name: "Billing", Priority: 1})
		ada := insertAgent(t, s, "Ada", 3, routing.PresenceAvailable, q)
		const n = 24
		for i := range n {
			enqueue(t, s, fmt.Sprintf("c%02d", i), q, ledgerNow)
		}
		var wg sync.WaitGroup
		var ok, full atomic.Int32
		for i := range n {
			wg.Go(func() {
				how, force := ClaimPick, false
				if i%2 == 1 {
					how = ClaimAssign
				}
				_, err := stores[i%2].ClaimConversation(context.Background(), Claim{ConversationID: fmt.Sprintf("c%02d", i),
					WorkflowID: "wf", AgentID: ada, How: how, Force: force, Now: ledgerNow})
				var ce *CapacityError
				switch {
				case err == nil:
					ok.Add(1)
				case errors.As(err, &ce):
					full.Add(1)
				default:
					t.Errorf("claim = %v", err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 3 || full.Load() != n-3 {
			t.Errorf("%d claims succeeded, %d refused; want 3 and %d", ok.Load(), full.Load(), n-3)
		}
		live := make([]string, n)
		for i := range live {
			live[i] = fmt.Sprintf("c%02d", i)
		}
		checkLedger(t, s, live...)
		if l := loadOf(t, s, ada); l.Used != 3 || l.Forced {
			t.Errorf("Ada = %+v, want 3 of 3, not forced", l)
		}
	})
}

// TestLedgerConcurrency runs 8 workers on two Stores (two processes) over
// one database: 3 queues, 10 agents, conversations routed, offered in
// rounds (some retried), accepted, declined, picked, assigned with and
// without force, transferred, wrapped up and released, with presence
// changes. After every operation a worker checks the invariants on a
// consistent read of the ledger and through AgentLoads; at the end, that
// every conversation the workers did not release is queued or held and
// every released one is gone. PARLEY_LEDGER_STRESS_OPS sets the operations
// per worker; PARLEY_LEDGER_STRESS_SEED the seed.
func TestLedgerConcurrency(t *testing.T) {
	ops := 120
	if testing.Short() {
		ops = 30
	}
	if v, err := strconv.Atoi(os.Getenv("PARLEY_LEDGER_STRESS_OPS")); err == nil {
		ops = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("PARLEY_LEDGER_STRESS_SEED"), 10, 64); err == nil {
		seed = v
	}
	forEachDBStores(t, 2, func(t *testing.T, stores []*Store) {
		t.Logf("seed %d (PARLEY_LEDGER_STRESS_SEED), %d operations per worker", seed, ops)
		st := newStress(t, stores, seed)
		start := time.Now()
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() { st.worker(w, ops) })
		}
		wg.Wait()
		elapsed := time.Since(start)
		st.final()
		if st.counts["offers made"] == 0 || st.counts["accept"] == 0 || st.counts["decline"] == 0 {
			t.Errorf("the workers made %d offers, accepted %d, declined %d: the run did not exercise offers",
				st.counts["offers made"], st.counts["accept"], st.counts["decline"])
		}
		t.Logf("%d operations in %v (%v each, checks included); %s", 8*ops, elapsed.Round(time.Millisecond),
			(elapsed / time.Duration(8*ops)).Round(time.Microsecond), st.summary())
	})
}

type stress struct {
	t        *testing.T
	stores   []*Store
	seed     uint64
	queues   []string
	agents   []string
	capacity map[string]int
	failed   atomic.Bool

	mu       sync.Mutex
	live     map[string]bool // routed and not (being) released
	released map[string]bool
	counts   map[string]int
}

func newStress(t *testing.T, stores []*Store, seed uint64) *stress {
	s := stores[0]
	st := &stress{t: t, stores: stores, seed: seed, capacity: map[string]int{}, live: map[string]bool{}, released: map[string]bool{}, counts: map[string]int{}}
	methods := []string{routing.MethodHighestCapacity, routing.MethodRoundRobin, routing.MethodHighestCapacity}
	for i := range 3 {
		st.queues = append(st.queues, insertQueue(t, s, testQueue{Name: fmt.Sprintf("Q%d", i), Priority: i + 1, Method: methods[i]}))
	}
	r := rand.New(rand.NewPCG(seed, 99))
	for i := range 10 {
		var qs []string
		for j, q := range st.queues {
			if (i+j)%3 != 2 || r.IntN(2) == 0 {
				qs = append(qs, q)
			}
		}
		capacity := 2 + r.IntN(3)
		id := insertAgent(t, s, fmt.Sprintf("Agent%d", i), capacity, routing.PresenceAvailable, qs...)
		st.agents = append(st.agents, id)
		st.capacity[id] = capacity
	}
	return st
}

func (st *stress) count(what string) {
	st.mu.Lock()
	st.counts[what]++
	st.mu.Unlock()
}

func (st *stress) summary() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	keys := make([]string, 0, len(st.counts))
	for k := range st.counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %d, ", k, st.counts[k])
	}
	return fmt.Sprintf("%s%d live, %d released", b.String(), len(st.live), len(st.released))
}

func (st *stress) fail(format string, args ...any) {
	st.t.Errorf(format, args...)
	st.failed.Store(true)
}

// refused accepts the ledger's refusals; anything else fails the test.
func (st *stress) refused(op string, err error) bool {
	var ce *CapacityError
	switch {
	case err == nil:
		st.count(op)
		return false
	case errors.Is(err, ErrConflict), errors.As(err, &ce):
		st.count(op + " refused")
		return true
	}
	st.fail("%s: %v", op, err)
	return true
}

func (st *stress) liveSnapshot() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]string, 0, len(st.live))
	for c := range st.live {
		out = append(out, c)
	}
	return out
}

// check verifies the invariants. live is read before the ledger, so that
// every conversation in it was routed before the read began; those the
// workers release meanwhile (marked released before the release starts)
// are left out after the read.
func (st *stress) check(s *Store, after string) {
	live := st.liveSnapshot()
	ctx := context.Background()
	state, err := readLedger(ctx, s)
	if err != nil {
		st.fail("read the ledger after %s: %v", after, err)
		return
	}
	st.mu.Lock()
	live = slices.DeleteFunc(live, func(c string) bool { return st.released[c] })
	st.mu.Unlock()
	if v := state.violations(live); len(v) > 0 {
		st.fail("after %s:\n%s", after, strings.Join(v, "\n"))
	}
	loads, err := s.AgentLoads(ctx)
	if err != nil {
		st.fail("AgentLoads: %v", err)
		return
	}
	for _, l := range loads {
		if l.Used > l.Capacity && !l.Forced {
			st.fail("after %s: AgentLoads says %s holds %d of %d, not forced", after, l.AgentID, l.Used, l.Capacity)
		}
	}
}

type openOffer struct {
	ConversationID string `db:"conversation_id"`
	AgentID        string `db:"agent_id"`
	OfferID        string `db:"offer_id"`
}

func (st *stress) worker(w, ops int) {
	s := st.stores[w%len(st.stores)]
	ctx := context.Background()
	r := rand.New(rand.NewPCG(st.seed, uint64(w)))
	var own []string
	var lastRound string
	lastOffers := map[string]OfferMade{}
	routeN := 0
	route := func(conv, queueID string, now time.Time) {
		routeN++
		d := pushDist(st.queues[r.IntN(3)])
		d.CapacityUnits = 1 + r.IntN(2)
		if r.IntN(5) == 0 {
			d.Mode = routing.ModePick
		}
		d.Rules = []routing.Rule{{Name: "billing", QueueID: st.queues[0],
			Conditions: []routing.Condition{{Field: routing.FieldFirstMessage, Operator: routing.OpContains, Value: "billing"}}}}
		msg := []string{"billing question", "hello", "where is my order"}[r.IntN(3)]
		rt := Route{ConversationID: conv, WorkflowID: "wf-" + conv, PageRef: "page", RouteID: fmt.Sprintf("route-%s-%d", conv, routeN),
			Context: routing.Context{FirstMessage: msg}, Distribution: d, QueueID: queueID,
			WaitingSince: now.Add(-time.Duration(r.IntN(600)) * time.Second), Priority: r.IntN(2), Now: now}
		res, err := s.RouteAndEnqueue(ctx, rt)
		if err != nil {
			st.fail("route %s: %v", conv, err)
			return
		}
		if res.Outcome != RouteQueued {
			st.fail("route %s: %+v, want queued", conv, res)
			return
		}
		if r.IntN(4) == 0 { // the activity retried
			again, err := s.RouteAndEnqueue(ctx, rt)
			if err != nil || again.QueueID != res.QueueID {
				// Another worker may have picked or been offered and
				// accepted it in between: then it is a new route.
				if err != nil {
					st.fail("route %s retried: %v", conv, err)
					return
				}
			}
		}
		st.mu.Lock()
		st.live[conv] = true
		st.mu.Unlock()
		st.count("route")
	}
	randomOffer := func() (openOffer, bool) {
		var offers []openOffer
		if err := list(ctx, s.db, &offers, `SELECT conversation_id, agent_id, offer_id FROM capacity_holds WHERE kind = 'offer'`); err != nil {
			st.fail("offers: %v", err)
			return openOffer{}, false
		}
		if len(offers) == 0 {
			return openOffer{}, false
		}
		return offers[r.IntN(len(offers))], true
	}
	for i := range ops {
		if st.failed.Load() {
			return
		}
		now := ledgerNow.Add(time.Duration(i) * time.Second)
		var op string
		switch p := r.IntN(100); {
		case p < 18 || len(own) == 0:
			op = "route new"
			conv := fmt.Sprintf("w%d-c%d", w, i)
			queueID := ""
			if r.IntN(2) == 0 {
				queueID = st.queues[r.IntN(3)]
			}
			route(conv, queueID, now)
			own = append(own, conv)
		case p < 33:
			op = "distribute"
			round := fmt.Sprintf("w%d-r%d", w, i)
			retry := lastRound != "" && r.IntN(5) == 0
			if retry {
				round = lastRound
			}
			offers, err := s.DistributeRound(ctx, round, now)
			if err != nil {
				st.fail("distribute %s: %v", round, err)
				break
			}
			if retry {
				// It returns the open offers of its first run, or, when
				// none is left open, makes new ones: never both.
				old, fresh := 0, 0
				for _, o := range offers {
					if first, ok := lastOffers[o.OfferID]; ok {
						old++
						if !sameOffer(first, o) {
							st.fail("retried round %s returned %+v, first %+v", round, o, first)
						}
					} else {
						fresh++
					}
				}
				if old > 0 && fresh > 0 {
					st.fail("retried round %s returned %d offers of its first run and made %d", round, old, fresh)
				}
				st.count("distribute retried")
				break
			}
			seen := map[string]bool{}
			for _, o := range offers {
				if seen[o.ConversationID] {
					st.fail("round %s offered %s twice", round, o.ConversationID)
				}
				seen[o.ConversationID] = true
			}
			lastRound, lastOffers = round, map[string]OfferMade{}
			for _, o := range offers {
				lastOffers[o.OfferID] = o
			}
			st.count("distribute")
			st.mu.Lock()
			st.counts["offers made"] += len(offers)
			st.mu.Unlock()
		case p < 45:
			op = "accept"
			o, ok := randomOffer()
			if !ok {
				break
			}
			agent := o.AgentID
			wrong := r.IntN(10) == 0
			if wrong {
				agent = st.agents[r.IntN(len(st.agents))]
			}
			a, err := s.AcceptOffer(ctx, o.ConversationID, o.OfferID, agent, now)
			if wrong && agent != o.AgentID {
				if !errors.Is(err, ErrOfferGone) {
					st.fail("accept by the wrong agent = %+v, %v", a, err)
				}
				break
			}
			if !st.refused(op, err) && (a.AgentID != o.AgentID || a.ConversationID != o.ConversationID) {
				st.fail("accept = %+v for %+v", a, o)
			}
			if err == nil && r.IntN(3) == 0 { // retried
				again, err := s.AcceptOffer(ctx, o.ConversationID, o.OfferID, agent, now)
				if err == nil && again != a {
					st.fail("accept retried = %+v, want %+v", again, a)
				} else if err != nil && !errors.Is(err, ErrOfferGone) { // released or moved on meanwhile
					st.fail("accept retried: %v", err)
				}
			}
		case p < 53:
			op = "decline"
			o, ok := randomOffer()
			if !ok {
				break
			}
			why := []string{DeclineRejected, DeclineTimedOut, DeclineWithdrawn}[r.IntN(3)]
			_, err := s.DeclineOffer(ctx, Decline{ConversationID: o.ConversationID, OfferID: o.OfferID, AgentID: o.AgentID,
				Why: why, SetInactive: why == DeclineTimedOut && r.IntN(3) == 0, Now: now})
			st.refused(op, err)
		case p < 61:
			op = "pick"
			var convs []string
			if err := list(ctx, s.db, &convs, `SELECT conversation_id FROM queue_items`); err != nil {
				st.fail("queue items: %v", err)
				break
			}
			if len(convs) == 0 {
				break
			}
			_, err := s.ClaimConversation(ctx, Claim{ConversationID: convs[r.IntN(len(convs))], AgentID: st.agents[r.IntN(len(st.agents))],
				How: ClaimPick, Now: now})
			st.refused(op, err)
		case p < 69:
			conv := own[r.IntN(len(own))]
			force := r.IntN(3) == 0
			how := []string{ClaimAssign, ClaimTransfer}[r.IntN(2)]
			op = how
			if force {
				op += " forced"
			}
			a, err := s.ClaimConversation(ctx, Claim{ConversationID: conv, WorkflowID: "wf-" + conv, AgentID: st.agents[r.IntN(len(st.agents))],
				How: how, Units: r.IntN(3), Force: force, Now: now})
			if force && err != nil {
				st.fail("%s: %v", op, err)
				break
			}
			if !st.refused(op, err) && a.Forced {
				st.count("over capacity by force")
			}
		case p < 75:
			op = "transfer to a queue"
			route(own[r.IntN(len(own))], st.queues[r.IntN(3)], now)
		case p < 80:
			op = "wrap-up"
			if err := s.HoldForWrapUp(ctx, own[r.IntN(len(own))], now); err != nil {
				st.fail("wrap-up: %v", err)
			}
		case p < 90:
			op = "release"
			k := r.IntN(len(own))
			conv := own[k]
			own = slices.Delete(own, k, k+1)
			st.mu.Lock()
			delete(st.live, conv)
			st.released[conv] = true
			st.mu.Unlock()
			if _, err := s.ReleaseConversation(ctx, conv, now); err != nil {
				st.fail("release %s: %v", conv, err)
			}
			st.count(op)
		default:
			op = "presence"
			presence := routing.PresenceAvailable
			if r.IntN(4) == 0 {
				presence = []string{routing.PresenceAway, routing.PresenceOffline, routing.PresenceBusy}[r.IntN(3)]
			}
			if _, err := exec(ctx, s.db, `UPDATE agents SET presence = ? WHERE id = ?`, presence, st.agents[r.IntN(len(st.agents))]); err != nil {
				st.fail("presence: %v", err)
			}
		}
		st.check(s, fmt.Sprintf("worker %d op %d (%s)", w, i, op))
	}
}

// final checks that nothing was lost or left behind.
func (st *stress) final() {
	s := st.stores[0]
	state, err := readLedger(context.Background(), s)
	if err != nil {
		st.t.Fatal(err)
	}
	if v := state.violations(st.liveSnapshot()); len(v) > 0 {
		st.t.Errorf("at the end:\n%s", strings.Join(v, "\n"))
	}
	for c := range st.released {
		if _, ok := state.items[c]; ok {
			st.t.Errorf("released %s still queued", c)
		}
		if h, ok := state.holds[c]; ok {
			st.t.Errorf("released %s still held: %+v", c, h)
		}
	}
	for c, it := range state.items {
		if !st.live[c] {
			st.t.Errorf("queue item %+v of a conversation the test does not know", it)
		}
	}
	for c, h := range state.holds {
		if !st.live[c] {
			st.t.Errorf("hold %+v of a conversation the test does not know", h)
		}
	}
	for id, a := range state.agents {
		if a.Used > st.capacity[id] && !a.Forced {
			st.t.Errorf("agent %s holds %d of %d", id, a.Used, st.capacity[id])
		}
	}
}

// TestLedgerDistributeRoundScale times a round over 500 waiting
// conversations in 3 queues and 20 agents of capacity 3: the first makes
// 60 offers, the next finds everyone full, the last finds one unit free.
func TestLedgerDistributeRoundScale(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var queues []string
		for i := range 3 {
			queues = append(queues, insertQueue(t, s, testQueue{Name: fmt.Sprintf("Q%d", i), Priority: i}))
		}
		for i := range 20 {
			insertAgent(t, s, fmt.Sprintf("Agent%02d", i), 3, routing.PresenceAvailable, queues...)
		}
		start := time.Now()
		for i := range 500 {
			enqueue(t, s, fmt.Sprintf("c%03d", i), queues[i%3], ledgerNow.Add(-time.Duration(i)*time.Second))
		}
		routeEach := time.Since(start) / 500
		start = time.Now()
		offers, err := s.DistributeRound(ctx, "round-1", ledgerNow)
		first := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		none, err := s.DistributeRound(ctx, "round-2", ledgerNow)
		idle := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if len(offers) != 60 {
			t.Fatalf("round 1 made %d offers, want 60", len(offers))
		}
		// Steady state: one agent's capacity comes back, one offer.
		if _, err := s.ReleaseConversation(ctx, offers[0].ConversationID, ledgerNow); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		one, err := s.DistributeRound(ctx, "round-3", ledgerNow)
		steady := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("RouteAndEnqueue %v each; DistributeRound with 500 waiting, 20 agents of capacity 3: %v making %d offers, "+
			"%v making %d (all full), %v making %d (one unit free)", routeEach.Round(time.Microsecond),
			first.Round(time.Microsecond), len(offers), idle.Round(time.Microsecond), len(none), steady.Round(time.Microsecond), len(one))
		if len(offers) != 60 || len(none) != 0 || len(one) != 1 {
			t.Errorf("%d, %d, %d offers, want 60, 0, 1", len(offers), len(none), len(one))
		}
		for _, o := range offers { // queue Q0 first (priority 0), FIFO: its oldest
			if o.QueueID != queues[0] {
				t.Errorf("offer from %s, want Q0 first", o.QueueName)
				break
			}
		}
		if limit := 2 * time.Second; first > limit || idle > limit || steady > limit {
			t.Errorf("a round took %v / %v / %v: over %v", first, idle, steady, limit)
		}
		checkLedger(t, s)
	})
}
