package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/routing"
	"parley/store"
)

// The updates of routing: accept and reject an offer, pick, transfer.

// routingUpdates are the updates of runs with the routing logic.
func (c *conversation) routingUpdates() []updateDef {
	return []updateDef{
		{UpdateAccept, "The agent accepts the conversation offered to it", c.accept, c.validateAccept},
		{UpdateReject, "The agent rejects the conversation offered to it", c.reject, c.validateReject},
		{UpdatePick, "An agent picks the conversation from its queue (pick mode)", c.pick, c.validatePickEarly},
		{UpdateTransfer, "Transfer the conversation to a queue or an agent", c.transfer, c.validateTransfer},
	}
}

// validateOffer checks that the conversation is offered to agent now.
func (c *conversation) validateOffer(ctx workflow.Context, name string, r OfferRequest) error {
	if _, ok := c.findUpdate(ctx, name); ok {
		return nil // answered with its first result
	}
	if err := c.validateTarget(r.ConversationID); err != nil {
		return err
	}
	q := c.state.Queue
	if c.state.State != StateOpen || q == nil || q.Offer == nil || q.Offer.AgentID != r.AgentID {
		return refuse("the conversation is not offered to agent %s", r.AgentID)
	}
	if !workflow.Now(ctx).Before(q.Offer.Until) {
		return refuse("the offer to agent %s timed out at %s", r.AgentID, stamp(q.Offer.Until))
	}
	return nil
}

// offerSignalWait: how long an answer to an offer that this conversation
// has not received yet waits for it. The distributor publishes the offer to
// the agent and signals the conversation at once: an agent quick to answer
// may be ahead of the signal.
const offerSignalWait = 10 * time.Second

// offerInFlight: queued with no offer yet, so the agent's offer may be on
// its way.
func (c *conversation) offerInFlight() bool {
	q := c.state.Queue
	return c.state.State == StateOpen && q != nil && q.Offer == nil
}

// validateAccept lets an answer through while the offer may be in flight;
// the handler then waits for it and checks again.
func (c *conversation) validateAccept(ctx workflow.Context, r OfferRequest) error {
	return c.validateAnswer(ctx, UpdateAccept, r)
}

// validateAnswer is validateOffer, but lets an answer ahead of its offer
// through (its handler waits for the offer, then checks again).
func (c *conversation) validateAnswer(ctx workflow.Context, name string, r OfferRequest) error {
	if _, ok := c.findUpdate(ctx, name); !ok && c.offerInFlight() && c.validateTarget(r.ConversationID) == nil {
		return nil
	}
	return c.validateOffer(ctx, name, r)
}

// awaitOffer waits (at most offerSignalWait) for an offer in flight. Only
// an answer ahead of its offer waits: a timer is started then only.
func (c *conversation) awaitOffer(ctx workflow.Context) error {
	if !c.offerInFlight() {
		return nil
	}
	_, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: offerSignalWait,
		TimerOptions: workflow.TimerOptions{Summary: "wait for the offer the agent answered"}}, func() bool { return !c.offerInFlight() })
	return err
}

// accept makes the conversation active with the agent it was offered to.
func (c *conversation) accept(ctx workflow.Context, r OfferRequest) (TransitionResult, error) {
	if err := c.awaitOffer(ctx); err != nil {
		return TransitionResult{}, err
	}
	return c.transitionUpdate(ctx, UpdateAccept, func() error { return c.validateOffer(ctx, UpdateAccept, r) }, func() error {
		o := c.state.Queue.Offer
		in := activities.AcceptInput{ConversationID: c.state.ConversationID, OfferID: o.ID, AgentID: r.AgentID, Now: workflow.Now(ctx).UTC()}
		var asg store.Assignment
		actx := workflow.WithActivityOptions(ctx, routingActivity("agent "+r.AgentID+" accepts the offer"))
		if err := workflow.ExecuteActivity(actx, activities.AcceptOfferName, in).Get(ctx, &asg); err != nil {
			return ledgerRefusal(fmt.Errorf("accept: %w", err))
		}
		c.state.RoutingLog = appendLog(c.state.RoutingLog, fmt.Sprintf("accepted by %s after waiting %s", name(o.AgentName, r.AgentID), span(asg.Waited)))
		return c.assignTo(ctx, r.AgentID, o.AgentName)
	})
}

