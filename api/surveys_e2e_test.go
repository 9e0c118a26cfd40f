package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"parley/testenv"
)

// Issue 9 on the real dev server (its post-conversation part): greeting
// and privacy notice on a new conversation, the agent's reply, the end, an
// in-chat survey answered with a tap and a comment that stay with the
// survey (one conversation), and the CSAT report counting it.
func TestSurveyAnsweredInChatIsCountedByTheCSATReport(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server")
	}
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	on := func(text string) map[string]any { return map[string]any{"enabled": true, "text": text} }
	var ws struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{
		"name": "Acme", "page": page.ID, "wrap_up_duration": "2s",
		"automated_messages": map[string]any{
			"greeting":           on("Hello {first_name}, welcome to Acme."),
			"privacy_notice":     on("This conversation may be recorded."),
			"conversation_ended": on("Thanks for writing to us."),
		},
	}, &ws)
	e.MustDo(http.StatusOK, http.MethodPut, "/api/v1/workstreams/"+ws.ID+"/post-survey", map[string]any{"enabled": true, "response_timeout": "1m"}, nil)
	agent := e.CreateAgent("Ada", "ada@example.com")
	const psid = "psid-survey-e2e"
	e.Meta.SetUserProfile(pageID, psid, "Grace", "Hopper", true)
	ctx := t.Context()
	if _, err := e.Meta.CustomerSends(ctx, pageID, psid, "My parcel is late"); err != nil {
		t.Fatal(err)
	}
	convID := waitForConversation(t, e, psid)
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+convID+"/assign", map[string]string{"agent_id": agent.ID}, nil)
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+convID+"/messages", map[string]string{"text": "It ships today."}); status != http.StatusCreated {
		t.Fatalf("reply: %d %s", status, raw)
	}
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+convID+"/end", nil); status != http.StatusOK {
		t.Fatalf("end: %d %s", status, raw)
	}
	waitSent := func(n int) []string {
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
	sent := waitSent(5)
	want := []string{"Hello Grace, welcome to Acme.", "This conversation may be recorded.", "It ships today.", "Thanks for writing to us."}
	for i, w := range want {
		if sent[i] != w {
			t.Errorf("message %d = %q, want %q (all: %q)", i, sent[i], w, sent)
		}
	}
	if !strings.Contains(strings.ToLower(sent[4]), "rate") && !strings.Contains(sent[4], "1") {
		t.Errorf("the survey's question = %q", sent[4])
	}
	if _, err := e.Meta.CustomerTapsQuickReply(ctx, pageID, psid, "5", "PARLEY_CSAT:"+convID+":5"); err != nil {
		t.Fatal(err)
	}
	waitSent(6) // the comment prompt
	if _, err := e.Meta.CustomerSends(ctx, pageID, psid, "Quick and kind, thank you"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Data []struct{ ID, State string } }
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?psid="+psid, nil, &list)
		if len(list.Data) != 1 {
			t.Fatalf("conversations = %+v: the survey's answers opened another", list.Data)
		}
		if list.Data[0].State == "closed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not closed within 30 s: %+v", list.Data)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var r struct {
		Sent         int            `json:"sent"`
		Answered     int            `json:"answered"`
		Average      *float64       `json:"average"`
		Distribution map[string]int `json:"distribution"`
		ResponseRate float64        `json:"response_rate"`
	}
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/reports/csat?workstream_id="+ws.ID+"&agent_id="+agent.ID, nil, &r)
	if r.Sent != 1 || r.Answered != 1 || r.Average == nil || *r.Average != 5 || r.Distribution["5"] != 1 || r.ResponseRate != 1 {
		t.Errorf("CSAT report = %+v, want one survey answered 5", r)
	}
}
