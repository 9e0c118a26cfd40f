// Package workflows holds Parley's Temporal workflows: one long-running
// conversation workflow per (Facebook page, customer PSID) while it is open.
package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
)

// Signal, query and workflow names are part of the contract with the gateway,
// the REST API and histories already recorded: never rename them.
const (
	ConversationWorkflowName = "Conversation"
	// SignalMessengerEvents carries MessengerEventsSignal: the events of one
	// webhook POST for one customer, in the order Meta sent them.
	SignalMessengerEvents = "messenger-events"
	// QueryState returns ConversationState.
	QueryState = "state"
)

// Conversation states (contact-center.md section 5). Issue 2 only opens
// conversations; the others come with the full lifecycle.
const (
	StateOpen    = "open"
	StateActive  = "active"
	StateWaiting = "waiting"
	StateWrapUp  = "wrap_up"
	StateClosed  = "closed"
)

// Search attributes that make a conversation findable in Temporal Web.
var (
	SearchAttrPageID         = temporal.NewSearchAttributeKeyKeyword("ParleyPageID")
	SearchAttrPSID           = temporal.NewSearchAttributeKeyKeyword("ParleyPSID")
	SearchAttrState          = temporal.NewSearchAttributeKeyKeyword("ParleyState")
	SearchAttrConversationID = temporal.NewSearchAttributeKeyKeyword("ParleyConversationID")
	SearchAttrAgent          = temporal.NewSearchAttributeKeyKeyword("ParleyAgent")
	SearchAttrQueue          = temporal.NewSearchAttributeKeyKeyword("ParleyQueue")
	SearchAttrReplyDeadline  = temporal.NewSearchAttributeKeyTime("ParleyReplyWindowDeadline")
)

// SearchAttributes lists every custom search attribute Parley uses, so the
// worker and the dev server can register them.
func SearchAttributes() []temporal.SearchAttributeKey {
	return []temporal.SearchAttributeKey{
		SearchAttrPageID, SearchAttrPSID, SearchAttrState, SearchAttrConversationID,
		SearchAttrAgent, SearchAttrQueue, SearchAttrReplyDeadline,
	}
}

// ConversationWorkflowID is the workflow ID of the conversation between a
// Facebook page and one customer. Every webhook for that pair signals it; a
// closed conversation's ID is reused by the next one.
func ConversationWorkflowID(facebookPageID, psid string) string {
	return "conversation/" + facebookPageID + "/" + psid
}

// ConversationSummary is the one-line StaticSummary shown in Temporal Web.
func ConversationSummary(pageName, facebookPageID, psid string) string {
	if pageName == "" {
		pageName = "page"
	}
	return fmt.Sprintf("Messenger conversation between customer %s and %s (page %s)", psid, pageName, facebookPageID)
}

// MessengerEventsSignal is the payload of SignalMessengerEvents.
type MessengerEventsSignal struct {
	Events []messenger.Event `json:"events"`
}

// ConversationInput starts (or continues) a conversation workflow.
type ConversationInput struct {
	PageRef        string `json:"page_ref"` // Parley's page id
	AccountID      string `json:"account_id"`
	FacebookPageID string `json:"facebook_page_id"`
	PageName       string `json:"page_name"`
	PSID           string `json:"psid"`
	// Limits is zero in production; tests lower it to exercise continue-as-new.
	Limits Limits `json:"limits,omitempty"`
	// Carried is set by continue-as-new.
	Carried *ConversationState `json:"carried,omitempty"`
}

// Limits bound one workflow run so it continues as new well before the
// server's limits (10,000 signals, ~4,096 events suggested).
type Limits struct {
	MaxEventsPerRun  int `json:"max_events_per_run,omitempty"`
	MaxSignalsPerRun int `json:"max_signals_per_run,omitempty"`
}

func (l Limits) withDefaults() Limits {
	if l.MaxEventsPerRun <= 0 {
		l.MaxEventsPerRun = 3000
	}
	if l.MaxSignalsPerRun <= 0 {
		l.MaxSignalsPerRun = 1000
	}
	return l
}

