package workflows_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/routing"
	"parley/store"
	"parley/workflows"
)

// fakeDeliverer records offers; conversations in gone are closed, and the
// first failures calls fail (a Temporal hiccup).
type fakeDeliverer struct {
	mu        sync.Mutex
	gone      map[string]bool
	failures  int
	delivered map[string]int // offer id -> deliveries
	to        map[string]string
}

func (f *fakeDeliverer) DeliverOffer(_ context.Context, o store.OfferMade) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return errors.New("unavailable")
	}
	if f.gone[o.ConversationID] {
		return activities.ErrConversationGone
	}
	f.delivered[o.OfferID]++
	f.to[o.ConversationID] = o.AgentID
	return nil
}

// The distributor, woken, offers queued conversations to free agents: each
// offer reaches its conversation (again after a failed delivery, never to a
// second agent), and an offer to a conversation that has closed is taken
// back at once, so that the agent's capacity is free for the next one.
func TestTheDistributorDeliversOffersAndTakesBackThoseOfClosedConversations(t *testing.T) {
	f := newRoutingFixture(t)
	q := f.queue("Billing", 1, routing.Overflow{}, routing.OperatingHours{})
	f.agent("Ada", 1, routing.PresenceAvailable, "Billing")
	f.agent("Bob", 1, routing.PresenceAvailable, "Billing")
	ctx := context.Background()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	start := env.Now().UTC()
	for i, conv := range []string{"closed", "second", "third"} {
		if _, err := f.st.RouteAndEnqueue(ctx, store.Route{ConversationID: conv, WorkflowID: "wf-" + conv, RouteID: conv,
			Distribution: push(q.ID), QueueID: q.ID, WaitingSince: start.Add(time.Duration(i) * time.Second), Now: start}); err != nil {
			t.Fatal(err)
		}
	}
	d := &fakeDeliverer{gone: map[string]bool{"closed": true}, failures: 1, delivered: map[string]int{}, to: map[string]string{}}
	rt := &activities.Routing{Store: f.st, Waker: &countingWaker{}, Offers: d}
	env.RegisterWorkflowWithOptions(workflows.DistributorWorkflow, workflow.RegisterOptions{Name: workflows.DistributorWorkflowName})
	env.RegisterActivityWithOptions(rt.DistributeAndDeliver, activity.RegisterOptions{Name: activities.DistributeAndDeliverName})
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.SignalWake, workflows.WakeSignal{Reason: "capacity released"})
	}, 10*time.Second)
	var state workflows.DistributorState
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryDistributor)
		if err != nil {
			t.Error(err)
		} else if err := v.Get(&state); err != nil {
			t.Error(err)
		}
		env.CancelWorkflow()
	}, time.Minute)
	env.ExecuteWorkflow(workflows.DistributorWorkflowName, workflows.DistributorInput{Sweep: time.Hour})

	// Round 1 (at start): "closed" and "second" are offered to Ada and Bob;
	// the first delivery fails, the retried round signals the same offers
	// again; "closed" is gone, so its offer is taken back and the woken
	// round 2 offers "third" to the freed agent.
	if len(d.to) != 2 || d.to["second"] == "" || d.to["third"] == "" {
		t.Fatalf("offers delivered to %v, want second and third", d.to)
	}
	if d.to["second"] == d.to["third"] {
		t.Errorf("second and third both offered to %s, whose capacity is 1", d.to["second"])
	}
	for id, n := range d.delivered {
		if n > 2 {
			t.Errorf("offer %s delivered %d times", id, n)
		}
	}
	loads, err := f.st.AgentLoads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range loads {
		if l.Used != 1 {
			t.Errorf("agent %s uses %d units, want 1 (one offer each, none for the closed conversation)", l.AgentID, l.Used)
		}
	}
	if state.Withdrawn != 1 || state.Offers != 3 || state.Rounds < 2 {
		t.Errorf("distributor state %+v: want 3 offers made, 1 withdrawn, at least 2 rounds", state)
	}
}
