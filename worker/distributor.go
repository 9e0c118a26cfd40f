package worker

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"parley/activities"
	"parley/store"
	"parley/workflows"
)

// Waker wakes the distributor workflow, starting it if it does not run.
type Waker struct {
	Client client.Client
	// TaskQueue is Parley's task queue; the distributor runs on
	// DistributorTaskQueue(TaskQueue).
	TaskQueue string
	// Input starts the distributor (tests shorten its sweep).
	Input workflows.DistributorInput
}

var (
	_ activities.Waker          = (*Waker)(nil)
	_ activities.OfferDeliverer = (*Waker)(nil)
)

// DeliverOffer signals an offer to its conversation's workflow.
func (w *Waker) DeliverOffer(ctx context.Context, o store.OfferMade) error {
	err := w.Client.SignalWorkflow(ctx, o.WorkflowID, "", workflows.SignalOffer, workflows.OfferSignal{
		ConversationID: o.ConversationID, OfferID: o.OfferID, AgentID: o.AgentID, AgentName: o.AgentName,
		QueueID: o.QueueID, QueueName: o.QueueName, ExpiresAt: o.ExpiresAt,
	})
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return activities.ErrConversationGone
	}
	if err != nil {
		return fmt.Errorf("signal the offer to %s: %w", o.WorkflowID, err)
	}
	return nil
}

// Wake signals the distributor (SignalWithStart): a round follows at once.
func (w *Waker) Wake(ctx context.Context, reason string) error {
	_, err := w.Client.SignalWithStartWorkflow(ctx, workflows.DistributorWorkflowID(), workflows.SignalWake,
		workflows.WakeSignal{Reason: reason}, w.startOptions(), workflows.DistributorWorkflowName, w.Input)
	if err != nil {
		return fmt.Errorf("wake the distributor: %w", err)
	}
	return nil
}

// Start starts the distributor if it does not run yet.
func (w *Waker) Start(ctx context.Context) error {
	opts := w.startOptions()
	opts.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
	if _, err := w.Client.ExecuteWorkflow(ctx, opts, workflows.DistributorWorkflowName, w.Input); err != nil {
		return fmt.Errorf("start the distributor: %w", err)
	}
	return nil
}

func (w *Waker) startOptions() client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:        workflows.DistributorWorkflowID(),
		TaskQueue: DistributorTaskQueue(w.TaskQueue),
		// A failed distributor is started again by the next wake.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         "Distributor: offers queued conversations to free agents",
	}
}
