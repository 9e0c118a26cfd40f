package workflows_test

import (
	"strings"
	"testing"
	"time"

	"parley/store"
	"parley/workflows"
)

// A link survey sends the conversation's own address and does not hold
// the conversation: it closes when wrap-up ends, the link still valid.
func TestLinkSurveySendsItsOwnAddressAndDoesNotHoldTheConversation(t *testing.T) {
	h, surveys := surveyHarness(t)
	h.settings.PostSurvey.Mode = store.SurveyModeLink
	h.settings.PostSurvey.Question = "How did we do? Tell us: {link}"
	h.settings.PostSurvey.LinkBase = "https://parley.example/survey/"
	h.settings.PostSurvey.Timeout = 72 * time.Hour
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.actionAt(time.Hour, "end", workflows.UpdateEnd)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow ended with %v", err)
	}
	if len(h.sends) != 1 {
		t.Fatalf("sends = %+v, want the link only", h.sends)
	}
	text := h.sends[0].Text
	token, ok := strings.CutPrefix(text, "How did we do? Tell us: https://parley.example/survey/")
	if !ok || len(token) < 40 || strings.ContainsAny(token, "/+= ") || len(h.sends[0].QuickReplies) != 0 || h.sends[0].Tag != "" {
		t.Fatalf("sent %q, want the question with the conversation's link (a long URL-safe token), untagged", text)
	}
	if len(*surveys) != 1 {
		t.Fatalf("surveys = %+v, want one", *surveys)
	}
	s := (*surveys)[0]
	if s.Status != store.SurveySent || s.Mode != store.SurveyModeLink || s.Token != token || s.AgentID != "agent-1" ||
		s.ExpiresAt == nil || !s.ExpiresAt.Equal(h.start.Add(time.Hour+72*time.Hour)) {
		t.Errorf("survey = %+v, want sent as a link with the token, expiring 72h after it was sent", s)
	}
	if c := h.lastSave(); c.State != workflows.StateClosed || !c.ClosedAt.Equal(h.start.Add(70*time.Minute)) || !strings.HasPrefix(c.ClosedReason, "wrap-up ended after") {
		t.Errorf("closed %s at %v (%q), want closed when wrap-up ended (1h10): a link survey holds nothing", c.State, c.ClosedAt, c.ClosedReason)
	}
}

// With on_auto_close, a conversation an agent took that closes for
// inactivity is surveyed; the survey holds it (in wrap-up, the agent's
// capacity released) and the close reason says both.
func TestAutoCloseAsksThePostSurveyWhenTheWorkstreamSaysSo(t *testing.T) {
	h, surveys := surveyHarness(t)
	h.settings.AutoCloseActive = 10 * time.Minute
	h.settings.PostSurvey.OnAutoClose = true
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	var during workflows.ConversationState
	h.at(12*time.Minute, func() { during = h.state() })
	h.tap(13*time.Minute, "m2", 5)
	h.customer(14*time.Minute, "m3", "quick and kind")
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow ended with %v, want closed", err)
	}
	if during.State != workflows.StateWrapUp || during.Survey == nil || during.AutoClosed == "" {
		t.Errorf("after the auto-close: %s, survey %+v; want wrap-up held by the survey", during.State, during.Survey)
	}
	if len(h.sends) != 3 || h.sends[0].Text != "How did we do?" {
		t.Errorf("sends = %+v, want the survey, the comment prompt and the thanks", h.sends)
	}
	last := (*surveys)[len(*surveys)-1]
	if last.Status != store.SurveyAnswered || last.Rating != 5 || last.Comment != "quick and kind" || last.AgentID != "agent-1" {
		t.Errorf("survey = %+v, want answered 5 with the comment for agent-1", last)
	}
	if !strings.Contains(strings.Join(h.ledger, ","), "release") {
		t.Errorf("ledger = %v, want the agent's capacity released at the auto-close", h.ledger)
	}
	s := h.lastSave()
	want := "closed automatically after 10 minutes without activity while active; post-conversation survey ended (answered)"
	if s.State != workflows.StateClosed || !s.ClosedAt.Equal(h.start.Add(14*time.Minute)) || s.ClosedReason != want {
		t.Errorf("closed %s at %v (%q), want closed at 14 min: %q", s.State, s.ClosedAt, s.ClosedReason, want)
	}
	if h.opened != 1 {
		t.Errorf("%d conversations opened, want 1 (the answers belong to the survey)", h.opened)
	}
}

// Without on_auto_close the auto-close asks nothing.
func TestAutoCloseAsksNoSurveyByDefault(t *testing.T) {
	h, surveys := surveyHarness(t)
	h.settings.AutoCloseActive = 10 * time.Minute
	h.customer(0, "m1", "hello")
	h.assignAt(time.Minute)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())
	if len(h.sends) != 0 || len(*surveys) != 0 {
		t.Errorf("sends %+v, surveys %+v: want none", h.sends, *surveys)
	}
	if s := h.lastSave(); s.State != workflows.StateClosed || !strings.HasPrefix(s.ClosedReason, "closed automatically after 10 minutes") {
		t.Errorf("closed %s (%q), want auto-closed", s.State, s.ClosedReason)
	}
}
