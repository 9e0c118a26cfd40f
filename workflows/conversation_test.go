package workflows_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"parley/messenger"
	"parley/workflows"
)

func msg(psid, mid, text string, at time.Time) messenger.Event {
	return messenger.Event{Kind: messenger.KindMessage, PageID: "111", PSID: psid, MID: mid, Text: text, Timestamp: at.UnixMilli()}
}

func TestConversationRecordsMessagesInOrderOnce(t *testing.T) {
	h := newHarness(t)
	start := h.start
	h.events(time.Minute, msg("222", "m1", "hello", start), msg("222", "m2", "anyone there?", start.Add(time.Second)))
	// Meta retries the same POST: nothing new may be recorded.
	h.events(2*time.Minute, msg("222", "m1", "hello", start), msg("222", "m2", "anyone there?", start.Add(time.Second)))
	h.events(3*time.Minute,
		messenger.Event{Kind: messenger.KindEcho, PSID: "222", MID: "m3", Text: "Hi! (from the Page Inbox)", Timestamp: start.Add(2 * time.Minute).UnixMilli()},
		messenger.Event{Kind: messenger.KindRead, PSID: "222", Watermark: start.Add(2 * time.Minute).UnixMilli()},
		msg("222", "m4", "thanks", start.Add(3*time.Minute)))
	var state workflows.ConversationState
	h.at(4*time.Minute, func() { state = h.state() })
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 5*time.Minute)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())

	var texts []string
	for _, e := range h.entries {
		texts = append(texts, e.Text)
	}
	if got, want := fmt.Sprint(texts), "[hello anyone there? Hi! (from the Page Inbox) thanks]"; got != want {
		t.Errorf("transcript = %s, want %s", got, want)
	}
	for i, e := range h.entries {
		if e.Seq != int64(i+1) {
			t.Errorf("entry %d has seq %d, want %d", i, e.Seq, i+1)
		}
	}
	if echo := h.entries[2]; echo.Direction != "out" || echo.Sender != "page" {
		t.Errorf("echo recorded as %s/%s, want out/page", echo.Direction, echo.Sender)
	}
	if state.State != workflows.StateOpen || state.CustomerMessages != 3 || state.PageMessages != 1 || state.PreviousConversationID != "prev-1" {
		t.Errorf("state = %+v, want open with 3 customer and 1 page message, linked to prev-1", state)
	}
	if state.LastCustomerMessageAt == nil || !state.LastCustomerMessageAt.Equal(time.UnixMilli(start.Add(3*time.Minute).UnixMilli()).UTC()) {
		t.Errorf("last customer message at %v, want %v", state.LastCustomerMessageAt, start.Add(3*time.Minute))
	}
}

// Signals drained in one burst keep each event's raw JSON intact.
func TestConversationBatchesSignalsWithoutMixingThem(t *testing.T) {
	h := newHarness(t)
	raws := []string{`{"message":{"mid":"m1","text":"a much longer first message"}}`, `{"message":{"mid":"m2"}}`, `{"postback":{"title":"Go"}}`}
	for i, raw := range raws {
		e := msg("222", fmt.Sprintf("m%d", i+1), fmt.Sprintf("text %d", i+1), h.start)
		e.Raw = []byte(raw)
		h.events(time.Minute, e)
	}
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 2*time.Minute)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if len(h.entries) != 3 {
		t.Fatalf("recorded %d entries, want 3", len(h.entries))
	}
	for i, want := range raws {
		if got := string(h.entries[i].Event.Raw); got != want {
			t.Errorf("entry %d raw = %s, want %s", i, got, want)
		}
	}
}

