package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
	"parley/store"
)

// run is the conversation's lifecycle: open -> active <-> waiting ->
// wrap_up -> closed, Meta's windows, and auto-close timers.
func (c *conversation) run(ctx workflow.Context) error {
	if c.nothingLost && c.windows.EdgeMargin <= 0 {
		c.windows.EdgeMargin = DefaultEdgeMargin
	}
	// Updates wait until the run holds its opening messages: an agent
	// assigned meanwhile would otherwise save a conversation without them.
	unlock, err := c.lock(ctx)
	if err != nil {
		return err
	}
	proceed, err := c.prelude(ctx)
	unlock()
	if err != nil || !proceed {
		return err
	}
	for {
		if err := c.locked(ctx, func() error {
			if err := c.checkDeadlines(ctx); err != nil {
				return err
			}
			if err := c.checkPreSurvey(ctx); err != nil {
				return err
			}
			if err := c.checkRouting(ctx); err != nil {
				return err
			}
			return c.checkPosition(ctx)
		}); err != nil {
			return err
		}
		if c.state.State == StateClosed {
			break
		}
		if err := c.publish(ctx); err != nil {
			return err
		}
		if c.shouldContinueAsNew(ctx) {
			return c.continueAsNew(ctx)
		}
		c.arm(ctx)
		var events []messenger.Event
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(c.signals, func(ch workflow.ReceiveChannel, _ bool) {
			var first MessengerEventsSignal
			ch.Receive(ctx, &first)
			c.signalsThisRun++
			events = append(first.Events, c.drain()...)
		})
		sel.AddReceive(c.wake, func(ch workflow.ReceiveChannel, _ bool) { ch.Receive(ctx, nil) })
		settingsChanged := false
		if c.nothingLost {
			sel.AddReceive(c.settings, func(ch workflow.ReceiveChannel, _ bool) {
				ch.Receive(ctx, nil)
				c.signalsThisRun++
				c.drainSettings()
				settingsChanged = true
			})
		}
		var offers []OfferSignal
		if c.routingV {
			sel.AddReceive(c.offers, func(ch workflow.ReceiveChannel, _ bool) {
				var o OfferSignal
				ch.Receive(ctx, &o)
				c.signalsThisRun++
				offers = append(append(offers, o), c.drainOffers()...)
			})
		}
		for _, t := range append(append(c.timers[:], c.rtimers[:]...), &c.surveyTimer, &c.preSurveyTimer, &c.positionTimer) {
			if t != nil && t.future != nil {
				sel.AddFuture(t.future, t.fire)
			}
		}
		sel.Select(ctx)
		if ctx.Err() != nil {
			return c.canceled(ctx)
		}
		if settingsChanged {
			// The timers re-arm from the new settings at the top of the loop.
			if err := c.locked(ctx, func() error {
				if err := c.loadSettings(ctx); err != nil {
					return err
				}
				return c.routeIfUnrouted(ctx)
			}); err != nil {
				return err
			}
		}
		if len(offers) > 0 {
			if err := c.locked(ctx, func() error { return c.onOffers(ctx, offers) }); err != nil {
				return err
			}
		}
		if len(events) > 0 {
			if err := c.locked(ctx, func() error { return c.onEvents(ctx, events) }); err != nil {
				return err
			}
		}
	}
	if c.nothingLost {
		return c.finishBounded(ctx)
	}
	return c.finish(ctx)
}

