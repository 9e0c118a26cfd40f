package workflows

import (
	"encoding/json"
	"fmt"

	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
)

// UpdateRecord is the answer to one update. Temporal dedupes an update id
// within one run only: the records travel across runs and conversations so
// that a client retrying with the same Idempotency-Key gets the first answer
// instead of, say, a second reply sent to the customer.
type UpdateRecord struct {
	ID     string          `json:"id"`
	Name   string          `json:"name"`
	Result json.RawMessage `json:"result"`
}

// updatesKept bounds the records carried from run to run.
const updatesKept = 200

func (c *conversation) findUpdate(ctx workflow.Context, name string) (UpdateRecord, bool) {
	if !c.nothingLost {
		return UpdateRecord{}, false
	}
	info := workflow.GetCurrentUpdateInfo(ctx)
	if info == nil || info.ID == "" {
		return UpdateRecord{}, false
	}
	for i := len(c.updates) - 1; i >= 0; i-- {
		if r := c.updates[i]; r.ID == info.ID && r.Name == name {
			return r, true
		}
	}
	return UpdateRecord{}, false
}

// answered fills out with the first answer to a retried update.
func (c *conversation) answered(ctx workflow.Context, name string, out any) (bool, error) {
	r, ok := c.findUpdate(ctx, name)
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(r.Result, out); err != nil {
		return true, fmt.Errorf("decode the recorded answer to update %s: %w", r.ID, err)
	}
	return true, nil
}

// remember records the answer to the current update.
func (c *conversation) remember(ctx workflow.Context, name string, result any) {
	if !c.nothingLost {
		return
	}
	info := workflow.GetCurrentUpdateInfo(ctx)
	if info == nil || info.ID == "" {
		return
	}
	b, err := json.Marshal(result)
	if err != nil {
		workflow.GetLogger(ctx).Error("update answer not recorded", "update", info.ID, "error", err)
		return
	}
	c.updates = append(c.updates, UpdateRecord{ID: info.ID, Name: name, Result: b})
	if over := len(c.updates) - updatesKept; over > 0 {
		c.updates = append([]UpdateRecord(nil), c.updates[over:]...)
	}
}

// lock takes the state mutex (runs with issue 6's logic only).
func (c *conversation) lock(ctx workflow.Context) (unlock func(), err error) {
	if !c.nothingLost {
		return func() {}, nil
	}
	if err := c.mu.Lock(ctx); err != nil {
		return nil, err
	}
	return c.mu.Unlock, nil
}

// start opens the conversation only on a window-opening event that is not
// recorded yet: receipts, reactions, echoes and Meta's retries of recorded
// messages never create work for agents. It returns false when the run ends
// without opening: those events then went to the customer's transcript.
func (c *conversation) start(ctx workflow.Context) (bool, error) {
	events := c.in.Pending
	c.in.Pending = nil
	if len(events) == 0 {
		var first MessengerEventsSignal
		c.signals.Receive(ctx, &first)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		c.signalsThisRun++
		events = first.Events
	}
	events = append(events, c.drain()...)
	for {
		fresh, err := c.freshWindowEvent(ctx, events)
		if err != nil {
			return false, err
		}
		// A customer talking to another app (standby) opens no work for
		// agents: recorded with the latest conversation, like the rest.
		standby, err := c.standbyOnlyWork(ctx, events)
		if err != nil {
			return false, err
		}
		if fresh && !standby {
			c.in.Pending = events
			return true, c.open(ctx)
		}
		if err := c.recordOutside(ctx, events); err != nil {
			return false, err
		}
		// Nothing yields between this last look and the end of the run.
		if events = c.drain(); len(events) == 0 {
			return false, nil
		}
	}
}

// freshWindowEvent tells whether events hold a window-opening event that the
// store has not recorded yet.
func (c *conversation) freshWindowEvent(ctx workflow.Context, events []messenger.Event) (bool, error) {
	var keys []string
	for _, e := range events {
		if e.OpensWindow() {
			keys = append(keys, e.DedupeKey())
		}
	}
	if len(keys) == 0 {
		return false, nil
	}
	in := activities.UnrecordedInput{FacebookPageID: c.in.FacebookPageID, PSID: c.in.PSID, DedupeKeys: keys}
	var out []string
	actx := c.readContext(ctx, storeActivity("check which customer messages are new"))
	if err := c.execRead(actx, activities.UnrecordedEventsName, in).Get(ctx, &out); err != nil {
		return false, fmt.Errorf("check recorded events: %w", err)
	}
	return len(out) > 0, nil
}

// recordOutside stores events that open no conversation in the customer's
// transcript (latest conversation), as the gateway does when none runs.
func (c *conversation) recordOutside(ctx workflow.Context, events []messenger.Event) error {
	in := activities.OutsideInput{
		PageRef: c.in.PageRef, AccountID: c.in.AccountID, FacebookPageID: c.in.FacebookPageID, PSID: c.in.PSID,
		WorkflowID: c.workflowID, Events: events,
	}
	actx := workflow.WithActivityOptions(ctx, storeActivity("record events that open no conversation"))
	if err := workflow.ExecuteActivity(actx, activities.RecordOutsideConversationName, in).Get(ctx, nil); err != nil {
		return fmt.Errorf("record events outside a conversation: %w", err)
	}
	return nil
}

// continueAsNewBounded carries the state into a fresh run once no update
// handler runs. Buffered signals are not processed here (under a steady
// stream that would never end): they go to the next run as pending events.
// Nothing yields between the last check and the continue-as-new, so no
// update can be admitted and lost, and no signal is left behind.
func (c *conversation) continueAsNewBounded(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	next := c.in
	next.Pending = c.drain()
	carried := c.state
	if c.drainSettings() {
		carried.Settings = nil // read again by the next run
	}
	next.Carried = &carried
	next.Updates = c.updates
	if c.routingV {
		next.Offers = c.drainOffers()
	}
	return workflow.NewContinueAsNewError(ctx, ConversationWorkflow, next)
}

// drainSettings takes every buffered settings signal.
func (c *conversation) drainSettings() bool {
	changed := false
	for c.settings.ReceiveAsync(nil) {
		c.signalsThisRun++
		changed = true
	}
	return changed
}

// finishBounded ends a closed conversation once every update is answered.
// A new window-opening event starts the next conversation; other events
// (receipts, reactions, echoes) belong to this one and are recorded here.
func (c *conversation) finishBounded(ctx workflow.Context) error {
	if err := c.publish(ctx); err != nil {
		return err
	}
	for {
		if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
			return err
		}
		next := append(c.next, c.drain()...)
		c.next = nil
		c.drainSettings()
		if c.routingV {
			// Closing released the ledger: these offers hold nothing.
			c.drainOffers()
		}
		if opensWindow(next) {
			fresh := c.in
			fresh.Carried, fresh.Pending, fresh.Updates = nil, next, c.updates
			return workflow.NewContinueAsNewError(ctx, ConversationWorkflow, fresh)
		}
		if len(next) == 0 {
			return nil
		}
		if err := c.record(ctx, next); err != nil {
			return err
		}
	}
}
