package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"parley/metrics"
	"parley/routing"
	"parley/store"
)

// Activity names of routing and distribution.
const (
	RouteConversationName = "RouteConversation"
	DistributeRoundName   = "DistributeRound"
	// DistributeAndDeliverName is a round that also signals its offers.
	DistributeAndDeliverName = "DistributeAndDeliver"
	AcceptOfferName          = "AcceptOffer"
	DeclineOfferName         = "DeclineOffer"
	ClaimConversationName    = "ClaimConversation"
	ReleaseCapacityName      = "ReleaseCapacity"
	HoldForWrapUpName        = "HoldForWrapUp"
	WakeDistributorName      = "WakeDistributor"
)

// LedgerRefusedType marks a ledger refusal the workflow turns into a
// refused update (409): an offer gone, no capacity, a conversation taken.
const LedgerRefusedType = "LedgerRefused"

// Waker tells the distributor that work or capacity may have appeared.
type Waker interface {
	Wake(ctx context.Context, reason string) error
}

// OfferDeliverer signals an offer to its conversation's workflow.
type OfferDeliverer interface {
	// DeliverOffer returns ErrConversationGone when the workflow is closed.
	DeliverOffer(ctx context.Context, o store.OfferMade) error
}

// ErrConversationGone: the conversation's workflow no longer runs.
var ErrConversationGone = errors.New("the conversation's workflow is closed")

// Routing moves conversations through the routing ledger (store/ledger.go)
// and wakes the distributor after each change that may allow an offer.
type Routing struct {
	Store  *store.Store
	Waker  Waker
	Offers OfferDeliverer
	Log    *slog.Logger
	// Metrics counts offers made and how they ended (nil: not counted).
	// An activity retried after its commit counts again: the counts are
	// what happened, give or take a retry.
	Metrics *metrics.Metrics
}

func (a *Routing) log() *slog.Logger { return orDefault(a.Log) }

func (a *Routing) wake(ctx context.Context, reason string) error {
	if a.Waker == nil {
		return nil
	}
	if err := a.Waker.Wake(ctx, reason); err != nil {
		return fmt.Errorf("wake the distributor: %w", err)
	}
	return nil
}

// refusal maps the ledger's conflicts to a non-retryable error whose
// message a person can read; other errors are retried.
func refusal(err error) error {
	var ce *store.CapacityError
	switch {
	case errors.As(err, &ce):
		return temporal.NewNonRetryableApplicationError(ce.Error(), LedgerRefusedType, nil)
	case errors.Is(err, store.ErrOfferGone):
		return temporal.NewNonRetryableApplicationError("the offer is no longer open", LedgerRefusedType, nil)
	case errors.Is(err, store.ErrConflict):
		return temporal.NewNonRetryableApplicationError("the conversation is no longer waiting in a queue", LedgerRefusedType, nil)
	case errors.Is(err, store.ErrNotFound):
		return temporal.NewNonRetryableApplicationError("no such agent or queue", LedgerRefusedType, nil)
	}
	return err
}

// RouteInput asks to route and queue a conversation.
type RouteInput struct {
	ConversationID   string               `json:"conversation_id"`
	WorkflowID       string               `json:"workflow_id"`
	PageRef          string               `json:"page_ref"`
	RouteID          string               `json:"route_id"`
	Context          routing.Context      `json:"context"`
	Distribution     routing.Distribution `json:"distribution"`
	QueueID          string               `json:"queue_id,omitempty"`
	PreferredAgentID string               `json:"preferred_agent_id,omitempty"`
	PreferredUntil   time.Time            `json:"preferred_until,omitzero"`
	WaitingSince     time.Time            `json:"waiting_since"`
	Note             string               `json:"note,omitempty"`
	Now              time.Time            `json:"now"`
}

// RouteOutput is where the conversation went.
type RouteOutput struct {
	Outcome       string           `json:"outcome"`
	QueueID       string           `json:"queue_id,omitempty"`
	QueueName     string           `json:"queue_name,omitempty"`
	Position      int              `json:"position,omitempty"`
	Waiting       int              `json:"waiting,omitempty"`
	EstimatedWait time.Duration    `json:"estimated_wait,omitempty"`
	Trigger       string           `json:"trigger,omitempty"`
	OutOfHours    bool             `json:"out_of_hours,omitempty"`
	Reason        string           `json:"reason,omitempty"`
	WhileQueued   *routing.MaxWait `json:"while_queued,omitempty"`
	// Holiday: closed because of a holiday (with OutOfHours).
	Holiday bool `json:"holiday,omitempty"`
	// Hours are the queue's operating hours, for the {hours} variable.
	Hours string `json:"hours,omitempty"`
}

