package workflows_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
	"parley/workflows"
)

func reaction(h *harness, d time.Duration) messenger.Event {
	return messenger.Event{Kind: messenger.KindReaction, PageID: "111", PSID: "222", MID: "m_liked", Reaction: "love", ReactionAction: "react", Timestamp: h.start.Add(d).UnixMilli()}
}

// Defect 1: only a new window-opening event opens a conversation.
func TestOnlyANewCustomerMessageOpensAConversation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events func(h *harness) []messenger.Event
		// recorded are dedupe keys the store already has.
		recorded []string
		open     bool
	}{
		{name: "a reaction", events: func(h *harness) []messenger.Event { return []messenger.Event{reaction(h, 0)} }},
		{name: "an echo of Parley's message and a read receipt", events: func(h *harness) []messenger.Event {
			return []messenger.Event{
				{Kind: messenger.KindEcho, PageID: "111", PSID: "222", MID: "m_echo", Text: "hi", Metadata: "parley:abc", Timestamp: h.start.UnixMilli()},
				{Kind: messenger.KindRead, PageID: "111", PSID: "222", Watermark: h.start.UnixMilli()},
			}
		}},
		{name: "a Page Inbox echo", events: func(h *harness) []messenger.Event {
			return []messenger.Event{{Kind: messenger.KindEcho, PageID: "111", PSID: "222", MID: "m_inbox", Text: "from the inbox", Timestamp: h.start.UnixMilli()}}
		}},
		{name: "Meta's retry of a recorded message", recorded: []string{"m_old"}, events: func(h *harness) []messenger.Event {
			return []messenger.Event{{Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: "m_old", Text: "hello", Timestamp: h.start.UnixMilli()}}
		}},
		{name: "a new message", open: true, events: func(h *harness) []messenger.Event {
			return []messenger.Event{{Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: "m_new", Text: "hello", Timestamp: h.start.UnixMilli()}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for _, k := range tc.recorded {
				h.entries = append(h.entries, activities.TranscriptEntry{DedupeKey: "mid:" + k})
			}
			events := tc.events(h)
			h.events(0, events...)
			h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
			h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
			if tc.open {
				if h.opened != 1 {
					t.Fatalf("%d conversations opened, want 1", h.opened)
				}
				return
			}
			if h.opened != 0 {
				t.Errorf("%d conversation(s) opened for %s: a phantom conversation for agents", h.opened, tc.name)
			}
			if err := h.env.GetWorkflowError(); err != nil {
				t.Errorf("the run should end quietly, ended with %v", err)
			}
			if len(h.outside) != len(events) {
				t.Errorf("%d events kept in the customer's transcript, want %d", len(h.outside), len(events))
			}
		})
	}
}

// Defect 1: events that reach a conversation as it closes belong to it;
// only a customer's new message starts the next one.
func TestAReactionAsTheConversationClosesOpensNothing(t *testing.T) {
	h := newHarness(t)
	h.customer(0, "m1", "hello")
	h.at(time.Minute, func() {
		h.during[activities.SaveConversationName] = func() {
			h.env.SignalWorkflow(workflows.SignalMessengerEvents, workflows.MessengerEventsSignal{Events: []messenger.Event{reaction(h, time.Minute)}})
		}
		h.update(0, "close", workflows.UpdateClose, workflows.ActionRequest{ConversationID: h.state().ConversationID})
	})
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if err := h.env.GetWorkflowError(); err != nil {
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			t.Fatal("a reaction after close started a new conversation")
		}
		t.Fatal(err)
	}
	last := h.entries[len(h.entries)-1]
	if last.Kind != string(messenger.KindReaction) {
		t.Errorf("the reaction was not recorded in the closed conversation: last entry %+v", last)
	}
}

