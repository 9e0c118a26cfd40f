package workflows

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/routing"
	"parley/store"
)

// Routing and distribution, the conversation's side (issue 7). The
// conversation decides where it goes (rules, overflow, keep same agent,
// transfers) and enforces its offer's time-out with its own timer; the
// capacity ledger in the database holds the invariants; the distributor
// workflow matches queued conversations with free agents and signals offers.

const (
	// SignalOffer carries OfferSignal from the distributor.
	SignalOffer = "offer"

	UpdateAccept   = "accept"
	UpdateReject   = "reject"
	UpdatePick     = "pick"
	UpdateTransfer = "transfer"

	// versionRouting: the capacity ledger and routing. Runs started before
	// it keep assigning by hand, without capacity, until their next run.
	versionRouting = "routing"
)

// OfferSignal is an offer of the conversation to an agent.
type OfferSignal struct {
	ConversationID string    `json:"conversation_id"`
	OfferID        string    `json:"offer_id"`
	AgentID        string    `json:"agent_id"`
	AgentName      string    `json:"agent_name,omitempty"`
	QueueID        string    `json:"queue_id"`
	QueueName      string    `json:"queue_name,omitempty"`
	ExpiresAt      time.Time `json:"expires_at"`
}

// QueueState is where an open conversation waits.
type QueueState struct {
	QueueID    string    `json:"queue_id"`
	QueueName  string    `json:"queue_name"`
	Position   int       `json:"position"` // when queued, or as last read
	EnqueuedAt time.Time `json:"enqueued_at"`
	// PositionReadAt: when Position was read again while waiting.
	PositionReadAt time.Time `json:"position_read_at,omitzero"`
	WaitingSince   time.Time `json:"waiting_since"`
	// OverflowAt: the queue's while-queued rule applies then.
	OverflowAt     time.Time              `json:"overflow_at,omitzero"`
	OverflowAction routing.OverflowAction `json:"overflow_action,omitzero"`
	OverflowAfter  time.Duration          `json:"overflow_after,omitempty"`
	// PreferredAgentID is the last agent, preferred until PreferredUntil.
	PreferredAgentID string      `json:"preferred_agent_id,omitempty"`
	PreferredUntil   time.Time   `json:"preferred_until,omitzero"`
	Offer            *OfferState `json:"offer,omitempty"`
	Note             string      `json:"note,omitempty"`
	// EstimatedWait and Hours fill {wait} and {hours} (issue 9).
	EstimatedWait time.Duration `json:"estimated_wait,omitempty"`
	Hours         string        `json:"hours,omitempty"`
}

// OfferState is the conversation's open offer.
type OfferState struct {
	ID        string    `json:"id"`
	AgentID   string    `json:"agent_id"`
	AgentName string    `json:"agent_name,omitempty"`
	Until     time.Time `json:"until"`
}

// OfferRequest is an agent accepting or rejecting its offer.
type OfferRequest struct {
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id"`
}

// PickRequest is an agent picking a queued conversation (pick mode).
type PickRequest struct {
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id"`
}

// TransferRequest moves the conversation to a queue or to an agent, with a
// note the next agent sees. ActorAgentID is the conversation's agent, or
// empty for a supervisor or an administrator.
type TransferRequest struct {
	ConversationID string `json:"conversation_id"`
	ActorAgentID   string `json:"actor_agent_id,omitempty"`
	QueueID        string `json:"queue_id,omitempty"`
	AgentID        string `json:"agent_id,omitempty"`
	Note           string `json:"note,omitempty"`
	// Force lets a supervisor exceed the target agent's capacity.
	Force bool `json:"force,omitempty"`
}

// routingTimers are the named timers of routing, one per deadline.
const (
	timerOffer = iota
	timerQueueOverflow
	timerKeepSame
	timerWrapUpCapacity
)

func newRoutingTimers() [4]*lazyTimer {
	return [4]*lazyTimer{
		{summary: "offer time-out"},
		{summary: "queue-wait overflow"},
		{summary: "keep-same-agent wait"},
		{summary: "wrap-up capacity release"},
	}
}

// ledger: this run keeps agents' capacity in the ledger.
func (c *conversation) ledger() bool { return c.routingV }

// routingOn: the workstream routes and distributes conversations.
func (c *conversation) routingOn() bool {
	return c.routingV && c.state.Settings != nil && c.state.Settings.Routing != nil
}