// ConversationState is what the workflow knows; the state query returns it
// and continue-as-new carries it.
type ConversationState struct {
	ConversationID         string     `json:"conversation_id"`
	State                  string     `json:"state"`
	StartedAt              time.Time  `json:"started_at"`
	NextSeq                int64      `json:"next_seq"`
	CustomerMessages       int        `json:"customer_messages"`
	PageMessages           int        `json:"page_messages"`
	LastCustomerMessageAt  *time.Time `json:"last_customer_message_at,omitempty"`
	PreviousConversationID string     `json:"previous_conversation_id,omitempty"`
	// RecentKeys remembers the latest dedupe keys so Meta's retries do not
	// even reach the database; the database's unique key catches older ones.
	RecentKeys []string `json:"recent_keys,omitempty"`
	Runs       int      `json:"runs"`
}

const recentKeysKept = 500

func (s *ConversationState) seen(key string) bool {
	for _, k := range s.RecentKeys {
		if k == key {
			return true
		}
	}
	return false
}

func (s *ConversationState) remember(key string) {
	s.RecentKeys = append(s.RecentKeys, key)
	if over := len(s.RecentKeys) - recentKeysKept; over > 0 {
		s.RecentKeys = append([]string(nil), s.RecentKeys[over:]...)
	}
}

// ConversationWorkflow runs one conversation. It delegates to conversation,
// whose setup registers handlers and whose run is the main loop.
func ConversationWorkflow(ctx workflow.Context, in ConversationInput) error {
	c := &conversation{in: in, limits: in.Limits.withDefaults()}
	if err := c.setup(ctx); err != nil {
		return err
	}
	return c.run(ctx)
}

type conversation struct {
	in      ConversationInput
	limits  Limits
	state   ConversationState
	signals workflow.ReceiveChannel
	// signalsThisRun counts signals received since this run started.
	signalsThisRun int
	workflowID     string
}

func (c *conversation) setup(ctx workflow.Context) error {
	if c.in.Carried != nil {
		c.state = *c.in.Carried
		c.in.Carried = nil
	}
	c.workflowID = workflow.GetInfo(ctx).WorkflowExecution.ID
	c.signals = workflow.GetSignalChannel(ctx, SignalMessengerEvents)
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (ConversationState, error) {
		return c.state, nil
	}); err != nil {
		return fmt.Errorf("register %s query: %w", QueryState, err)
	}
	return nil
}

func (c *conversation) run(ctx workflow.Context) error {
	if c.state.ConversationID == "" {
		if err := c.open(ctx); err != nil {
			return err
		}
	}
	c.state.Runs++
	c.describe(ctx)

	for {
		var first MessengerEventsSignal
		c.signals.Receive(ctx, &first)
		c.signalsThisRun++
		// Drain whatever else is already buffered: one activity per burst.
		batch := append(first.Events, c.drain()...)
		if err := c.record(ctx, batch); err != nil {
			return err
		}
		c.describe(ctx)

		if c.shouldContinueAsNew(ctx) {
			return c.continueAsNew(ctx)
		}
	}
}

// drain takes every signal already buffered. Each is decoded into a fresh
// value: decoding into a reused one would share the events' Raw buffers.
func (c *conversation) drain() []messenger.Event {
	var events []messenger.Event
	for {
		var sig MessengerEventsSignal
		if !c.signals.ReceiveAsync(&sig) {
			return events
		}
		c.signalsThisRun++
		events = append(events, sig.Events...)
	}
}

// open creates the conversation's row and identity on its first run.
func (c *conversation) open(ctx workflow.Context) error {
	var id string
	if err := workflow.SideEffect(ctx, func(workflow.Context) any {
		return newUUID()
	}).Get(&id); err != nil {
		return fmt.Errorf("conversation id: %w", err)
	}
	c.state.ConversationID = id
	c.state.State = StateOpen
	c.state.StartedAt = workflow.Now(ctx).UTC()
	c.state.NextSeq = 1

	var opened activities.OpenConversationResult
	actx := workflow.WithActivityOptions(ctx, recordActivityOptions("open the conversation record"))
	if err := workflow.ExecuteActivity(actx, activities.OpenConversationName, c.recordInput(nil)).Get(ctx, &opened); err != nil {
		return fmt.Errorf("open conversation: %w", err)
	}
	c.state.PreviousConversationID = opened.PreviousConversationID
	return workflow.UpsertTypedSearchAttributes(ctx,
		SearchAttrConversationID.ValueSet(id),
		SearchAttrState.ValueSet(c.state.State),
	)
}