// prelude opens the conversation on its first run, reads the settings and
// processes the events carried from the previous run. It says false when
// the run ends without a conversation (nothing opened one).
func (c *conversation) prelude(ctx workflow.Context) (bool, error) {
	if c.state.ConversationID == "" {
		if c.nothingLost {
			opened, err := c.start(ctx)
			if err != nil || !opened {
				return false, err
			}
		} else if err := c.open(ctx); err != nil {
			return false, err
		}
	}
	c.state.Runs++
	if last := c.state.LastCustomerMessageAt; last != nil && c.state.LastActivityAt.Before(*last) {
		// Upgraded from the recording-only loop, which did not track activity.
		c.state.LastActivityAt = *last
	}
	if c.state.Outbox == nil {
		c.state.Outbox = map[string]string{}
	}
	if c.state.Settings == nil {
		if err := c.loadSettings(ctx); err != nil {
			return false, err
		}
	}
	if len(c.in.Pending) > 0 {
		pending := c.in.Pending
		c.in.Pending = nil
		if err := c.onEvents(ctx, pending); err != nil {
			return false, err
		}
	}
	if c.profileV && c.state.Customer == nil {
		// Before routing: rules may use the customer's name.
		if err := c.loadProfile(ctx); err != nil {
			return false, err
		}
	}
	if c.profileV && c.state.Runs == 1 {
		// A new conversation: the greeting, then the privacy notice, if the
		// workstream has them (inside the window only; otherwise the
		// transcript says why). Greeting first: a hello before the legalese.
		if c.automatedV {
			if err := c.automated(ctx, store.TriggerGreeting, nil); err != nil {
				return false, err
			}
		}
		if err := c.automated(ctx, store.TriggerPrivacyNotice, nil); err != nil {
			return false, err
		}
		// Then the pre-conversation survey: routing waits for its answers.
		if err := c.startPreSurvey(ctx); err != nil {
			return false, err
		}
	}
	if c.routingV {
		offers := c.in.Offers
		c.in.Offers = nil
		if err := c.onOffers(ctx, offers); err != nil {
			return false, err
		}
		if err := c.routeIfUnrouted(ctx); err != nil {
			return false, err
		}
	}
	return true, nil
}

// locked runs f under the state mutex.
func (c *conversation) locked(ctx workflow.Context, f func() error) error {
	unlock, err := c.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return f()
}

// onEvents records what the customer (or Meta) sent and applies the
// transitions it causes.
func (c *conversation) onEvents(ctx workflow.Context, events []messenger.Event) error {
	c.trackThread(ctx, events)
	if c.state.Survey != nil && c.state.State == StateWrapUp {
		// The customer's answers belong to the post-survey, not to a new conversation.
		rest, err := c.onSurveyEvents(ctx, events)
		if err != nil || len(rest) == 0 {
			return err
		}
		events = rest
	}
	talksToAnother := c.state.ThreadOwner != "" && standbyOnly(events) && (c.state.Settings == nil || !c.state.Settings.StandbyOpens)
	if c.state.State == StateWrapUp && opensWindow(events) && !talksToAnother {
		// The agent has ended this conversation: the customer's new message
		// opens the next one, linked to this.
		c.next = append(c.next, events...)
		return c.close(ctx, "the customer wrote again after the agent ended the conversation")
	}
	before := c.state.LastCustomerMessageAt
	answers := c.preSurveyAnswers(events)
	if err := c.record(ctx, events); err != nil {
		return err
	}
	for _, e := range answers {
		if err := c.onPreSurveyAnswer(ctx, e); err != nil {
			return err
		}
	}
	if c.state.LastCustomerMessageAt == before {
		return nil
	}
	c.state.LastActivityAt = workflow.Now(ctx).UTC()
	if c.profileV && c.state.Customer != nil && c.state.Customer.Due(c.state.LastActivityAt) {
		// A name still unknown is asked again only once its wait is over
		// (not on every message); a known one at most daily.
		if err := c.loadProfile(ctx); err != nil {
			return err
		}
	}
	if talksToAnother {
		return nil // the customer talks to another app: no work for agents
	}
	if c.state.State == StateWaiting && c.routingOn() {
		// Set aside by the agent: the customer's reply brings it back to a
		// queue, first to that agent when the workstream keeps the same agent.
		return c.requeue(ctx)
	}
	if c.state.State == StateWaiting {
		// Set aside by the agent: the customer's reply brings it back to that agent.
		to := StateOpen
		if c.state.AgentID != "" {
			to = StateActive
		}
		return c.transition(ctx, to)
	}
	return nil
}