func (c *conversation) units() int {
	if c.routingOn() && c.state.Settings.Routing.CapacityUnits > 0 {
		return c.state.Settings.Routing.CapacityUnits
	}
	return 1
}

func routingActivity(summary string) workflow.ActivityOptions {
	o := storeActivity(summary)
	o.RetryPolicy.NonRetryableErrorTypes = []string{activities.LedgerRefusedType}
	return o
}

// ledgerRefusal turns a ledger refusal into a refused update.
func ledgerRefusal(err error) error {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() == activities.LedgerRefusedType {
		return refuse("%s", ae.Message())
	}
	return err
}

// routingContext is what routing rules see of the conversation.
func (c *conversation) routingContext() routing.Context {
	rc := routing.Context{
		PageRef: c.in.PageRef, PSID: c.in.PSID, FirstMessage: c.state.FirstMessage,
		ReferralRef: c.state.ReferralRef, ReferralSource: c.state.ReferralSource, Survey: c.surveyContext(),
		SurveyTimedOut: c.state.SurveyTimedOut,
	}
	if p := c.state.Customer; p != nil {
		rc.CustomerName = p.Name()
	}
	return rc
}

// route chooses the conversation's queue and queues it; an overflow rule
// may end it instead. queueID skips the rules (a transfer); prefer is the
// agent to keep when the workstream keeps the same agent.
func (c *conversation) route(ctx workflow.Context, queueID, note, prefer string, since time.Time) error {
	c.routingNow = true
	defer func() { c.routingNow = false }()
	d := *c.state.Settings.Routing
	now := workflow.Now(ctx).UTC()
	c.state.RouteSeq++
	in := activities.RouteInput{
		ConversationID: c.state.ConversationID, WorkflowID: c.workflowID, PageRef: c.in.PageRef,
		RouteID: c.state.ConversationID + "/" + strconv.Itoa(c.state.RouteSeq), Context: c.routingContext(),
		Distribution: d, QueueID: queueID, WaitingSince: since, Note: note, Now: now,
	}
	if prefer != "" && d.KeepSameAgent.Enabled && d.KeepSameAgent.Wait > 0 {
		in.PreferredAgentID, in.PreferredUntil = prefer, now.Add(d.KeepSameAgent.Wait.D())
	}
	summary := "route the conversation to a queue"
	if queueID != "" {
		summary = "transfer the conversation to another queue"
	}
	var out activities.RouteOutput
	actx := workflow.WithActivityOptions(ctx, routingActivity(summary))
	if err := workflow.ExecuteActivity(actx, activities.RouteConversationName, in).Get(ctx, &out); err != nil {
		return ledgerRefusal(fmt.Errorf("route: %w", err))
	}
	c.state.Routed = true
	c.state.RoutingLog = appendLog(c.state.RoutingLog, out.Reason)
	if out.Outcome == store.RouteEnded {
		trigger := store.TriggerOverflowEnd
		if out.OutOfHours {
			trigger = c.closedTrigger(out)
		}
		if err := c.automated(ctx, trigger, routeVars(out)); err != nil {
			return err
		}
		return c.close(ctx, out.Reason)
	}
	q := &QueueState{
		QueueID: out.QueueID, QueueName: out.QueueName, Position: out.Position, EnqueuedAt: now, WaitingSince: since,
		PreferredAgentID: in.PreferredAgentID, PreferredUntil: in.PreferredUntil, Note: note,
		EstimatedWait: out.EstimatedWait, Hours: out.Hours,
	}
	if w := out.WhileQueued; w != nil && w.After > 0 {
		q.OverflowAt, q.OverflowAction, q.OverflowAfter = now.Add(w.After.D()), w.OverflowAction, w.After.D()
	}
	c.state.Queue = q
	if c.state.State != StateOpen {
		if err := c.transition(ctx, StateOpen); err != nil {
			return err
		}
	} else if err := c.save(ctx); err != nil {
		return err
	}
	if out.OutOfHours {
		if err := c.automated(ctx, c.closedTrigger(out), routeVars(out)); err != nil {
			return err
		}
	}
	if !c.announcePosition(ctx, now, out.QueueID, out.Position) {
		return nil
	}
	return c.automated(ctx, store.TriggerQueuePosition, routeVars(out))
}