// Defect 2: an update that arrives while the run continues as new is
// answered (by this run or the next), never dropped.
func TestAnUpdateArrivingAtContinueAsNewIsNotLost(t *testing.T) {
	h := newHarness(t)
	in := h.input()
	in.Limits = workflows.Limits{MaxSignalsPerRun: 3}
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	// The third signal reaches the limit; while its messages are recorded
	// another webhook and the agent's reply arrive.
	h.customer(2*time.Minute, "m2", "are you there?")
	h.at(3*time.Minute, func() {
		id := h.state().ConversationID
		h.during[activities.RecordTranscriptName] = func() {
			h.env.SignalWorkflow(workflows.SignalMessengerEvents, workflows.MessengerEventsSignal{Events: []messenger.Event{
				{Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: "m4", Text: "hello??", Timestamp: h.start.Add(3 * time.Minute).UnixMilli()},
			}})
			h.during[activities.RecordTranscriptName] = func() {
				h.update(0, "reply", workflows.UpdateSendReply, workflows.ReplyRequest{ConversationID: id, AgentID: "agent-1", Text: "yes!"})
			}
		}
		h.env.SignalWorkflow(workflows.SignalMessengerEvents, workflows.MessengerEventsSignal{Events: []messenger.Event{
			{Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: "m3", Text: "hello?", Timestamp: h.start.Add(3 * time.Minute).UnixMilli()},
		}})
	})
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, in)
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("the run ended with %v, want continue-as-new", err)
	}
	o := h.updates["reply"]
	if o != nil && o.rejected == nil && !o.done {
		t.Fatalf("the reply was admitted and dropped at continue-as-new: %+v (sends %d)", o, len(h.sends))
	}
	var next workflows.ConversationInput
	if err := converterDecode(can, &next); err != nil {
		t.Fatal(err)
	}
	if o == nil || o.rejected != nil {
		// Never admitted: the client's retry reaches the next run. The
		// webhook that arrived meanwhile goes there too.
		if len(next.Pending) == 0 {
			t.Errorf("the buffered webhook was neither recorded nor carried")
		}
	}
}

// Defect 3: a client retrying a reply with the same Idempotency-Key after
// continue-as-new gets the first answer; the customer gets one message.
func TestARetriedReplyKeyAfterContinueAsNewSendsNothingMore(t *testing.T) {
	h := newHarness(t)
	in := h.input()
	in.Limits = workflows.Limits{MaxUpdatesPerRun: 2}
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.replyAt(2*time.Minute, "key-1", "on my way", false)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, in)
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("first run ended with %v, want continue-as-new", err)
	}
	first := h.reply("key-1")
	var next workflows.ConversationInput
	if err := converterDecode(can, &next); err != nil {
		t.Fatal(err)
	}

	h2 := newHarness(t)
	h2.replyAt(time.Minute, "key-1", "on my way", false)
	h2.env.RegisterDelayedCallback(h2.env.CancelWorkflow, time.Hour)
	h2.env.ExecuteWorkflow(workflows.ConversationWorkflowName, next)
	again := h2.reply("key-1")
	if len(h2.sends) != 0 {
		t.Errorf("the retried key sent %d more message(s) to the customer", len(h2.sends))
	}
	if len(again.Messages) != 1 || again.Messages[0].ID != first.Messages[0].ID || again.Messages[0].MID != first.Messages[0].MID {
		t.Errorf("retry answered %+v, want the first answer %+v", again, first)
	}
}

// Defect 4: a close that arrives while an assignment reads the settings
// waits for it; the last save (highest revision) is the final state.
func TestConcurrentUpdatesSaveInOrder(t *testing.T) {
	h := newHarness(t)
	h.customer(0, "m1", "hello")
	h.at(time.Minute, func() {
		id := h.state().ConversationID
		h.during[activities.LoadSettingsName] = func() {
			h.update(0, "close", workflows.UpdateClose, workflows.ActionRequest{ConversationID: id})
		}
		h.update(0, "assign", workflows.UpdateAssign, workflows.AssignRequest{ConversationID: id, AgentID: "agent-1"})
	})
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if o := h.updates["close"]; o == nil || !o.done || o.err != nil {
		t.Fatalf("close: %+v", o)
	}
	var assigned workflows.TransitionResult
	decodeInto(t, h.updates["assign"].value, &assigned)
	if assigned.State != workflows.StateActive || assigned.AgentID != "agent-1" {
		t.Errorf("the assignment answered %+v: the close ran in the middle of it", assigned)
	}
	var top activities.RecordTranscriptInput
	for _, s := range h.saves {
		if s.Revision == 0 {
			t.Fatalf("a save without revision: %+v", s)
		}
		if s.Revision > top.Revision {
			top = s
		}
	}
	if top.State != workflows.StateClosed {
		t.Errorf("the save with the highest revision says %s, want closed", top.State)
	}
}

