// Package workflows holds Parley's Temporal workflows: one long-running
// conversation workflow per (Facebook page, customer PSID) while it is open.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
	"parley/store"
)

// Signal, query, update and workflow names are part of the contract with the
// gateway, the REST API and recorded histories: never rename them.
const (
	ConversationWorkflowName = "Conversation"
	// SignalMessengerEvents carries MessengerEventsSignal: the events of one
	// webhook POST for one customer, in the order Meta sent them.
	SignalMessengerEvents = "messenger-events"
	// SignalSettingsChanged tells the conversation that its workstream's
	// settings changed: it reads them again and re-arms its timers.
	SignalSettingsChanged = "settings-changed"
	// QueryState returns ConversationState.
	QueryState = "state"

	UpdateAssign     = "assign"
	UpdateSetWaiting = "set-waiting"
	UpdateEnd        = "end"
	UpdateClose      = "close"
	UpdateSendReply  = "send-reply"
)

// Version markers of changes to live workflow logic.
const (
	// versionLifecycle: states, windows, timers and replies (issue 3).
	// Conversations started before it run the recording-only loop until
	// their next event, then continue as new into the lifecycle.
	versionLifecycle = "lifecycle"
	versionUpgrade   = "upgrade-to-lifecycle"
	// versionNothingLost: issue 6's fixes (no phantom conversations, bounded
	// continue-as-new, idempotency across runs, send outcomes, page flags).
	// Runs that started before it keep the old logic until their next
	// continue-as-new.
	versionNothingLost = "nothing-lost"
	// versionAutomated: issue 9's automated messages (greeting, holiday,
	// transfer accepted, translations, every variable filled, rate-limited
	// queue positions).
	versionAutomated = "automated-messages"
	// versionLocalReads: the activities that only read (settings, which
	// events are new, the queue position, the customer's profile) run as
	// local activities (issue 10): no task queue round trip and no
	// workflow task of their own. Writes stay regular activities: a local
	// activity runs before its workflow task commits, and a task that
	// fails is decided again, maybe differently (signals arrived
	// meanwhile), so a write made with what it decided (a sequence
	// number, a conversation id) could disagree with history. Reading
	// twice is harmless; the profile's write is the same whoever asks.
	versionLocalReads = "local-reads"
	// versionCurrent stands for every change above and the lazily asked
	// ones (send-limits, handover, position-updates, post-survey,
	// pre-survey): a run that starts with this code records this one
	// marker, where it recorded up to twelve, each with its upsert of
	// TemporalChangeVersion (14 events and 7 visibility writes per new
	// conversation or continue-as-new, about a fifth of a new
	// conversation's history). Runs recorded before it lack the marker and
	// replay through the individual ones, unchanged. A later change gets
	// its own marker as before, and joins a new versionCurrent (with the
	// old one kept as a fallback) when there are enough of them.
	versionCurrent = "current-2026-11"
)

// Conversation states (contact-center.md section 5).
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
	// Windows are Meta's window lengths (zero: 24 h and 7 d).
	Windows Windows `json:"windows,omitzero"`
	// Limits is zero in production; tests lower it.
	Limits Limits `json:"limits,omitzero"`
	// Carried is set by continue-as-new within one conversation.
	Carried *ConversationState `json:"carried,omitempty"`
	// Pending are events that arrived as the previous run ended: those of a
	// closed conversation open this one, those of a continued one are
	// processed first.
	Pending []messenger.Event `json:"pending,omitempty"`
	// Updates are the answers to recent updates, carried across runs and
	// conversations so that a retried Idempotency-Key gets its first answer.
	Updates []UpdateRecord `json:"updates,omitempty"`
	// Offers are the distributor's offers that arrived as the previous run ended.
	Offers []OfferSignal `json:"offers,omitempty"`
}

