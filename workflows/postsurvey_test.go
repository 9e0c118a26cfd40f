package workflows_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
	"parley/store"
	"parley/workflows"
)

// surveyHarness is a harness whose workstream has an in-chat post-survey
// (30 min to answer, wrap-up 10 min); surveys are the rows recorded.
func surveyHarness(t *testing.T) (*harness, *[]store.Survey) {
	h := newHarness(t)
	h.settings.WrapUp = 10 * time.Minute
	h.settings.PostSurvey = &activities.PostSurveySettings{WorkstreamID: "ws-1", Mode: store.SurveyModeInChat, Timeout: 30 * time.Minute,
		Question: "How did we do?", CommentPrompt: "Anything to add?", Thanks: "Thank you!"}
	var surveys []store.Survey
	h.env.RegisterActivityWithOptions(func(ctx context.Context, s store.Survey) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		surveys = append(surveys, s)
		return nil
	}, activity.RegisterOptions{Name: activities.RecordSurveyName})
	return h, &surveys
}

// tap is the customer tapping the rating quick reply n at start+d.
func (h *harness) tap(d time.Duration, mid string, n int) {
	h.at(d, func() {
		e := messenger.Event{Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: mid, Text: strconv.Itoa(n),
			QuickReplyPayload: workflows.SurveyPayload(h.state().ConversationID, n), Timestamp: h.start.Add(d).UnixMilli()}
		h.env.SignalWorkflow(workflows.SignalMessengerEvents, workflows.MessengerEventsSignal{Events: []messenger.Event{e}})
	})
}

func TestPostSurveyInTheWindowRecordsItsAnswersWithoutOpeningAConversation(t *testing.T) {
	h, surveys := surveyHarness(t)
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.actionAt(time.Hour, "end", workflows.UpdateEnd)
	var during workflows.ConversationState
	var details string
	h.at(time.Hour+30*time.Second, func() {
		during = h.state()
		v, err := h.env.QueryWorkflow("__temporal_workflow_metadata")
		if err != nil {
			t.Errorf("metadata query: %v", err)
			return
		}
		var md sdkpb.WorkflowMetadata
		if err := v.Get(&md); err != nil {
			t.Errorf("metadata: %v", err)
			return
		}
		details = md.GetCurrentDetails()
	})
	h.tap(time.Hour+time.Minute, "m2", 4)
	h.customer(time.Hour+2*time.Minute, "m3", "very helpful, thanks")
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow ended with %v, want closed without a next conversation", err)
	}
	if during.Survey == nil || during.Survey.Step != "rating" || !during.Survey.Until.Equal(h.start.Add(90*time.Minute)) {
		t.Errorf("during the survey: %+v, want waiting for the rating until 1h30", during.Survey)
	}
	if want := "Post-conversation survey: waiting for the rating until " + h.start.Add(90*time.Minute).UTC().Format(time.RFC3339); !strings.Contains(details, want) {
		t.Errorf("current details = %q, want %q", details, want)
	}
	if len(h.sends) != 3 || h.sends[0].Text != "How did we do?" || len(h.sends[0].QuickReplies) != 5 ||
		h.sends[0].QuickReplies[4].Title != "5" || h.sends[0].MessagingType != "RESPONSE" || h.sends[0].Tag != "" ||
		h.sends[1].Text != "Anything to add?" || h.sends[2].Text != "Thank you!" {
		t.Errorf("sends = %+v, want the rating question with 5 quick replies, the comment prompt, the thanks", h.sends)
	}
	last := (*surveys)[len(*surveys)-1]
	if last.Status != store.SurveyAnswered || last.Rating != 4 || last.Comment != "very helpful, thanks" ||
		last.AgentID != "agent-1" || last.WorkstreamID != "ws-1" || last.SentAt == nil || last.AnsweredAt == nil {
		t.Errorf("survey = %+v, want answered 4 with the comment, agent-1, ws-1", last)
	}
	if h.opened != 1 {
		t.Errorf("%d conversations opened, want 1", h.opened)
	}
	s := h.lastSave()
	if s.State != workflows.StateClosed || !s.ClosedAt.Equal(h.start.Add(70*time.Minute)) {
		t.Errorf("closed %s at %v, want closed when wrap-up ended (1h10, after the survey)", s.State, s.ClosedAt)
	} else if !strings.HasPrefix(s.ClosedReason, "wrap-up ended after") {
		t.Errorf("closed reason = %q, want wrap-up's (the survey ended first)", s.ClosedReason)
	}
	var answers int
	for _, e := range h.entries {
		if e.MID == "m2" || e.MID == "m3" {
			answers++
		}
	}
	if answers != 2 {
		t.Errorf("%d answers in the transcript, want 2", answers)
	}
}

