package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"parley/testenv"
)

// Issue 9, acceptance 2, on the real dev server: one conversation through
// greeting, privacy notice, pre-survey, routing on its answer, the agent
// assigned message, the agent's reply, the end, and the in-chat survey
// answered with a comment; the CSAT report counts it.
func TestOneConversationThroughEveryAutomatedStepAndBothSurveys(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server")
	}
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	queue := func(name string, priority int) string {
		var q struct{ ID string }
		e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/queues", map[string]any{"name": name, "priority": priority}, &q)
		return q.ID
	}
	general, billing := queue("General", 2), queue("Billing", 1)
	agent := e.CreateAgent("Ada", "ada@example.com")
	if st, raw := e.Do(http.MethodPut, "/api/v1/queues/"+billing+"/agents/"+agent.ID, nil); st >= 300 {
		t.Fatalf("membership: %d %s", st, raw)
	}
	if st, raw := e.DoWithKey(agent.Key, http.MethodPut, "/api/v1/agents/"+agent.ID+"/presence", map[string]string{"presence": "available"}); st != http.StatusOK {
		t.Fatalf("presence: %d %s", st, raw)
	}
	on := func(text string) map[string]any { return map[string]any{"enabled": true, "text": text} }
	var ws struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{
		"name": "Acme", "page": page.ID, "wrap_up_duration": "2s",
		"distribution": map[string]any{"mode": "push", "fallback_queue": general, "routing_rules": []any{
			map[string]any{"name": "billing", "queue": billing, "conditions": []any{
				map[string]any{"field": "survey.topic", "operator": "equals", "value": "Billing"}}}}},
		"automated_messages": map[string]any{
			"greeting":           on("Hello {first_name}, welcome to Acme."),
			"privacy_notice":     on("This conversation may be recorded."),
			"agent_assigned":     on("{agent} from {queue} is with you."),
			"conversation_ended": on("Thanks for writing to us."),
		},
	}, &ws)
	e.MustDo(http.StatusOK, http.MethodPut, "/api/v1/workstreams/"+ws.ID+"/pre-survey", map[string]any{
		"enabled": true, "questions": []any{map[string]any{"id": "topic", "text": "What is it about?", "choices": []string{"Billing", "Delivery"}, "required": true}},
	}, nil)
	e.MustDo(http.StatusOK, http.MethodPut, "/api/v1/workstreams/"+ws.ID+"/post-survey", map[string]any{"enabled": true, "response_timeout": "1m"}, nil)
	const psid = "psid-journey"
	e.Meta.SetUserProfile(pageID, psid, "Grace", "Hopper", true)
	ctx := t.Context()
	convID := waitForConversation(t, e, psid) // the customer's first message: "hello?"
	sentTexts(t, e, psid, 3)                  // greeting, privacy notice, the survey's question
	if _, err := e.Meta.CustomerSends(ctx, pageID, psid, "billing"); err != nil {
		t.Fatal(err)
	}
	// Routed to Billing by the answer, offered to Ada, who accepts.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+convID+"/accept", nil)
		if st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("accept: %d %s", st, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var cv struct {
		PreSurvey struct {
			Status  string
			Answers []struct{ QuestionID, Answer string } `json:"answers"`
		} `json:"pre_survey"`
		Queue *struct {
			QueueName string `json:"queue_name"`
		}
	}
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+convID, nil, &cv)
	if len(cv.PreSurvey.Answers) != 1 || !strings.EqualFold(cv.PreSurvey.Answers[0].Answer, "Billing") {
		t.Errorf("pre_survey = %+v, want the Billing answer shown to the agent", cv.PreSurvey)
	}
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+convID+"/messages", map[string]string{"text": "I refunded the second charge."}); status != http.StatusCreated {
		t.Fatalf("reply: %d %s", status, raw)
	}
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+convID+"/end", nil); status != http.StatusOK {
		t.Fatalf("end: %d %s", status, raw)
	}
	sent := sentTexts(t, e, psid, 7)
	want := []string{"Hello Grace, welcome to Acme.", "This conversation may be recorded.", "What is it about?",
		"Ada from Billing is with you.", "I refunded the second charge.", "Thanks for writing to us."}
	for i, w := range want {
		if sent[i] != w {
			t.Errorf("message %d = %q, want %q (all: %q)", i, sent[i], w, sent)
		}
	}
	if _, err := e.Meta.CustomerTapsQuickReply(ctx, pageID, psid, "4", "PARLEY_CSAT:"+convID+":4"); err != nil {
		t.Fatal(err)
	}
	sentTexts(t, e, psid, 8) // the comment prompt
	if _, err := e.Meta.CustomerSends(ctx, pageID, psid, "Fast refund"); err != nil {
		t.Fatal(err)
	}
	waitOneClosed(t, e, psid)
	var r struct {
		Sent         int            `json:"sent"`
		Answered     int            `json:"answered"`
		Average      *float64       `json:"average"`
		Distribution map[string]int `json:"distribution"`
		ResponseRate float64        `json:"response_rate"`
	}
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/reports/csat?workstream_id="+ws.ID+"&queue_id="+billing+"&agent_id="+agent.ID, nil, &r)
	if r.Sent != 1 || r.Answered != 1 || r.Average == nil || *r.Average != 4 || r.Distribution["4"] != 1 || r.ResponseRate != 1 {
		t.Errorf("CSAT report for Acme, Billing and Ada = %+v, want one survey answered 4", r)
	}
}

