package api_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"parley/store"
	"parley/testenv"
)

type postSurvey struct {
	WorkstreamID    string    `json:"workstream_id"`
	Enabled         bool      `json:"enabled"`
	Mode            string    `json:"mode"`
	ResponseTimeout string    `json:"response_timeout"`
	Question        string    `json:"question"`
	CommentPrompt   string    `json:"comment_prompt"`
	Thanks          string    `json:"thanks"`
	OnAutoClose     bool      `json:"on_auto_close"`
	UpdatedAt       time.Time `json:"updated_at"`
}

type csatReport struct {
	From         time.Time      `json:"from"`
	To           time.Time      `json:"to"`
	WorkstreamID string         `json:"workstream_id"`
	QueueID      string         `json:"queue_id"`
	AgentID      string         `json:"agent_id"`
	Sent         int            `json:"sent"`
	Answered     int            `json:"answered"`
	TimedOut     int            `json:"timed_out"`
	Average      *float64       `json:"average"`
	Distribution map[string]int `json:"distribution"`
	ResponseRate float64        `json:"response_rate"`
	NotSent      int            `json:"not_sent"`
	NotSentBy    []struct {
		Reason string `json:"reason"`
		Count  int    `json:"count"`
	} `json:"not_sent_by_reason"`
}

func TestPostSurveySettingsAndCSATReportAPI(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	var w workstream
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Support", "page": page.ID}, &w)
	path := "/api/v1/workstreams/" + w.ID + "/post-survey"

	var ps postSurvey
	doJSON(t, e, http.StatusOK, http.MethodGet, path, nil, &ps)
	if ps.Enabled || ps.Mode != "in_chat" || ps.ResponseTimeout != "1h0m0s" || ps.Question == "" {
		t.Errorf("default post-survey = %+v", ps)
	}
	doJSON(t, e, http.StatusOK, http.MethodPut, path, map[string]any{"enabled": true, "response_timeout": "30m", "thanks": ""}, &ps)
	if !ps.Enabled || ps.ResponseTimeout != "30m0s" || ps.Thanks != "" || ps.CommentPrompt == "" {
		t.Errorf("saved post-survey = %+v", ps)
	}
	s, raw := e.Do(http.MethodPut, path, map[string]any{"response_timeout": "48h"})
	wantError(t, "a time-out past the 24-hour window", s, raw, http.StatusBadRequest, "response_timeout")
	s, raw = e.Do(http.MethodGet, "/api/v1/workstreams/nope/post-survey", nil)
	wantError(t, "unknown workstream", s, raw, http.StatusNotFound, "")

	// Surveys as conversations record them.
	day := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	sent := day.Add(time.Minute)
	for _, sv := range []store.Survey{
		{ConversationID: "c1", WorkstreamID: w.ID, QueueID: "q1", AgentID: "a1", Status: store.SurveyAnswered, Rating: 5, Comment: "great", SentAt: &sent, AnsweredAt: &sent},
		{ConversationID: "c2", WorkstreamID: w.ID, QueueID: "q1", AgentID: "a1", Status: store.SurveyTimedOut, SentAt: &sent},
		{ConversationID: "c3", WorkstreamID: w.ID, QueueID: "q1", AgentID: "a2", Status: store.SurveyNotSent, NotSentReason: "automated messages may only be sent inside the 24-hour window"},
		{ConversationID: "c4", WorkstreamID: "other", QueueID: "q9", AgentID: "a1", Status: store.SurveyAnswered, Rating: 1, SentAt: &sent, AnsweredAt: &sent},
	} {
		sv.Mode, sv.CreatedAt = store.SurveyModeInChat, day
		if err := e.App.Store.SaveSurvey(t.Context(), sv); err != nil {
			t.Fatal(err)
		}
	}
	q := url.Values{"from": {"2026-11-01T00:00:00Z"}, "to": {"2026-11-03T00:00:00Z"}, "workstream_id": {w.ID}}
	var r csatReport
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/reports/csat?"+q.Encode(), nil, &r)
	if r.Sent != 2 || r.Answered != 1 || r.TimedOut != 1 || r.Average == nil || *r.Average != 5 || r.Distribution["5"] != 1 ||
		r.ResponseRate != 0.5 || r.NotSent != 1 || len(r.NotSentBy) != 1 || r.NotSentBy[0].Count != 1 || r.WorkstreamID != w.ID {
		t.Errorf("CSAT report = %+v", r)
	}
	q = url.Values{"from": {"2026-11-01T00:00:00Z"}, "to": {"2026-11-03T00:00:00Z"}, "agent_id": {"a1"}}
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/reports/csat?"+q.Encode(), nil, &r)
	if r.Answered != 2 || r.Distribution["1"] != 1 || r.NotSent != 0 {
		t.Errorf("CSAT report of agent a1 = %+v", r)
	}
	s, raw = e.Do(http.MethodGet, "/api/v1/reports/csat?from=yesterday", nil)
	wantError(t, "a from that is not a time", s, raw, http.StatusBadRequest, "from")
	s, raw = e.Do(http.MethodGet, "/api/v1/reports/csat?from=2026-11-03T00:00:00Z&to=2026-11-01T00:00:00Z", nil)
	wantError(t, "from after to", s, raw, http.StatusBadRequest, "from")
}