// Defect 5: a failure before Meta was called is retried as such: no echo
// wait, no lookup, sent once.
func TestAFailureBeforeTheSendIsRetriedNotTreatedAsUnknown(t *testing.T) {
	h := newHarness(t)
	h.notAttempted = 3
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.replyAt(2*time.Minute, "reply", "hi", false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	r := h.reply("reply")
	if r.Messages[0].Status != "sent" || len(h.sends) != 1 || len(h.looked) != 0 {
		t.Errorf("reply %+v after %d Meta calls and %d lookups, want sent after 1 call and no lookup", r, len(h.sends), len(h.looked))
	}
	// Retried with backoff (1+2+4 s), not after an echo wait each time.
	if took := h.updates["reply"].at.Sub(h.start.Add(2 * time.Minute)); took > 10*time.Second {
		t.Errorf("the reply took %s: failures before Meta were treated as unknown outcomes", took)
	}
}

// Defect 5: a permanent failure before Meta was called (page deleted) fails
// the message at once, with the reason.
func TestASendThatCannotBeMadeFailsAtOnce(t *testing.T) {
	h := newHarness(t)
	h.impossible = true
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.replyAt(2*time.Minute, "reply", "hi", false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	r := h.reply("reply")
	if r.Messages[0].Status != "failed" || !strings.Contains(r.Messages[0].ErrorReason, "page was deleted") {
		t.Errorf("reply %+v, want failed because the page was deleted", r)
	}
	if took := h.updates["reply"].at.Sub(h.start.Add(2 * time.Minute)); took > time.Second {
		t.Errorf("failing took %s, want at once", took)
	}
}

// Defect 6: an unclear send is looked for on Meta's side before resending.
func TestAnUnclearSendIsLookedForBeforeResending(t *testing.T) {
	unknown := activities.SendOutcome{Outcome: activities.OutcomeUnknown, Code: 2, Reason: "connection reset"}
	t.Run("found", func(t *testing.T) {
		h := newHarness(t)
		h.script = []activities.SendOutcome{unknown}
		h.lookups = []activities.FindSentOutcome{{Outcome: activities.LookupFound, MID: "m_meta_has_it"}}
		h.customer(0, "m1", "hello")
		h.assignAt(time.Minute)
		h.replyAt(2*time.Minute, "reply", "hi", false)
		h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
		h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
		r := h.reply("reply")
		if len(h.sends) != 1 || r.Messages[0].Status != "sent" || r.Messages[0].MID != "m_meta_has_it" {
			t.Errorf("reply %+v after %d sends, want sent once with Meta's mid", r, len(h.sends))
		}
	})
	t.Run("absent", func(t *testing.T) {
		h := newHarness(t)
		h.script = []activities.SendOutcome{unknown}
		h.lookups = []activities.FindSentOutcome{{Outcome: activities.LookupAbsent}}
		h.customer(0, "m1", "hello")
		h.assignAt(time.Minute)
		h.replyAt(2*time.Minute, "reply", "hi", false)
		h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
		h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
		if r := h.reply("reply"); len(h.sends) != 2 || r.Messages[0].Status != "sent" || len(h.looked) != 1 {
			t.Errorf("reply %+v after %d sends and %d lookups, want resent once Meta said it was absent", r, len(h.sends), len(h.looked))
		}
	})
	t.Run("cannot look", func(t *testing.T) {
		h := newHarness(t)
		in := h.input()
		in.Limits = workflows.Limits{EchoWait: 10 * time.Second, BlindEchoWait: 20 * time.Minute}
		h.script = []activities.SendOutcome{unknown}
		h.customer(0, "m1", "hello")
		h.assignAt(time.Minute)
		h.replyAt(2*time.Minute, "reply", "hi", false)
		var sendsAt19m int
		h.at(2*time.Minute+19*time.Minute, func() { sendsAt19m = len(h.sends) })
		h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
		h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, in)
		if sendsAt19m != 1 || len(h.sends) != 2 {
			t.Errorf("%d sends before the blind echo wait ended, %d in all: want 1 then a resend after 20 minutes", sendsAt19m, len(h.sends))
		}
	})
}

// Defect 13: Meta's refusals caused by the page flag it.
func TestRefusalsCausedByThePageFlagIt(t *testing.T) {
	for _, o := range []activities.SendOutcome{
		{Outcome: activities.OutcomeRefused, Code: 10, Subcode: 1893063, Class: string(messenger.ClassPageRestricted), Reason: "restricted"},
		{Outcome: activities.OutcomeRefused, Code: 368, Class: string(messenger.ClassPolicyBlock), Reason: "policy"},
		{Outcome: activities.OutcomeRefused, Code: 200, Subcode: 2018028, Class: string(messenger.ClassAppNotLive), Reason: "not live"},
	} {
		h := newHarness(t)
		h.script = []activities.SendOutcome{o}
		h.customer(0, "m1", "hello")
		h.assignAt(time.Minute)
		h.replyAt(2*time.Minute, "reply", "hi", false)
		h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
		h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
		if r := h.reply("reply"); r.Messages[0].Status != "failed" || len(h.pageFlags) != 1 || h.pageFlags[0].Code != o.Code || h.pageFlags[0].Subcode != o.Subcode {
			t.Errorf("%d/%d: reply %+v, flags %+v: want failed and the page flagged with the code", o.Code, o.Subcode, r, h.pageFlags)
		}
	}
}

// Defect 14: the messaging type is decided with a margin for latency and
// clock skew, and a refusal at the edge is retried once as HUMAN_AGENT.
func TestTheWindowsEdge(t *testing.T) {
	edge := 24*time.Hour - time.Second // 1 s before the window closes
	t.Run("tag on: HUMAN_AGENT", func(t *testing.T) {
		h := newHarness(t)
		h.customer(0, "m1", "hello")
		h.assignAt(time.Minute)
		h.replyAt(edge, "edge", "just in time?", true)
		h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 25*time.Hour)
		h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
		if r := h.reply("edge"); r.Messages[0].Tag != messenger.TagHumanAgent || len(h.sends) != 1 || h.sends[0].Tag != messenger.TagHumanAgent {
			t.Errorf("a reply 1 s before the window closes went as %+v, want HUMAN_AGENT", h.sends)
		}
	})
	t.Run("tag off: not sent", func(t *testing.T) {
		h := newHarness(t)
		h.customer(0, "m1", "hello")
		h.assignAt(time.Minute)
		h.replyAt(edge, "edge", "just in time?", false)
		h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 25*time.Hour)
		h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
		if reason := h.refused("edge"); !strings.Contains(reason, "24-hour window") || len(h.sends) != 0 {
			t.Errorf("refused with %q after %d sends, want refused with the window as reason and nothing sent", reason, len(h.sends))
		}
	})
	t.Run("refused by Meta at the edge: once more as HUMAN_AGENT", func(t *testing.T) {
		h := newHarness(t)
		h.script = []activities.SendOutcome{{Outcome: activities.OutcomeRefused, Code: 10, Subcode: 2018278, Class: string(messenger.ClassOutsideWindow), Reason: "outside the window"}}
		h.customer(0, "m1", "hello")
		h.assignAt(time.Minute)
		h.replyAt(23*time.Hour, "late", "hello again", true)
		h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 25*time.Hour)
		h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
		r := h.reply("late")
		if len(h.sends) != 2 || h.sends[0].MessagingType != messenger.MessagingTypeResponse || h.sends[1].Tag != messenger.TagHumanAgent || r.Messages[0].Status != "sent" {
			t.Errorf("sends %+v, reply %+v: want RESPONSE refused, then sent as HUMAN_AGENT", h.sends, r)
		}
	})
}

