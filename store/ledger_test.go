package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"parley/routing"
)

func TestLedgerRouteAndEnqueue(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		billing := insertQueue(t, s, testQueue{Name: "Billing", Priority: 1,
			Overflow: routing.Overflow{WhileQueued: &routing.MaxWait{After: routing.Duration(5 * time.Minute),
				OverflowAction: routing.OverflowAction{Action: routing.ActionEnd}}}})
		sales := insertQueue(t, s, testQueue{Name: "Sales", Priority: 2})

		// No rule: the fallback queue.
		r := Route{ConversationID: "c1", WorkflowID: "wf-c1", PageRef: "page", RouteID: "r1",
			Context: routing.Context{PageRef: "page", PSID: "psid-1"}, Distribution: pushDist(billing),
			WaitingSince: ledgerNow.Add(-time.Minute), Now: ledgerNow}
		res, err := s.RouteAndEnqueue(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != RouteQueued || res.QueueID != billing || res.QueueName != "Billing" || res.Position != 1 || res.Waiting != 1 {
			t.Fatalf("route = %+v", res)
		}
		if !strings.Contains(res.Reason, "fallback queue Billing") {
			t.Errorf("reason = %q, want the fallback named", res.Reason)
		}
		if res.WhileQueued == nil || res.WhileQueued.After.D() != 5*time.Minute {
			t.Errorf("while queued = %+v, want the queue's", res.WhileQueued)
		}
		queued := eventsOf(t, s, EventConversationQueued)
		if len(queued) != 1 || queued[0].QueueID != billing || queued[0].ConversationID != "c1" {
			t.Fatalf("queued events = %+v", queued)
		}
		if d := eventData(t, queued[0]); d["queue_name"] != "Billing" || d["position"] != float64(1) || d["waiting_since"] == nil {
			t.Errorf("queued event data = %v", d)
		}

		// A retry returns the same and changes nothing.
		again, err := s.RouteAndEnqueue(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if again.QueueID != res.QueueID || again.Position != 1 || again.Reason != res.Reason || again.Outcome != RouteQueued {
			t.Errorf("retry = %+v, want %+v", again, res)
		}
		if n := len(eventsOf(t, s, EventConversationQueued)); n != 1 {
			t.Errorf("%d queued events after a retry, want 1", n)
		}

		// The order: priority first, then FIFO by waiting_since, then id.
		enqueue(t, s, "c2", billing, ledgerNow.Add(-2*time.Minute))
		enqueue(t, s, "c0", billing, ledgerNow.Add(-time.Minute)) // same wait as c1: id orders
		hi, err := s.RouteAndEnqueue(ctx, Route{ConversationID: "c3", WorkflowID: "wf-c3", RouteID: "r3", Priority: 5,
			Distribution: pushDist(billing), QueueID: billing, WaitingSince: ledgerNow, Now: ledgerNow})
		if err != nil {
			t.Fatal(err)
		}
		if hi.Position != 1 || hi.Waiting != 4 {
			t.Errorf("priority 5 = position %d of %d, want 1 of 4", hi.Position, hi.Waiting)
		}
		if got, want := queuedIDs(t, s, billing), []string{"c3", "c2", "c0", "c1"}; !slices.Equal(got, want) {
			t.Errorf("queue order = %v, want %v", got, want)
		}
		again, err = s.RouteAndEnqueue(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if again.Position != 4 || again.Waiting != 4 {
			t.Errorf("retry after others queued: position %d of %d, want 4 of 4", again.Position, again.Waiting)
		}

		// A new route (a transfer to a queue) moves it.
		moved, err := s.RouteAndEnqueue(ctx, Route{ConversationID: "c1", WorkflowID: "wf-c1", RouteID: "r1b",
			Distribution: pushDist(billing), QueueID: sales, WaitingSince: ledgerNow.Add(-time.Minute), Note: "wants a refund", Now: ledgerNow})
		if err != nil {
			t.Fatal(err)
		}
		if moved.QueueID != sales || moved.Position != 1 || !strings.Contains(moved.Reason, "Sales") {
			t.Errorf("transfer = %+v", moved)
		}
		if got := queuedIDs(t, s, billing); slices.Contains(got, "c1") {
			t.Errorf("c1 still in Billing: %v", got)
		}
		qs, err := s.QueuedConversations(ctx, sales)
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) != 1 || qs[0].Note != "wants a refund" || qs[0].Mode != routing.ModePush || !qs[0].WaitingSince.Equal(ledgerNow.Add(-time.Minute)) {
			t.Errorf("Sales = %+v", qs)
		}

		// An assigned conversation routed again (a transfer to a queue)
		// gives its agent's capacity back.
		ada := insertAgent(t, s, "Ada", 2, routing.PresenceAvailable, billing)
		if _, err := s.ClaimConversation(ctx, Claim{ConversationID: "c2", WorkflowID: "wf-c2", AgentID: ada, How: ClaimPick, Now: ledgerNow}); err != nil {
			t.Fatal(err)
		}
		if l := loadOf(t, s, ada); l.Used != 1 {
			t.Fatalf("Ada uses %d, want 1", l.Used)
		}
		if _, err := s.RouteAndEnqueue(ctx, Route{ConversationID: "c2", WorkflowID: "wf-c2", RouteID: "r2b",
			Distribution: pushDist(billing), QueueID: sales, Now: ledgerNow}); err != nil {
			t.Fatal(err)
		}
		if l := loadOf(t, s, ada); l.Used != 0 || l.Holds != 0 {
			t.Errorf("Ada after the transfer to a queue = %+v, want nothing held", l)
		}
		checkLedger(t, s, "c0", "c1", "c2", "c3")

		// Refusals.
		if _, err := s.RouteAndEnqueue(ctx, Route{ConversationID: "c9", WorkflowID: "wf", QueueID: "nope", Now: ledgerNow}); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown queue = %v, want ErrNotFound", err)
		}
		if _, err := s.RouteAndEnqueue(ctx, Route{ConversationID: "c9", WorkflowID: "wf", Distribution: pushDist("gone"), Now: ledgerNow}); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing fallback = %v, want ErrNotFound", err)
		}
		if _, err := s.RouteAndEnqueue(ctx, Route{ConversationID: "c9", QueueID: billing}); !errors.Is(err, ErrInvalid) {
			t.Errorf("no workflow id = %v, want ErrInvalid", err)
		}
		if _, err := s.QueuedConversations(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("QueuedConversations(unknown) = %v, want ErrNotFound", err)
		}
	})
}