// Limits bound one workflow run so that it continues as new well before the
// server's limits (10,000 signals, 2,000 updates, ~4,096 events suggested),
// and tune how sends are retried.
type Limits struct {
	MaxEventsPerRun  int `json:"max_events_per_run,omitempty"`
	MaxSignalsPerRun int `json:"max_signals_per_run,omitempty"`
	MaxUpdatesPerRun int `json:"max_updates_per_run,omitempty"`
	// MaxSendAttempts bounds the tries of one message.
	MaxSendAttempts int `json:"max_send_attempts,omitempty"`
	// EchoWait is how long to wait for Meta's echo when a send's outcome is
	// unknown, before looking for the message on Meta's side.
	EchoWait time.Duration `json:"echo_wait,omitempty"`
	// BlindEchoWait is how long to wait for the echo when Meta's side cannot
	// be looked at (the page token lacks the permissions), before resending.
	BlindEchoWait time.Duration `json:"blind_echo_wait,omitempty"`
	// SendTimeout bounds one Send API activity; a send that times out (or
	// whose worker died) has an unknown outcome.
	SendTimeout time.Duration `json:"send_timeout,omitempty"`
}

// DefaultBlindEchoWait: without a way to look at Meta's side, resending
// risks a duplicate; an echo that late is rare.
const DefaultBlindEchoWait = 10 * time.Minute

func (l Limits) withDefaults() Limits {
	if l.MaxEventsPerRun <= 0 {
		l.MaxEventsPerRun = 3000
	}
	if l.MaxSignalsPerRun <= 0 {
		l.MaxSignalsPerRun = 1000
	}
	if l.MaxUpdatesPerRun <= 0 {
		l.MaxUpdatesPerRun = 500
	}
	if l.MaxSendAttempts <= 0 {
		l.MaxSendAttempts = 8
	}
	if l.EchoWait <= 0 {
		l.EchoWait = 15 * time.Second
	}
	if l.BlindEchoWait <= 0 {
		l.BlindEchoWait = DefaultBlindEchoWait
	}
	if l.SendTimeout <= 0 {
		l.SendTimeout = 30 * time.Second
	}
	return l
}