// sentTexts waits until the fake Meta has sent the customer n messages and
// returns their texts, in order.
func sentTexts(t *testing.T, e *testenv.Env, psid string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var texts []string
		for _, m := range e.Meta.Sent(pageID, psid) {
			texts = append(texts, m.Text)
		}
		if len(texts) >= n {
			return texts
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent %q, want %d messages", texts, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitOneClosed waits until the customer's only conversation is closed;
// a second one (answers taken for a new conversation) fails the test.
func waitOneClosed(t *testing.T, e *testenv.Env, psid string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Data []struct{ ID, State string } }
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?psid="+psid, nil, &list)
		if len(list.Data) != 1 {
			t.Fatalf("conversations = %+v: the survey's answers opened another", list.Data)
		}
		if list.Data[0].State == "closed" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not closed within 30 s: %+v", list.Data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// On the real dev server: a workstream with a link survey on auto-close.
// The conversation an agent answered closes for inactivity; the customer
// gets the conversation's own link, answers on Parley's page, and the CSAT
// report counts it for the agent.
func TestAutoClosedConversationGetsASurveyLinkAnsweredOnItsPage(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server")
	}
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	var ws struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{
		"name": "Acme", "page": page.ID, "auto_close": map[string]any{"active": "3s"}}, &ws)
	e.MustDo(http.StatusOK, http.MethodPut, "/api/v1/workstreams/"+ws.ID+"/post-survey", map[string]any{
		"enabled": true, "mode": "link", "question": "How did we do? Tell us here: {link}", "response_timeout": "72h", "on_auto_close": true}, nil)
	agent := e.CreateAgent("Ada", "ada@example.com")
	const psid = "psid-link"
	convID := waitForConversation(t, e, psid)
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+convID+"/assign", map[string]string{"agent_id": agent.ID}, nil)
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+convID+"/messages", map[string]string{"text": "Your parcel left today."}); status != http.StatusCreated {
		t.Fatalf("reply: %d %s", status, raw)
	}
	sent := sentTexts(t, e, psid, 2)
	link, ok := strings.CutPrefix(sent[1], "How did we do? Tell us here: "+e.URL+"/survey/")
	if !ok || len(link) < 40 {
		t.Fatalf("second message %q, want the survey's link on %s", sent[1], e.URL)
	}
	waitOneClosed(t, e, psid)
	var c struct {
		ClosedReason string `json:"closed_reason"`
	}
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+convID, nil, &c)
	if !strings.HasPrefix(c.ClosedReason, "closed automatically after 3 seconds without activity while active") {
		t.Errorf("closed reason %q, want the auto-close", c.ClosedReason)
	}
	// The agent's transcript does not give the customer's link away.
	var msgs struct{ Data []struct{ Text string } }
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+convID+"/messages", nil, &msgs)
	if n := len(msgs.Data); n == 0 || strings.Contains(msgs.Data[n-1].Text, link) || !strings.Contains(msgs.Data[n-1].Text, "/survey/(the customer's link)") {
		t.Errorf("transcript = %+v, want the survey message with its link hidden", msgs.Data)
	}
	if status, _, body := surveyPageDo(t, e, http.MethodGet, link, nil); status != http.StatusOK || !strings.Contains(body, `name="rating"`) {
		t.Fatalf("the survey page: %d %s", status, body)
	}
	form := url.Values{"rating": {"5"}, "comment": {"Clear and quick"}}
	if status, _, body := surveyPageDo(t, e, http.MethodPost, link, form); status != http.StatusOK || !strings.Contains(body, "Thank you") {
		t.Fatalf("answering on the page: %d %s", status, body)
	}
	var r struct {
		Sent, Answered int
		Distribution   map[string]int `json:"distribution"`
	}
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/reports/csat?workstream_id="+ws.ID+"&agent_id="+agent.ID, nil, &r)
	if r.Sent != 1 || r.Answered != 1 || r.Distribution["5"] != 1 {
		t.Errorf("CSAT report = %+v, want the link survey answered 5 for Ada", r)
	}
}