func TestLedgerEstimatedWait(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		q := insertQueue(t, s, testQueue{Name: "Billing", Priority: 1})
		other := insertQueue(t, s, testQueue{Name: "Other", Priority: 1})
		add := func(queue string, waited time.Duration, ago time.Duration) {
			id, _ := newID()
			if _, err := exec(ctx, s.db, `INSERT INTO assignments (id, conversation_id, queue_id, agent_id, how, waited_ms, created_at)
				VALUES (?, ?, ?, 'a', 'accept', ?, ?)`, id, "x"+id, queue, waited.Milliseconds(), s.timestamp(ledgerNow.Add(-ago))); err != nil {
				t.Fatal(err)
			}
		}
		if res := enqueue(t, s, "c1", q, ledgerNow); res.EstimatedWait != 0 {
			t.Errorf("estimate without history = %v, want 0", res.EstimatedWait)
		}
		add(q, time.Hour, 25*time.Hour) // too old
		add(other, time.Hour, time.Minute)
		for i := range 25 { // the 20 latest: waits 1..20 minutes; older ones 30 minutes
			w := 30 * time.Minute
			if i >= 5 {
				w = time.Duration(i-4) * time.Minute
			}
			add(q, w, time.Duration(25-i)*time.Minute)
		}
		res := enqueue(t, s, "c2", q, ledgerNow)
		if want := 630 * time.Second; res.EstimatedWait != want { // average of 1..20 minutes
			t.Errorf("estimate = %v, want %v", res.EstimatedWait, want)
		}
		if res.Waiting != 2 || res.Position != 2 {
			t.Errorf("waiting %d, position %d; want 2, 2", res.Waiting, res.Position)
		}
	})
}

func TestLedgerRouteRulesAndOverflow(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		fallback := insertQueue(t, s, testQueue{Name: "General", Priority: 3})
		night := insertQueue(t, s, testQueue{Name: "Night", Priority: 2})
		// Closed now: open only on Sundays.
		day := insertQueue(t, s, testQueue{Name: "Day", Priority: 1,
			Hours:    routing.OperatingHours{TimeZone: "UTC", Periods: []routing.Period{{Day: "sunday", Start: "09:00", End: "17:00"}}},
			Overflow: routing.Overflow{OutOfHours: &routing.OverflowAction{Action: routing.ActionTransfer, QueueID: night}}})
		small := insertQueue(t, s, testQueue{Name: "Small", Priority: 1,
			Overflow: routing.Overflow{MaxWaiting: &routing.MaxWaiting{Count: 1, OverflowAction: routing.OverflowAction{Action: routing.ActionEnd}}}})
		vip := insertQueue(t, s, testQueue{Name: "VIP", Priority: 0,
			Overflow: routing.Overflow{MaxWaiting: &routing.MaxWaiting{Count: 0, OverflowAction: routing.OverflowAction{Action: routing.ActionQueue}}}})
		d := pushDist(fallback)
		d.Rules = []routing.Rule{
			{Name: "vip", QueueID: vip, Conditions: []routing.Condition{{Field: routing.FieldReferralRef, Operator: routing.OpEquals, Value: "vip"}}},
			{Name: "billing words", QueueID: small, Conditions: []routing.Condition{{Field: routing.FieldFirstMessage, Operator: routing.OpContains, Value: "invoice"}}},
			{Name: "daytime", QueueID: day, Conditions: []routing.Condition{{Field: routing.FieldLocale, Operator: routing.OpIn, Values: []string{"fr_FR", "fr_CA"}}}},
		}
		route := func(conv string, c routing.Context, queueID string) RouteResult {
			t.Helper()
			res, err := s.RouteAndEnqueue(ctx, Route{ConversationID: conv, WorkflowID: "wf-" + conv, RouteID: "r-" + conv,
				Context: c, Distribution: d, QueueID: queueID, Now: ledgerNow, WaitingSince: ledgerNow})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}

		res := route("c1", routing.Context{FirstMessage: "my invoice is wrong"}, "")
		if res.QueueID != small || !strings.Contains(res.Reason, `rule "billing words"`) {
			t.Errorf("c1 = %+v, want Small by rule billing words", res)
		}
		res = route("c2", routing.Context{FirstMessage: "another invoice"}, "")
		if res.QueueID != small || res.Position != 2 {
			t.Errorf("c2 = %+v, want Small, position 2", res)
		}
		// Small is overflowing now (2 waiting, more than 1): the rule skips it.
		res = route("c3", routing.Context{FirstMessage: "invoice again"}, "")
		if res.QueueID != fallback || !strings.Contains(res.Reason, "Small (overflowing)") {
			t.Errorf("c3 = %+v, want the fallback, Small overflowing", res)
		}
		// Sent to Small directly: its before-queueing rule ends it.
		res = route("c4", routing.Context{}, small)
		if res.Outcome != RouteEnded || res.Trigger != routing.TriggerMaxWaiting || res.QueueID != small ||
			!strings.Contains(res.Reason, "Small") || !strings.Contains(res.Reason, "ended") {
			t.Errorf("c4 = %+v, want ended by Small's max-waiting rule", res)
		}
		if _, queued, _ := getItem(ctx, s.db, "c4"); queued {
			t.Error("c4 queued after an ended route")
		}
		// Out of hours: transferred to Night.
		res = route("c5", routing.Context{Locale: "fr_FR"}, "")
		if res.Outcome != RouteQueued || res.QueueID != night || !res.OutOfHours || res.Trigger != routing.TriggerOutOfHours ||
			!strings.Contains(res.Reason, "Day is out of hours") || !strings.Contains(res.Reason, "transferred to Night") {
			t.Errorf("c5 = %+v, want Night after Day's out-of-hours transfer", res)
		}
		// VIP: more than 0 waiting -> queue anyway.
		if res = route("c6", routing.Context{ReferralRef: "vip"}, ""); res.QueueID != vip || res.Trigger != "" {
			t.Errorf("c6 = %+v, want VIP without overflow", res)
		}
		res = route("c7", routing.Context{}, vip)
		if res.Outcome != RouteQueued || res.QueueID != vip || res.Position != 2 || res.Trigger != routing.TriggerMaxWaiting ||
			!strings.Contains(res.Reason, "queued anyway") {
			t.Errorf("c7 = %+v, want VIP position 2 by its queue-anyway rule", res)
		}
		// A conversation queued in Small, then ended there by a transfer
		// back: its old place goes.
		res = route("c1", routing.Context{}, small) // a new route id? no: the same: a retry
		if res.QueueID != small || res.Position != 1 {
			t.Errorf("c1 retried = %+v", res)
		}
		res, err := s.RouteAndEnqueue(ctx, Route{ConversationID: "c1", WorkflowID: "wf-c1", RouteID: "r-c1-again",
			Distribution: d, QueueID: small, Now: ledgerNow})
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != RouteQueued {
			t.Errorf("c1 re-routed to Small with 1 other waiting = %+v, want queued", res)
		}
		checkLedger(t, s, "c1", "c2", "c3", "c5", "c6", "c7")
	})
}

