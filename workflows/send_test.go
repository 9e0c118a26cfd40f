package workflows_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
	"parley/workflows"
)

func activeConversation(h *harness) {
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
}

func TestOutsideTheWindowFailsWithItsReasonAndNoRetry(t *testing.T) {
	h := newHarness(t)
	h.script = []activities.SendOutcome{{Outcome: activities.OutcomeRefused, Code: 10, Subcode: 2018278, Class: "outside_window", Reason: messenger.Classify(10, 2018278).Reason()}}
	activeConversation(h)
	h.replyAt(time.Hour, "reply", "hi", false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 2*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	m := h.reply("reply").Messages[0]
	if m.Status != "failed" || m.ErrorCode != 10 || m.ErrorSubcode != 2018278 || !strings.Contains(m.ErrorReason, "window") {
		t.Errorf("message = %+v, want failed 10/2018278 with the reason", m)
	}
	if len(h.sends) != 1 || h.status[m.ID] != "failed" {
		t.Errorf("%d sends, stored status %q: want one call and failed", len(h.sends), h.status[m.ID])
	}
}

func TestThrottlingIsRetriedThenSentOnce(t *testing.T) {
	h := newHarness(t)
	h.script = []activities.SendOutcome{{Outcome: activities.OutcomeRetry, Code: 613, Class: "throttled"}, {Outcome: activities.OutcomeRetry, Code: 4, Subcode: 2018022, Class: "throttled"}}
	activeConversation(h)
	h.replyAt(time.Hour, "reply", "hi", false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 2*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	m := h.reply("reply").Messages[0]
	if m.Status != "sent" || len(h.sends) != 3 || h.status[m.ID] != "sent" {
		t.Errorf("message %+v after %d calls (stored %q), want sent on the third call", m, len(h.sends), h.status[m.ID])
	}
}

func TestAnInvalidTokenFlagsThePage(t *testing.T) {
	h := newHarness(t)
	h.script = []activities.SendOutcome{{Outcome: activities.OutcomeRefused, Code: 190, Subcode: 460, Class: "token_invalid", Reason: "token"}}
	activeConversation(h)
	h.replyAt(time.Hour, "reply", "hi", false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 2*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if m := h.reply("reply").Messages[0]; m.Status != "failed" || m.ErrorCode != 190 {
		t.Errorf("message = %+v, want failed with 190", m)
	}
	if h.flagged != 1 || len(h.sends) != 1 {
		t.Errorf("page flagged %d times after %d sends, want once after one", h.flagged, len(h.sends))
	}
}

// Meta accepted the message but Parley never heard the answer: the echo
// carrying the message id settles it, and nothing is sent twice.
func TestAnUnknownOutcomeWaitsForTheEchoInsteadOfResending(t *testing.T) {
	h := newHarness(t)
	h.script = []activities.SendOutcome{{Outcome: activities.OutcomeUnknown, Reason: "connection reset"}}
	activeConversation(h)
	h.replyAt(time.Hour, "reply", "hi", false)
	h.at(time.Hour+5*time.Second, func() {
		id := activities.MessageID(h.state().ConversationID, 2)
		h.env.SignalWorkflow(workflows.SignalMessengerEvents, workflows.MessengerEventsSignal{Events: []messenger.Event{{
			Kind: messenger.KindEcho, PSID: "222", MID: "m_echoed", Text: "hi", Metadata: activities.Metadata(id), Timestamp: h.start.Add(time.Hour).UnixMilli(),
		}}})
	})
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 2*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	m := h.reply("reply").Messages[0]
	if m.Status != "sent" || m.MID != "m_echoed" || len(h.sends) != 1 {
		t.Errorf("message %+v after %d sends, want sent once, confirmed by the echo", m, len(h.sends))
	}
	for _, e := range h.entries {
		if e.MID == "m_echoed" {
			t.Errorf("the echo of Parley's own message was recorded again: %+v", e)
		}
	}
}

func TestAnUnknownOutcomeWithoutEchoIsSentAgain(t *testing.T) {
	h := newHarness(t)
	h.script = []activities.SendOutcome{{Outcome: activities.OutcomeUnknown, Reason: "timeout"}}
	activeConversation(h)
	h.replyAt(time.Hour, "reply", "hi", false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 2*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if m := h.reply("reply").Messages[0]; m.Status != "sent" || len(h.sends) != 2 {
		t.Errorf("message %+v after %d sends, want sent on the second call", m, len(h.sends))
	}
}

func TestALongReplyGoesAsSeveralMessagesInOrder(t *testing.T) {
	h := newHarness(t)
	activeConversation(h)
	text := strings.Repeat("Lorem ipsum dolor sit amet. ", 90) // 2520 characters
	h.replyAt(time.Hour, "reply", text, false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 2*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	r := h.reply("reply")
	if len(r.Messages) != 2 || len(h.sends) != 2 {
		t.Fatalf("a %d-character reply became %d messages and %d sends, want 2", len(text), len(r.Messages), len(h.sends))
	}
	joined := h.sends[0].Text + " " + h.sends[1].Text
	if strings.Join(strings.Fields(joined), " ") != strings.Join(strings.Fields(text), " ") || len([]rune(h.sends[0].Text)) > 2000 {
		t.Errorf("the parts do not rebuild the reply in order")
	}
	if r.Messages[0].Seq+1 != r.Messages[1].Seq || h.sends[0].MessageID != r.Messages[0].ID {
		t.Errorf("parts out of order: %+v", r.Messages)
	}
}

// 5,000 customer messages, one webhook each: the conversation continues as
// new several times and keeps every message, in order, and its state.
func TestContinueAsNewKeepsStateAndOrder(t *testing.T) {
	const total = 5000
	in := (&harness{}).input()
	in.Limits = workflows.Limits{MaxSignalsPerRun: 800}
	var recorded []activities.TranscriptEntry
	var conversationID string
	next := 0
	runs := 0
	for next < total {
		runs++
		if runs > 20 {
			t.Fatal("too many runs")
		}
		h := newHarness(t)
		first := next
		// Ten webhooks a second (the test environment holds ~1,000 callbacks).
		for burst := first; burst < total; burst += 10 {
			d := time.Duration((burst-first)/10+1) * time.Second
			h.at(d, func() {
				for i := burst; i < min(burst+10, total); i++ {
					h.env.SignalWorkflow(workflows.SignalMessengerEvents, workflows.MessengerEventsSignal{Events: []messenger.Event{{
						Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: fmt.Sprintf("m%d", i),
						Text: fmt.Sprintf("message %d", i), Timestamp: h.start.Add(d).UnixMilli(),
					}}})
				}
			})
		}
		h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Duration(total+10)*time.Second)
		h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, in)
		recorded = append(recorded, h.entries...)
		next = first + len(h.entries)
		var can *workflow.ContinueAsNewError
		err := h.env.GetWorkflowError()
		if !errors.As(err, &can) {
			if next < total {
				t.Fatalf("run %d ended with %v after %d messages", runs, err, next)
			}
			break
		}
		var carried workflows.ConversationInput
		if err := converterDecode(can, &carried); err != nil {
			t.Fatal(err)
		}
		if carried.Carried == nil || carried.Carried.CustomerMessages != next || carried.Carried.NextSeq != int64(next+1) {
			t.Fatalf("run %d carried %+v, want %d messages", runs, carried.Carried, next)
		}
		if conversationID == "" {
			conversationID = carried.Carried.ConversationID
		} else if carried.Carried.ConversationID != conversationID {
			t.Fatalf("the conversation id changed across continue-as-new")
		}
		in = carried
	}
	if runs < 5 {
		t.Errorf("%d runs for %d messages: continue-as-new did not happen as often as the limits say", runs, total)
	}
	if len(recorded) != total {
		t.Fatalf("recorded %d messages, want %d", len(recorded), total)
	}
	for i, e := range recorded {
		if e.Seq != int64(i+1) || e.MID != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d is %s (seq %d): order lost", i, e.MID, e.Seq)
		}
	}
}

// Meta throttles the page for longer than the attempts Parley would make
// for other errors: the reply waits for each pause Meta gives and is sent,
// never given up while the window lasts; a send the page's limiter holds
// back (delayed) waits its turn without calling Meta and without counting
// as an attempt. The two replies keep their order.
func TestAThrottledPageDelaysRepliesInOrderInsteadOfGivingUp(t *testing.T) {
	h := newHarness(t)
	throttled := activities.SendOutcome{Outcome: activities.OutcomeRetry, Code: 613, Class: "throttled", RetryAfter: 10 * time.Minute}
	for range 8 {
		h.script = append(h.script, throttled)
	}
	h.script = append(h.script, activities.SendOutcome{Outcome: activities.OutcomeDelayed, RetryAfter: 3 * time.Second, Reason: "delayed by the page's send rate"})
	activeConversation(h)
	h.replyAt(time.Hour, "first", "one", false)
	h.replyAt(time.Hour+time.Second, "second", "two", false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 4*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	first, second := h.reply("first").Messages[0], h.reply("second").Messages[0]
	if first.Status != "sent" || second.Status != "sent" {
		t.Fatalf("replies %+v and %+v, want both sent", first, second)
	}
	var texts []string
	for _, s := range h.sends {
		texts = append(texts, s.Text)
	}
	// 8 throttled calls and 1 held back, then "one", then "two".
	if n := len(texts); n != 11 || texts[n-2] != "one" || texts[n-1] != "two" {
		t.Errorf("calls %q, want 8 throttled tries of one, the held-back one, then one and two", texts)
	}
	if done := h.updates["first"].at; done.Sub(h.start) < time.Hour+80*time.Minute {
		t.Errorf("first reply sent at %v, want after Meta's 8 pauses of 10 minutes", done.Sub(h.start))
	}
}
