package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"parley/testenv"
)

type preSurveyResp struct {
	WorkstreamID string `json:"workstream_id"`
	Enabled      bool   `json:"enabled"`
	Questions    []struct {
		ID      string   `json:"id"`
		Choices []string `json:"choices"`
	} `json:"questions"`
	QuestionTimeout string `json:"question_timeout"`
	Timeout         string `json:"timeout"`
}

func TestPreSurveySettingsAreValidatedAndItsAnswersShownWithTheConversation(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server")
	}
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	var ws struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Acme", "page": page.ID}, &ws)
	path := "/api/v1/workstreams/" + ws.ID + "/pre-survey"

	var ps preSurveyResp
	e.MustDo(http.StatusOK, http.MethodGet, path, nil, &ps)
	if ps.Enabled || len(ps.Questions) != 0 || ps.QuestionTimeout != "10m0s" {
		t.Errorf("default pre-survey = %+v", ps)
	}
	q := func(id string, choices ...string) map[string]any {
		return map[string]any{"id": id, "text": "Question " + id + "?", "choices": choices, "required": true}
	}
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"questions": []any{q("a"), q("b"), q("c"), q("d"), q("e"), q("f"), q("g"), q("h"), q("i"), q("j"), q("k")}}, "questions"},
		{map[string]any{"questions": []any{q("a"), q("a")}}, "questions[1].id"},
		{map[string]any{"questions": []any{q("topic", strings.Split("a b c d e f g h i j k l m n", " ")...)}}, "questions[0].choices"},
		{map[string]any{"questions": []any{q("topic", "ok", "a title far over twenty")}}, "questions[0].choices[1]"},
		{map[string]any{"timeout": "25h"}, "timeout"},
	} {
		s, raw := e.Do(http.MethodPut, path, c.body)
		wantError(t, "invalid "+c.field, s, raw, http.StatusBadRequest, c.field)
	}
	e.MustDo(http.StatusOK, http.MethodPut, path, map[string]any{"enabled": true, "questions": []any{q("topic", "Billing", "Orders")}}, &ps)
	if !ps.Enabled || len(ps.Questions) != 1 || len(ps.Questions[0].Choices) != 2 {
		t.Errorf("saved pre-survey = %+v", ps)
	}

	const psid = "psid-presurvey-e2e"
	ctx := t.Context()
	if _, err := e.Meta.CustomerSends(ctx, pageID, psid, "hello"); err != nil {
		t.Fatal(err)
	}
	convID := waitForConversation(t, e, psid)
	deadline := time.Now().Add(30 * time.Second)
	for len(e.Meta.Sent(pageID, psid)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the survey's question was never sent")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := e.Meta.CustomerTapsQuickReply(ctx, pageID, psid, "Orders", "PARLEY_PRE:"+convID+":topic:1"); err != nil {
		t.Fatal(err)
	}
	type conv struct {
		PreSurvey *struct {
			Status  string `json:"status"`
			Answers []struct {
				Question string `json:"question"`
				Answer   string `json:"answer"`
			} `json:"answers"`
			TimedOut bool `json:"timed_out"`
		} `json:"pre_survey"`
	}
	for {
		var cv conv
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+convID, nil, &cv)
		if p := cv.PreSurvey; p != nil && p.Status == "answered" {
			if len(p.Answers) != 1 || p.Answers[0].Answer != "Orders" || p.Answers[0].Question != "Question topic?" || p.TimedOut {
				t.Errorf("pre_survey = %+v", p)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pre_survey never answered: %+v", cv.PreSurvey)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