func TestLedgerOverflowTransferLoop(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		full := func(next string) routing.Overflow {
			return routing.Overflow{MaxWaiting: &routing.MaxWaiting{Count: 0,
				OverflowAction: routing.OverflowAction{Action: routing.ActionTransfer, QueueID: next}}}
		}
		// A <-> B loop, each full: queued in A again, the loop named.
		a := insertQueue(t, s, testQueue{Name: "A", Priority: 1})
		b := insertQueue(t, s, testQueue{Name: "B", Priority: 1, Overflow: full(a)})
		setOverflow(t, s, a, full(b))
		enqueue(t, s, "x1", a, ledgerNow)
		enqueueRaw(t, s, "x2", b) // B gets one waiting, too
		res, err := s.RouteAndEnqueue(ctx, Route{ConversationID: "c1", WorkflowID: "wf", RouteID: "r", Distribution: pushDist(a), QueueID: a, Now: ledgerNow})
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != RouteQueued || res.QueueID != a || !strings.Contains(res.Reason, "transferred to B") ||
			!strings.Contains(res.Reason, "already visited") {
			t.Errorf("loop = %+v, want queued in A with the loop in the reason", res)
		}
		// A chain longer than 5 hops stops after 5 transfers.
		chain := make([]string, 8)
		for i := len(chain) - 1; i >= 0; i-- {
			var o routing.Overflow
			if i < len(chain)-1 {
				o = full(chain[i+1])
			}
			chain[i] = insertQueue(t, s, testQueue{Name: fmt.Sprintf("Q%d", i), Priority: 1, Overflow: o})
			enqueueRaw(t, s, fmt.Sprintf("w%d", i), chain[i])
		}
		res, err = s.RouteAndEnqueue(ctx, Route{ConversationID: "c2", WorkflowID: "wf", RouteID: "r", Distribution: pushDist(a), QueueID: chain[0], Now: ledgerNow})
		if err != nil {
			t.Fatal(err)
		}
		if res.QueueID != chain[5] || !strings.Contains(res.Reason, "after 5 transfers") {
			t.Errorf("chain = %+v, want queued in Q5 after 5 transfers", res)
		}
	})
}

func setOverflow(t *testing.T, s *Store, queueID string, o routing.Overflow) {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec(context.Background(), s.db, `UPDATE queues SET overflow = ? WHERE id = ?`, string(b), queueID); err != nil {
		t.Fatal(err)
	}
}

// enqueueRaw puts a conversation in a queue whatever its overflow says.
func enqueueRaw(t *testing.T, s *Store, conv, queueID string) {
	t.Helper()
	if _, err := exec(context.Background(), s.db, `INSERT INTO queue_items (conversation_id, workflow_id, queue_id, page_ref, mode, units,
		waiting_since, enqueued_at, allowed_presences) VALUES (?, ?, ?, '', 'pick', 1, ?, ?, '[]')`,
		conv, "wf-"+conv, queueID, s.timestamp(ledgerNow), s.timestamp(ledgerNow)); err != nil {
		t.Fatal(err)
	}
}

