package workflows_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"

	"parley/activities"
	"parley/messenger"
	"parley/routing"
	"parley/secrets"
	"parley/store"
	"parley/workflows"
)

// Routing in the time-skipping environment: the conversation workflow runs
// its routing activities on a real capacity ledger (SQLite), and the test
// plays the distributor: every second of workflow time it runs a
// distribution round and signals the offers, as the distributor workflow does.

// countingWaker counts the distributor wake-ups the activities ask for.
type countingWaker struct {
	mu    sync.Mutex
	wakes []string
}

func (w *countingWaker) Wake(_ context.Context, reason string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wakes = append(w.wakes, reason)
	return nil
}

func newLedger(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	key, err := secrets.ParseKey("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "parley.db"), box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func (h *harness) registerLedger(st *store.Store) {
	h.st, h.waker = st, &countingWaker{}
	rt := &activities.Routing{Store: st, Waker: h.waker}
	for name, f := range map[string]any{
		activities.RouteConversationName: rt.RouteConversation,
		activities.AcceptOfferName:       rt.AcceptOffer,
		activities.DeclineOfferName:      rt.DeclineOffer,
		activities.ClaimConversationName: rt.ClaimConversation,
		activities.ReleaseCapacityName:   rt.ReleaseCapacity,
		activities.HoldForWrapUpName:     rt.HoldForWrapUp,
		activities.WakeDistributorName:   rt.WakeDistributor,
		activities.QueuePlaceName:        rt.QueuePlace,
	} {
		h.env.RegisterActivityWithOptions(f, activity.RegisterOptions{Name: name})
	}
}

// distribute plays the distributor every step of workflow time until horizon.
func (h *harness) distribute(step, horizon time.Duration) {
	for d := step; d <= horizon; d += step {
		h.at(d, func() {
			offers, err := h.st.DistributeRound(context.Background(), fmt.Sprintf("test/%s", d), h.env.Now().UTC())
			if err != nil {
				h.t.Errorf("distribution round at %s: %v", d, err)
				return
			}
			for _, o := range offers {
				h.offers = append(h.offers, offerAt{at: d, agent: o.AgentID})
				h.env.SignalWorkflow(workflows.SignalOffer, workflows.OfferSignal{
					ConversationID: o.ConversationID, OfferID: o.OfferID, AgentID: o.AgentID, AgentName: o.AgentName,
					QueueID: o.QueueID, QueueName: o.QueueName, ExpiresAt: o.ExpiresAt,
				})
			}
		})
	}
}

type offerAt struct {
	at    time.Duration
	agent string
}

// routingFixture is a ledger with queues and agents.
type routingFixture struct {
	t      *testing.T
	st     *store.Store
	queues map[string]store.Queue
	agents map[string]store.Agent
}

func newRoutingFixture(t *testing.T) *routingFixture {
	return &routingFixture{t: t, st: newLedger(t), queues: map[string]store.Queue{}, agents: map[string]store.Agent{}}
}

func (f *routingFixture) queue(name string, priority int, o routing.Overflow, hours routing.OperatingHours) store.Queue {
	f.t.Helper()
	q, err := f.st.CreateQueue(context.Background(), store.Queue{Name: name, Priority: priority,
		Method: routing.MethodHighestCapacity, Overflow: o, Hours: hours})
	if err != nil {
		f.t.Fatal(err)
	}
	f.queues[name] = q
	return q
}

// agent creates an agent with capacity, presence and queues.
func (f *routingFixture) agent(name string, capacity int, presence string, queues ...string) store.Agent {
	f.t.Helper()
	ctx := context.Background()
	a, err := f.st.CreateAgent(ctx, name, strings.ToLower(name)+"@example.com")
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.st.UpdateAgent(ctx, a.ID, store.AgentUpdate{CapacityUnits: &capacity}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.st.SetPresence(ctx, a.ID, presence); err != nil {
		f.t.Fatal(err)
	}
	for _, q := range queues {
		if err := f.st.AddQueueAgent(ctx, f.queues[q].ID, a.ID); err != nil {
			f.t.Fatal(err)
		}
	}
	f.agents[name] = a
	return a
}

func (f *routingFixture) load(name string) store.AgentLoad {
	f.t.Helper()
	loads, err := f.st.AgentLoads(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	for _, l := range loads {
		if l.AgentID == f.agents[name].ID {
			return l
		}
	}
	f.t.Fatalf("no load for agent %s", name)
	return store.AgentLoad{}
}

func (f *routingFixture) presence(name string) string {
	f.t.Helper()
	a, err := f.st.GetAgent(context.Background(), f.agents[name].ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return a.Presence
}

// routed starts a harness whose workstream distributes by push to queue.
func (f *routingFixture) routed(d routing.Distribution) *harness {
	h := newHarnessWith(f.t, f.st)
	d = d.WithDefaults()
	h.settings.Routing = &d
	return h
}

func push(fallback string) routing.Distribution {
	return routing.Distribution{Mode: routing.ModePush, CapacityUnits: 1, FallbackQueueID: fallback,
		OfferTimeout: routing.Duration(2 * time.Minute)}
}

// watch records, at each given time, the conversation's queue, offer and agent.
type snapshot struct {
	state, queue, offeredTo, agent string
}

func (h *harness) snapshotAt(d time.Duration, into map[time.Duration]snapshot) {
	h.at(d, func() {
		s := h.state()
		snap := snapshot{state: s.State, agent: s.AgentID}
		if s.Queue != nil {
			snap.queue = s.Queue.QueueName
			if s.Queue.Offer != nil {
				snap.offeredTo = s.Queue.Offer.AgentID
			}
		}
		into[d] = snap
	})
}

func (h *harness) offerUpdate(d time.Duration, label, name, agentID string) {
	h.at(d, func() {
		h.update(0, label, name, workflows.OfferRequest{ConversationID: h.state().ConversationID, AgentID: agentID})
	})
}

func (h *harness) completed(label string) {
	h.t.Helper()
	o := h.updates[label]
	if o == nil || o.rejected != nil || !o.done || o.err != nil {
		h.t.Fatalf("update %s: %+v, want completed", label, o)
	}
}

func (h *harness) run(until time.Duration) {
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, until)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
}

func TestAnOfferThatTimesOutGoesToTheNextAgentAndTheMissedAgentIsInactive(t *testing.T) {
	f := newRoutingFixture(t)
	q := f.queue("Billing", 1, routing.Overflow{}, routing.OperatingHours{})
	// Ada has more room, so she gets the first offer (highest capacity).
	ada := f.agent("Ada", 3, routing.PresenceAvailable, "Billing")
	bob := f.agent("Bob", 2, routing.PresenceAvailable, "Billing")
	d := push(q.ID)
	d.MissedOfferPresence = routing.PresenceInactive
	h := f.routed(d)
	h.customer(0, "m1", "my invoice is wrong")
	h.distribute(time.Second, 5*time.Minute)
	snaps := map[time.Duration]snapshot{}
	for _, at := range []time.Duration{30 * time.Second, 2*time.Minute + 30*time.Second} {
		h.snapshotAt(at, snaps)
	}
	h.run(4 * time.Minute)

	if s := snaps[30*time.Second]; s.offeredTo != ada.ID || s.queue != "Billing" {
		t.Fatalf("at 30s: %+v, want offered to Ada in Billing", s)
	}
	if s := snaps[2*time.Minute+30*time.Second]; s.offeredTo != bob.ID {
		t.Fatalf("after Ada's offer timed out: %+v, want offered to Bob", s)
	}
	if p := f.presence("Ada"); p != routing.PresenceInactive {
		t.Fatalf("Ada's presence after missing the offer: %s, want inactive", p)
	}
	if l := f.load("Ada"); l.Used != 0 {
		t.Fatalf("Ada still holds %d units after the time-out", l.Used)
	}
	// The offer lasted its 2 minutes, not longer.
	if len(h.offers) < 2 || h.offers[1].at-h.offers[0].at > 2*time.Minute+2*time.Second {
		t.Fatalf("offers %+v: the second should follow the first's 2-minute time-out", h.offers)
	}
}

func TestARejectedOfferGoesToTheNextAgentWithoutPenalty(t *testing.T) {
	f := newRoutingFixture(t)
	q := f.queue("Billing", 1, routing.Overflow{}, routing.OperatingHours{})
	ada := f.agent("Ada", 3, routing.PresenceAvailable, "Billing")
	bob := f.agent("Bob", 2, routing.PresenceAvailable, "Billing")
	d := push(q.ID)
	d.MissedOfferPresence = routing.PresenceInactive
	h := f.routed(d)
	h.customer(0, "m1", "hello")
	h.distribute(time.Second, 2*time.Minute)
	h.offerUpdate(10*time.Second, "reject", workflows.UpdateReject, ada.ID)
	snaps := map[time.Duration]snapshot{}
	h.snapshotAt(20*time.Second, snaps)
	h.offerUpdate(30*time.Second, "accept", workflows.UpdateAccept, bob.ID)
	h.snapshotAt(40*time.Second, snaps)
	var bobLoad int
	h.at(40*time.Second, func() { bobLoad = f.load("Bob").Used })
	h.run(time.Minute)

	h.completed("reject")
	if s := snaps[20*time.Second]; s.offeredTo != bob.ID {
		t.Fatalf("after Ada rejected: %+v, want offered to Bob", s)
	}
	h.completed("accept")
	if s := snaps[40*time.Second]; s.state != workflows.StateActive || s.agent != bob.ID {
		t.Fatalf("after Bob accepted: %+v, want active with Bob", s)
	}
	if p := f.presence("Ada"); p != routing.PresenceAvailable {
		t.Fatalf("Ada's presence after rejecting: %s, want unchanged (available)", p)
	}
	if bobLoad != 1 {
		t.Fatalf("Bob holds %d units, want 1", bobLoad)
	}
}

func TestWaitingTooLongInAQueueTransfersToTheOverflowQueue(t *testing.T) {
	f := newRoutingFixture(t)
	night := f.queue("Night", 2, routing.Overflow{}, routing.OperatingHours{})
	q := f.queue("Billing", 1, routing.Overflow{WhileQueued: &routing.MaxWait{After: routing.Duration(5 * time.Minute),
		OverflowAction: routing.OverflowAction{Action: routing.ActionTransfer, QueueID: night.ID}}}, routing.OperatingHours{})
	f.agent("Ada", 3, routing.PresenceOffline, "Billing")
	nina := f.agent("Nina", 3, routing.PresenceAvailable, "Night")
	h := f.routed(push(q.ID))
	h.customer(0, "m1", "hello")
	h.distribute(time.Second, 6*time.Minute)
	snaps := map[time.Duration]snapshot{}
	h.snapshotAt(4*time.Minute, snaps)
	h.snapshotAt(5*time.Minute+10*time.Second, snaps)
	h.run(6 * time.Minute)

	if s := snaps[4*time.Minute]; s.queue != "Billing" || s.offeredTo != "" {
		t.Fatalf("at 4 min: %+v, want waiting in Billing (Ada is offline)", s)
	}
	if s := snaps[5*time.Minute+10*time.Second]; s.queue != "Night" || s.offeredTo != nina.ID {
		t.Fatalf("after 5 min: %+v, want transferred to Night and offered to Nina", s)
	}
}

func TestOutOfHoursAppliesItsRuleAndItsMessageOnlyInsideTheWindow(t *testing.T) {
	for _, tc := range []struct {
		name       string
		messageAge time.Duration // how old the customer's message is
		wantSent   bool
	}{
		{name: "inside the 24-hour window", messageAge: 0, wantSent: true},
		{name: "outside the window", messageAge: 25 * time.Hour, wantSent: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRoutingFixture(t)
			start := time.Now().UTC()
			closed := routing.OperatingHours{TimeZone: "UTC", Holidays: []string{start.Format("2006-01-02"), start.Add(24 * time.Hour).Format("2006-01-02")}}
			q := f.queue("Billing", 1, routing.Overflow{OutOfHours: &routing.OverflowAction{Action: routing.ActionEnd}}, closed)
			f.agent("Ada", 3, routing.PresenceAvailable, "Billing")
			h := f.routed(push(q.ID))
			h.settings.Messages = map[string]string{store.TriggerOutOfHours: "We are closed: {queue} opens tomorrow."}
			h.events(0, messenger.Event{Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: "m1", Text: "hello",
				Timestamp: h.start.Add(-tc.messageAge).UnixMilli()})
			h.distribute(time.Second, time.Minute)
			h.run(2 * time.Minute)

			var sent []activities.SendInput
			for _, s := range h.sends {
				if strings.Contains(s.Text, "closed") {
					sent = append(sent, s)
				}
			}
			if tc.wantSent {
				if len(sent) != 1 || sent[0].Text != "We are closed: Billing opens tomorrow." || sent[0].Tag != "" {
					t.Fatalf("out-of-hours messages sent: %+v, want one, untagged, with the queue's name", sent)
				}
			} else {
				if len(sent) != 0 {
					t.Fatalf("sent %+v outside the window", sent)
				}
				failed := false
				for _, e := range h.entries {
					if e.Sender == "system" && e.Status == "failed" && strings.Contains(e.ErrorReason, "not sent") {
						failed = true
					}
				}
				if !failed {
					t.Fatalf("the transcript does not say why the out-of-hours message was not sent: %+v", h.entries)
				}
			}
			if len(h.saves) == 0 || h.saves[len(h.saves)-1].State != workflows.StateClosed ||
				!strings.Contains(h.saves[len(h.saves)-1].ClosedReason, "out of hours") {
				t.Fatalf("last save %+v, want closed by the out-of-hours rule", h.saves[len(h.saves)-1])
			}
			if len(h.offers) != 0 {
				t.Fatalf("offers %+v for a conversation ended out of hours", h.offers)
			}
		})
	}
}

func TestKeepSameAgentFallsBackAfterItsWait(t *testing.T) {
	for _, tc := range []struct {
		name        string
		adaPresence string
		wantFirst   string // agent of the first offer
		wantAfter   time.Duration
	}{
		{name: "the last agent is available", adaPresence: routing.PresenceAvailable, wantFirst: "Ada", wantAfter: 0},
		{name: "the last agent is away", adaPresence: routing.PresenceAway, wantFirst: "Bob", wantAfter: time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRoutingFixture(t)
			q := f.queue("Billing", 1, routing.Overflow{}, routing.OperatingHours{})
			ada := f.agent("Ada", 1, tc.adaPresence, "Billing")
			f.agent("Bob", 5, routing.PresenceAvailable, "Billing") // more room than Ada
			d := push(q.ID)
			d.KeepSameAgent = routing.KeepSame{Enabled: true, Wait: routing.Duration(time.Minute)}
			h := f.routed(d)
			h.previousAgent = ada.ID
			h.customer(0, "m1", "it's me again")
			h.distribute(time.Second, 3*time.Minute)
			h.run(3 * time.Minute)

			if len(h.offers) == 0 {
				t.Fatal("no offer")
			}
			first := h.offers[0]
			if first.agent != f.agents[tc.wantFirst].ID {
				t.Fatalf("first offer to %s, want %s", first.agent, tc.wantFirst)
			}
			if first.at < tc.wantAfter || first.at > tc.wantAfter+2*time.Second {
				t.Fatalf("first offer at %s, want at %s", first.at, tc.wantAfter)
			}
		})
	}
}

func TestCapacityIsHeldDuringWrapUpForItsDurationThenReleased(t *testing.T) {
	f := newRoutingFixture(t)
	q := f.queue("Billing", 1, routing.Overflow{}, routing.OperatingHours{})
	ada := f.agent("Ada", 1, routing.PresenceAvailable, "Billing")
	d := push(q.ID)
	d.BlockCapacityDuringWrapUp = routing.WrapUpBlock{Mode: routing.WrapUpDuration, Duration: routing.Duration(5 * time.Minute)}
	h := f.routed(d)
	h.customer(0, "m1", "hello")
	h.distribute(time.Second, 10*time.Second)
	h.offerUpdate(5*time.Second, "accept", workflows.UpdateAccept, ada.ID)
	h.at(time.Minute, func() {
		h.update(0, "end", workflows.UpdateEnd, workflows.ActionRequest{ConversationID: h.state().ConversationID, ActorAgentID: ada.ID})
	})
	loads := map[time.Duration]store.AgentLoad{}
	for _, at := range []time.Duration{30 * time.Second, 3 * time.Minute, 6*time.Minute + time.Second} {
		h.at(at, func() { loads[at] = f.load("Ada") })
	}
	h.run(7 * time.Minute)

	h.completed("accept")
	h.completed("end")
	if l := loads[30*time.Second]; l.Used != 1 {
		t.Fatalf("active: Ada holds %d units, want 1", l.Used)
	}
	if l := loads[3*time.Minute]; l.Used != 1 {
		t.Fatalf("2 min into wrap-up: Ada holds %d units, want 1 (held for 5 min)", l.Used)
	}
	if l := loads[6*time.Minute+time.Second]; l.Used != 0 {
		t.Fatalf("after wrap-up's 5 min: Ada holds %d units, want 0", l.Used)
	}
}

func TestTransferToAQueueAndToAnAgent(t *testing.T) {
	f := newRoutingFixture(t)
	q := f.queue("Billing", 1, routing.Overflow{}, routing.OperatingHours{})
	f.queue("Tech", 1, routing.Overflow{}, routing.OperatingHours{})
	ada := f.agent("Ada", 2, routing.PresenceAvailable, "Billing")
	tom := f.agent("Tom", 2, routing.PresenceAvailable, "Tech")
	sue := f.agent("Sue", 2, routing.PresenceAway) // in no queue
	h := f.routed(push(q.ID))
	h.customer(0, "m1", "my router is broken")
	h.distribute(time.Second, 2*time.Minute)
	h.offerUpdate(5*time.Second, "accept ada", workflows.UpdateAccept, ada.ID)
	h.at(20*time.Second, func() {
		h.update(0, "to tech", workflows.UpdateTransfer, workflows.TransferRequest{ConversationID: h.state().ConversationID,
			ActorAgentID: ada.ID, QueueID: f.queues["Tech"].ID, Note: "router issue, not billing"})
	})
	snaps := map[time.Duration]snapshot{}
	h.snapshotAt(30*time.Second, snaps)
	h.offerUpdate(40*time.Second, "accept tom", workflows.UpdateAccept, tom.ID)
	h.at(60*time.Second, func() {
		h.update(0, "to sue", workflows.UpdateTransfer, workflows.TransferRequest{ConversationID: h.state().ConversationID,
			AgentID: sue.ID, Note: "Sue knows this customer"})
	})
	h.snapshotAt(70*time.Second, snaps)
	adaLoad := map[string]int{}
	h.at(30*time.Second, func() { adaLoad["after transfer"] = f.load("Ada").Used })
	h.at(70*time.Second, func() { adaLoad["tom"], adaLoad["sue"] = f.load("Tom").Used, f.load("Sue").Used })
	h.run(90 * time.Second)

	h.completed("to tech")
	if s := snaps[30*time.Second]; s.queue != "Tech" || s.offeredTo != tom.ID || s.agent != "" {
		t.Fatalf("after the transfer to Tech: %+v, want queued in Tech, offered to Tom", s)
	}
	if adaLoad["after transfer"] != 0 {
		t.Fatalf("Ada still holds %d units after transferring", adaLoad["after transfer"])
	}
	h.completed("accept tom")
	h.completed("to sue")
	if s := snaps[70*time.Second]; s.state != workflows.StateActive || s.agent != sue.ID {
		t.Fatalf("after the transfer to Sue: %+v, want active with Sue", s)
	}
	if tl, sl := adaLoad["tom"], adaLoad["sue"]; tl != 0 || sl != 1 {
		t.Fatalf("after the transfer to Sue: Tom holds %d, Sue %d, want 0 and 1", tl, sl)
	}
	notes := slices.DeleteFunc(slices.Clone(h.entries), func(e activities.TranscriptEntry) bool { return e.Kind != "note" })
	if len(notes) != 2 || notes[0].Text != "router issue, not billing" || notes[1].Text != "Sue knows this customer" {
		t.Fatalf("transcript notes %+v, want both transfer notes for the next agent", notes)
	}
}

// The distributor publishes an offer to the agent and signals the
// conversation at once: an agent who accepts before the signal has arrived
// is not refused; the accept waits for the offer, then takes it.
func TestAnAcceptAheadOfItsOfferSignalWaitsForIt(t *testing.T) {
	f := newRoutingFixture(t)
	q := f.queue("Billing", 1, routing.Overflow{}, routing.OperatingHours{})
	ada := f.agent("Ada", 3, routing.PresenceAvailable, "Billing")
	h := f.routed(push(q.ID))
	h.customer(0, "m1", "my invoice is wrong")
	h.at(10*time.Second, func() {
		offers, err := h.st.DistributeRound(context.Background(), "test/ahead", h.env.Now().UTC())
		if err != nil || len(offers) != 1 {
			t.Errorf("round: %v, %v", offers, err)
			return
		}
		o := offers[0]
		// The agent answers first; the signal comes two seconds later.
		h.update(0, "accept", workflows.UpdateAccept, workflows.OfferRequest{ConversationID: o.ConversationID, AgentID: ada.ID})
		h.at(2*time.Second, func() {
			h.env.SignalWorkflow(workflows.SignalOffer, workflows.OfferSignal{ConversationID: o.ConversationID, OfferID: o.OfferID,
				AgentID: o.AgentID, AgentName: o.AgentName, QueueID: o.QueueID, QueueName: o.QueueName, ExpiresAt: o.ExpiresAt})
		})
	})
	var after workflows.ConversationState
	h.at(time.Minute, func() { after = h.state() })
	h.run(2 * time.Minute)
	h.completed("accept")
	if after.State != workflows.StateActive || after.AgentID != ada.ID {
		t.Errorf("after the early accept: %s with %q, want active with Ada", after.State, after.AgentID)
	}
}