// routeVars are the variables a routing outcome fills.
func routeVars(out activities.RouteOutput) map[string]string {
	v := map[string]string{store.VarQueue: out.QueueName, store.VarHours: out.Hours, store.VarWait: waitText(out.EstimatedWait)}
	if out.Position > 0 {
		v[store.VarPosition] = strconv.Itoa(out.Position)
	}
	return v
}

// closedTrigger is the message of a closed queue: holiday when a holiday
// closed it and the workstream has that message, out_of_hours otherwise.
func (c *conversation) closedTrigger(out activities.RouteOutput) string {
	if c.automatedV && out.Holiday && c.state.Settings.Messages[store.TriggerHoliday] != "" {
		return store.TriggerHoliday
	}
	return store.TriggerOutOfHours
}

// announcePosition says whether the queue position is announced now: the
// first time in a wait or in a new queue always; again in the same queue
// (routed anew while waiting) only when it moved by the workstream's step
// and its minimum interval has passed. It records the announcement.
//
// Runs before position-updates kept no record (the state was copied), so
// they announced every time: the rate limit applies from that version on.
func (c *conversation) announcePosition(ctx workflow.Context, now time.Time, queueID string, position int) bool {
	if !c.automatedV {
		return true
	}
	s := &c.state
	if last := s.PositionAnnounced; last > 0 && s.PositionQueueID == queueID && c.positionUpdatesOn(ctx) {
		step := max(s.Settings.PositionStep, 1)
		moved := position - last
		if moved < 0 {
			moved = -moved
		}
		if moved < step || (s.Settings.PositionEvery > 0 && now.Before(s.PositionAnnouncedAt.Add(s.Settings.PositionEvery))) {
			return false
		}
	}
	s.PositionAnnounced, s.PositionAnnouncedAt, s.PositionQueueID = position, now, queueID
	return true
}

// waitText is an estimated wait for customers, in minutes ("5 min",
// "1 h 10 min"), rounded up; "" when there is no estimate.
func waitText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	m := int((d + time.Minute - 1) / time.Minute)
	if m < 60 {
		return strconv.Itoa(m) + " min"
	}
	if m%60 == 0 {
		return strconv.Itoa(m/60) + " h"
	}
	return strconv.Itoa(m/60) + " h " + strconv.Itoa(m%60) + " min"
}

// save writes the conversation's state without a transition.
func (c *conversation) save(ctx workflow.Context) error {
	actx := workflow.WithActivityOptions(ctx, storeActivity("save the conversation's state"))
	if err := workflow.ExecuteActivity(actx, activities.SaveConversationName, c.recordInput(nil)).Get(ctx, nil); err != nil {
		return fmt.Errorf("save conversation: %w", err)
	}
	c.wake.SendAsync(true)
	return nil
}

func appendLog(log []string, line string) []string {
	if line == "" {
		return log
	}
	log = append(log, line)
	if over := len(log) - 20; over > 0 {
		log = append([]string(nil), log[over:]...)
	}
	return log
}

// automated sends the workstream's automated message for trigger, if on,
// with {placeholders} filled: inside the 24-hour window only, never tagged.
func (c *conversation) automated(ctx workflow.Context, trigger string, vars map[string]string) error {
	text := c.state.Settings.Messages[trigger]
	if text == "" {
		return nil
	}
	if c.automatedV {
		_, err := c.sendAutomated(ctx, c.fillAutomated(trigger, text, vars))
		return err
	}
	var pairs []string
	for _, k := range []string{"agent", "queue", "position"} {
		if v, ok := vars[k]; ok {
			pairs = append(pairs, "{"+k+"}", v)
		}
	}
	text = strings.NewReplacer(pairs...).Replace(text)
	_, err := c.sendAutomated(ctx, text)
	return err
}

// onOffer takes the distributor's offer, or gives it back when the
// conversation has moved on.
func (c *conversation) onOffer(ctx workflow.Context, o OfferSignal) error {
	now := workflow.Now(ctx)
	q := c.state.Queue
	current := o.ConversationID == c.state.ConversationID && c.state.State == StateOpen && q != nil &&
		q.QueueID == o.QueueID && (q.Offer == nil || q.Offer.ID == o.OfferID)
	if !current {
		return c.declineOffer(ctx, o.ConversationID, o.OfferID, o.AgentID, store.DeclineWithdrawn, false)
	}
	if !now.Before(o.ExpiresAt) {
		// Arrived too late to be answered: not the agent's fault.
		return c.declineOffer(ctx, o.ConversationID, o.OfferID, o.AgentID, store.DeclineWithdrawn, false)
	}
	q.Offer = &OfferState{ID: o.OfferID, AgentID: o.AgentID, AgentName: o.AgentName, Until: o.ExpiresAt}
	c.wake.SendAsync(true)
	return nil
}