// ConversationState is what the workflow knows; the state query returns it
// and continue-as-new carries it.
type ConversationState struct {
	ConversationID         string     `json:"conversation_id"`
	State                  string     `json:"state"`
	AgentID                string     `json:"agent_id,omitempty"`
	StartedAt              time.Time  `json:"started_at"`
	StateSince             time.Time  `json:"state_since,omitzero"`
	LastActivityAt         time.Time  `json:"last_activity_at,omitzero"`
	NextSeq                int64      `json:"next_seq"`
	CustomerMessages       int        `json:"customer_messages"`
	PageMessages           int        `json:"page_messages"`
	AgentMessages          int        `json:"agent_messages,omitempty"`
	LastCustomerMessageAt  *time.Time `json:"last_customer_message_at,omitempty"`
	ClosedAt               *time.Time `json:"closed_at,omitempty"`
	ClosedReason           string     `json:"closed_reason,omitempty"`
	PreviousConversationID string     `json:"previous_conversation_id,omitempty"`
	// RecentKeys remembers the latest dedupe keys so Meta's retries do not
	// even reach the database; the database's unique key catches older ones.
	RecentKeys []string `json:"recent_keys,omitempty"`
	// Outbox holds Parley messages being sent: id -> mid once Meta's echo
	// confirmed it ("" until then).
	Outbox   map[string]string    `json:"outbox,omitempty"`
	Settings *activities.Settings `json:"settings,omitempty"`
	// Lifecycle is 1 once the conversation runs the lifecycle logic.
	Lifecycle int `json:"lifecycle,omitempty"`
	Runs      int `json:"runs"`
	// Revision orders the conversation's saves: the store keeps the
	// highest, so a retried older save never wins.
	Revision int64 `json:"revision,omitempty"`

	// Routing (issue 7).
	// FirstMessage and the referral are what routing rules see.
	FirstMessage   string `json:"first_message,omitempty"`
	ReferralRef    string `json:"referral_ref,omitempty"`
	ReferralSource string `json:"referral_source,omitempty"`
	// Queue is where an open conversation waits, and its offer.
	Queue *QueueState `json:"queue,omitempty"`
	// AnsweredQueueID is the queue an agent last took the conversation
	// from (the survey's queue in reports).
	AnsweredQueueID string `json:"answered_queue_id,omitempty"`
	// LastAgentID is the agent the conversation had last (keep same agent).
	LastAgentID string `json:"last_agent_id,omitempty"`
	// PreviousAgentID is the agent of the customer's previous conversation.
	PreviousAgentID string `json:"previous_agent_id,omitempty"`
	// WrapUpReleaseAt: the agent's capacity is released then, in wrap-up.
	WrapUpReleaseAt time.Time `json:"wrap_up_release_at,omitzero"`
	RouteSeq        int       `json:"route_seq,omitempty"`
	Routed          bool      `json:"routed,omitempty"`
	Assignments     int       `json:"assignments,omitempty"`
	// RoutingLog says in plain words what routing did (latest 20).
	RoutingLog []string `json:"routing_log,omitempty"`

	// Customer is the customer's profile as last read (issue 8): its name
	// is routing context; nil until read.
	Customer *activities.CustomerProfile `json:"customer,omitempty"`

	// Survey is the post-conversation survey waiting for an answer (issue 9).
	Survey *SurveyState `json:"post_survey,omitempty"`
	// ThreadOwner is the app controlling the Messenger thread when it is not
	// Parley (handover protocol), since ThreadOwnerSince: nothing is sent.
	ThreadOwner      string    `json:"thread_owner,omitempty"`
	ThreadOwnerSince time.Time `json:"thread_owner_since,omitzero"`
	// ThreadAnnounce: the owner changed and the next save tells the agent
	// (a conversation.thread live event).
	ThreadAnnounce bool `json:"thread_announce,omitempty"`
	// ThreadRequestedBy is the app that asked Parley for the thread
	// (request_thread_control), until the thread changes hands.
	ThreadRequestedBy string `json:"thread_requested_by,omitempty"`
	// AutoClosed: the conversation auto-closed (the reason) and waits in
	// wrap-up only for its post-survey.
	AutoClosed string `json:"auto_closed,omitempty"`

	// PreSurvey is the pre-conversation survey waiting for an answer (issue
	// 9); PreSurveyStatus its outcome ("" when none ran). SurveyAnswers are
	// its answers by question id: routing context (survey.<id>).
	PreSurvey        *PreSurveyState         `json:"pre_survey,omitempty"`
	PreSurveyStatus  string                  `json:"pre_survey_status,omitempty"`
	PreSurveyAnswers []store.PreSurveyAnswer `json:"pre_survey_answers,omitempty"`
	SurveyAnswers    map[string]string       `json:"survey_answers,omitempty"`
	SurveyTimedOut   bool                    `json:"survey_timed_out,omitempty"`

	// Automated messages (issue 9). AgentName fills {agent}; the queue
	// position last announced, and when, rate-limit queue_position.
	AgentName           string    `json:"agent_name,omitempty"`
	PositionAnnounced   int       `json:"position_announced,omitempty"`
	PositionAnnouncedAt time.Time `json:"position_announced_at,omitzero"`
	PositionQueueID     string    `json:"position_queue_id,omitempty"`
	// PositionCheckedAt: when the position was last read while waiting.
	PositionCheckedAt time.Time `json:"position_checked_at,omitzero"`
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
	c := newConversation(in)
	// Asked before the handlers exist: updates already waiting are
	// validated and handled as soon as they are registered.
	c.current = workflow.GetVersion(ctx, versionCurrent, workflow.DefaultVersion, 1) >= 1
	if c.current {
		c.nothingLost, c.routingV, c.profileV, c.filesV, c.automatedV, c.localReads = true, true, true, true, true, true
	} else {
		c.nothingLost = workflow.GetVersion(ctx, versionNothingLost, workflow.DefaultVersion, 1) >= 1
		c.routingV = c.nothingLost && workflow.GetVersion(ctx, versionRouting, workflow.DefaultVersion, 1) >= 1
		c.profileV = c.nothingLost && workflow.GetVersion(ctx, versionProfile, workflow.DefaultVersion, 1) >= 1
		c.filesV = c.profileV && workflow.GetVersion(ctx, versionKeepFiles, workflow.DefaultVersion, 1) >= 1
		c.automatedV = c.filesV && workflow.GetVersion(ctx, versionAutomated, workflow.DefaultVersion, 1) >= 1
		c.localReads = c.automatedV && workflow.GetVersion(ctx, versionLocalReads, workflow.DefaultVersion, 1) >= 1
	}
	if err := c.setup(ctx); err != nil {
		return err
	}
	if c.state.Lifecycle == 0 {
		if !c.current && workflow.GetVersion(ctx, versionLifecycle, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			return c.runLegacy(ctx)
		}
		c.state.Lifecycle = 1
	}
	return c.run(ctx)
}

