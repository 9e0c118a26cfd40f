package workflows_test

import (
	"context"
	"strings"
	"testing"
	"time"

	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/activity"

	"parley/activities"
	"parley/messenger"
	"parley/routing"
	"parley/store"
	"parley/workflows"
)

// withPreSurvey gives h's workstream a pre-survey: a required choice
// (topic), an optional free text (order); 5 min a question, 20 min in all.
// It returns the rows recorded.
func withPreSurvey(h *harness) *[]store.PreSurveyResult {
	h.settings.PreSurvey = &activities.PreSurveySettings{WorkstreamID: "ws-1", QuestionTimeout: 5 * time.Minute, Timeout: 20 * time.Minute,
		Questions: []store.PreSurveyQuestion{
			{ID: "topic", Text: "What is it about?", Choices: []string{"Billing", "Orders"}, Required: true},
			{ID: "order", Text: "Your order number?"},
		}}
	var rows []store.PreSurveyResult
	h.env.RegisterActivityWithOptions(func(ctx context.Context, r store.PreSurveyResult) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		rows = append(rows, r)
		return nil
	}, activity.RegisterOptions{Name: activities.RecordPreSurveyName})
	return &rows
}

// tapChoice is the customer tapping choice n of question qid at start+d.
func (h *harness) tapChoice(d time.Duration, mid, qid string, n int, title string) {
	h.at(d, func() {
		e := messenger.Event{Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: mid, Text: title,
			QuickReplyPayload: workflows.PreSurveyPayload(h.state().ConversationID, qid, n), Timestamp: h.start.Add(d).UnixMilli()}
		h.env.SignalWorkflow(workflows.SignalMessengerEvents, workflows.MessengerEventsSignal{Events: []messenger.Event{e}})
	})
}

func TestPreSurveyAsksInOrderReasksAnInvalidChoiceOnceAndKeepsOtherMessages(t *testing.T) {
	h := newHarness(t)
	rows := withPreSurvey(h)
	h.customer(0, "m1", "hello")
	var during workflows.ConversationState
	h.at(30*time.Second, func() { during = h.state() })
	h.customer(time.Minute, "m2", "my bill is wrong") // not a choice: asked again
	h.events(90*time.Second, messenger.Event{Kind: messenger.KindMessage, PageID: "111", PSID: "222", MID: "m3",
		Attachments: []messenger.Attachment{{Type: "image", URL: "https://cdn.example/p.jpg"}}, Timestamp: h.start.Add(90 * time.Second).UnixMilli()})
	h.tapChoice(2*time.Minute, "m4", "topic", 0, "Billing")
	h.customer(3*time.Minute, "m5", " A-123 ")
	var after workflows.ConversationState
	h.at(4*time.Minute, func() { after = h.state() })
	h.run(5 * time.Minute)

	if during.PreSurvey == nil || during.PreSurvey.Index != 0 || !during.PreSurvey.Until.Equal(h.start.Add(5*time.Minute)) {
		t.Errorf("during the survey: %+v, want question 1 until 5 min", during.PreSurvey)
	}
	var texts []string
	for _, s := range h.sends {
		texts = append(texts, s.Text)
	}
	want := []string{"What is it about?", "Please choose one of the options. What is it about?", "Your order number?"}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Fatalf("sent %q, want %q", texts, want)
	}
	if len(h.sends[0].QuickReplies) != 2 || h.sends[0].QuickReplies[1].Title != "Orders" || h.sends[0].Tag != "" {
		t.Errorf("first question: %+v, want two untagged quick replies", h.sends[0])
	}
	if after.PreSurvey != nil || after.PreSurveyStatus != store.PreSurveyAnswered || after.SurveyTimedOut ||
		after.SurveyAnswers["topic"] != "Billing" || after.SurveyAnswers["order"] != "A-123" {
		t.Errorf("after the survey: %+v %q %v %v", after.PreSurvey, after.PreSurveyStatus, after.SurveyAnswers, after.SurveyTimedOut)
	}
	if after.CustomerMessages != 5 {
		t.Errorf("customer messages = %d, want 5 (the photo and the invalid answer are kept)", after.CustomerMessages)
	}
	last := (*rows)[len(*rows)-1]
	if last.Status != store.PreSurveyAnswered || len(last.Answers) != 2 || last.Answers[0].Question != "What is it about?" {
		t.Errorf("last row: %+v", last)
	}
}