func opensWindow(events []messenger.Event) bool {
	for _, e := range events {
		if e.OpensWindow() {
			return true
		}
	}
	return false
}

// transition moves to state `to` and saves the conversation.
func (c *conversation) transition(ctx workflow.Context, to string) error {
	now := workflow.Now(ctx).UTC()
	c.state.State = to
	c.state.StateSince = now
	c.state.LastActivityAt = now
	if to != StateClosed {
		// Auto-close durations apply from the state entered: read them now.
		if err := c.loadSettings(ctx); err != nil {
			return err
		}
	}
	return c.save(ctx)
}

func (c *conversation) close(ctx workflow.Context, reason string) error {
	if err := c.release(ctx, "the conversation closes: release its capacity and queue place"); err != nil {
		return err
	}
	now := workflow.Now(ctx).UTC()
	// A survey still waiting ends with the conversation (as asked, or answered).
	c.state.Survey = nil
	c.state.ClosedAt = &now
	c.state.ClosedReason = reason
	return c.transition(ctx, StateClosed)
}

func (c *conversation) loadSettings(ctx workflow.Context) error {
	var s activities.Settings
	actx := c.readContext(ctx, storeActivity("read the workstream settings"))
	if err := c.execRead(actx, activities.LoadSettingsName, c.in.PageRef).Get(ctx, &s); err != nil {
		return fmt.Errorf("load settings: %w", err)
	}
	c.state.Settings = &s
	return nil
}

// autoCloseDeadline is when the current state ends for lack of activity;
// in wrap-up, at the later of its end and the post-survey's.
func (c *conversation) autoCloseDeadline() time.Time {
	if c.state.State == StateWrapUp {
		return c.withSurvey(c.inactivityDeadline())
	}
	return c.inactivityDeadline()
}

// inactivityDeadline is when the current state ends by its own duration.
func (c *conversation) inactivityDeadline() time.Time {
	s := c.state.Settings
	if s == nil {
		return time.Time{}
	}
	var d time.Duration
	from := c.state.LastActivityAt
	switch c.state.State {
	case StateOpen:
		d = s.AutoCloseOpen
	case StateActive:
		d = s.AutoCloseActive
	case StateWaiting:
		d = s.AutoCloseWaiting
	case StateWrapUp:
		if c.state.AutoClosed != "" {
			return c.state.StateSince // held for the survey only
		}
		d, from = s.WrapUp, c.state.StateSince
		if d <= 0 && c.routingV {
			// A wrap-up of 0s closes at once, as documented (runs before
			// routing kept such a conversation in wrap-up).
			return from
		}
	}
	if d <= 0 {
		return time.Time{}
	}
	return from.Add(d)
}

func (c *conversation) mode(now time.Time, automated bool) Mode {
	tag := c.state.Settings != nil && c.state.Settings.HumanAgentTag
	return c.threadMode(ReplyMode(now, c.state.LastCustomerMessageAt, c.windows, tag, automated))
}

// arm keeps one timer per deadline (lazy deadlines).
func (c *conversation) arm(ctx workflow.Context) {
	m := c.mode(workflow.Now(ctx), false)
	c.timers[0].arm(ctx, m.ReplyDeadline)
	c.timers[1].arm(ctx, m.HumanAgentDeadline)
	c.timers[2].summary = "auto-close after inactivity"
	if c.state.State == StateWrapUp {
		c.timers[2].summary = "wrap-up duration"
	}
	c.timers[2].arm(ctx, c.autoCloseDeadline())
	c.armRouting(ctx)
	c.armSurvey(ctx)
	c.armPreSurvey(ctx)
	c.armPosition(ctx)
}