type conversation struct {
	in      ConversationInput
	limits  Limits
	windows Windows
	state   ConversationState

	signals  workflow.ReceiveChannel
	settings workflow.ReceiveChannel
	// wake lets update handlers wake the main loop after a transition.
	wake workflow.Channel
	// mu serializes what changes the conversation's state (handlers and
	// the main loop), so that none acts on a state another changed while
	// it waited on an activity. Lock order: mu, then sendMu.
	mu     workflow.Mutex
	sendMu workflow.Mutex
	// nothingLost: this run has issue 6's logic (versionNothingLost).
	nothingLost bool
	// routingV: this run has issue 7's routing and capacity ledger.
	routingV bool
	// profileV: this run reads the customer's profile (versionProfile).
	profileV bool
	// filesV: this run keeps the customer's files (versionKeepFiles).
	filesV bool
	// automatedV: this run has issue 9's automated messages (versionAutomated).
	automatedV bool
	// localReads: this run's reading activities are local (versionLocalReads).
	localReads bool
	// current: this run started with versionCurrent: every change is on,
	// none asked on its own.
	current bool
	// routingNow: route is waiting for the ledger's answer (a pick may
	// already see the conversation queued).
	routingNow bool
	offers     workflow.ReceiveChannel
	rtimers    [4]*lazyTimer
	// updates answers retried update ids (see UpdateRecord).
	updates []UpdateRecord

	workflowID     string
	signalsThisRun int
	updatesThisRun int
	timers         [3]*lazyTimer
	// next are events that belong to the conversation after this one.
	next []messenger.Event
	// published is what the search attributes last said.
	published published
	// surveyTimer is the post-survey's response time-out.
	surveyTimer lazyTimer
	// surveyEnd is how this run's post-survey ended ("answered", "timed
	// out") and when: the close reason says so when it held the wrap-up.
	surveyEnd   string
	surveyEndAt time.Time
	// preSurveyTimer is the pre-survey's current time-out.
	preSurveyTimer lazyTimer
	// positionTimer is the next read of the queue position.
	positionTimer lazyTimer
}

func newConversation(in ConversationInput) *conversation {
	c := &conversation{in: in, limits: in.Limits.withDefaults(), windows: in.Windows.WithDefaults()}
	if in.Carried != nil {
		c.state = *in.Carried
		c.in.Carried = nil
	}
	c.updates = in.Updates
	c.in.Updates = nil
	return c
}