func TestLedgerDistributeRound(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		billing := insertQueue(t, s, testQueue{Name: "Billing", Priority: 1})
		ada := insertAgent(t, s, "Ada", 2, routing.PresenceAvailable, billing)
		bob := insertAgent(t, s, "Bob", 1, routing.PresenceAvailable, billing)
		insertAgent(t, s, "Cy", 3, routing.PresenceAway, billing)
		for i := range 5 {
			enqueue(t, s, fmt.Sprintf("c%d", i), billing, ledgerNow.Add(time.Duration(i-10)*time.Minute))
		}
		// A pick item is never offered.
		pick := pushDist(billing)
		pick.Mode = routing.ModePick
		if _, err := s.RouteAndEnqueue(ctx, Route{ConversationID: "p0", WorkflowID: "wf-p0", Distribution: pick, QueueID: billing,
			WaitingSince: ledgerNow.Add(-time.Hour), Now: ledgerNow}); err != nil {
			t.Fatal(err)
		}
		offers, err := s.DistributeRound(ctx, "round-1", ledgerNow)
		if err != nil {
			t.Fatal(err)
		}
		if len(offers) != 3 {
			t.Fatalf("round 1 made %d offers, want 3 (Ada 2, Bob 1): %+v", len(offers), offers)
		}
		byConv := map[string]OfferMade{}
		perAgent := map[string]int{}
		for _, o := range offers {
			byConv[o.ConversationID] = o
			perAgent[o.AgentID]++
			if o.QueueID != billing || o.QueueName != "Billing" || o.WorkflowID != "wf-"+o.ConversationID || o.OfferID == "" ||
				!o.ExpiresAt.Equal(ledgerNow.Add(2*time.Minute)) || o.AgentName == "" {
				t.Errorf("offer = %+v", o)
			}
		}
		// FIFO: the three longest waiting (c0, c1, c2).
		for _, c := range []string{"c0", "c1", "c2"} {
			if _, ok := byConv[c]; !ok {
				t.Errorf("%s not offered; offers %+v", c, offers)
			}
		}
		if perAgent[ada] != 2 || perAgent[bob] != 1 {
			t.Errorf("offers per agent = %v, want Ada 2, Bob 1", perAgent)
		}
		created := eventsOf(t, s, EventOfferCreated)
		if len(created) != 3 {
			t.Fatalf("%d offer.created events, want 3", len(created))
		}
		for _, e := range created {
			d := eventData(t, e)
			if o := byConv[e.ConversationID]; e.AgentID != o.AgentID || e.QueueID != billing || d["offer_id"] != o.OfferID ||
				d["agent_name"] != o.AgentName || d["queue_name"] != "Billing" || d["expires_at"] == nil {
				t.Errorf("offer.created = %+v %v", e, d)
			}
		}
		if l := loadOf(t, s, ada); l.Used != 2 || l.Holds != 2 || l.Presence != routing.PresenceDoNotDisturb {
			t.Errorf("Ada = %+v, want 2 of 2 used, do_not_disturb", l)
		}
		qs, err := s.QueuedConversations(ctx, billing)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if o, ok := byConv[q.ConversationID]; ok != (q.OfferedTo != "") || ok && q.OfferedTo != o.AgentID {
				t.Errorf("%s offered to %q, want %q", q.ConversationID, q.OfferedTo, o.AgentID)
			}
		}

		// A retried round returns its offers and makes none.
		again, err := s.DistributeRound(ctx, "round-1", ledgerNow.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 3 {
			t.Fatalf("retried round = %d offers, want 3", len(again))
		}
		for _, o := range again {
			if b := byConv[o.ConversationID]; !sameOffer(b, o) {
				t.Errorf("retried offer = %+v, want %+v", o, b)
			}
		}
		// Everyone is full: no offer.
		none, err := s.DistributeRound(ctx, "round-2", ledgerNow)
		if err != nil {
			t.Fatal(err)
		}
		if len(none) != 0 {
			t.Errorf("round 2 = %+v, want no offers", none)
		}
		var lastOffered string
		if err := get(ctx, s.db, &lastOffered, `SELECT CAST(last_offered_at AS TEXT) FROM agents WHERE id = ?`, ada); err != nil || lastOffered == "" {
			t.Errorf("Ada's last_offered_at = %q, %v", lastOffered, err)
		}
		checkLedger(t, s, "c0", "c1", "c2", "c3", "c4", "p0")

		if _, err := s.DistributeRound(ctx, "", ledgerNow); !errors.Is(err, ErrInvalid) {
			t.Errorf("round without id = %v, want ErrInvalid", err)
		}
	})
}

// offerOf returns the open offer of a conversation.
func offerOf(t *testing.T, s *Store, conv string) holdRow {
	t.Helper()
	h, ok, err := getHold(context.Background(), s.db, conv)
	if err != nil || !ok || h.Kind != holdOffer {
		t.Fatalf("offer of %s: %+v %v %v", conv, h, ok, err)
	}
	return h
}

func TestLedgerAcceptOffer(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		billing := insertQueue(t, s, testQueue{Name: "Billing", Priority: 1})
		ada := insertAgent(t, s, "Ada", 2, routing.PresenceAvailable, billing)
		if _, err := s.RouteAndEnqueue(ctx, Route{ConversationID: "c1", WorkflowID: "wf-c1", Distribution: pushDist(billing),
			QueueID: billing, Note: "VIP", WaitingSince: ledgerNow.Add(-90 * time.Second), Now: ledgerNow}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DistributeRound(ctx, "r1", ledgerNow); err != nil {
			t.Fatal(err)
		}
		h := offerOf(t, s, "c1")
		if _, err := s.AcceptOffer(ctx, "c1", h.OfferID, "someone-else", ledgerNow); !errors.Is(err, ErrOfferGone) {
			t.Errorf("accept by another agent = %v, want ErrOfferGone", err)
		}
		if _, err := s.AcceptOffer(ctx, "c1", "another-offer", ada, ledgerNow); !errors.Is(err, ErrOfferGone) || !errors.Is(err, ErrConflict) {
			t.Errorf("accept of another offer = %v, want ErrOfferGone (a conflict)", err)
		}
		at := ledgerNow.Add(30 * time.Second)
		a, err := s.AcceptOffer(ctx, "c1", h.OfferID, ada, at)
		if err != nil {
			t.Fatal(err)
		}
		want := Assignment{ConversationID: "c1", AgentID: ada, AgentName: "Ada", QueueID: billing, QueueName: "Billing",
			How: "accept", Waited: 2 * time.Minute, Note: "VIP"}
		if a != want {
			t.Errorf("accept = %+v, want %+v", a, want)
		}
		again, err := s.AcceptOffer(ctx, "c1", h.OfferID, ada, at.Add(time.Minute))
		if err != nil || again != want {
			t.Errorf("accept retried = %+v, %v; want %+v", again, err, want)
		}
		st := checkLedger(t, s, "c1")
		if hold := st.holds["c1"]; hold.Kind != holdActive || hold.ExpiresAt.Valid || hold.AgentID != ada {
			t.Errorf("hold = %+v, want active with Ada, no expiry", hold)
		}
		if _, queued := st.items["c1"]; queued {
			t.Error("c1 still queued")
		}
		if l := loadOf(t, s, ada); l.Used != 1 || l.Presence != routing.PresenceBusy {
			t.Errorf("Ada = %+v, want 1 used, busy", l)
		}
		ws := eventsOf(t, s, EventOfferWithdrawn)
		if len(ws) != 1 || ws[0].AgentID != ada || eventData(t, ws[0])["reason"] != "accepted" {
			t.Errorf("withdrawn events = %+v, want one accepted for Ada", ws)
		}
		var n int
		if err := get(ctx, s.db, &n, `SELECT COUNT(*) FROM assignments WHERE conversation_id = 'c1' AND how = 'accept' AND waited_ms = 120000`); err != nil || n != 1 {
			t.Errorf("%d accept assignments of 2 min, %v; want 1", n, err)
		}
		// After a release the offer is gone for good.
		if _, err := s.ReleaseConversation(ctx, "c1", at); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AcceptOffer(ctx, "c1", h.OfferID, ada, at); !errors.Is(err, ErrOfferGone) {
			t.Errorf("accept after release = %v, want ErrOfferGone", err)
		}
	})
}