// Defect 9: a shortened auto-close applies as soon as the workstream changes.
func TestAShortenedAutoCloseAppliesAtOnce(t *testing.T) {
	h := newHarness(t)
	h.customer(0, "m1", "hello")
	h.at(time.Hour, func() {
		h.mu.Lock()
		h.settings.AutoCloseOpen = 2 * time.Hour
		h.mu.Unlock()
		h.env.SignalWorkflow(workflows.SignalSettingsChanged, nil)
	})
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 10*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	s := h.lastSave()
	if s.State != workflows.StateClosed || s.ClosedAt == nil || !s.ClosedAt.Equal(h.start.Add(2*time.Hour)) {
		t.Errorf("after auto-close was set to 2 h at 1 h: %s, closed at %v; want closed at 2 h", s.State, s.ClosedAt)
	}
}

// Defect 15: the agent of a waiting conversation may reply; it is active again.
func TestTheAgentMayReplyWhileWaiting(t *testing.T) {
	h := newHarness(t)
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.actionAt(time.Hour, "waiting", workflows.UpdateSetWaiting)
	h.replyAt(2*time.Hour, "reply", "any news?", false)
	var after workflows.ConversationState
	h.at(3*time.Hour, func() { after = h.state() })
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 4*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if r := h.reply("reply"); r.Messages[0].Status != "sent" {
		t.Errorf("reply while waiting: %+v", r)
	}
	if after.State != workflows.StateActive {
		t.Errorf("after the agent's reply the conversation is %s, want active", after.State)
	}
}