func (c *conversation) declineOffer(ctx workflow.Context, conversationID, offerID, agentID, why string, inactive bool) error {
	in := store.Decline{ConversationID: conversationID, OfferID: offerID, AgentID: agentID, Why: why,
		SetInactive: inactive, Now: workflow.Now(ctx).UTC()}
	summary := "give the offer back"
	switch why {
	case store.DeclineRejected:
		summary = "the agent rejected the offer: offer it to the next agent"
	case store.DeclineTimedOut:
		summary = "the offer timed out: offer it to the next agent"
	}
	actx := workflow.WithActivityOptions(ctx, routingActivity(summary))
	if err := workflow.ExecuteActivity(actx, activities.DeclineOfferName, in).Get(ctx, nil); err != nil {
		return fmt.Errorf("decline offer: %w", err)
	}
	if q := c.state.Queue; q != nil && q.Offer != nil && q.Offer.ID == offerID {
		q.Offer = nil
	}
	return nil
}

// release gives back the conversation's capacity and queue place.
func (c *conversation) release(ctx workflow.Context, summary string) error {
	if !c.ledger() {
		return nil
	}
	in := activities.ReleaseInput{ConversationID: c.state.ConversationID, Now: workflow.Now(ctx).UTC()}
	actx := workflow.WithActivityOptions(ctx, routingActivity(summary))
	if err := workflow.ExecuteActivity(actx, activities.ReleaseCapacityName, in).Get(ctx, nil); err != nil {
		return fmt.Errorf("release capacity: %w", err)
	}
	c.state.Queue = nil
	c.state.WrapUpReleaseAt = time.Time{}
	return nil
}

// claim gives the conversation to agent through the capacity ledger.
func (c *conversation) claim(ctx workflow.Context, how, agentID, note string, force bool) (store.Assignment, error) {
	in := activities.ClaimInput{Claim: store.Claim{
		ConversationID: c.state.ConversationID, WorkflowID: c.workflowID, AgentID: agentID, How: how,
		Units: c.units(), Force: force, Note: note, Now: workflow.Now(ctx).UTC(),
	}}
	if how == "pick" && c.state.Queue != nil {
		in.QueueID = c.state.Queue.QueueID
	}
	var asg store.Assignment
	actx := workflow.WithActivityOptions(ctx, routingActivity("give the conversation to agent "+agentID))
	if err := workflow.ExecuteActivity(actx, activities.ClaimConversationName, in).Get(ctx, &asg); err != nil {
		return asg, ledgerRefusal(fmt.Errorf("claim: %w", err))
	}
	return asg, nil
}

// fillAutomated chooses the text of trigger for the customer's locale and
// fills every variable: vars first, then what the conversation knows.
// Unknown values are left out (store.FillVariables).
func (c *conversation) fillAutomated(trigger, text string, vars map[string]string) string {
	locale := ""
	all := map[string]string{}
	if c.state.AgentID != "" {
		all[store.VarAgent] = c.state.AgentName
	}
	if p := c.state.Customer; p != nil {
		locale = p.Locale
		all[store.VarFirstName] = strings.TrimSpace(p.FirstName)
	}
	maps.Copy(all, queueVars(c.state.Queue))
	for _, k := range store.Variables() { // a fixed order: deterministic
		if v, ok := vars[k]; ok {
			all[k] = v
		}
	}
	return store.FillVariables(store.MessageText(text, c.state.Settings.Translations[trigger], locale), all)
}

// queueVars are the variables a queue place fills (none without one).
func queueVars(q *QueueState) map[string]string {
	v := map[string]string{}
	if q == nil {
		return v
	}
	v[store.VarQueue], v[store.VarHours], v[store.VarWait] = q.QueueName, q.Hours, waitText(q.EstimatedWait)
	if q.Position > 0 {
		v[store.VarPosition] = strconv.Itoa(q.Position)
	}
	return v
}