func TestPostSurveyIsNotSentOutsideTheWindowAndSaysWhy(t *testing.T) {
	h, surveys := surveyHarness(t)
	h.settings.HumanAgentTag = true
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.actionAt(25*time.Hour, "end", workflows.UpdateEnd)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow ended with %v", err)
	}
	if len(h.sends) != 0 {
		t.Errorf("sent %+v outside the window", h.sends)
	}
	if len(*surveys) != 1 || (*surveys)[0].Status != store.SurveyNotSent ||
		!strings.Contains((*surveys)[0].NotSentReason, "automated messages may only be sent inside the 24-hour window") {
		t.Fatalf("surveys = %+v, want one not sent with the reason", *surveys)
	}
	if s := h.lastSave(); !s.ClosedAt.Equal(h.start.Add(25*time.Hour + 10*time.Minute)) {
		t.Errorf("closed at %v, want when wrap-up ended", s.ClosedAt)
	}
}

func TestPostSurveyTimesOutAndTheConversationClosesAtTheLaterEnd(t *testing.T) {
	h, surveys := surveyHarness(t)
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.actionAt(time.Hour, "end", workflows.UpdateEnd)
	var at80 workflows.ConversationState
	h.at(80*time.Minute, func() { at80 = h.state() })
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow ended with %v", err)
	}
	if at80.State != workflows.StateWrapUp || at80.Survey == nil {
		t.Errorf("at 1h20 (wrap-up over, survey running): %s, survey %+v; want still in wrap-up with the survey", at80.State, at80.Survey)
	}
	last := (*surveys)[len(*surveys)-1]
	if last.Status != store.SurveyTimedOut || last.Rating != 0 {
		t.Errorf("survey = %+v, want timed out", last)
	}
	if s := h.lastSave(); s.State != workflows.StateClosed || !s.ClosedAt.Equal(h.start.Add(90*time.Minute)) {
		t.Errorf("closed %s at %v, want at 1h30 when the survey timed out (after wrap-up's 1h10)", s.State, s.ClosedAt)
	} else if s.ClosedReason != "post-conversation survey ended (timed out)" {
		t.Errorf("closed reason = %q, want the survey's end (it held the wrap-up)", s.ClosedReason)
	}
}

func TestAMessageThatIsNotAnAnswerAfterTheRatingOpensTheNextConversation(t *testing.T) {
	h, surveys := surveyHarness(t)
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.actionAt(time.Hour, "end", workflows.UpdateEnd)
	h.customer(time.Hour+time.Minute, "m2", "5/5")
	h.events(time.Hour+2*time.Minute, messenger.Event{Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: "m3",
		Attachments: []messenger.Attachment{{Type: "image", URL: "https://cdn.example/x.jpg"}}, Timestamp: h.start.Add(time.Hour + 2*time.Minute).UnixMilli()})
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow ended with %v, want continue-as-new into the next conversation", err)
	}
	var next workflows.ConversationInput
	if err := converterDecode(can, &next); err != nil {
		t.Fatal(err)
	}
	if len(next.Pending) != 1 || next.Pending[0].MID != "m3" {
		t.Errorf("next conversation opened by %+v, want m3", next.Pending)
	}
	last := (*surveys)[len(*surveys)-1]
	if last.Status != store.SurveyAnswered || last.Rating != 5 || last.Comment != "" {
		t.Errorf("survey = %+v, want answered 5 (typed) without a comment", last)
	}
}

func TestACloseHeldByThePostSurveySaysTheSurveyEnded(t *testing.T) {
	h, _ := surveyHarness(t)
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.actionAt(time.Hour, "end", workflows.UpdateEnd)
	h.tap(75*time.Minute, "m2", 5)
	h.customer(80*time.Minute, "m3", "great")
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow ended with %v", err)
	}
	s := h.lastSave()
	if s.State != workflows.StateClosed || !s.ClosedAt.Equal(h.start.Add(80*time.Minute)) ||
		s.ClosedReason != "post-conversation survey ended (answered)" {
		t.Errorf("closed %s at %v (%q), want at 1h20 when the survey was answered after wrap-up's 1h10", s.State, s.ClosedAt, s.ClosedReason)
	}
}
