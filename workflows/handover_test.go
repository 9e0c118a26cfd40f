package workflows_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"

	"parley/activities"
	"parley/messenger"
	"parley/workflows"
)

// handover is a messaging_handovers event at start+d.
func (h *harness) handover(d time.Duration, action, newOwner, previousOwner string) {
	h.events(d, messenger.Event{Kind: messenger.KindHandover, PageID: "111", PSID: "222", Timestamp: h.start.Add(d).UnixMilli(),
		Handover: &messenger.Handover{Action: action, NewOwnerAppID: newOwner, PreviousOwnerAppID: previousOwner}})
}

// standby is the customer's message to another app, at start+d.
func (h *harness) standby(d time.Duration, mid, text string) {
	h.events(d, messenger.Event{Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: mid, Text: text, Standby: true,
		Timestamp: h.start.Add(d).UnixMilli()})
}

// While the Page Inbox controls the thread, the agent's reply is refused
// with the reason and the customer's standby messages are recorded without
// bringing work back; once the agent takes control, replies go again.
func TestAnotherAppControllingTheThreadStopsRepliesUntilTheAgentTakesControl(t *testing.T) {
	h := newHarness(t)
	var calls []activities.ThreadControlInput
	h.env.RegisterActivityWithOptions(func(ctx context.Context, in activities.ThreadControlInput) error {
		calls = append(calls, in)
		return nil
	}, activity.RegisterOptions{Name: activities.ControlThreadName})
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.actionAt(2*time.Minute, "aside", workflows.UpdateSetWaiting)
	h.handover(3*time.Minute, messenger.HandoverTake, messenger.PageInboxAppID, "999")
	h.replyAt(4*time.Minute, "refused", "Any news?", false)
	h.standby(5*time.Minute, "m2", "talking to the page's people")
	var during workflows.ConversationState
	savesBefore, savesAfter := 0, 0
	saves := func() int {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.saves)
	}
	h.at(6*time.Minute, func() { during = h.state(); savesBefore = saves() })
	h.at(7*time.Minute, func() {
		h.update(0, "take", workflows.UpdateThreadControl, workflows.ThreadControlRequest{ConversationID: h.state().ConversationID, Take: true, ActorAgentID: "agent-1"})
	})
	h.at(7*time.Minute+30*time.Second, func() { savesAfter = saves() })
	h.replyAt(8*time.Minute, "sent", "I am back with you.", false)
	h.run(10 * time.Minute)

	if msg := h.refused("refused"); !strings.Contains(msg, "the Page Inbox (Meta Business Suite) controls this thread") || !strings.Contains(msg, "take-control") {
		t.Errorf("reply while the Page Inbox has the thread: %q, want refused with the reason", msg)
	}
	if during.ThreadOwner != messenger.PageInboxAppID || during.State != workflows.StateWaiting {
		t.Errorf("after the standby message: owner %q, state %s; want the Page Inbox, still waiting (no work for agents)", during.ThreadOwner, during.State)
	}
	recorded := false
	for _, r := range h.records {
		for _, e := range r.Entries {
			if e.MID == "m2" {
				recorded = true
				// The conversation's row says who has the thread: the API's
				// reply mode reads it.
				if r.ThreadOwner != messenger.PageInboxAppID || r.ThreadOwnerSince == nil {
					t.Errorf("the standby message's record: thread owner %q since %v, want the Page Inbox", r.ThreadOwner, r.ThreadOwnerSince)
				}
			}
		}
	}
	if !recorded {
		t.Error("the standby message is not in the transcript")
	}
	// Taking control saves the row at once, without waiting for Meta's event.
	if savesAfter != savesBefore+1 || h.saves[savesAfter-1].ThreadOwner != "" || h.saves[savesAfter-1].ThreadOwnerSince != nil {
		t.Errorf("saves around take-control: %d before, %d after (last %+v); want one more, with Parley's thread", savesBefore, savesAfter, h.saves[len(h.saves)-1])
	}
	// The agent is told of each change once (a conversation.thread event):
	// the inbox took the thread, the agent took it back.
	var changes []string
	for _, r := range threadAnnouncements(h) {
		changes = append(changes, activities.ThreadOwnerName(r.ThreadOwner))
	}
	if len(changes) != 2 || !slices.Contains(changes, messenger.PageInboxAppID) || !h.saves[savesAfter-1].ThreadChanged {
		t.Errorf("saves announcing a change of the thread's owner: %q; want two, the inbox's and the take-control's", changes)
	}
	h.completed("take")
	if len(calls) != 1 || !calls[0].Take || calls[0].PSID != "222" {
		t.Errorf("Meta calls %+v, want one take_thread_control", calls)
	}
	if r := h.reply("sent"); len(r.Messages) != 1 || r.Messages[0].Status != "sent" {
		t.Errorf("reply after taking control: %+v, want sent", r)
	}
}

