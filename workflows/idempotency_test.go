package workflows_test

import (
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"parley/messenger"
	"parley/workflows"
)

// Defect 3: a retried key that reaches the next run in its very first task
// (before the run has done anything) still gets the first answer.
func TestARetriedReplyKeyAtTheStartOfTheNextRun(t *testing.T) {
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
	next.Pending = []messenger.Event{{Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: "m9", Text: "x", Timestamp: h.start.UnixMilli()}}
	h2 := newHarness(t)
	h2.at(0, func() {
		h2.update(0, "key-1", workflows.UpdateSendReply, workflows.ReplyRequest{ConversationID: next.Carried.ConversationID, AgentID: "agent-1", Text: "on my way"})
	})
	h2.env.RegisterDelayedCallback(h2.env.CancelWorkflow, time.Hour)
	h2.env.ExecuteWorkflow(workflows.ConversationWorkflowName, next)
	again := h2.reply("key-1")
	if len(h2.sends) != 0 || again.Messages[0].ID != first.Messages[0].ID {
		t.Errorf("the retry sent %d message(s) and answered %+v; want nothing sent and the first answer %+v", len(h2.sends), again, first)
	}
}