// checkDeadlines closes the conversation whose auto-close time has come,
// after re-reading the settings (an admin may have changed them).
func (c *conversation) checkDeadlines(ctx workflow.Context) error {
	if c.state.State == StateClosed {
		return nil
	}
	if err := c.checkSurvey(ctx); err != nil {
		return err
	}
	now := workflow.Now(ctx)
	if d := c.autoCloseDeadline(); d.IsZero() || now.Before(d) {
		return nil
	}
	if err := c.loadSettings(ctx); err != nil {
		return err
	}
	d := c.autoCloseDeadline()
	if d.IsZero() || now.Before(d) {
		return nil
	}
	if c.state.State == StateWrapUp {
		return c.close(ctx, c.wrapUpEndReason())
	}
	reason := fmt.Sprintf("closed automatically after %s without activity while %s", span(d.Sub(c.state.LastActivityAt)), c.state.State)
	if held, err := c.surveyOnAutoClose(ctx, reason); err != nil || held {
		return err
	}
	return c.close(ctx, reason)
}

// surveyOnAutoClose asks the post-survey of a conversation that an agent
// took and that closes for inactivity, when the workstream says so. An
// in-chat survey holds the conversation in wrap-up (the agent's capacity
// released) until it ends; it reports whether it does.
func (c *conversation) surveyOnAutoClose(ctx workflow.Context, reason string) (bool, error) {
	p := c.state.Settings.PostSurvey
	if p == nil || !p.OnAutoClose || c.state.AgentID == "" {
		return false, nil
	}
	if err := c.release(ctx, "auto-close: release the agent's capacity before the survey"); err != nil {
		return false, err
	}
	c.state.AutoClosed = reason
	if err := c.transition(ctx, StateWrapUp); err != nil {
		return false, err
	}
	if err := c.startPostSurvey(ctx); err != nil {
		return false, err
	}
	return c.state.Survey != nil, nil
}

// canceled closes a conversation canceled from Temporal (an operator's
// decision) so that its record does not stay open, then ends the run.
func (c *conversation) canceled(ctx workflow.Context) error {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	if err := c.close(dctx, "canceled from Temporal"); err != nil {
		return err
	}
	if err := c.publish(dctx); err != nil {
		return err
	}
	return ctx.Err()
}

// finish ends a closed conversation once every update is answered. Events
// that arrived meanwhile start the next conversation, so none is lost.
func (c *conversation) finish(ctx workflow.Context) error {
	if err := c.publish(ctx); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	next := append(c.next, c.drain()...)
	if len(next) == 0 {
		return nil
	}
	fresh := c.in
	fresh.Carried, fresh.Pending = nil, next
	return workflow.NewContinueAsNewError(ctx, ConversationWorkflow, fresh)
}

// continueAsNew carries the state into a fresh run once every update is
// answered and every buffered signal handled, so none is lost.
func (c *conversation) continueAsNew(ctx workflow.Context) error {
	if c.nothingLost {
		return c.continueAsNewBounded(ctx)
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	for batch := c.drain(); len(batch) > 0; batch = c.drain() {
		var err error
		if c.state.Lifecycle == 0 {
			err = c.record(ctx, batch)
		} else {
			err = c.onEvents(ctx, batch)
		}
		if err != nil {
			return err
		}
	}
	if c.state.State == StateClosed {
		return c.finish(ctx)
	}
	next := c.in
	carried := c.state
	next.Carried = &carried
	return workflow.NewContinueAsNewError(ctx, ConversationWorkflow, next)
}

// published is what the search attributes and details last said.
type published struct {
	state, agent, queue string
	deadline            time.Time
	details             string
}

// publish keeps Temporal Web current: search attributes (upserted only when
// they change) and, in plain words, where the conversation stands.
func (c *conversation) publish(ctx workflow.Context) error {
	now := workflow.Now(ctx)
	m := c.mode(now, false)
	var updates []temporal.SearchAttributeUpdate
	if c.published.state != c.state.State {
		updates = append(updates, SearchAttrState.ValueSet(c.state.State))
	}
	if q := c.queueName(); c.routingV && c.published.queue != q {
		if q == "" {
			updates = append(updates, SearchAttrQueue.ValueUnset())
		} else {
			updates = append(updates, SearchAttrQueue.ValueSet(q))
		}
	}
	if c.published.agent != c.state.AgentID {
		if c.state.AgentID == "" {
			updates = append(updates, SearchAttrAgent.ValueUnset())
		} else {
			updates = append(updates, SearchAttrAgent.ValueSet(c.state.AgentID))
		}
	}
	if !m.ReplyDeadline.IsZero() && !c.published.deadline.Equal(m.ReplyDeadline) {
		updates = append(updates, SearchAttrReplyDeadline.ValueSet(m.ReplyDeadline))
	}
	if len(updates) > 0 {
		if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
			return fmt.Errorf("upsert search attributes: %w", err)
		}
		c.published.state, c.published.agent, c.published.deadline = c.state.State, c.state.AgentID, m.ReplyDeadline
		c.published.queue = c.queueName()
	}
	if d := c.details(now, m); d != c.published.details {
		workflow.SetCurrentDetails(ctx, d)
		c.published.details = d
	}
	return nil
}