func TestLedgerDeclineOffer(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		billing := insertQueue(t, s, testQueue{Name: "Billing", Priority: 1})
		ada := insertAgent(t, s, "Ada", 1, routing.PresenceAvailable, billing)
		enqueue(t, s, "c1", billing, ledgerNow.Add(-time.Minute))
		if _, err := s.DistributeRound(ctx, "r1", ledgerNow); err != nil {
			t.Fatal(err)
		}
		h := offerOf(t, s, "c1")
		if changed, err := s.DeclineOffer(ctx, Decline{ConversationID: "c1", OfferID: "other", AgentID: ada, Why: DeclineRejected, Now: ledgerNow}); err != nil || changed {
			t.Errorf("decline of another offer = %v, %v; want false", changed, err)
		}
		changed, err := s.DeclineOffer(ctx, Decline{ConversationID: "c1", OfferID: h.OfferID, AgentID: ada, Why: DeclineTimedOut,
			SetInactive: true, Now: ledgerNow})
		if err != nil || !changed {
			t.Fatalf("decline = %v, %v", changed, err)
		}
		st := checkLedger(t, s, "c1")
		it := st.items["c1"]
		if _, held := st.holds["c1"]; held || it.OfferID != "" || it.OfferRound != "" || it.Declined != `["`+ada+`"]` {
			t.Errorf("after decline: item %+v, held %v", it, held)
		}
		if !it.WaitingSince.Equal(ledgerNow.Add(-time.Minute)) {
			t.Errorf("waiting since %v changed", it.WaitingSince)
		}
		if a := st.agents[ada]; a.Presence != routing.PresenceInactive || a.Used != 0 {
			t.Errorf("Ada = %+v, want inactive, nothing held", a)
		}
		ws := eventsOf(t, s, EventOfferWithdrawn)
		if len(ws) != 1 || eventData(t, ws[0])["reason"] != DeclineTimedOut || ws[0].AgentID != ada {
			t.Errorf("withdrawn events = %+v", ws)
		}
		if changed, err := s.DeclineOffer(ctx, Decline{ConversationID: "c1", OfferID: h.OfferID, AgentID: ada, Why: DeclineTimedOut, Now: ledgerNow}); err != nil || changed {
			t.Errorf("decline retried = %v, %v; want false", changed, err)
		}
		// Inactive: no offer; every member declined: offered again once available.
		if offers, err := s.DistributeRound(ctx, "r2", ledgerNow); err != nil || len(offers) != 0 {
			t.Errorf("round with Ada inactive = %+v, %v", offers, err)
		}
		setPresence(t, s, ada, routing.PresenceAvailable)
		offers, err := s.DistributeRound(ctx, "r3", ledgerNow)
		if err != nil || len(offers) != 1 {
			t.Fatalf("round 3 = %+v, %v; want Ada offered again (every member declined)", offers, err)
		}
		// Withdrawn: the item stays, its offer cleared, nobody added to declined.
		changed, err = s.DeclineOffer(ctx, Decline{ConversationID: "c1", OfferID: offers[0].OfferID, Why: DeclineWithdrawn, Now: ledgerNow})
		if err != nil || !changed {
			t.Fatalf("withdraw = %v, %v", changed, err)
		}
		st = checkLedger(t, s, "c1")
		if it := st.items["c1"]; it.OfferID != "" || it.Declined != `["`+ada+`"]` {
			t.Errorf("after withdrawal: %+v", it)
		}
		if _, err := s.DeclineOffer(ctx, Decline{ConversationID: "c1", OfferID: "x", Why: "bored"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("unknown why = %v, want ErrInvalid", err)
		}
	})
}