func (c *conversation) validateReject(ctx workflow.Context, r OfferRequest) error {
	return c.validateAnswer(ctx, UpdateReject, r)
}

// reject gives the offer back: the distributor offers it to the next agent.
func (c *conversation) reject(ctx workflow.Context, r OfferRequest) (TransitionResult, error) {
	if err := c.awaitOffer(ctx); err != nil {
		return TransitionResult{}, err
	}
	return c.transitionUpdate(ctx, UpdateReject, func() error { return c.validateOffer(ctx, UpdateReject, r) }, func() error {
		o := c.state.Queue.Offer
		c.state.RoutingLog = appendLog(c.state.RoutingLog, "rejected by "+name(o.AgentName, r.AgentID))
		if err := c.declineOffer(ctx, c.state.ConversationID, o.ID, r.AgentID, store.DeclineRejected, false); err != nil {
			return err
		}
		c.wake.SendAsync(true)
		return nil
	})
}

func (c *conversation) validatePick(ctx workflow.Context, r PickRequest) error {
	if _, ok := c.findUpdate(ctx, UpdatePick); ok {
		return nil
	}
	if err := c.validateTarget(r.ConversationID); err != nil {
		return err
	}
	if !c.routingOn() || c.state.Settings.Routing.Mode != routing.ModePick {
		return refuse("this workstream does not distribute by picking: conversations are offered to agents or assigned")
	}
	if c.state.State != StateOpen || c.state.Queue == nil {
		return refuse("the conversation is not waiting in a queue: it is %s", c.stateWithAgent())
	}
	if r.AgentID == "" {
		return refuse("only agents pick conversations")
	}
	return nil
}

// validatePickEarly is pick's validator. The ledger shows a conversation
// queued (the queue listing, the conversation.queued event) a moment
// before the workflow has the routing activity's answer: a pick arriving
// then is accepted and decided under the lock once routing is done.
func (c *conversation) validatePickEarly(ctx workflow.Context, r PickRequest) error {
	if c.routingNow && c.state.State == StateOpen && c.state.Queue == nil {
		if _, ok := c.findUpdate(ctx, UpdatePick); ok {
			return nil
		}
		if err := c.validateTarget(r.ConversationID); err != nil {
			return err
		}
		if r.AgentID == "" {
			return refuse("only agents pick conversations")
		}
		return nil
	}
	return c.validatePick(ctx, r)
}

func (c *conversation) stateWithAgent() string {
	if c.state.AgentID != "" {
		return c.state.State + " with agent " + c.state.AgentID
	}
	return c.state.State
}

// pick gives the queued conversation to the first agent that picks it;
// another agent picking at the same time is refused.
func (c *conversation) pick(ctx workflow.Context, r PickRequest) (TransitionResult, error) {
	return c.transitionUpdate(ctx, UpdatePick, func() error {
		if err := workflow.Await(ctx, func() bool { return !c.routingNow }); err != nil {
			return err
		}
		return c.validatePick(ctx, r)
	}, func() error {
		asg, err := c.claim(ctx, "pick", r.AgentID, "", false)
		if err != nil {
			return err
		}
		c.state.RoutingLog = appendLog(c.state.RoutingLog, fmt.Sprintf("picked by %s after waiting %s", name(asg.AgentName, r.AgentID), span(asg.Waited)))
		return c.assignTo(ctx, r.AgentID, asg.AgentName)
	})
}