// RouteConversation chooses the conversation's queue and queues it (or
// ends it by an overflow rule), then wakes the distributor.
func (a *Routing) RouteConversation(ctx context.Context, in RouteInput) (RouteOutput, error) {
	res, err := a.Store.RouteAndEnqueue(ctx, store.Route{
		ConversationID: in.ConversationID, WorkflowID: in.WorkflowID, PageRef: in.PageRef, RouteID: in.RouteID,
		Context: in.Context, Distribution: in.Distribution, QueueID: in.QueueID,
		PreferredAgentID: in.PreferredAgentID, PreferredUntil: in.PreferredUntil,
		WaitingSince: in.WaitingSince, Note: in.Note, Now: in.Now,
	})
	if err != nil {
		return RouteOutput{}, refusal(err)
	}
	out := RouteOutput{
		Outcome: res.Outcome, QueueID: res.QueueID, QueueName: res.QueueName, Position: res.Position,
		Waiting: res.Waiting, EstimatedWait: res.EstimatedWait, Trigger: res.Trigger, OutOfHours: res.OutOfHours,
		Reason: res.Reason, WhileQueued: res.WhileQueued,
	}
	if res.QueueID != "" {
		// For the automated messages' {hours} and the holiday message.
		q, err := a.Store.GetQueue(ctx, res.QueueID)
		switch {
		case err != nil:
			// Only the messages' {hours} and holiday wording need it: the
			// routing that is done must not be redone for them.
			a.log().WarnContext(ctx, "queue hours unavailable for automated messages", "queue", res.QueueID, "error", err)
		default:
			out.Hours = q.Hours.String()
			at := in.Now
			if at.IsZero() {
				at = time.Now()
			}
			out.Holiday = res.OutOfHours && q.Hours.HolidayAt(at)
		}
	}
	if res.Outcome == store.RouteQueued {
		if err := a.wake(ctx, "conversation queued in "+res.QueueName); err != nil {
			return out, err
		}
	}
	return out, nil
}

// DistributeRound makes the offers of one round (see store.DistributeRound).
func (a *Routing) DistributeRound(ctx context.Context, round string, now time.Time) ([]store.OfferMade, error) {
	offers, err := a.Store.DistributeRound(ctx, round, now)
	if err == nil {
		a.Metrics.Offers(metrics.OfferCreated, len(offers))
	}
	return offers, err
}

// RoundResult is what a round did.
type RoundResult struct {
	Offers []store.OfferMade `json:"offers"`
	// Withdrawn counts offers whose conversation had closed: taken back.
	Withdrawn int `json:"withdrawn"`
}