// record turns a burst of events into transcript rows and persists them.
func (c *conversation) record(ctx workflow.Context, events []messenger.Event) error {
	var rows []activities.TranscriptEntry
	var marks []activities.Watermark
	for _, e := range events {
		key := e.DedupeKey()
		if c.state.seen(key) {
			continue
		}
		c.state.remember(key)
		switch e.Kind {
		case messenger.KindDelivery, messenger.KindRead:
			marks = append(marks, activities.Watermark{Kind: string(e.Kind), At: time.UnixMilli(e.Watermark).UTC()})
			continue
		}
		rows = append(rows, c.entry(e))
		if e.OpensWindow() {
			at := time.UnixMilli(e.Timestamp).UTC()
			if c.state.LastCustomerMessageAt == nil || at.After(*c.state.LastCustomerMessageAt) {
				c.state.LastCustomerMessageAt = &at
			}
		}
	}
	if len(rows) == 0 && len(marks) == 0 {
		return nil
	}
	in := c.recordInput(rows)
	in.Watermarks = marks
	actx := workflow.WithActivityOptions(ctx, recordActivityOptions("record the customer's messages"))
	if err := workflow.ExecuteActivity(actx, activities.RecordTranscriptName, in).Get(ctx, nil); err != nil {
		return fmt.Errorf("record transcript: %w", err)
	}
	return nil
}

func (c *conversation) entry(e messenger.Event) activities.TranscriptEntry {
	t := activities.TranscriptEntry{
		Seq:       c.state.NextSeq,
		Kind:      string(e.Kind),
		MID:       e.MID,
		DedupeKey: e.DedupeKey(),
		Text:      e.Text,
		Event:     e,
		At:        time.UnixMilli(e.Timestamp).UTC(),
		Direction: "in",
		Sender:    "customer",
	}
	c.state.NextSeq++
	switch e.Kind {
	case messenger.KindEcho:
		// Sent by the page from outside Parley (Meta's Page Inbox, another app).
		t.Kind = string(messenger.KindMessage)
		t.Direction, t.Sender = "out", "page"
		c.state.PageMessages++
	case messenger.KindPostback:
		if t.Text == "" {
			t.Text = e.PostbackTitle
		}
		c.state.CustomerMessages++
	case messenger.KindMessage:
		c.state.CustomerMessages++
	}
	return t
}

func (c *conversation) recordInput(rows []activities.TranscriptEntry) activities.RecordTranscriptInput {
	return activities.RecordTranscriptInput{
		ConversationID:         c.state.ConversationID,
		PageRef:                c.in.PageRef,
		AccountID:              c.in.AccountID,
		FacebookPageID:         c.in.FacebookPageID,
		PSID:                   c.in.PSID,
		WorkflowID:             c.workflowID,
		State:                  c.state.State,
		StartedAt:              c.state.StartedAt,
		MessageCount:           c.state.CustomerMessages + c.state.PageMessages,
		LastCustomerMessageAt:  c.state.LastCustomerMessageAt,
		PreviousConversationID: c.state.PreviousConversationID,
		Entries:                rows,
	}
}

// describe tells ops, in Temporal Web, where the conversation stands.
func (c *conversation) describe(ctx workflow.Context) {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**: waiting for an agent (routing comes later).\n\n", strings.ToUpper(c.state.State[:1])+c.state.State[1:])
	fmt.Fprintf(&b, "%d message(s) from the customer, %d from the page.", c.state.CustomerMessages, c.state.PageMessages)
	if c.state.LastCustomerMessageAt != nil {
		fmt.Fprintf(&b, " Last customer message at %s.", c.state.LastCustomerMessageAt.Format(time.RFC3339))
	}
	workflow.SetCurrentDetails(ctx, b.String())
}

func (c *conversation) shouldContinueAsNew(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() ||
		info.GetCurrentHistoryLength() >= c.limits.MaxEventsPerRun ||
		c.signalsThisRun >= c.limits.MaxSignalsPerRun
}

// continueAsNew drains signals that arrived meanwhile, so none is lost, and
// carries the state into a fresh run.
func (c *conversation) continueAsNew(ctx workflow.Context) error {
	for batch := c.drain(); len(batch) > 0; batch = c.drain() {
		if err := c.record(ctx, batch); err != nil {
			return err
		}
	}
	next := c.in
	carried := c.state
	next.Carried = &carried
	return workflow.NewContinueAsNewError(ctx, ConversationWorkflow, next)
}

func recordActivityOptions(summary string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		Summary:             summary,
		// The database may be down for a while: keep trying, never drop a message.
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	}
}

func newUUID() string { return uuid.NewString() }