func TestLedgerClaim(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		billing := insertQueue(t, s, testQueue{Name: "Billing", Priority: 1})
		ada := insertAgent(t, s, "Ada", 1, routing.PresenceAvailable, billing)
		bob := insertAgent(t, s, "Bob", 2, routing.PresenceAvailable, billing)
		enqueue(t, s, "c1", billing, ledgerNow.Add(-time.Minute))
		enqueue(t, s, "c2", billing, ledgerNow)

		a, err := s.ClaimConversation(ctx, Claim{ConversationID: "c1", WorkflowID: "wf-c1", AgentID: ada, How: ClaimPick, Now: ledgerNow})
		if err != nil {
			t.Fatal(err)
		}
		want := Assignment{ConversationID: "c1", AgentID: ada, AgentName: "Ada", QueueID: billing, QueueName: "Billing", How: "pick", Waited: time.Minute}
		if a != want {
			t.Errorf("pick = %+v, want %+v", a, want)
		}
		// A retry returns the same assignment.
		again, err := s.ClaimConversation(ctx, Claim{ConversationID: "c1", WorkflowID: "wf-c1", AgentID: ada, How: ClaimPick, Now: ledgerNow.Add(time.Minute)})
		if err != nil || again != want {
			t.Errorf("pick retried = %+v, %v", again, err)
		}
		// Bob picks it too late: it is not waiting any more.
		if _, err := s.ClaimConversation(ctx, Claim{ConversationID: "c1", AgentID: bob, How: ClaimPick, Now: ledgerNow}); !errors.Is(err, ErrConflict) {
			t.Errorf("second pick = %v, want ErrConflict", err)
		}
		// Ada is full.
		_, err = s.ClaimConversation(ctx, Claim{ConversationID: "c2", AgentID: ada, How: ClaimPick, Now: ledgerNow})
		var ce *CapacityError
		if !errors.As(err, &ce) || ce.Used != 1 || ce.Capacity != 1 || ce.Units != 1 || ce.Presence != routing.PresenceDoNotDisturb {
			t.Errorf("pick over capacity = %v, want a CapacityError 1 of 1, do_not_disturb", err)
		}
		if _, queued, _ := getItem(ctx, s.db, "c2"); !queued {
			t.Error("c2 left its queue after a refused pick")
		}
		// A supervisor forces it.
		f, err := s.ClaimConversation(ctx, Claim{ConversationID: "c2", AgentID: ada, How: ClaimAssign, Force: true, Note: "urgent", Now: ledgerNow})
		if err != nil {
			t.Fatal(err)
		}
		if !f.Forced || f.How != "assign" || f.Note != "urgent" || f.QueueID != billing {
			t.Errorf("forced = %+v", f)
		}
		if l := loadOf(t, s, ada); l.Used != 2 || !l.Forced || l.Holds != 2 {
			t.Errorf("Ada = %+v, want 2 of 1, forced", l)
		}
		checkLedger(t, s, "c1", "c2")
		// Transfer c2 to Bob: Ada's capacity comes back.
		tr, err := s.ClaimConversation(ctx, Claim{ConversationID: "c2", AgentID: bob, How: ClaimTransfer, Note: "over to you", Now: ledgerNow})
		if err != nil {
			t.Fatal(err)
		}
		if tr.Forced || tr.AgentID != bob || tr.Note != "over to you" || tr.Waited != 0 {
			t.Errorf("transfer = %+v", tr)
		}
		if l := loadOf(t, s, ada); l.Used != 1 || l.Forced {
			t.Errorf("Ada after transfer = %+v, want 1 used, not forced", l)
		}
		// An assign of a conversation not queued (routing was off).
		as, err := s.ClaimConversation(ctx, Claim{ConversationID: "c3", WorkflowID: "wf-c3", AgentID: bob, How: ClaimAssign, Units: 1, Now: ledgerNow})
		if err != nil || as.QueueID != "" || as.Forced {
			t.Errorf("assign of an unrouted conversation = %+v, %v", as, err)
		}
		// Bob is full now: a force within capacity is not marked forced.
		if _, err := s.ClaimConversation(ctx, Claim{ConversationID: "c4", WorkflowID: "wf-c4", AgentID: bob, How: ClaimAssign, Now: ledgerNow}); !errors.As(err, &ce) {
			t.Errorf("assign over capacity = %v, want a CapacityError", err)
		}
		if _, err := s.ReleaseConversation(ctx, "c3", ledgerNow); err != nil {
			t.Fatal(err)
		}
		nf, err := s.ClaimConversation(ctx, Claim{ConversationID: "c4", WorkflowID: "wf-c4", AgentID: bob, How: ClaimAssign, Force: true, Now: ledgerNow})
		if err != nil || nf.Forced {
			t.Errorf("forced assign within capacity = %+v, %v; want not forced", nf, err)
		}
		// A pick of an offered conversation withdraws the offer.
		carl := insertAgent(t, s, "Carl", 1, routing.PresenceAvailable, billing)
		enqueue(t, s, "c5", billing, ledgerNow)
		offers, err := s.DistributeRound(ctx, "r1", ledgerNow)
		if err != nil || len(offers) != 1 || offers[0].AgentID != carl {
			t.Fatalf("round = %+v, %v; want c5 offered to Carl", offers, err)
		}
		dan := insertAgent(t, s, "Dan", 1, routing.PresenceAvailable, billing)
		if _, err := s.ClaimConversation(ctx, Claim{ConversationID: "c5", AgentID: dan, How: ClaimPick, Now: ledgerNow}); err != nil {
			t.Fatal(err)
		}
		ws := eventsOf(t, s, EventOfferWithdrawn)
		if len(ws) != 1 || ws[0].AgentID != carl || eventData(t, ws[0])["reason"] != DeclineWithdrawn {
			t.Errorf("withdrawn = %+v, want Carl's offer withdrawn", ws)
		}
		if l := loadOf(t, s, carl); l.Used != 0 {
			t.Errorf("Carl = %+v, want nothing held", l)
		}
		if _, err := s.AcceptOffer(ctx, "c5", offers[0].OfferID, carl, ledgerNow); !errors.Is(err, ErrOfferGone) {
			t.Errorf("accept of a withdrawn offer = %v, want ErrOfferGone", err)
		}
		if _, err := s.ClaimConversation(ctx, Claim{ConversationID: "c6", AgentID: "nobody", How: ClaimAssign, Now: ledgerNow}); !errors.Is(err, ErrNotFound) {
			t.Errorf("claim for an unknown agent = %v, want ErrNotFound", err)
		}
		if _, err := s.ClaimConversation(ctx, Claim{ConversationID: "c6", AgentID: dan, How: "steal", Now: ledgerNow}); !errors.Is(err, ErrInvalid) {
			t.Errorf("unknown how = %v, want ErrInvalid", err)
		}
		checkLedger(t, s, "c1", "c2", "c4", "c5")
	})
}

