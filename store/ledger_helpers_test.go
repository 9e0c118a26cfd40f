package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"parley/routing"
)

// The ledger tests create queues and agents with SQL of their own: the
// ledger reads the rows, whatever writes them.

// ledgerNow is the tests' clock: a Monday, 10:00 UTC.
var ledgerNow = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type testQueue struct {
	Name     string
	Priority int
	Method   string
	Hours    routing.OperatingHours
	Overflow routing.Overflow
}

// insertQueue stores a live queue and returns its id.
func insertQueue(t testing.TB, s *Store, q testQueue) string {
	t.Helper()
	if q.Method == "" {
		q.Method = routing.MethodHighestCapacity
	}
	id, err := newID()
	if err != nil {
		t.Fatal(err)
	}
	periods, _ := json.Marshal(q.Hours.Periods)
	if len(q.Hours.Periods) == 0 {
		periods = []byte("[]")
	}
	holidays := encodeStrings(q.Hours.Holidays)
	overflow, _ := json.Marshal(q.Overflow)
	now := s.timestamp(ledgerNow)
	if _, err := exec(context.Background(), s.db, `INSERT INTO queues (id, name, priority, assignment_method, time_zone,
		operating_hours, holidays, overflow, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, q.Name, q.Priority, q.Method, q.Hours.TimeZone, string(periods), holidays, string(overflow), now, now); err != nil {
		t.Fatalf("insert queue %s: %v", q.Name, err)
	}
	return id
}

// insertAgent stores a live agent with its capacity and chosen presence,
// member of the queues given.
func insertAgent(t testing.TB, s *Store, name string, capacity int, presence string, queueIDs ...string) string {
	t.Helper()
	id, err := newID()
	if err != nil {
		t.Fatal(err)
	}
	now := s.timestamp(ledgerNow)
	if _, err := exec(context.Background(), s.db, `INSERT INTO agents (id, name, email, created_at, updated_at, capacity_units,
		presence, shown_presence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		id, name, strings.ToLower(name)+"-"+id[len(id)-8:]+"@example.com", now, now, capacity, presence, presence); err != nil {
		t.Fatalf("insert agent %s: %v", name, err)
	}
	for _, q := range queueIDs {
		addMember(t, s, q, id)
	}
	return id
}

func addMember(t testing.TB, s *Store, queueID, agentID string) {
	t.Helper()
	if _, err := exec(context.Background(), s.db, `INSERT INTO queue_agents (queue_id, agent_id, created_at) VALUES (?, ?, ?)`,
		queueID, agentID, s.timestamp(ledgerNow)); err != nil {
		t.Fatalf("add member: %v", err)
	}
}

func setPresence(t testing.TB, s *Store, agentID, presence string) {
	t.Helper()
	if _, err := exec(context.Background(), s.db, `UPDATE agents SET presence = ? WHERE id = ?`, presence, agentID); err != nil {
		t.Fatalf("set presence: %v", err)
	}
}

// pushDist is a push distribution: 1 unit, 2 min offers, fallback queue.
func pushDist(fallback string) routing.Distribution {
	return routing.Distribution{Mode: routing.ModePush, CapacityUnits: 1,
		AllowedPresences: []string{routing.PresenceAvailable, routing.PresenceBusy},
		OfferTimeout:     routing.Duration(2 * time.Minute), FallbackQueueID: fallback}
}

// enqueue routes a conversation straight to a queue, waiting since ws.
func enqueue(t testing.TB, s *Store, conv, queueID string, ws time.Time) RouteResult {
	t.Helper()
	res, err := s.RouteAndEnqueue(context.Background(), Route{ConversationID: conv, WorkflowID: "wf-" + conv, PageRef: "page",
		RouteID: "route-" + conv, Distribution: pushDist(queueID), QueueID: queueID, WaitingSince: ws, Now: ledgerNow})
	if err != nil {
		t.Fatalf("enqueue %s: %v", conv, err)
	}
	if res.Outcome != RouteQueued {
		t.Fatalf("enqueue %s: outcome %s (%s)", conv, res.Outcome, res.Reason)
	}
	return res
}

// ledgerState is the raw ledger, read in one consistent transaction.
type ledgerState struct {
	items  map[string]itemRow
	holds  map[string]holdRow
	agents map[string]agentCap
}

type agentCap struct {
	Capacity int `db:"capacity_units"`
	Used     int
	Forced   bool
	Presence string `db:"presence"`
}

func readLedger(ctx context.Context, s *Store) (ledgerState, error) {
	st := ledgerState{items: map[string]itemRow{}, holds: map[string]holdRow{}, agents: map[string]agentCap{}}
	opts := &sql.TxOptions{ReadOnly: true}
	if s.dialect == DialectPostgres {
		opts.Isolation = sql.LevelRepeatableRead // one snapshot for every statement
	}
	tx, err := s.db.BeginTxx(ctx, opts)
	if err != nil {
		return st, err
	}
	defer func() { _ = tx.Rollback() }()
	var items []itemRow
	if err := list(ctx, tx, &items, `SELECT `+itemColumns+` FROM queue_items`); err != nil {
		return st, err
	}
	var holds []holdRow
	if err := list(ctx, tx, &holds, `SELECT `+holdColumns+` FROM capacity_holds`); err != nil {
		return st, err
	}
	var agents []struct {
		ID       string `db:"id"`
		Capacity int    `db:"capacity_units"`
		Presence string `db:"presence"`
	}
	if err := list(ctx, tx, &agents, `SELECT id, capacity_units, presence FROM agents`); err != nil {
		return st, err
	}
	for _, it := range items {
		st.items[it.ConversationID] = it
	}
	for _, a := range agents {
		st.agents[a.ID] = agentCap{Capacity: a.Capacity, Presence: a.Presence}
	}
	for _, h := range holds {
		st.holds[h.ConversationID] = h
		a := st.agents[h.AgentID]
		a.Used += h.Units
		a.Forced = a.Forced || h.Forced
		st.agents[h.AgentID] = a
	}
	return st, tx.Commit()
}

// violations lists the invariants st breaks: an agent above capacity
// without a forced hold; an offer hold and its queue item disagreeing; a
// conversation both queued and assigned; a conversation of live (created,
// not released) missing from the ledger.
func (st ledgerState) violations(live []string) []string {
	var out []string
	for id, a := range st.agents {
		if a.Used > a.Capacity && !a.Forced {
			out = append(out, fmt.Sprintf("agent %s holds %d units of %d without a forced hold", id, a.Used, a.Capacity))
		}
	}
	for conv, h := range st.holds {
		it, queued := st.items[conv]
		switch {
		case h.Kind == holdOffer && !queued:
			out = append(out, fmt.Sprintf("conversation %s offered to %s but not queued", conv, h.AgentID))
		case h.Kind == holdOffer && it.OfferID != h.OfferID:
			out = append(out, fmt.Sprintf("conversation %s: hold offer %s, queue item offer %q", conv, h.OfferID, it.OfferID))
		case h.Kind != holdOffer && queued:
			out = append(out, fmt.Sprintf("conversation %s is %s with %s and queued in %s", conv, h.Kind, h.AgentID, it.QueueID))
		}
	}
	for conv, it := range st.items {
		if it.OfferID == "" {
			continue
		}
		if h, ok := st.holds[conv]; !ok || h.Kind != holdOffer || h.OfferID != it.OfferID {
			out = append(out, fmt.Sprintf("conversation %s: queue item offered (%s) without its offer hold", conv, it.OfferID))
		}
	}
	for _, conv := range live {
		_, queued := st.items[conv]
		_, held := st.holds[conv]
		if !queued && !held {
			out = append(out, fmt.Sprintf("conversation %s lost: neither queued nor held", conv))
		}
	}
	sort.Strings(out)
	return out
}

// checkLedger fails the test on any violation.
func checkLedger(t testing.TB, s *Store, live ...string) ledgerState {
	t.Helper()
	st, err := readLedger(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if v := st.violations(live); len(v) > 0 {
		t.Fatalf("ledger invariants broken:\n%s", strings.Join(v, "\n"))
	}
	return st
}

// eventsOf returns the events of a type appended so far, oldest first.
func eventsOf(t testing.TB, s *Store, typ string) []Event {
	t.Helper()
	var rows []struct {
		Event
		Data string `db:"data"`
	}
	if err := list(context.Background(), s.db, &rows, `SELECT id, type, agent_id, queue_id, conversation_id, data, created_at
		FROM events WHERE type = ? ORDER BY id`, typ); err != nil {
		t.Fatal(err)
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = r.Event
		out[i].Data = json.RawMessage(r.Data)
	}
	return out
}

func eventData(t testing.TB, e Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func loadOf(t testing.TB, s *Store, agentID string) AgentLoad {
	t.Helper()
	loads, err := s.AgentLoads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(loads, func(l AgentLoad) bool { return l.AgentID == agentID })
	if i < 0 {
		t.Fatalf("no load for agent %s", agentID)
	}
	return loads[i]
}

func queuedIDs(t testing.TB, s *Store, queueID string) []string {
	t.Helper()
	qs, err := s.QueuedConversations(context.Background(), queueID)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(qs))
	for i, q := range qs {
		if q.Position != i+1 {
			t.Errorf("%s at index %d has position %d", q.ConversationID, i, q.Position)
		}
		out[i] = q.ConversationID
	}
	return out
}
