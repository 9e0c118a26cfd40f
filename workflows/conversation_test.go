package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
	"parley/workflows"
)

// recorder stands in for the database: it keeps what the activities were asked to store.
type recorder struct {
	mu      sync.Mutex
	opened  int
	entries []activities.TranscriptEntry
	marks   []activities.Watermark
	last    activities.RecordTranscriptInput
}

func (r *recorder) register(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.RecordTranscriptInput) (activities.OpenConversationResult, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.opened++
		return activities.OpenConversationResult{PreviousConversationID: "prev-1"}, nil
	}, activity.RegisterOptions{Name: activities.OpenConversationName})
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.RecordTranscriptInput) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.entries = append(r.entries, in.Entries...)
		r.marks = append(r.marks, in.Watermarks...)
		r.last = in
		return nil
	}, activity.RegisterOptions{Name: activities.RecordTranscriptName})
}

func (r *recorder) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.entries {
		out = append(out, e.Text)
	}
	return out
}

func msg(psid, mid, text string, at time.Time) messenger.Event {
	return messenger.Event{Kind: messenger.KindMessage, PageID: "111", PSID: psid, MID: mid, Text: text, Timestamp: at.UnixMilli()}
}

func input() workflows.ConversationInput {
	return workflows.ConversationInput{PageRef: "page-1", AccountID: "acct-1", FacebookPageID: "111", PageName: "Acme", PSID: "222"}
}

func newEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *recorder) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.ConversationWorkflow, workflow.RegisterOptions{Name: workflows.ConversationWorkflowName})
	r := &recorder{}
	r.register(env)
	return env, r
}

func TestConversationRecordsMessagesInOrderOnce(t *testing.T) {
	env, r := newEnv(t)
	start := env.Now()
	send := func(d time.Duration, events ...messenger.Event) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflows.SignalMessengerEvents, workflows.MessengerEventsSignal{Events: events})
		}, d)
	}
	send(time.Minute, msg("222", "m1", "hello", start), msg("222", "m2", "anyone there?", start.Add(time.Second)))
	// Meta retries the same POST: nothing new may be recorded.
	send(2*time.Minute, msg("222", "m1", "hello", start), msg("222", "m2", "anyone there?", start.Add(time.Second)))
	send(3*time.Minute,
		messenger.Event{Kind: messenger.KindEcho, PSID: "222", MID: "m3", Text: "Hi! (from the Page Inbox)", Timestamp: start.Add(2 * time.Minute).UnixMilli()},
		messenger.Event{Kind: messenger.KindRead, PSID: "222", Watermark: start.Add(2 * time.Minute).UnixMilli()},
		msg("222", "m4", "thanks", start.Add(3*time.Minute)))
	var state workflows.ConversationState
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryState)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		if err := v.Get(&state); err != nil {
			t.Errorf("decode state: %v", err)
		}
	}, 4*time.Minute)
	env.RegisterDelayedCallback(env.CancelWorkflow, 5*time.Minute)
	env.ExecuteWorkflow(workflows.ConversationWorkflowName, input())

	if got, want := fmt.Sprint(r.texts()), "[hello anyone there? Hi! (from the Page Inbox) thanks]"; got != want {
		t.Errorf("transcript = %s, want %s", got, want)
	}
	if r.opened != 1 {
		t.Errorf("conversation opened %d times, want 1", r.opened)
	}
	for i, e := range r.entries {
		if e.Seq != int64(i+1) {
			t.Errorf("entry %d has seq %d, want %d", i, e.Seq, i+1)
		}
	}
	if echo := r.entries[2]; echo.Direction != "out" || echo.Sender != "page" {
		t.Errorf("echo recorded as %s/%s, want out/page", echo.Direction, echo.Sender)
	}
	if len(r.marks) != 1 || r.marks[0].Kind != "read" {
		t.Errorf("watermarks = %+v, want one read watermark", r.marks)
	}
	if state.State != workflows.StateOpen || state.CustomerMessages != 3 || state.PageMessages != 1 {
		t.Errorf("state = %+v, want open with 3 customer and 1 page message", state)
	}
	if state.LastCustomerMessageAt == nil || !state.LastCustomerMessageAt.Equal(time.UnixMilli(start.Add(3*time.Minute).UnixMilli()).UTC()) {
		t.Errorf("last customer message at %v, want %v", state.LastCustomerMessageAt, start.Add(3*time.Minute))
	}
	if state.PreviousConversationID != "prev-1" || r.last.PreviousConversationID != "prev-1" {
		t.Errorf("previous conversation not linked: %+v", state)
	}
}

func TestConversationContinuesAsNewCarryingState(t *testing.T) {
	env, r := newEnv(t)
	start := env.Now()
	in := input()
	in.Limits = workflows.Limits{MaxSignalsPerRun: 5}
	for i := range 7 {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflows.SignalMessengerEvents, workflows.MessengerEventsSignal{Events: []messenger.Event{
				msg("222", fmt.Sprintf("m%d", i), fmt.Sprintf("message %d", i), start.Add(time.Duration(i)*time.Second)),
			}})
		}, time.Duration(i+1)*time.Minute)
	}
	env.ExecuteWorkflow(workflows.ConversationWorkflowName, in)

	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow ended with %v, want continue-as-new", err)
	}
	var next workflows.ConversationInput
	if err := converterDecode(can, &next); err != nil {
		t.Fatal(err)
	}
	if next.Carried == nil {
		t.Fatal("continue-as-new carries no state")
	}
	if next.Carried.NextSeq != 6 || next.Carried.CustomerMessages != 5 || next.Carried.ConversationID == "" {
		t.Errorf("carried state = %+v, want 5 messages recorded and next seq 6", *next.Carried)
	}
	if next.PSID != "222" || next.FacebookPageID != "111" || next.Limits.MaxSignalsPerRun != 5 {
		t.Errorf("continue-as-new input lost its identity: %+v", next)
	}
	if got := len(r.entries); got != 5 {
		t.Errorf("recorded %d entries before continue-as-new, want 5", got)
	}
}

// Signals drained in one burst keep each event's raw JSON intact.
func TestConversationBatchesSignalsWithoutMixingThem(t *testing.T) {
	env, r := newEnv(t)
	start := env.Now()
	for i, raw := range []string{`{"message":{"mid":"m1","text":"a much longer first message"}}`, `{"message":{"mid":"m2"}}`, `{"postback":{"title":"Go"}}`} {
		e := msg("222", fmt.Sprintf("m%d", i+1), fmt.Sprintf("text %d", i+1), start)
		e.Raw = []byte(raw)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflows.SignalMessengerEvents, workflows.MessengerEventsSignal{Events: []messenger.Event{e}})
		}, time.Minute)
	}
	env.RegisterDelayedCallback(env.CancelWorkflow, 2*time.Minute)
	env.ExecuteWorkflow(workflows.ConversationWorkflowName, input())
	if len(r.entries) != 3 {
		t.Fatalf("recorded %d entries, want 3", len(r.entries))
	}
	for i, want := range []string{`{"message":{"mid":"m1","text":"a much longer first message"}}`, `{"message":{"mid":"m2"}}`, `{"postback":{"title":"Go"}}`} {
		if got := string(r.entries[i].Event.Raw); got != want {
			t.Errorf("entry %d raw = %s, want %s", i, got, want)
		}
	}
}
