package workflows_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
	"parley/store"
	"parley/workflows"
)

// harness runs the conversation workflow in the time-skipping test
// environment, with activities that stand in for the database and Meta.
type harness struct {
	t     *testing.T
	env   *testsuite.TestWorkflowEnvironment
	start time.Time

	mu       sync.Mutex
	settings activities.Settings
	entries  []activities.TranscriptEntry
	status   map[string]string // message id -> status
	reasons  map[string]string
	sends    []activities.SendInput
	script   []activities.SendOutcome // next SendMessage answers; then "sent"
	saves    []activities.RecordTranscriptInput
	records  []activities.RecordTranscriptInput
	flagged  int
	updates  map[string]*updateOutcome
	// outside are events recorded without a conversation; pageFlags the
	// FlagPage calls; lookups the next FindSentMessage answers (then
	// unavailable), and looked the calls made.
	outside   []messenger.Event
	pageFlags []activities.FlagPageInput
	lookups   []activities.FindSentOutcome
	looked    []activities.FindSentInput
	// notAttempted makes the next SendMessage calls fail before Meta;
	// impossible makes them fail for good (the page was deleted).
	notAttempted int
	impossible   bool
	opened       int
	// ledger lists the capacity ledger calls (routing off).
	ledger []string
	// previousAgent is the agent of the customer's previous conversation.
	previousAgent string
	// profile answers LoadProfile (nil: the name is unavailable, retried
	// in 1 min); profileCalls counts the calls.
	profile      func(now time.Time) activities.CustomerProfile
	profileCalls int
	// st and waker: the capacity ledger (newHarnessWith); offers are the
	// offers the test's distributor made.
	st     *store.Store
	waker  *countingWaker
	offers []offerAt
	// during runs once, while the named activity runs (as if a webhook or
	// a request arrived then).
	during map[string]func()
}

// hook runs (once) what the test set for activity name.
func (h *harness) hook(name string) {
	h.mu.Lock()
	f := h.during[name]
	delete(h.during, name)
	h.mu.Unlock()
	if f != nil {
		f()
	}
}

type updateOutcome struct {
	rejected error
	done     bool
	err      error
	value    any
	at       time.Time // when it completed (workflow clock)
}

func defaultSettings() activities.Settings {
	return activities.Settings{
		CustomerAttachments: true, AgentAttachments: true,
		AutoCloseOpen: 30 * 24 * time.Hour, AutoCloseActive: 30 * 24 * time.Hour, AutoCloseWaiting: 7 * 24 * time.Hour,
		WrapUp: 24 * time.Hour,
	}
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, nil) }

