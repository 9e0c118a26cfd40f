package workflows

import (
	"fmt"
	"strconv"
	"time"

	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/store"
)

// The distributor matches queued conversations with free agents. It is one
// long-running workflow per routing domain (today one: all queues share
// agents, and a queue's priority decides between queues for an agent in
// several). Each round is one transaction of the capacity ledger, which
// holds the invariants; the workflow makes sure every offer a round made is
// signalled to its conversation, even if a worker dies between the two.
const (
	DistributorWorkflowName = "Distributor"
	// SignalWake carries WakeSignal: work or capacity may have appeared.
	SignalWake = "wake"
	// QueryDistributor returns DistributorState.
	QueryDistributor = "state"
)

// DistributorWorkflowID is the distributor of the one routing domain.
func DistributorWorkflowID() string { return "distributor" }

// WakeSignal says why the distributor is woken (shown in Temporal Web).
type WakeSignal struct {
	Reason string `json:"reason,omitempty"`
}

// DistributorInput starts or continues the distributor.
type DistributorInput struct {
	// Sweep is the safety-net round interval (0: DefaultSweep): rounds are
	// triggered by wake signals; the sweep only covers a lost one.
	Sweep time.Duration `json:"sweep,omitempty"`
	// MaxRoundsPerRun bounds one run's history (0: 300).
	MaxRoundsPerRun int `json:"max_rounds_per_run,omitempty"`
	// State is carried across continue-as-new.
	State DistributorState `json:"state"`
}

// DefaultSweep is the distributor's safety-net interval.
const DefaultSweep = 30 * time.Second

// DistributorState is what the distributor has done.
type DistributorState struct {
	Rounds int64 `json:"rounds"`
	Offers int64 `json:"offers"`
	// Withdrawn counts offers to conversations that had closed.
	Withdrawn  int64     `json:"withdrawn,omitempty"`
	LastRound  time.Time `json:"last_round,omitzero"`
	LastOffers int       `json:"last_offers"`
	LastReason string    `json:"last_reason,omitempty"`
	Runs       int       `json:"runs"`
}

// DistributorWorkflow runs distribution rounds when woken.
func DistributorWorkflow(ctx workflow.Context, in DistributorInput) error {
	d := &distributor{in: in, state: in.State}
	if err := d.setup(ctx); err != nil {
		return err
	}
	return d.run(ctx)
}

type distributor struct {
	in     DistributorInput
	state  DistributorState
	wakes  workflow.ReceiveChannel
	signal int
	sweep  lazyTimer
	// deliverV 1: a round's activity signals its offers itself, so that
	// rounds never wait for conversations' histories (under load the
	// signals held rounds back by seconds).
	deliverV workflow.Version
}

func (d *distributor) setup(ctx workflow.Context) error {
	if d.in.Sweep <= 0 {
		d.in.Sweep = DefaultSweep
	}
	if d.in.MaxRoundsPerRun <= 0 {
		d.in.MaxRoundsPerRun = 300
	}
	d.state.Runs++
	d.deliverV = workflow.GetVersion(ctx, "deliver-in-round", workflow.DefaultVersion, 1)
	d.wakes = workflow.GetSignalChannel(ctx, SignalWake)
	d.sweep = lazyTimer{summary: "safety-net distribution round"}
	return workflow.SetQueryHandlerWithOptions(ctx, QueryDistributor, func() (DistributorState, error) {
		return d.state, nil
	}, workflow.QueryHandlerOptions{Description: "Rounds and offers made"})
}

func (d *distributor) run(ctx workflow.Context) error {
	runID := workflow.GetInfo(ctx).WorkflowExecution.RunID
	for round := 1; ; round++ {
		reason := "started"
		if round > 1 {
			reason = d.wait(ctx)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := d.round(ctx, runID+"/"+strconv.Itoa(round), reason); err != nil {
			return err
		}
		if round >= d.in.MaxRoundsPerRun || d.signal >= 5000 || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			// Wakes still buffered are carried as one: the next run starts with a round.
			next := d.in
			next.State = d.state
			return workflow.NewContinueAsNewError(ctx, DistributorWorkflow, next)
		}
	}
}