// The reply window, the human-agent window and the tag, as Meta applies them.
func TestRepliesFollowMetasWindows(t *testing.T) {
	h := newHarness(t)
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.replyAt(23*time.Hour+59*time.Minute, "at 23h59", "inside the window", false)
	h.replyAt(24*time.Hour+time.Minute, "at 24h01 tag off", "too late without the tag", false)
	h.replyAt(24*time.Hour+2*time.Minute, "at 24h02 tag on", "human agent reply", true)
	h.replyAt(7*24*time.Hour+time.Minute, "at 7d+1m tag on", "far too late", true)
	h.replyAt(7*24*time.Hour+2*time.Minute, "at 7d+2m tag off", "far too late", false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 8*24*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())

	if r := h.reply("at 23h59"); len(r.Messages) != 1 || r.Messages[0].MessagingType != messenger.MessagingTypeResponse || r.Messages[0].Tag != "" || r.Messages[0].Status != "sent" {
		t.Errorf("reply at 23h59 = %+v, want sent as RESPONSE, untagged", r)
	}
	if reason := h.refused("at 24h01 tag off"); reason == "" || !strings.Contains(reason, "24-hour window closed at") || !strings.Contains(reason, "human-agent tag is off") {
		t.Errorf("reply at 24h01 with the tag off refused with %q", reason)
	}
	if r := h.reply("at 24h02 tag on"); r.Messages[0].MessagingType != messenger.MessagingTypeMessageTag || r.Messages[0].Tag != messenger.TagHumanAgent {
		t.Errorf("reply at 24h02 with the tag on = %+v, want MESSAGE_TAG/HUMAN_AGENT", r)
	}
	for _, label := range []string{"at 7d+1m tag on", "at 7d+2m tag off"} {
		if reason := h.refused(label); !strings.Contains(reason, "closed at") {
			t.Errorf("reply %s refused with %q", label, reason)
		}
	}
	if len(h.sends) != 2 {
		t.Errorf("%d Send API calls, want 2 (refused replies are never sent)", len(h.sends))
	}
	if h.sends[0].MessagingType != "RESPONSE" || h.sends[1].Tag != "HUMAN_AGENT" {
		t.Errorf("sent %+v", h.sends)
	}
}