// DistributeAndDeliver makes the offers of one round, signals each to its
// conversation, in parallel, then announces them on the live event stream,
// before it returns: the distributor's next
// round never waits for a conversation's history. A retry (the worker died
// after the commit) finds the same offers under the same round and signals
// them again; a conversation takes a repeated offer once. An offer to a
// closed conversation is taken back at once.
func (a *Routing) DistributeAndDeliver(ctx context.Context, round string, now time.Time) (RoundResult, error) {
	if a.Offers == nil {
		return RoundResult{}, errors.New("distribution round: no offer deliverer configured")
	}
	offers, err := a.Store.DistributeRoundUnannounced(ctx, round, now)
	if err != nil {
		return RoundResult{}, err
	}
	// Made, even if withdrawn below (counted withdrawn by ReleaseCapacity).
	a.Metrics.Offers(metrics.OfferCreated, len(offers))
	gone := make([]bool, len(offers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, o := range offers {
		g.Go(func() error {
			err := a.Offers.DeliverOffer(gctx, o)
			if errors.Is(err, ErrConversationGone) {
				gone[i] = true
				return nil
			}
			if err != nil {
				return fmt.Errorf("deliver offer %s of conversation %s: %w", o.OfferID, o.ConversationID, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return RoundResult{}, err
	}
	res := RoundResult{Offers: offers}
	var delivered []store.OfferMade
	for i, o := range offers {
		if !gone[i] {
			delivered = append(delivered, o)
			continue
		}
		a.log().Warn("offer not delivered: conversation closed; withdrawn", "conversation", o.ConversationID, "offer", o.OfferID)
		if _, err := a.ReleaseCapacity(ctx, ReleaseInput{ConversationID: o.ConversationID, Now: now}); err != nil {
			return RoundResult{}, fmt.Errorf("withdraw undelivered offer: %w", err)
		}
		res.Withdrawn++
	}
	// Announced once the conversations know them: an agent accepting the
	// moment the event arrives is never told the offer does not exist.
	if err := a.Store.AnnounceOffers(ctx, delivered); err != nil {
		return RoundResult{}, fmt.Errorf("announce offers: %w", err)
	}
	return res, nil
}

// AcceptInput is an agent accepting an offer.
type AcceptInput struct {
	ConversationID string    `json:"conversation_id"`
	OfferID        string    `json:"offer_id"`
	AgentID        string    `json:"agent_id"`
	Now            time.Time `json:"now"`
}

// AcceptOffer makes the conversation the agent's.
func (a *Routing) AcceptOffer(ctx context.Context, in AcceptInput) (store.Assignment, error) {
	res, err := a.Store.AcceptOffer(ctx, in.ConversationID, in.OfferID, in.AgentID, in.Now)
	if err != nil {
		return res, refusal(err)
	}
	a.Metrics.Offers(metrics.OfferAccepted, 1)
	return res, nil
}

// DeclineOffer ends an offer (rejected, timed out, withdrawn) and wakes the
// distributor, which offers the conversation to the next agent.
func (a *Routing) DeclineOffer(ctx context.Context, in store.Decline) (bool, error) {
	changed, err := a.Store.DeclineOffer(ctx, in)
	if err != nil {
		return false, err
	}
	if changed {
		// Why is one of the store's three reasons, checked by the store.
		a.Metrics.Offers(in.Why, 1)
		return true, a.wake(ctx, "offer "+in.Why)
	}
	return false, nil
}

// ClaimInput gives a conversation to an agent (pick, assign, transfer).
type ClaimInput struct {
	store.Claim
	// QueueID: a pick must come from a member of the conversation's queue.
	QueueID string `json:"queue_id,omitempty"`
}

// ClaimConversation assigns the conversation within the agent's capacity
// (unless forced); capacity an earlier holder had is given back.
func (a *Routing) ClaimConversation(ctx context.Context, in ClaimInput) (store.Assignment, error) {
	if in.How == "pick" && in.QueueID != "" {
		queues, err := a.Store.QueueIDsOfAgent(ctx, in.AgentID)
		if err != nil {
			return store.Assignment{}, fmt.Errorf("queues of agent %s: %w", in.AgentID, err)
		}
		if !slices.Contains(queues, in.QueueID) {
			return store.Assignment{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("agent %s is not a member of the conversation's queue", in.AgentID), LedgerRefusedType, nil)
		}
	}
	res, err := a.Store.ClaimConversation(ctx, in.Claim)
	if err != nil {
		return res, refusal(err)
	}
	if res.WithdrawnOfferID != "" {
		// Picked, assigned or transferred while offered to an agent.
		a.Metrics.Offers(metrics.OfferWithdrawn, 1)
	}
	return res, a.wake(ctx, "conversation "+in.How)
}

// ReleaseInput gives back a conversation's capacity and queue place.
type ReleaseInput struct {
	ConversationID string    `json:"conversation_id"`
	Now            time.Time `json:"now"`
}

// ReleaseCapacity releases what the conversation holds and wakes the
// distributor when capacity came free.
func (a *Routing) ReleaseCapacity(ctx context.Context, in ReleaseInput) (store.Released, error) {
	res, err := a.Store.ReleaseConversation(ctx, in.ConversationID, in.Now)
	if err != nil {
		return res, err
	}
	if res.OfferID != "" {
		a.Metrics.Offers(metrics.OfferWithdrawn, 1)
	}
	if res.AgentID != "" {
		return res, a.wake(ctx, "capacity released")
	}
	return res, nil
}

// HoldForWrapUp keeps the agent's capacity while the conversation is in wrap-up.
func (a *Routing) HoldForWrapUp(ctx context.Context, in ReleaseInput) error {
	return a.Store.HoldForWrapUp(ctx, in.ConversationID, in.Now)
}

// WakeDistributor wakes the distributor (a keep-same-agent wait ended).
func (a *Routing) WakeDistributor(ctx context.Context, reason string) error {
	return a.wake(ctx, reason)
}

// QueuePlaceName reads where a waiting conversation stands in its queue.
const QueuePlaceName = "QueuePlace"

// QueuePlaceInput asks where the conversation stands at Now.
type QueuePlaceInput struct {
	ConversationID string    `json:"conversation_id"`
	Now            time.Time `json:"now"`
}

// QueuePlaceOutput is the conversation's place; InQueue false: none.
type QueuePlaceOutput struct {
	InQueue bool `json:"in_queue"`
	store.QueuePlace
}

// QueuePlace reads the conversation's current queue position (for the
// queue-position message when the position changes).
func (a *Routing) QueuePlace(ctx context.Context, in QueuePlaceInput) (QueuePlaceOutput, error) {
	p, ok, err := a.Store.QueuePlaceOf(ctx, in.ConversationID, in.Now)
	if err != nil {
		return QueuePlaceOutput{}, fmt.Errorf("queue place of %s: %w", in.ConversationID, err)
	}
	return QueuePlaceOutput{InQueue: ok, QueuePlace: p}, nil
}