func TestLedgerReleaseAndWrapUp(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		billing := insertQueue(t, s, testQueue{Name: "Billing", Priority: 1})
		ada := insertAgent(t, s, "Ada", 3, routing.PresenceAvailable, billing)
		enqueue(t, s, "queued", billing, ledgerNow)
		enqueue(t, s, "offered", billing, ledgerNow.Add(time.Second))
		if _, err := s.ClaimConversation(ctx, Claim{ConversationID: "active", WorkflowID: "wf", AgentID: ada, How: ClaimAssign, Units: 2, Now: ledgerNow}); err != nil {
			t.Fatal(err)
		}
		offers, err := s.DistributeRound(ctx, "r1", ledgerNow)
		if err != nil || len(offers) != 1 || offers[0].ConversationID != "queued" {
			t.Fatalf("round = %+v, %v; want the first queued offered to Ada", offers, err)
		}

		// Wrap-up keeps the units.
		if err := s.HoldForWrapUp(ctx, "active", ledgerNow); err != nil {
			t.Fatal(err)
		}
		if err := s.HoldForWrapUp(ctx, "active", ledgerNow); err != nil {
			t.Fatal(err)
		}
		if err := s.HoldForWrapUp(ctx, "nothing", ledgerNow); err != nil {
			t.Errorf("wrap-up of nothing = %v", err)
		}
		if err := s.HoldForWrapUp(ctx, "queued", ledgerNow); err != nil {
			t.Fatal(err)
		}
		st := checkLedger(t, s, "queued", "offered", "active")
		if st.holds["active"].Kind != holdWrapUp || st.holds["queued"].Kind != holdOffer || st.agents[ada].Used != 3 {
			t.Errorf("after wrap-up: holds %+v, Ada %+v", st.holds, st.agents[ada])
		}

		rel, err := s.ReleaseConversation(ctx, "active", ledgerNow)
		if err != nil || rel != (Released{AgentID: ada, Units: 2}) {
			t.Errorf("release of wrap-up = %+v, %v", rel, err)
		}
		rel, err = s.ReleaseConversation(ctx, "queued", ledgerNow)
		if err != nil || rel != (Released{AgentID: ada, Units: 1, OfferID: offers[0].OfferID, QueueID: billing}) {
			t.Errorf("release of offered = %+v, %v", rel, err)
		}
		ws := eventsOf(t, s, EventOfferWithdrawn)
		if len(ws) != 1 || eventData(t, ws[0])["reason"] != DeclineWithdrawn {
			t.Errorf("withdrawn = %+v", ws)
		}
		rel, err = s.ReleaseConversation(ctx, "offered", ledgerNow)
		if err != nil || rel != (Released{QueueID: billing}) {
			t.Errorf("release of queued = %+v, %v", rel, err)
		}
		for _, c := range []string{"active", "queued", "offered", "never"} {
			if rel, err := s.ReleaseConversation(ctx, c, ledgerNow); err != nil || rel != (Released{}) {
				t.Errorf("release %s again = %+v, %v; want nothing", c, rel, err)
			}
		}
		st = checkLedger(t, s)
		if len(st.holds) != 0 || len(st.items) != 0 {
			t.Errorf("left: %+v %+v", st.holds, st.items)
		}
		if l := loadOf(t, s, ada); l.Used != 0 || l.Presence != routing.PresenceAvailable || !slices.Equal(l.QueueIDs, []string{billing}) || l.AgentName != "Ada" || l.Capacity != 3 {
			t.Errorf("Ada = %+v", l)
		}
	})
}

func TestLedgerPresenceEvents(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		billing := insertQueue(t, s, testQueue{Name: "Billing", Priority: 1})
		ada := insertAgent(t, s, "Ada", 2, routing.PresenceAvailable, billing)
		for _, c := range []string{"c1", "c2"} {
			if _, err := s.ClaimConversation(ctx, Claim{ConversationID: c, WorkflowID: "wf", AgentID: ada, How: ClaimAssign, Now: ledgerNow}); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []string{"c1", "c2"} {
			if _, err := s.ReleaseConversation(ctx, c, ledgerNow); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for _, e := range eventsOf(t, s, EventPresenceChanged) {
			if e.AgentID != ada {
				t.Errorf("presence event for %s", e.AgentID)
			}
			got = append(got, eventData(t, e)["presence"].(string))
		}
		want := []string{routing.PresenceBusy, routing.PresenceDoNotDisturb, routing.PresenceBusy, routing.PresenceAvailable}
		if !slices.Equal(got, want) {
			t.Errorf("presence events = %v, want %v", got, want)
		}
	})
}

// TestLedgerInvariantCheck proves the checker the other tests rely on
// catches each kind of broken ledger.
func TestLedgerInvariantCheck(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		billing := insertQueue(t, s, testQueue{Name: "Billing", Priority: 1})
		ada := insertAgent(t, s, "Ada", 1, routing.PresenceAvailable, billing)
		hold := func(conv, kind, offerID string, units int, forced bool) {
			t.Helper()
			if _, err := exec(ctx, s.db, `INSERT INTO capacity_holds (conversation_id, agent_id, units, kind, offer_id, forced, workflow_id, created_at)
				VALUES (?, ?, ?, ?, ?, ?, 'wf', ?)`, conv, ada, units, kind, offerID, forced, s.timestamp(ledgerNow)); err != nil {
				t.Fatal(err)
			}
		}
		violations := func(live ...string) []string {
			t.Helper()
			st, err := readLedger(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			return st.violations(live)
		}
		if v := violations(); len(v) != 0 {
			t.Fatalf("empty ledger: %v", v)
		}
		if v := violations("lost"); len(v) != 1 || !strings.Contains(v[0], "lost") {
			t.Errorf("lost conversation: %v", v)
		}
		hold("a1", holdActive, "", 1, false)
		hold("a2", holdActive, "", 1, false)
		if v := violations("a1", "a2"); len(v) != 1 || !strings.Contains(v[0], "2 units of 1") {
			t.Errorf("over capacity: %v", v)
		}
		hold("a3", holdActive, "", 1, true)
		if v := violations("a1", "a2", "a3"); len(v) != 0 {
			t.Errorf("over capacity, forced: %v", v)
		}
		enqueueRaw(t, s, "a1", billing)
		hold("o1", holdOffer, "offer-1", 0, false)
		enqueueRaw(t, s, "q1", billing)
		if _, err := exec(ctx, s.db, `UPDATE queue_items SET offer_id = 'ghost' WHERE conversation_id = 'q1'`); err != nil {
			t.Fatal(err)
		}
		v := violations()
		joined := strings.Join(v, "\n")
		if len(v) != 3 || !strings.Contains(joined, "a1 is active") || !strings.Contains(joined, "o1 offered") || !strings.Contains(joined, "q1: queue item offered") {
			t.Errorf("violations = %v, want a1 both active and queued, o1 offered not queued, q1 offered without hold", v)
		}
	})
}