func (c *conversation) setup(ctx workflow.Context) error {
	c.workflowID = workflow.GetInfo(ctx).WorkflowExecution.ID
	c.signals = workflow.GetSignalChannel(ctx, SignalMessengerEvents)
	c.settings = workflow.GetSignalChannel(ctx, SignalSettingsChanged)
	c.offers = workflow.GetSignalChannel(ctx, SignalOffer)
	c.rtimers = newRoutingTimers()
	c.wake = workflow.NewBufferedChannel(ctx, 1)
	c.mu = workflow.NewMutex(ctx)
	c.sendMu = workflow.NewMutex(ctx)
	c.timers = [3]*lazyTimer{
		{summary: "24-hour reply window"},
		{summary: "human-agent window"},
		{summary: "auto-close after inactivity"},
	}
	if c.windows.Reply != DefaultReplyWindow {
		c.timers[0].summary = "reply window (" + span(c.windows.Reply) + ")"
	}
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryState, func() (ConversationState, error) {
		return c.state, nil
	}, workflow.QueryHandlerOptions{Description: "The conversation's state, counters, windows and settings"}); err != nil {
		return fmt.Errorf("register %s query: %w", QueryState, err)
	}
	return c.registerUpdates(ctx)
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
		return uuid.NewString()
	}).Get(&id); err != nil {
		return fmt.Errorf("conversation id: %w", err)
	}
	now := workflow.Now(ctx).UTC()
	c.state.ConversationID = id
	c.state.State = StateOpen
	c.state.StartedAt = now
	c.state.StateSince = now
	c.state.LastActivityAt = now
	c.state.NextSeq = 1

	var opened activities.OpenConversationResult
	actx := workflow.WithActivityOptions(ctx, storeActivity("open the conversation record"))
	if err := workflow.ExecuteActivity(actx, activities.OpenConversationName, c.recordInput(nil)).Get(ctx, &opened); err != nil {
		return fmt.Errorf("open conversation: %w", err)
	}
	c.state.PreviousConversationID = opened.PreviousConversationID
	c.state.PreviousAgentID = opened.PreviousAgentID
	// The page and customer are set here rather than by the gateway's
	// SignalWithStart: this upsert is written anyway, and search
	// attributes on the start cost Temporal a tenth of the gateway's rate.
	// Until then the workflow is found by its id and summary. (Replay
	// matches an upsert by its type only: no version needed.)
	return workflow.UpsertTypedSearchAttributes(ctx,
		SearchAttrPageID.ValueSet(c.in.FacebookPageID),
		SearchAttrPSID.ValueSet(c.in.PSID),
		SearchAttrConversationID.ValueSet(id),
		SearchAttrState.ValueSet(c.state.State),
	)
}

// record turns a burst of events into transcript rows and persists them.
// Echoes of Parley's own messages confirm them instead.
func (c *conversation) record(ctx workflow.Context, events []messenger.Event) error {
	var rows []activities.TranscriptEntry
	var marks []activities.Watermark
	var echoes []activities.Echo
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
		case messenger.KindEcho:
			if id, ok := activities.MessageIDFromMetadata(e.Metadata); ok {
				if _, sending := c.state.Outbox[id]; sending {
					c.state.Outbox[id] = e.MID
				}
				if c.nothingLost {
					// Meta's id and time for the message, even once sent:
					// receipts are compared with Meta's clock.
					echoes = append(echoes, activities.Echo{MessageID: id, MID: e.MID, At: time.UnixMilli(e.Timestamp).UTC()})
				}
				continue
			}
		}
		rows = append(rows, c.entry(e))
		if c.routingV {
			c.noteRoutingContext(e)
		}
		if e.OpensWindow() {
			at := time.UnixMilli(e.Timestamp).UTC()
			if c.state.LastCustomerMessageAt == nil || at.After(*c.state.LastCustomerMessageAt) {
				c.state.LastCustomerMessageAt = &at
			}
		}
	}
	if len(rows) == 0 && len(marks) == 0 && len(echoes) == 0 {
		return nil
	}
	in := c.recordInput(rows)
	in.Watermarks = marks
	in.Echoes = echoes
	actx := workflow.WithActivityOptions(ctx, storeActivity("record the customer's messages"))
	if err := workflow.ExecuteActivity(actx, activities.RecordTranscriptName, in).Get(ctx, nil); err != nil {
		return fmt.Errorf("record transcript: %w", err)
	}
	if c.filesV {
		return c.keepFiles(ctx, rows)
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
	c.state.Revision++
	// A change of the thread's owner (or a request for it) is announced
	// by the first save after it, once.
	defer func() { c.state.ThreadAnnounce = false }()
	return activities.RecordTranscriptInput{
		ConversationID:         c.state.ConversationID,
		PageRef:                c.in.PageRef,
		AccountID:              c.in.AccountID,
		FacebookPageID:         c.in.FacebookPageID,
		PSID:                   c.in.PSID,
		WorkflowID:             c.workflowID,
		State:                  c.state.State,
		StartedAt:              c.state.StartedAt,
		MessageCount:           c.state.CustomerMessages + c.state.PageMessages + c.state.AgentMessages,
		LastCustomerMessageAt:  c.state.LastCustomerMessageAt,
		PreviousConversationID: c.state.PreviousConversationID,
		AgentID:                c.state.AgentID,
		ClosedAt:               c.state.ClosedAt,
		ClosedReason:           c.state.ClosedReason,
		Revision:               c.state.Revision,
		ThreadOwner:            c.state.ThreadOwner,
		ThreadOwnerSince:       c.threadOwnerSince(),
		ThreadChanged:          c.state.ThreadAnnounce,
		ThreadRequestedBy:      c.state.ThreadRequestedBy,
		QueueID:                c.queueID(),
		Entries:                rows,
	}
}