// newHarnessWith runs the routing activities on st's capacity ledger when
// st is set; otherwise the ledger stands in as always having room.
func newHarnessWith(t *testing.T, st *store.Store) *harness {
	var s testsuite.WorkflowTestSuite
	h := &harness{t: t, env: s.NewTestWorkflowEnvironment(), settings: defaultSettings(),
		status: map[string]string{}, reasons: map[string]string{}, updates: map[string]*updateOutcome{}, during: map[string]func(){}}
	h.start = h.env.Now()
	h.env.RegisterWorkflowWithOptions(workflows.ConversationWorkflow, workflow.RegisterOptions{Name: workflows.ConversationWorkflowName})
	reg := func(f any, name string) { h.env.RegisterActivityWithOptions(f, activity.RegisterOptions{Name: name}) }
	reg(func(ctx context.Context, in activities.RecordTranscriptInput) (activities.OpenConversationResult, error) {
		h.mu.Lock()
		h.opened++
		h.mu.Unlock()
		return activities.OpenConversationResult{PreviousConversationID: "prev-1", PreviousAgentID: h.previousAgent}, nil
	}, activities.OpenConversationName)
	reg(func(ctx context.Context, in activities.ProfileInput) (activities.CustomerProfile, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.profileCalls++
		if h.profile != nil {
			return h.profile(in.Now), nil
		}
		return activities.CustomerProfile{Status: store.ProfileUnavailable, Reason: "Meta refused the profile (code 100, subcode 33)",
			NextAttemptAt: in.Now.Add(time.Minute)}, nil
	}, activities.LoadProfileName)
	reg(func(ctx context.Context, in activities.RecordTranscriptInput) error {
		h.hook(activities.RecordTranscriptName)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.records = append(h.records, in)
		for _, e := range in.Entries {
			h.entries = append(h.entries, e)
			id := activities.MessageID(in.ConversationID, e.Seq)
			h.status[id] = e.Status
			h.reasons[id] = e.ErrorReason
		}
		return nil
	}, activities.RecordTranscriptName)
	reg(func(ctx context.Context, in activities.RecordTranscriptInput) error {
		h.hook(activities.SaveConversationName)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.saves = append(h.saves, in)
		return nil
	}, activities.SaveConversationName)
	reg(func(ctx context.Context, pageRef string) (activities.Settings, error) {
		h.hook(activities.LoadSettingsName)
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.settings, nil
	}, activities.LoadSettingsName)
	reg(func(ctx context.Context, in activities.UnrecordedInput) ([]string, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		var out []string
		for _, k := range in.DedupeKeys {
			if !slices.ContainsFunc(h.entries, func(e activities.TranscriptEntry) bool { return e.DedupeKey == k }) {
				out = append(out, k)
			}
		}
		return out, nil
	}, activities.UnrecordedEventsName)
	reg(func(ctx context.Context, in activities.OutsideInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.outside = append(h.outside, in.Events...)
		return nil
	}, activities.RecordOutsideConversationName)
	reg(func(ctx context.Context, in activities.FlagPageInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.pageFlags = append(h.pageFlags, in)
		return nil
	}, activities.FlagPageName)
	reg(func(ctx context.Context, in activities.FindSentInput) (activities.FindSentOutcome, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.looked = append(h.looked, in)
		if len(h.lookups) > 0 {
			out := h.lookups[0]
			h.lookups = h.lookups[1:]
			return out, nil
		}
		return activities.FindSentOutcome{Outcome: activities.LookupUnavailable, Reason: "no permission"}, nil
	}, activities.FindSentMessageName)
	reg(func(ctx context.Context, in activities.SendInput) (activities.SendOutcome, error) {
		h.hook(activities.SendMessageName)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.impossible {
			return activities.SendOutcome{}, temporal.NewNonRetryableApplicationError("the page was deleted from Parley", activities.SendImpossibleErrorType, nil)
		}
		if h.notAttempted > 0 {
			h.notAttempted--
			return activities.SendOutcome{}, temporal.NewApplicationError("database unavailable", activities.SendNotAttemptedErrorType)
		}
		h.sends = append(h.sends, in)
		if len(h.script) > 0 {
			out := h.script[0]
			h.script = h.script[1:]
			return out, nil
		}
		return activities.SendOutcome{Outcome: activities.OutcomeSent, MID: fmt.Sprintf("m_sent_%d", len(h.sends))}, nil
	}, activities.SendMessageName)
	reg(func(ctx context.Context, in activities.MarkSentInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.status[in.MessageID] = "sent"
		return nil
	}, activities.MarkMessageSentName)
	reg(func(ctx context.Context, in activities.MarkFailedInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.status[in.MessageID] = "failed"
		h.reasons[in.MessageID] = in.Reason
		return nil
	}, activities.MarkMessageFailedName)
	reg(func(ctx context.Context, in activities.TokenInvalidInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.flagged++
		return nil
	}, activities.MarkPageTokenInvalidName)
	if st != nil {
		h.registerLedger(st)
		return h
	}
	// Routing off: the capacity ledger stands in as always having room.
	reg(func(ctx context.Context, in activities.ClaimInput) (store.Assignment, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.ledger = append(h.ledger, in.How+":"+in.AgentID)
		return store.Assignment{ConversationID: in.ConversationID, AgentID: in.AgentID, How: in.How}, nil
	}, activities.ClaimConversationName)
	reg(func(ctx context.Context, in activities.ReleaseInput) (store.Released, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.ledger = append(h.ledger, "release")
		return store.Released{}, nil
	}, activities.ReleaseCapacityName)
	reg(func(ctx context.Context, in activities.ReleaseInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.ledger = append(h.ledger, "wrap_up")
		return nil
	}, activities.HoldForWrapUpName)
	return h
}

