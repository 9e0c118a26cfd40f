package store

import (
	"context"
	"math"
	"testing"
	"time"

	"parley/routing"
)

// TestQueueMetrics drives the ledger and the conversation saves as the
// workflow does, then checks every figure (conversation_events.go and
// queue_metrics.go define them).
//
//	c1: queued t0, offered +5s, accepted +20s, agent's first reply +50s, ended +80s, closed +100s
//	c2: queued t0, assigned from the queue +90s, transferred to Q2 +150s, closed +200s (abandoned in Q2 after 50s)
//	c3: queued t0, closed +120s (abandoned in Q after 120s)
//	c4: waiting in Q since +250s
func TestQueueMetrics(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := ledgerNow
		at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
		p := conversationFixture(t, s, "qm1")
		w := DefaultWorkstream()
		w.Name, w.PageRef = "Support", p.ID
		w, err := s.CreateWorkstream(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		q, err := s.CreateQueue(ctx, Queue{Name: "Q", Priority: 1})
		if err != nil {
			t.Fatal(err)
		}
		if q.ServiceLevel != DefaultServiceLevel {
			t.Fatalf("service level of a new queue = %v, want %v", q.ServiceLevel, DefaultServiceLevel)
		}
		q2, err := s.CreateQueue(ctx, Queue{Name: "Q2", Priority: 2, ServiceLevel: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		agentA := insertAgent(t, s, "Ann", 3, routing.PresenceAvailable, q.ID)
		insertAgent(t, s, "Bob", 2, routing.PresenceAway, q.ID)

		conv := func(id string) Conversation {
			c := newConversation(p, id, "psid-"+id, t0)
			if err := s.UpsertConversation(ctx, c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		route := func(c Conversation, queueID, routeID string, now time.Time) {
			t.Helper()
			res, err := s.RouteAndEnqueue(ctx, Route{ConversationID: c.ID, WorkflowID: c.WorkflowID, PageRef: p.ID, RouteID: routeID,
				Distribution: pushDist(queueID), QueueID: queueID, WaitingSince: now, Now: now})
			if err != nil || res.Outcome != RouteQueued {
				t.Fatalf("route %s: %+v %v", c.ID, res, err)
			}
		}
		save := func(c Conversation, state string, now time.Time) {
			t.Helper()
			c.State, c.UpdatedAt = state, now
			if state == "closed" {
				c.ClosedAt, c.ClosedReason = &now, "test"
			}
			if err := s.SaveConversationState(ctx, c, now); err != nil {
				t.Fatal(err)
			}
		}
		c1, c2, c3, c4 := conv("qm-c1"), conv("qm-c2"), conv("qm-c3"), conv("qm-c4")

		// c1: offered and accepted in 20 s; a retried route and accept record nothing more.
		route(c1, q.ID, "r1", at(0))
		offers, err := s.DistributeRound(ctx, "round-1", at(5))
		if err != nil || len(offers) != 1 || offers[0].AgentID != agentA {
			t.Fatalf("DistributeRound = %+v, %v; want one offer to Ann", offers, err)
		}
		route(c2, q.ID, "r2", at(0))
		route(c3, q.ID, "r3", at(0))
		route(c1, q.ID, "r1", at(1)) // a retry: the same routing attempt
		for range 2 {
			if _, err := s.AcceptOffer(ctx, c1.ID, offers[0].OfferID, agentA, at(20)); err != nil {
				t.Fatal(err)
			}
		}
		m := outbound(c1, 1, StatusPending, at(40))
		m.AgentID = agentA
		if _, err := s.InsertMessages(ctx, []Message{m}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the activity retried
			if err := s.MarkMessageSent(ctx, m.ID, "mid.qm1", at(50)); err != nil {
				t.Fatal(err)
			}
		}
		save(c1, "wrap_up", at(80))
		save(c1, "wrap_up", at(85)) // a retried save
		if _, err := s.ReleaseConversation(ctx, c1.ID, at(100)); err != nil {
			t.Fatal(err)
		}
		save(c1, "closed", at(100))

		// c2: assigned from the queue after 90 s, then transferred to Q2 where it is abandoned.
		if _, err := s.ClaimConversation(ctx, Claim{ConversationID: c2.ID, AgentID: agentA, How: ClaimAssign, Now: at(90)}); err != nil {
			t.Fatal(err)
		}
		route(c2, q2.ID, "r2-transfer", at(150))
		if _, err := s.ReleaseConversation(ctx, c2.ID, at(200)); err != nil {
			t.Fatal(err)
		}
		save(c2, "closed", at(200))

		// c3: abandoned after 120 s; the close saved twice.
		if _, err := s.ReleaseConversation(ctx, c3.ID, at(120)); err != nil {
			t.Fatal(err)
		}
		save(c3, "closed", at(120))
		save(c3, "closed", at(125))

		route(c4, q.ID, "r4", at(250))

		evs, err := s.ConversationEvents(ctx, c1.ID)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		for _, e := range evs {
			kinds[e.Kind]++
			if e.QueueID != q.ID || e.WorkstreamID != w.ID {
				t.Errorf("c1 event %s: queue %q workstream %q, want %q %q", e.Kind, e.QueueID, e.WorkstreamID, q.ID, w.ID)
			}
		}
		want := map[string]int{"queued": 1, "offered": 1, "accepted": 1, "first_reply": 1, "ended": 1, "closed": 1}
		if len(kinds) != len(want) {
			t.Errorf("c1 events %v, want %v", kinds, want)
		}
		for k, n := range want {
			if kinds[k] != n {
				t.Errorf("c1 has %d %s events, want %d (all: %v)", kinds[k], k, n, kinds)
			}
		}
		evs, err = s.ConversationEvents(ctx, c3.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 3 || evs[1].Kind != "abandoned" && evs[2].Kind != "abandoned" {
			t.Errorf("c3 events %+v, want queued, closed, abandoned once each", evs)
		}

		now := at(300)
		rows, err := s.QueueMetrics(ctx, QueueMetricsFilter{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[0].QueueID != q.ID || rows[1].QueueID != q2.ID {
			t.Fatalf("rows %+v, want Q then Q2", rows)
		}
		r := rows[0]
		sec := func(d *time.Duration) float64 {
			if d == nil {
				return -1
			}
			return d.Seconds()
		}
		got := r.Period
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"offered", float64(got.Offered), 4},
			{"offers", float64(got.Offers), 1},
			{"answered", float64(got.Answered), 2},
			{"answered within threshold", float64(got.AnsweredWithinThreshold), 1},
			{"abandoned", float64(got.Abandoned), 1},
			{"abandoned within threshold", float64(got.AbandonedWithinThreshold), 0},
			{"ASA", sec(got.AverageSpeedOfAnswer), 55},
			{"AHT", sec(got.AverageHandleTime), 60},
			{"handled", float64(got.Handled), 2},
			{"transfers", float64(got.Transfers), 1},
			{"first response", sec(got.AverageFirstResponse), 30},
			{"first responses", float64(got.FirstResponses), 1},
			{"waiting", float64(r.Live.Waiting), 1},
			{"longest wait", r.Live.LongestWait.Seconds(), 50},
			{"members", float64(r.Live.Members), 2},
			{"available", float64(r.Live.Agents[routing.PresenceAvailable]), 1},
			{"away", float64(r.Live.Agents[routing.PresenceAway]), 1},
			{"free capacity", float64(r.Live.FreeCapacity), 3},
		} {
			if c.got != c.want {
				t.Errorf("Q %s = %v, want %v", c.name, c.got, c.want)
			}
		}
		if got.ServiceLevel == nil || math.Abs(*got.ServiceLevel-1.0/3) > 1e-9 {
			t.Errorf("Q service level = %v, want 1/3 (1 answered within 60s / (2 answered + 1 abandoned after 60s))", got.ServiceLevel)
		}
		if len(r.Workstreams) != 1 || r.Workstreams[0].WorkstreamID != w.ID || r.Workstreams[0].Period.Answered != 2 ||
			r.Workstreams[0].Waiting != 1 {
			t.Errorf("Q by workstream %+v, want all of it in %s", r.Workstreams, w.ID)
		}
		r2 := rows[1].Period
		if r2.Offered != 1 || r2.Answered != 0 || r2.Abandoned != 1 || r2.AbandonedWithinThreshold != 1 || r2.ServiceLevel != nil ||
			r2.Transfers != 0 || r2.AverageSpeedOfAnswer != nil {
			t.Errorf("Q2 period %+v, want offered 1, abandoned 1 within its 2m threshold, no service level", r2)
		}

		// A period before it all: nothing; the live figures stay.
		rows, err = s.QueueMetrics(ctx, QueueMetricsFilter{From: t0.Add(-2 * time.Hour), To: t0, QueueID: q.ID, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].Period.Offered != 0 || rows[0].Period.Answered != 0 || rows[0].Live.Waiting != 1 {
			t.Errorf("metrics before t0 %+v, want no period figures, 1 waiting", rows)
		}
		// Another workstream: nothing of this one's.
		rows, err = s.QueueMetrics(ctx, QueueMetricsFilter{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), QueueID: q.ID,
			WorkstreamID: "other", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if rows[0].Period.Offered != 0 || rows[0].Live.Waiting != 0 || len(rows[0].Workstreams) != 0 {
			t.Errorf("metrics of another workstream %+v, want none", rows[0])
		}
		if _, err := s.QueueMetrics(ctx, QueueMetricsFilter{QueueID: "nope"}); err == nil {
			t.Error("metrics of a missing queue: no error")
		}
	})
}

// TestQueueMetricsDefaultPeriod: without from, the period starts at
// midnight in the queue's time zone (UTC without one).
func TestQueueMetricsDefaultPeriod(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		ny, err := s.CreateQueue(ctx, Queue{Name: "NY", Priority: 1, Hours: routing.OperatingHours{TimeZone: "America/New_York"}})
		if err != nil {
			t.Fatal(err)
		}
		utcQ, err := s.CreateQueue(ctx, Queue{Name: "UTC", Priority: 2})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC) // 22:00 on March 1 in New York
		rows, err := s.QueueMetrics(ctx, QueueMetricsFilter{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]time.Time{
			ny.ID:   time.Date(2026, 3, 1, 5, 0, 0, 0, time.UTC),
			utcQ.ID: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		}
		for _, r := range rows {
			if !r.From.Equal(want[r.QueueID]) || !r.To.Equal(now) {
				t.Errorf("queue %s: period [%v, %v), want [%v, %v)", r.QueueName, r.From, r.To, want[r.QueueID], now)
			}
		}
		if _, err := s.UpdateQueue(ctx, utcQ.ID, QueueUpdate{ServiceLevel: ptr(500 * time.Millisecond)}); err == nil {
			t.Error("a service level of 500ms was accepted")
		}
		q, err := s.UpdateQueue(ctx, utcQ.ID, QueueUpdate{ServiceLevel: ptr(30 * time.Second)})
		if err != nil || q.ServiceLevel != 30*time.Second {
			t.Errorf("UpdateQueue service level = %v, %v; want 30s", q.ServiceLevel, err)
		}
		if q, err = s.GetQueue(ctx, utcQ.ID); err != nil || q.ServiceLevel != 30*time.Second {
			t.Errorf("GetQueue service level = %v, %v; want 30s", q.ServiceLevel, err)
		}
	})
}

// TestQueueMetricsTransfersAndShortAbandons: a declined offer, an
// agent-to-agent transfer (not a second answer; it ends the first agent's
// handling), a pick, a while-queued transfer to another queue, and an
// abandon within the threshold (left out of the service level).
//
//	c1: queued t0, offered to X +1s, rejected +5s, offered to Y +6s, accepted +10s, transferred to X +40s
//	c2: queued t0, picked from Q +30s
//	c3: queued t0, moved to Q2 +70s, picked from Q2 +80s, closed +200s
//	c4: queued t0, closed +20s (abandoned within 60s)
func TestQueueMetricsTransfersAndShortAbandons(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := ledgerNow
		at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
		p := conversationFixture(t, s, "qm2")
		q, err := s.CreateQueue(ctx, Queue{Name: "Q", Priority: 1})
		if err != nil {
			t.Fatal(err)
		}
		q2, err := s.CreateQueue(ctx, Queue{Name: "Q2", Priority: 2})
		if err != nil {
			t.Fatal(err)
		}
		a := insertAgent(t, s, "Ann", 3, routing.PresenceAvailable, q.ID, q2.ID)
		b := insertAgent(t, s, "Bob", 3, routing.PresenceAvailable, q.ID, q2.ID)
		conv := func(id string) Conversation {
			c := newConversation(p, id, "psid-"+id, t0)
			if err := s.UpsertConversation(ctx, c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		route := func(c Conversation, queueID, routeID string, now time.Time) {
			t.Helper()
			if _, err := s.RouteAndEnqueue(ctx, Route{ConversationID: c.ID, WorkflowID: c.WorkflowID, PageRef: p.ID, RouteID: routeID,
				Distribution: pushDist(queueID), QueueID: queueID, WaitingSince: t0, Now: now}); err != nil {
				t.Fatal(err)
			}
		}
		closeAt := func(c Conversation, now time.Time) {
			t.Helper()
			if _, err := s.ReleaseConversation(ctx, c.ID, now); err != nil {
				t.Fatal(err)
			}
			c.State, c.ClosedAt, c.ClosedReason, c.UpdatedAt = "closed", &now, "test", now
			if err := s.SaveConversationState(ctx, c, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		claim := func(c Conversation, agent, how string, now time.Time) {
			t.Helper()
			if _, err := s.ClaimConversation(ctx, Claim{ConversationID: c.ID, AgentID: agent, How: how, Now: now}); err != nil {
				t.Fatal(err)
			}
		}
		c1, c2, c3, c4 := conv("qm2-c1"), conv("qm2-c2"), conv("qm2-c3"), conv("qm2-c4")

		route(c1, q.ID, "r1", at(0))
		first, err := s.DistributeRound(ctx, "round-1", at(1))
		if err != nil || len(first) != 1 {
			t.Fatalf("round 1 = %+v, %v", first, err)
		}
		x := first[0].AgentID
		if ok, err := s.DeclineOffer(ctx, Decline{ConversationID: c1.ID, OfferID: first[0].OfferID, AgentID: x, Why: DeclineRejected, Now: at(5)}); err != nil || !ok {
			t.Fatalf("decline = %v, %v", ok, err)
		}
		second, err := s.DistributeRound(ctx, "round-2", at(6))
		if err != nil || len(second) != 1 || second[0].AgentID == x {
			t.Fatalf("round 2 = %+v, %v; want an offer to the other agent", second, err)
		}
		y := second[0].AgentID
		if _, err := s.AcceptOffer(ctx, c1.ID, second[0].OfferID, y, at(10)); err != nil {
			t.Fatal(err)
		}
		route(c2, q.ID, "r2", at(0))
		route(c3, q.ID, "r3", at(0))
		route(c4, q.ID, "r4", at(0))
		claim(c2, a, ClaimPick, at(30))
		claim(c1, x, ClaimTransfer, at(40))
		closeAt(c4, at(20))
		route(c3, q2.ID, "r3-overflow", at(70))
		claim(c3, b, ClaimPick, at(80))
		closeAt(c3, at(200))

		evs, err := s.ConversationEvents(ctx, c1.ID)
		if err != nil {
			t.Fatal(err)
		}
		var transfers, assigned int
		for _, e := range evs {
			switch e.Kind {
			case ConvEventTransfer:
				transfers++
				if e.QueueID != q.ID || e.AgentID != y || e.Detail != "agent:"+x {
					t.Errorf("c1's transfer %+v, want out of Q, from %s to agent %s", e, y, x)
				}
			case ConvEventAssigned:
				assigned++
				if e.WaitedMS.Valid || e.Detail != ClaimTransfer || e.AgentID != x {
					t.Errorf("c1's assignment by transfer %+v, want no wait (not an answer)", e)
				}
			}
		}
		if transfers != 1 || assigned != 1 {
			t.Errorf("c1: %d transfers, %d assignments; want 1 and 1: %+v", transfers, assigned, evs)
		}

		rows, err := s.QueueMetrics(ctx, QueueMetricsFilter{From: t0, To: at(3600), Now: at(300)})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 {
			t.Fatalf("rows %+v", rows)
		}
		sec := func(d *time.Duration) float64 {
			if d == nil {
				return -1
			}
			return d.Seconds()
		}
		sl := func(v *float64) float64 {
			if v == nil {
				return -1
			}
			return *v
		}
		m, m2 := rows[0].Period, rows[1].Period
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"Q offered", float64(m.Offered), 4},
			{"Q offers", float64(m.Offers), 2},
			{"Q answered", float64(m.Answered), 2},
			{"Q answered within", float64(m.AnsweredWithinThreshold), 2},
			{"Q abandoned", float64(m.Abandoned), 1},
			{"Q abandoned within", float64(m.AbandonedWithinThreshold), 1},
			{"Q service level", sl(m.ServiceLevel), 1},
			{"Q ASA", sec(m.AverageSpeedOfAnswer), 20},
			{"Q AHT", sec(m.AverageHandleTime), 30},
			{"Q handled", float64(m.Handled), 1},
			{"Q transfers", float64(m.Transfers), 2},
			{"Q first response", sec(m.AverageFirstResponse), -1},
			{"Q2 offered", float64(m2.Offered), 1},
			{"Q2 answered", float64(m2.Answered), 1},
			{"Q2 abandoned", float64(m2.Abandoned), 0},
			{"Q2 ASA", sec(m2.AverageSpeedOfAnswer), 10},
			{"Q2 AHT", sec(m2.AverageHandleTime), 120},
			{"Q2 service level", sl(m2.ServiceLevel), 1},
			{"Q2 transfers", float64(m2.Transfers), 0},
			{"Q waiting", float64(rows[0].Live.Waiting), 0},
		} {
			if c.got != c.want {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		}
	})
}