func (c *conversation) threadOwnerSince() *time.Time {
	if c.state.ThreadOwner == "" {
		return nil
	}
	t := c.state.ThreadOwnerSince
	return &t
}

func (c *conversation) queueID() string {
	if c.state.Queue != nil {
		return c.state.Queue.QueueID
	}
	return ""
}

// noteRoutingContext keeps what routing rules look at: the first message's
// text and how the customer came (referral).
func (c *conversation) noteRoutingContext(e messenger.Event) {
	if c.state.FirstMessage == "" && e.Kind == messenger.KindMessage && e.Text != "" {
		c.state.FirstMessage = e.Text
	}
	if r := e.Referral; r != nil && c.state.ReferralRef == "" && c.state.ReferralSource == "" {
		c.state.ReferralRef, c.state.ReferralSource = r.Ref, r.Source
	}
}

func (c *conversation) shouldContinueAsNew(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() ||
		info.GetCurrentHistoryLength() >= c.limits.MaxEventsPerRun ||
		c.signalsThisRun >= c.limits.MaxSignalsPerRun ||
		c.updatesThisRun >= c.limits.MaxUpdatesPerRun
}

// readContext carries o for execRead: as local activity options when the
// run's reads are local (versionLocalReads).
func (c *conversation) readContext(ctx workflow.Context, o workflow.ActivityOptions) workflow.Context {
	if !c.localReads {
		return workflow.WithActivityOptions(ctx, o)
	}
	// A local activity's ScheduleToCloseTimeout defaults to its
	// StartToCloseTimeout: it would give up after one slow attempt (a
	// busy database), where a regular one retries until it succeeds.
	total := o.ScheduleToCloseTimeout
	if total == 0 {
		total = localRetryFor
	}
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: o.StartToCloseTimeout, ScheduleToCloseTimeout: total,
		RetryPolicy: o.RetryPolicy, Summary: o.Summary,
	})
}

// localRetryFor is how long a local activity keeps retrying: as good as
// forever, like the regular activity it replaces.
const localRetryFor = 10 * 365 * 24 * time.Hour

// execRead runs an activity that only reads (or writes what any run would
// write the same), with readContext's options. Past a short local backoff
// the SDK retries on a timer: a database outage delays, it loses nothing.
func (c *conversation) execRead(ctx workflow.Context, name string, args ...any) workflow.Future {
	if c.localReads {
		return workflow.ExecuteLocalActivity(ctx, name, args...)
	}
	return workflow.ExecuteActivity(ctx, name, args...)
}

// storeActivity: database writes. The database may be down for a while:
// keep trying, never drop a message.
func storeActivity(summary string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	}
}

// RefusedErrorType marks an update refused by its validator: the REST API
// answers 409 with its message.
const RefusedErrorType = "Refused"

func refuse(format string, args ...any) error {
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf(format, args...), RefusedErrorType, temporal.ApplicationErrorOptions{NonRetryable: true})
}

// IsRefused tells whether err is an update refusal, and its reason.
func IsRefused(err error) (string, bool) {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() == RefusedErrorType {
		return ae.Message(), true
	}
	return "", false
}