func (h *harness) input() workflows.ConversationInput {
	return workflows.ConversationInput{PageRef: "page-1", AccountID: "acct-1", FacebookPageID: "111", PageName: "Acme", PSID: "222"}
}

// at runs f when the workflow clock reaches start+d.
func (h *harness) at(d time.Duration, f func()) { h.env.RegisterDelayedCallback(f, d) }

func (h *harness) events(d time.Duration, events ...messenger.Event) {
	h.at(d, func() {
		h.env.SignalWorkflow(workflows.SignalMessengerEvents, workflows.MessengerEventsSignal{Events: events})
	})
}

// customer writes at start+d.
func (h *harness) customer(d time.Duration, mid, text string) {
	h.events(d, messenger.Event{Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: mid, Text: text, Timestamp: h.start.Add(d).UnixMilli()})
}

// update sends update `name` at start+d; its outcome is kept under label.
func (h *harness) update(d time.Duration, label, name string, arg any) {
	h.at(d, func() {
		o := &updateOutcome{}
		h.updates[label] = o
		h.env.UpdateWorkflow(name, label, &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { o.rejected = err },
			OnComplete: func(v any, err error) { o.done, o.value, o.err, o.at = true, v, err, h.env.Now() },
		}, arg)
	})
}

// convID reads the conversation id through the query.
func (h *harness) state() workflows.ConversationState {
	v, err := h.env.QueryWorkflow(workflows.QueryState)
	if err != nil {
		h.t.Fatalf("query: %v", err)
	}
	var s workflows.ConversationState
	if err := v.Get(&s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// assignAt assigns agent-1 at start+d (the conversation id is read then).
func (h *harness) assignAt(d time.Duration) {
	h.at(d, func() {
		h.update(0, "assign", workflows.UpdateAssign, workflows.AssignRequest{ConversationID: h.state().ConversationID, AgentID: "agent-1"})
	})
}

// replyAt sends an agent reply at start+d.
func (h *harness) replyAt(d time.Duration, label, text string, tag bool) {
	h.at(d, func() {
		h.update(0, label, workflows.UpdateSendReply, workflows.ReplyRequest{
			ConversationID: h.state().ConversationID, AgentID: "agent-1", Text: text, HumanAgentTag: tag, AgentAttachments: true,
		})
	})
}

func (h *harness) actionAt(d time.Duration, label, name string) {
	h.at(d, func() {
		h.update(0, label, name, workflows.ActionRequest{ConversationID: h.state().ConversationID, ActorAgentID: "agent-1"})
	})
}

func (h *harness) reply(label string) workflows.ReplyResult {
	h.t.Helper()
	o := h.updates[label]
	if o == nil || o.rejected != nil || !o.done || o.err != nil {
		h.t.Fatalf("reply %s: %+v, want completed", label, o)
	}
	var r workflows.ReplyResult
	decodeInto(h.t, o.value, &r)
	return r
}

func (h *harness) refused(label string) string {
	h.t.Helper()
	o := h.updates[label]
	if o == nil || o.rejected == nil {
		h.t.Fatalf("update %s: %+v, want refused by its validator", label, o)
	}
	msg, ok := workflows.IsRefused(o.rejected)
	if !ok {
		h.t.Fatalf("update %s refused with %v, not a refusal", label, o.rejected)
	}
	return msg
}

func decodeInto(t *testing.T, v any, out any) {
	t.Helper()
	if ev, ok := v.(converter.EncodedValue); ok {
		if err := ev.Get(out); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("decode %T %s: %v", v, b, err)
	}
}