func (c *conversation) validateTransfer(ctx workflow.Context, r TransferRequest) error {
	if _, ok := c.findUpdate(ctx, UpdateTransfer); ok {
		return nil
	}
	if err := c.validateTarget(r.ConversationID); err != nil {
		return err
	}
	switch {
	case (r.QueueID == "") == (r.AgentID == ""):
		return refuse("transfer to a queue or to an agent: give one of them")
	case c.state.State == StateWrapUp:
		return refuse("the agent has ended the conversation: it cannot be transferred any more")
	case r.QueueID != "" && !c.routingOn():
		return refuse("routing is off for this workstream: transfer to an agent instead")
	case r.AgentID != "" && r.AgentID == c.state.AgentID:
		return refuse("the conversation is already with agent %s", r.AgentID)
	}
	return c.validateActor(r.ActorAgentID)
}

// transfer moves the conversation to a queue (it waits there like any
// other, with the note) or to an agent (within the agent's capacity).
func (c *conversation) transfer(ctx workflow.Context, r TransferRequest) (TransitionResult, error) {
	return c.transitionUpdate(ctx, UpdateTransfer, func() error { return c.validateTransfer(ctx, r) }, func() error {
		from := "a supervisor"
		if r.ActorAgentID != "" {
			from = "agent " + r.ActorAgentID
		}
		if r.AgentID != "" {
			asg, err := c.claim(ctx, "transfer", r.AgentID, r.Note, r.Force)
			if err != nil {
				return err
			}
			if err := c.recordNote(ctx, r, from); err != nil {
				return err
			}
			c.state.RoutingLog = appendLog(c.state.RoutingLog, fmt.Sprintf("transferred by %s to %s", from, name(asg.AgentName, r.AgentID)))
			if err := c.assignTo(ctx, r.AgentID, asg.AgentName); err != nil {
				return err
			}
			return c.transferAccepted(ctx)
		}
		if err := c.release(ctx, "give back the agent's capacity before the transfer"); err != nil {
			return err
		}
		if err := c.recordNote(ctx, r, from); err != nil {
			return err
		}
		if c.state.AgentID != "" {
			c.state.LastAgentID = c.state.AgentID
		}
		c.state.AgentID = ""
		c.state.RoutingLog = appendLog(c.state.RoutingLog, "transferred by "+from+" to queue "+r.QueueID)
		if err := c.route(ctx, r.QueueID, r.Note, "", workflow.Now(ctx).UTC()); err != nil {
			return err
		}
		return c.transferAccepted(ctx)
	})
}

// transferAccepted tells the customer that the transfer took effect (issue
// 9): after it, so that {agent} or {queue} name where it went; not when an
// overflow rule ended the conversation instead.
func (c *conversation) transferAccepted(ctx workflow.Context) error {
	if !c.automatedV || c.state.State == StateClosed {
		return nil
	}
	return c.automated(ctx, store.TriggerTransferAccepted, nil)
}

// recordNote keeps a transfer's note in the transcript, for the next agent
// (never sent to the customer).
func (c *conversation) recordNote(ctx workflow.Context, r TransferRequest, from string) error {
	if r.Note == "" {
		return nil
	}
	e := activities.TranscriptEntry{
		Seq: c.state.NextSeq, Kind: store.KindNote, Direction: store.DirectionOut, Sender: store.SenderAgent, AgentID: r.ActorAgentID,
		Text: r.Note, At: workflow.Now(ctx).UTC(), Status: store.StatusNote,
	}
	if r.ActorAgentID == "" {
		e.Sender = store.SenderSystem // a supervisor's or an admin's
	}
	c.state.NextSeq++
	actx := workflow.WithActivityOptions(ctx, storeActivity("record the transfer note from "+from))
	if err := workflow.ExecuteActivity(actx, activities.RecordTranscriptName, c.recordInput([]activities.TranscriptEntry{e})).Get(ctx, nil); err != nil {
		return fmt.Errorf("record transfer note: %w", err)
	}
	return nil
}