// assignTo makes the conversation active with the agent and tells the customer.
func (c *conversation) assignTo(ctx workflow.Context, agentID, agentName string) error {
	if err := c.interruptPreSurvey(ctx); err != nil {
		return err
	}
	c.state.AgentID = agentID
	c.state.LastAgentID = agentID
	vars := map[string]string{}
	if c.automatedV {
		vars = queueVars(c.state.Queue) // {queue}: where it waited
	}
	if c.state.Queue != nil {
		// Reports count the conversation for the queue it was answered from.
		c.state.AnsweredQueueID = c.state.Queue.QueueID
	}
	c.state.Queue = nil
	c.state.Assignments++
	if c.automatedV {
		// A new wait announces its position afresh.
		c.state.AgentName, c.state.PositionAnnounced, c.state.PositionAnnouncedAt = agentName, 0, time.Time{}
	}
	if err := c.transition(ctx, StateActive); err != nil {
		return err
	}
	if agentName == "" {
		agentName = "an agent"
	}
	vars[store.VarAgent] = agentName
	return c.automated(ctx, store.TriggerAgentAssigned, vars)
}

// requeue brings a conversation back to a queue when the customer writes
// while it waits (routing on): first to its last agent if the workstream
// keeps the same agent.
func (c *conversation) requeue(ctx workflow.Context) error {
	prev := c.state.AgentID
	c.state.AgentID = ""
	return c.route(ctx, "", "", prev, workflow.Now(ctx).UTC())
}

// checkRouting applies the routing deadlines that have come: the offer's
// time-out, the queue-wait overflow, the end of the keep-same-agent wait,
// the end of wrap-up's capacity hold.
func (c *conversation) checkRouting(ctx workflow.Context) error {
	if !c.ledger() || c.state.State == StateClosed {
		return nil
	}
	now := workflow.Now(ctx)
	if q := c.state.Queue; q != nil && c.state.State == StateOpen {
		if o := q.Offer; o != nil && !now.Before(o.Until) {
			inactive := c.routingOn() && c.state.Settings.Routing.MissedOfferPresence == routing.PresenceInactive
			if err := c.declineOffer(ctx, c.state.ConversationID, o.ID, o.AgentID, store.DeclineTimedOut, inactive); err != nil {
				return err
			}
			c.state.RoutingLog = appendLog(c.state.RoutingLog, fmt.Sprintf("offer to %s timed out at %s", name(o.AgentName, o.AgentID), stamp(o.Until)))
		}
		if !q.PreferredUntil.IsZero() && !now.Before(q.PreferredUntil) {
			q.PreferredUntil = time.Time{}
			actx := workflow.WithActivityOptions(ctx, routingActivity("the keep-same-agent wait ended: offer it to any agent"))
			if err := workflow.ExecuteActivity(actx, activities.WakeDistributorName, "keep-same-agent wait ended").Get(ctx, nil); err != nil {
				return fmt.Errorf("wake distributor: %w", err)
			}
			c.state.RoutingLog = appendLog(c.state.RoutingLog, "the last agent was not available in time: offered to any agent")
		}
		if !q.OverflowAt.IsZero() && !now.Before(q.OverflowAt) {
			return c.overflowWhileQueued(ctx)
		}
	}
	if at := c.state.WrapUpReleaseAt; !at.IsZero() && !now.Before(at) && c.state.State == StateWrapUp {
		if err := c.release(ctx, "wrap-up capacity hold ended: release the agent's capacity"); err != nil {
			return err
		}
	}
	return nil
}

// overflowWhileQueued applies the queue's while-queued rule.
func (c *conversation) overflowWhileQueued(ctx workflow.Context) error {
	q := c.state.Queue
	why := fmt.Sprintf("waited more than %s in %s", span(q.OverflowAfter), q.QueueName)
	if q.OverflowAction.Action == routing.ActionTransfer {
		return c.route(ctx, q.OverflowAction.QueueID, q.Note, "", q.WaitingSince)
	}
	if err := c.release(ctx, "no agent could be assigned: leave the queue"); err != nil {
		return err
	}
	if err := c.automated(ctx, store.TriggerNoAgent, map[string]string{store.VarQueue: q.QueueName}); err != nil {
		return err
	}
	return c.close(ctx, "no agent could be assigned: "+why)
}