func TestARuleOnAPreSurveyAnswerRoutesToItsQueueOnceTheOptionalQuestionTimesOut(t *testing.T) {
	f := newRoutingFixture(t)
	general := f.queue("General", 1, routing.Overflow{}, routing.OperatingHours{})
	billing := f.queue("Billing", 1, routing.Overflow{}, routing.OperatingHours{})
	d := push(general.ID)
	d.Rules = []routing.Rule{{Name: "billing", QueueID: billing.ID, Conditions: []routing.Condition{
		{Field: "survey.topic", Operator: routing.OpEquals, Value: "billing"}}}}
	h := f.routed(d)
	rows := withPreSurvey(h)
	h.customer(0, "m1", "hello")
	snaps := map[time.Duration]snapshot{}
	h.snapshotAt(time.Minute, snaps)
	h.customer(2*time.Minute, "m2", "billing") // typed title
	var details string
	h.at(3*time.Minute, func() {
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
	h.snapshotAt(11*time.Minute, snaps)
	var after workflows.ConversationState
	h.at(11*time.Minute, func() { after = h.state() })
	h.run(12 * time.Minute)

	if s := snaps[time.Minute]; s.queue != "" {
		t.Errorf("during the survey: %+v, want not routed yet", s)
	}
	if want := "question 2 of 2, waiting for the answer until " + h.start.Add(7*time.Minute).UTC().Format(time.RFC3339); !strings.Contains(details, want) {
		t.Errorf("current details = %q, want %q", details, want)
	}
	// The optional question times out at 7 min: the survey is answered.
	if s := snaps[11*time.Minute]; s.queue != "Billing" {
		t.Errorf("after the survey: %+v, want routed to Billing by the rule on survey.topic", s)
	}
	if after.PreSurveyStatus != store.PreSurveyAnswered || after.SurveyAnswers["topic"] != "Billing" {
		t.Errorf("after: %q %v", after.PreSurveyStatus, after.SurveyAnswers)
	}
	if len(*rows) == 0 {
		t.Fatal("no pre-survey row recorded")
	}
}

func TestPreSurveyRequiredQuestionTimesOutAndRoutesAnyway(t *testing.T) {
	f := newRoutingFixture(t)
	general := f.queue("General", 1, routing.Overflow{}, routing.OperatingHours{})
	late := f.queue("Late", 1, routing.Overflow{}, routing.OperatingHours{})
	d := push(general.ID)
	d.Rules = []routing.Rule{{Name: "timed out", QueueID: late.ID, Conditions: []routing.Condition{
		{Field: "survey_timed_out", Operator: routing.OpEquals, Value: "true"}}}}
	h := f.routed(d)
	rows := withPreSurvey(h)
	h.customer(0, "m1", "hello")
	snaps := map[time.Duration]snapshot{}
	h.snapshotAt(4*time.Minute, snaps)
	h.snapshotAt(6*time.Minute, snaps)
	var after workflows.ConversationState
	h.at(6*time.Minute, func() { after = h.state() })
	h.run(7 * time.Minute)

	if s := snaps[4*time.Minute]; s.queue != "" {
		t.Errorf("at 4 min: %+v, want still in the survey", s)
	}
	if s := snaps[6*time.Minute]; s.queue != "Late" {
		t.Errorf("at 6 min: %+v, want routed to Late (the rule on survey_timed_out) after the time-out", s)
	}
	if after.PreSurveyStatus != store.PreSurveyTimedOut || !after.SurveyTimedOut || len(after.SurveyAnswers) != 0 {
		t.Errorf("after: %q timed out %v answers %v", after.PreSurveyStatus, after.SurveyTimedOut, after.SurveyAnswers)
	}
	last := (*rows)[len(*rows)-1]
	if last.Status != store.PreSurveyTimedOut || !last.TimedOut {
		t.Errorf("last row: %+v, want timed_out", last)
	}
}

// A supervisor who assigns the conversation during the pre-survey ends it:
// what was answered stays, and the customer's next message is for the
// agent, not an answer.
func TestAnAssignmentDuringThePreSurveyEndsIt(t *testing.T) {
	h := newHarness(t)
	rows := withPreSurvey(h)
	h.customer(0, "m1", "hello")
	h.tapChoice(time.Minute, "m2", "topic", 1, "Orders")
	h.assignAt(2 * time.Minute)
	h.customer(3*time.Minute, "m3", "It is order A-77, it never came")
	var after workflows.ConversationState
	h.at(4*time.Minute, func() { after = h.state() })
	h.run(10 * time.Minute)
	if after.PreSurvey != nil || after.PreSurveyStatus != store.PreSurveyInterrupted || after.State != workflows.StateActive {
		t.Errorf("after the assignment: %s, pre-survey %+v (%s); want active, the survey interrupted", after.State, after.PreSurvey, after.PreSurveyStatus)
	}
	if len(after.PreSurveyAnswers) != 1 || after.PreSurveyAnswers[0].Answer != "Orders" {
		t.Errorf("answers = %+v, want the topic kept", after.PreSurveyAnswers)
	}
	last := (*rows)[len(*rows)-1]
	if last.Status != store.PreSurveyInterrupted || len(last.Answers) != 1 {
		t.Errorf("recorded %+v, want interrupted with the one answer", last)
	}
	// The question about the order number was asked before the agent came,
	// and not again; nothing was sent after the assignment.
	if got := h.sentTexts(); len(got) != 2 || got[1] != "Your order number?" {
		t.Errorf("sent %q, want the two questions only", got)
	}
}