func TestACustomerMessageReopensTheWindow(t *testing.T) {
	h := newHarness(t)
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.replyAt(29*time.Hour, "at 29h", "refused: tag off", false)
	h.customer(30*time.Hour, "m2", "still there?")
	h.replyAt(30*time.Hour+time.Minute, "at 30h01", "yes!", false)
	h.replyAt(53*time.Hour+59*time.Minute, "at 53h59", "still inside the new window", false)
	h.replyAt(54*time.Hour+time.Minute, "at 54h01", "too late again", false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 60*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	h.refused("at 29h")
	for _, label := range []string{"at 30h01", "at 53h59"} {
		if r := h.reply(label); r.Messages[0].MessagingType != "RESPONSE" {
			t.Errorf("%s: %+v, want RESPONSE", label, r)
		}
	}
	h.refused("at 54h01")
}

func TestTurningTheTagOnAppliesToTheNextReply(t *testing.T) {
	h := newHarness(t)
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.replyAt(25*time.Hour, "at 25h tag off", "refused", false)
	// The admin switches the tag on at 26 h: the API reads it for the next reply.
	h.replyAt(26*time.Hour, "at 26h tag on", "now allowed", true)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 27*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	h.refused("at 25h tag off")
	if r := h.reply("at 26h tag on"); r.Messages[0].Tag != messenger.TagHumanAgent || r.Messages[0].Status != "sent" {
		t.Errorf("reply after the tag was switched on = %+v, want sent as HUMAN_AGENT", r)
	}
}

func TestAutomatedMessagesNeverLeaveTheWindow(t *testing.T) {
	h := newHarness(t)
	h.settings.EndedMessage = "Thanks for contacting Acme!"
	h.settings.HumanAgentTag = true
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	// The agent ends the conversation at 25 h: the automated message is due then.
	h.actionAt(25*time.Hour, "end", workflows.UpdateEnd)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 26*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if o := h.updates["end"]; o == nil || !o.done || o.err != nil {
		t.Fatalf("end: %+v", o)
	}
	if len(h.sends) != 0 {
		t.Errorf("an automated message due at 25 h was sent: %+v", h.sends)
	}
	last := h.entries[len(h.entries)-1]
	if last.Sender != "system" || last.Status != "failed" || !strings.Contains(last.ErrorReason, "automated messages may only be sent inside the 24-hour window") || last.Tag != "" {
		t.Errorf("automated message recorded as %+v, want not sent with the reason", last)
	}
}

func TestAutomatedMessageInsideTheWindowGoesUntagged(t *testing.T) {
	h := newHarness(t)
	h.settings.EndedMessage = "Thanks for contacting Acme!"
	h.settings.HumanAgentTag = true
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.actionAt(2*time.Hour, "end", workflows.UpdateEnd)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 3*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if len(h.sends) != 1 || h.sends[0].MessagingType != "RESPONSE" || h.sends[0].Tag != "" || h.sends[0].Text != "Thanks for contacting Acme!" {
		t.Errorf("sends = %+v, want the ended message as RESPONSE, untagged", h.sends)
	}
}

func TestAutoCloseAndWrapUpCloseAtTheConfiguredTimes(t *testing.T) {
	t.Run("open, inactive", func(t *testing.T) {
		h := newHarness(t)
		h.settings.AutoCloseOpen = 2 * time.Hour
		h.customer(0, "m1", "hello")
		h.customer(90*time.Minute, "m2", "hello?") // activity moves the deadline
		var before, after workflows.ConversationState
		h.at(3*time.Hour+29*time.Minute, func() { before = h.state() })
		h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
		if err := h.env.GetWorkflowError(); err != nil {
			t.Fatalf("workflow ended with %v", err)
		}
		after = h.lastSave()
		if before.State != workflows.StateOpen {
			t.Errorf("at 3h29 the conversation is %s, want still open", before.State)
		}
		if after.State != workflows.StateClosed || after.ClosedAt == nil || !after.ClosedAt.Equal(h.start.Add(3*time.Hour+30*time.Minute)) {
			t.Errorf("closed %v at %v, want closed at 3h30 (2 h after the last message)", after.State, after.ClosedAt)
		}
	})
	t.Run("wrap-up", func(t *testing.T) {
		h := newHarness(t)
		h.settings.WrapUp = 10 * time.Minute
		h.customer(0, "m1", "hello")
		h.assignAt(time.Minute)
		h.actionAt(time.Hour, "end", workflows.UpdateEnd)
		h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
		if err := h.env.GetWorkflowError(); err != nil {
			t.Fatalf("workflow ended with %v", err)
		}
		s := h.lastSave()
		if s.State != workflows.StateClosed || !s.ClosedAt.Equal(h.start.Add(time.Hour+10*time.Minute)) || !strings.Contains(s.ClosedReason, "wrap-up ended") {
			t.Errorf("after wrap-up: %s at %v (%s), want closed at 1h10", s.State, s.ClosedAt, s.ClosedReason)
		}
	})
	t.Run("waiting returns to the agent", func(t *testing.T) {
		h := newHarness(t)
		h.customer(0, "m1", "hello")
		h.assignAt(time.Minute)
		h.actionAt(time.Hour, "waiting", workflows.UpdateSetWaiting)
		var waiting, back workflows.ConversationState
		h.at(2*time.Hour, func() { waiting = h.state() })
		h.customer(3*time.Hour, "m2", "I'm back")
		h.at(3*time.Hour+time.Minute, func() { back = h.state() })
		h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 4*time.Hour)
		h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
		if waiting.State != workflows.StateWaiting || back.State != workflows.StateActive || back.AgentID != "agent-1" {
			t.Errorf("waiting = %s, after the customer wrote = %s/%s, want waiting then active with agent-1", waiting.State, back.State, back.AgentID)
		}
	})
}

// lastSave is the conversation as last saved, read back as state.
func (h *harness) lastSave() workflows.ConversationState {
	if len(h.saves) == 0 {
		h.t.Fatal("the conversation was never saved")
	}
	s := h.saves[len(h.saves)-1]
	return workflows.ConversationState{ConversationID: s.ConversationID, State: s.State, AgentID: s.AgentID, ClosedAt: s.ClosedAt, ClosedReason: s.ClosedReason}
}

func TestAMessageAfterCloseStartsTheNextConversation(t *testing.T) {
	h := newHarness(t)
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.actionAt(time.Hour, "end", workflows.UpdateEnd)
	h.customer(time.Hour+time.Minute, "m2", "one more thing")
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow ended with %v, want continue-as-new into the next conversation", err)
	}
	var next workflows.ConversationInput
	if err := converterDecode(can, &next); err != nil {
		t.Fatal(err)
	}
	if next.Carried != nil || len(next.Pending) != 1 || next.Pending[0].MID != "m2" {
		t.Errorf("next conversation input = %+v, want a fresh conversation opened by m2", next)
	}
	if s := h.lastSave(); s.State != workflows.StateClosed {
		t.Errorf("the ended conversation is %s, want closed", s.State)
	}
}