// armRouting keeps one timer per routing deadline.
func (c *conversation) armRouting(ctx workflow.Context) {
	if !c.ledger() {
		return
	}
	var offer, overflow, keep time.Time
	if q := c.state.Queue; q != nil && c.state.State == StateOpen {
		if q.Offer != nil {
			offer = q.Offer.Until
			c.rtimers[timerOffer].summary = "offer to " + name(q.Offer.AgentName, q.Offer.AgentID) + " times out"
		}
		overflow, keep = q.OverflowAt, q.PreferredUntil
	}
	c.rtimers[timerOffer].arm(ctx, offer)
	c.rtimers[timerQueueOverflow].arm(ctx, overflow)
	c.rtimers[timerKeepSame].arm(ctx, keep)
	var wrap time.Time
	if c.state.State == StateWrapUp {
		wrap = c.state.WrapUpReleaseAt
	}
	c.rtimers[timerWrapUpCapacity].arm(ctx, wrap)
}

func name(agentName, id string) string {
	if agentName != "" {
		return agentName
	}
	return "agent " + id
}

// routingDetails says, for Temporal Web, where an open conversation waits.
func (c *conversation) routingDetails(now time.Time) string {
	q := c.state.Queue
	if q == nil {
		return ""
	}
	if q.Offer != nil {
		return fmt.Sprintf("**Open**: offered to %s until %s (queue %s).", name(q.Offer.AgentName, q.Offer.AgentID), stamp(q.Offer.Until), q.QueueName)
	}
	// Temporal Web shows details as they were last set: a start time stays
	// true where "waiting 2 min" would not.
	s := fmt.Sprintf("**Open**: queued in %s since %s (position %d when it joined).", q.QueueName, stamp(q.WaitingSince), q.Position)
	if !q.PositionReadAt.IsZero() {
		s = fmt.Sprintf("**Open**: queued in %s since %s (position %d at %s).", q.QueueName, stamp(q.WaitingSince), q.Position, stamp(q.PositionReadAt))
	}
	if !q.PreferredUntil.IsZero() && now.Before(q.PreferredUntil) {
		s += fmt.Sprintf(" Kept for agent %s until %s.", q.PreferredAgentID, stamp(q.PreferredUntil))
	}
	if !q.OverflowAt.IsZero() {
		s += fmt.Sprintf(" Overflows at %s.", stamp(q.OverflowAt))
	}
	return s
}

// drainOffers takes every offer signal already buffered.
func (c *conversation) drainOffers() []OfferSignal {
	var offers []OfferSignal
	for {
		var o OfferSignal
		if !c.offers.ReceiveAsync(&o) {
			return offers
		}
		c.signalsThisRun++
		offers = append(offers, o)
	}
}

func (c *conversation) onOffers(ctx workflow.Context, offers []OfferSignal) error {
	for _, o := range offers {
		if err := c.onOffer(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// routeIfUnrouted queues an open conversation nobody has, once routing is
// on: at its start, or when an admin turned routing on.
func (c *conversation) routeIfUnrouted(ctx workflow.Context) error {
	if !c.routingOn() || c.state.State != StateOpen || c.state.Queue != nil || c.state.AgentID != "" || c.state.ConversationID == "" {
		return nil
	}
	if c.state.PreSurvey != nil {
		return nil // routed when the pre-survey ends
	}
	return c.route(ctx, "", "", c.state.PreviousAgentID, c.state.StartedAt)
}

func (c *conversation) queueName() string {
	if q := c.state.Queue; q != nil {
		return q.QueueName
	}
	return ""
}

// wrapUpCapacity applies the workstream's wrap-up capacity blocking: the
// agent's capacity is released now, at close, or after a duration.
func (c *conversation) wrapUpCapacity(ctx workflow.Context) error {
	if !c.ledger() {
		return nil
	}
	block := routing.WrapUpBlock{Mode: routing.WrapUpAlways}
	if c.routingOn() {
		block = c.state.Settings.Routing.BlockCapacityDuringWrapUp
	}
	if block.Mode == routing.WrapUpNever {
		return c.release(ctx, "wrap-up holds no capacity: release the agent's capacity")
	}
	in := activities.ReleaseInput{ConversationID: c.state.ConversationID, Now: workflow.Now(ctx).UTC()}
	actx := workflow.WithActivityOptions(ctx, routingActivity("hold the agent's capacity during wrap-up"))
	if err := workflow.ExecuteActivity(actx, activities.HoldForWrapUpName, in).Get(ctx, nil); err != nil {
		return fmt.Errorf("hold for wrap-up: %w", err)
	}
	if block.Mode == routing.WrapUpDuration && block.Duration > 0 {
		c.state.WrapUpReleaseAt = workflow.Now(ctx).UTC().Add(block.Duration.D())
	}
	return nil
}