func (c *conversation) details(now time.Time, m Mode) string {
	var b strings.Builder
	s := c.state
	agent := s.AgentID
	switch s.State {
	case StateOpen:
		if d := c.preSurveyDetails(); d != "" {
			b.WriteString("**Open**: " + d)
		} else if d := c.routingDetails(now); d != "" {
			b.WriteString(d)
		} else {
			b.WriteString("**Open**: waiting for an agent to be assigned.")
		}
	case StateActive:
		fmt.Fprintf(&b, "**Active** with agent %s: waiting for the agent to reply or end the conversation.", agent)
	case StateWaiting:
		fmt.Fprintf(&b, "**Waiting**: set aside by agent %s; waiting for the customer to write again.", agent)
	case StateWrapUp:
		if s.AutoClosed != "" {
			fmt.Fprintf(&b, "**Wrap-up**: %s (agent %s); held for the post-conversation survey only.", s.AutoClosed, agent)
		} else {
			fmt.Fprintf(&b, "**Wrap-up**: agent %s ended the conversation.", agent)
		}
		if d := c.surveyDetails(); d != "" {
			b.WriteString(" " + d)
		}
	case StateClosed:
		fmt.Fprintf(&b, "**Closed** at %s: %s.", stamp(*s.ClosedAt), s.ClosedReason)
	}
	b.WriteString("\n\n")
	switch m.Mode {
	case ModeResponse:
		fmt.Fprintf(&b, "Replies go as RESPONSE until %s", stamp(m.ReplyDeadline))
		if c.state.Settings != nil && c.state.Settings.HumanAgentTag {
			fmt.Fprintf(&b, ", then as HUMAN_AGENT until %s.", stamp(m.HumanAgentDeadline))
		} else {
			b.WriteString("; the human-agent tag is off.")
		}
	case ModeHumanAgent:
		fmt.Fprintf(&b, "The 24-hour window closed; agents may reply as HUMAN_AGENT until %s. Automated messages may not be sent.", stamp(m.HumanAgentDeadline))
	default:
		fmt.Fprintf(&b, "Nothing may be sent: %s.", m.Reason)
	}
	if d := c.autoCloseDeadline(); !d.IsZero() && s.State != StateClosed {
		if s.State == StateWrapUp {
			fmt.Fprintf(&b, "\n\nCloses at %s when wrap-up ends.", stamp(d))
		} else {
			fmt.Fprintf(&b, "\n\nCloses automatically at %s if nothing happens.", stamp(d))
		}
	}
	if d := c.customerDetails(); d != "" {
		b.WriteString("\n\n" + d)
	}
	fmt.Fprintf(&b, "\n\n%d message(s) from the customer, %d from agents, %d from the page outside Parley.",
		s.CustomerMessages, s.AgentMessages, s.PageMessages)
	return b.String()
}