func sameOffer(a, b OfferMade) bool {
	ea, eb := a.ExpiresAt, b.ExpiresAt
	a.ExpiresAt, b.ExpiresAt = time.Time{}, time.Time{}
	return a == b && ea.Equal(eb)
}

func TestLedgerDeletedQueuesAndAgents(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		live := insertQueue(t, s, testQueue{Name: "Live", Priority: 1})
		gone := insertQueue(t, s, testQueue{Name: "Gone", Priority: 0})
		ada := insertAgent(t, s, "Ada", 3, routing.PresenceAvailable, live, gone)
		bob := insertAgent(t, s, "Bob", 3, routing.PresenceAvailable, live)
		enqueue(t, s, "in-gone", gone, ledgerNow.Add(-time.Hour))
		enqueue(t, s, "in-live", live, ledgerNow)
		if _, err := exec(ctx, s.db, `UPDATE queues SET deleted_at = ? WHERE id = ?`, s.timestamp(ledgerNow), gone); err != nil {
			t.Fatal(err)
		}
		if _, err := exec(ctx, s.db, `UPDATE agents SET deleted_at = ? WHERE id = ?`, s.timestamp(ledgerNow), ada); err != nil {
			t.Fatal(err)
		}
		offers, err := s.DistributeRound(ctx, "r1", ledgerNow)
		if err != nil {
			t.Fatal(err)
		}
		if len(offers) != 1 || offers[0].ConversationID != "in-live" || offers[0].AgentID != bob {
			t.Errorf("offers = %+v, want in-live to Bob only (Gone deleted, Ada deleted)", offers)
		}
		if _, err := s.ClaimConversation(ctx, Claim{ConversationID: "in-gone", AgentID: ada, How: ClaimPick, Now: ledgerNow}); !errors.Is(err, ErrNotFound) {
			t.Errorf("pick by a deleted agent = %v, want ErrNotFound", err)
		}
		// A deleted queue is no route, but what waits there can still be listed, picked and moved.
		if _, err := s.RouteAndEnqueue(ctx, Route{ConversationID: "new", WorkflowID: "wf", QueueID: gone, Now: ledgerNow}); !errors.Is(err, ErrNotFound) {
			t.Errorf("route to a deleted queue = %v, want ErrNotFound", err)
		}
		if got := queuedIDs(t, s, gone); !slices.Equal(got, []string{"in-gone"}) {
			t.Errorf("Gone lists %v", got)
		}
		if _, err := s.ClaimConversation(ctx, Claim{ConversationID: "in-gone", AgentID: bob, How: ClaimPick, Now: ledgerNow}); err != nil {
			t.Errorf("pick from a deleted queue: %v", err)
		}
		for _, l := range mustLoads(t, s) {
			if l.AgentID == ada {
				t.Errorf("AgentLoads lists deleted Ada")
			}
			if l.AgentID == bob && !slices.Equal(l.QueueIDs, []string{live}) {
				t.Errorf("Bob's queues = %v, want only Live", l.QueueIDs)
			}
		}
		checkLedger(t, s, "in-gone", "in-live")
	})
}

func mustLoads(t *testing.T, s *Store) []AgentLoad {
	t.Helper()
	loads, err := s.AgentLoads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return loads
}

// TestLedgerWithQueueCRUD: queues and members written by the queue CRUD
// (store/queues.go) read as the ledger expects them.
func TestLedgerWithQueueCRUD(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		night, err := s.CreateQueue(ctx, Queue{Name: "Night", Priority: 2, Method: routing.MethodRoundRobin})
		if err != nil {
			t.Fatal(err)
		}
		day, err := s.CreateQueue(ctx, Queue{Name: "Day", Priority: 1,
			Hours: routing.OperatingHours{TimeZone: "Europe/Paris", Periods: []routing.Period{{Day: "sunday", Start: "09:00", End: "17:00"}},
				Holidays: []string{"2026-12-25"}},
			Overflow: routing.Overflow{OutOfHours: &routing.OverflowAction{Action: routing.ActionTransfer, QueueID: night.ID},
				WhileQueued: &routing.MaxWait{After: routing.Duration(10 * time.Minute), OverflowAction: routing.OverflowAction{Action: routing.ActionEnd}}}})
		if err != nil {
			t.Fatal(err)
		}
		ada := insertAgent(t, s, "Ada", 2, routing.PresenceAvailable)
		if err := s.AddQueueAgent(ctx, night.ID, ada); err != nil {
			t.Fatal(err)
		}
		res, err := s.RouteAndEnqueue(ctx, Route{ConversationID: "c1", WorkflowID: "wf-c1", RouteID: "r1",
			Distribution: pushDist(night.ID), QueueID: day.ID, Now: ledgerNow})
		if err != nil {
			t.Fatal(err)
		}
		if res.QueueID != night.ID || !res.OutOfHours || res.Trigger != routing.TriggerOutOfHours || res.WhileQueued != nil {
			t.Errorf("route = %+v, want Night after Day's out-of-hours transfer", res)
		}
		offers, err := s.DistributeRound(ctx, "r1", ledgerNow)
		if err != nil || len(offers) != 1 || offers[0].AgentID != ada || offers[0].QueueName != "Night" {
			t.Errorf("round = %+v, %v; want c1 offered to Ada in Night", offers, err)
		}
		if l := loadOf(t, s, ada); !slices.Equal(l.QueueIDs, []string{night.ID}) {
			t.Errorf("Ada's queues = %v", l.QueueIDs)
		}
	})
}