// wait blocks until a wake signal or the sweep, and takes every buffered
// wake: many triggers make one round.
func (d *distributor) wait(ctx workflow.Context) string {
	d.sweep.arm(ctx, workflow.Now(ctx).Add(d.in.Sweep))
	reason := ""
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(d.wakes, func(ch workflow.ReceiveChannel, _ bool) {
		var w WakeSignal
		ch.Receive(ctx, &w)
		d.signal++
		reason = w.Reason
	})
	sel.AddFuture(d.sweep.future, func(f workflow.Future) {
		d.sweep.fire(f)
		reason = "safety-net sweep"
	})
	sel.Select(ctx)
	n := 1
	for {
		var w WakeSignal
		if !d.wakes.ReceiveAsync(&w) {
			break
		}
		d.signal++
		n++
	}
	if n > 1 {
		reason = fmt.Sprintf("%s (and %d more)", reason, n-1)
	}
	return reason
}

// round makes the offers of one round and signals each to its conversation.
func (d *distributor) round(ctx workflow.Context, id, reason string) error {
	now := workflow.Now(ctx).UTC()
	actx := workflow.WithActivityOptions(ctx, storeActivity("distribution round: "+reason))
	var offers []store.OfferMade
	if d.deliverV == 1 {
		var res activities.RoundResult
		if err := workflow.ExecuteActivity(actx, activities.DistributeAndDeliverName, id, now).Get(ctx, &res); err != nil {
			return fmt.Errorf("distribution round: %w", err)
		}
		offers = res.Offers
		d.state.Withdrawn += int64(res.Withdrawn)
	} else if err := d.roundSignalled(ctx, actx, id, now, &offers); err != nil {
		return err
	}
	d.state.Rounds++
	d.state.Offers += int64(len(offers))
	d.state.LastRound, d.state.LastOffers, d.state.LastReason = now, len(offers), reason
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**Distributor**: %d rounds, %d offers made. Last round at %s (%s): %d offer(s).",
		d.state.Rounds, d.state.Offers, stamp(now), reason, len(offers)))
	return nil
}

// roundSignalled is the first version's round: the workflow signals each
// offer itself and waits for every signal before the next round.
func (d *distributor) roundSignalled(ctx, actx workflow.Context, id string, now time.Time, out *[]store.OfferMade) error {
	var offers []store.OfferMade
	if err := workflow.ExecuteActivity(actx, activities.DistributeRoundName, id, now).Get(ctx, &offers); err != nil {
		return fmt.Errorf("distribution round: %w", err)
	}
	futures := make([]workflow.Future, len(offers))
	for i, o := range offers {
		futures[i] = workflow.SignalExternalWorkflow(ctx, o.WorkflowID, "", SignalOffer, OfferSignal{
			ConversationID: o.ConversationID, OfferID: o.OfferID, AgentID: o.AgentID, AgentName: o.AgentName,
			QueueID: o.QueueID, QueueName: o.QueueName, ExpiresAt: o.ExpiresAt,
		})
	}
	for i, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			o := offers[i]
			workflow.GetLogger(ctx).Warn("offer not delivered; withdrawn", "conversation", o.ConversationID, "error", err)
			in := activities.ReleaseInput{ConversationID: o.ConversationID, Now: workflow.Now(ctx).UTC()}
			ractx := workflow.WithActivityOptions(ctx, storeActivity("withdraw an offer nobody can answer"))
			if err := workflow.ExecuteActivity(ractx, activities.ReleaseCapacityName, in).Get(ctx, nil); err != nil {
				return fmt.Errorf("withdraw undelivered offer: %w", err)
			}
			d.state.Withdrawn++
		}
	}
	*out = offers
	return nil
}