// Another app asking for the thread (request_thread_control) leaves it
// with Parley and tells the agent who asks, once; the request ends when
// the thread changes hands.
func TestAnotherAppAskingForTheThreadIsAnnounced(t *testing.T) {
	h := newHarness(t)
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.events(2*time.Minute, messenger.Event{Kind: messenger.KindHandover, PageID: "111", PSID: "222", Timestamp: h.start.Add(2 * time.Minute).UnixMilli(),
		Handover: &messenger.Handover{Action: messenger.HandoverRequest, RequestedOwnerAppID: messenger.PageInboxAppID}})
	h.customer(3*time.Minute, "m2", "still there?")
	h.handover(4*time.Minute, messenger.HandoverTake, messenger.PageInboxAppID, "999")
	var during workflows.ConversationState
	h.at(150*time.Second, func() { during = h.state() })
	h.run(5 * time.Minute)

	if during.ThreadOwner != "" || during.ThreadRequestedBy != messenger.PageInboxAppID {
		t.Errorf("after the request: owner %q, requested by %q; want Parley's, asked by the Page Inbox", during.ThreadOwner, during.ThreadRequestedBy)
	}
	var announced []string
	for _, r := range threadAnnouncements(h) {
		announced = append(announced, activities.ThreadOwnerName(r.ThreadOwner)+"/"+r.ThreadRequestedBy)
	}
	slices.Sort(announced)
	if want := []string{messenger.PageInboxAppID + "/", "parley/" + messenger.PageInboxAppID}; !slices.Equal(announced, want) {
		t.Errorf("saves announcing the thread: %q, want %q (the request once, then the take, which ends it)", announced, want)
	}
}

// threadAnnouncements are the records and saves that tell the agent of
// the thread (a conversation.thread live event each).
func threadAnnouncements(h *harness) []activities.RecordTranscriptInput {
	var out []activities.RecordTranscriptInput
	for _, r := range slices.Concat(h.records, h.saves) {
		if r.ThreadChanged {
			out = append(out, r)
		}
	}
	return out
}

// A customer who only talks to another app (standby) opens no conversation.
func TestStandbyMessagesOpenNoConversation(t *testing.T) {
	h := newHarness(t)
	h.standby(0, "m1", "hi, bot")
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow ended with %v, want no conversation", err)
	}
	if h.opened != 0 || len(h.outside) != 1 || h.outside[0].MID != "m1" {
		t.Errorf("opened %d, recorded outside %+v; want none opened, m1 recorded", h.opened, h.outside)
	}
}

// A workstream that wants them opens conversations for standby messages.
func TestStandbyMessagesOpenAConversationWhenTheWorkstreamSaysSo(t *testing.T) {
	h := newHarness(t)
	h.settings.StandbyOpens = true
	h.standby(0, "m1", "hi, bot")
	var during workflows.ConversationState
	h.at(time.Minute, func() { during = h.state() })
	h.run(2 * time.Minute)
	if h.opened != 1 || len(h.outside) != 0 || during.ThreadOwner == "" || during.State != workflows.StateOpen {
		t.Errorf("opened %d, outside %d, state %s, owner %q: want a conversation, waiting for an agent, another app owning the thread",
			h.opened, len(h.outside), during.State, during.ThreadOwner)
	}
}
