package api_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"parley/store"
	"parley/testenv"
)

// surveyPageDo calls the public survey page without an API key (a form
// when form is non-nil) and checks the exchange against openapi.yaml.
func surveyPageDo(t *testing.T, e *testenv.Env, method, token string, form url.Values) (int, http.Header, string) {
	t.Helper()
	var body []byte
	if form != nil {
		body = []byte(form.Encode())
	}
	req, err := http.NewRequest(method, e.URL+"/survey/"+url.PathEscape(token), strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	validateExchange(t, req, body, resp.StatusCode, resp.Header, raw)
	return resp.StatusCode, resp.Header, string(raw)
}

func TestLinkSurveyPage(t *testing.T) {
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	var w workstream
	doJSON(t, e, http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Support", "page": page.ID}, &w)
	path := "/api/v1/workstreams/" + w.ID + "/post-survey"

	// The settings of a link survey.
	s, raw := e.Do(http.MethodPut, path, map[string]any{"mode": "link", "question": "How did we do?"})
	wantError(t, "a link survey without {link}", s, raw, http.StatusBadRequest, "question")
	s, raw = e.Do(http.MethodPut, path, map[string]any{"mode": "email"})
	wantError(t, "an unknown mode", s, raw, http.StatusBadRequest, "mode")
	var ps postSurvey
	doJSON(t, e, http.StatusOK, http.MethodPut, path, map[string]any{"enabled": true, "mode": "link",
		"question": "How did we do? Tell us here: {link}", "on_auto_close": true, "response_timeout": "72h"}, &ps)
	if ps.Mode != "link" || !ps.OnAutoClose || ps.ResponseTimeout != "72h0m0s" {
		t.Errorf("saved link survey = %+v", ps)
	}
	ps = postSurvey{}
	doJSON(t, e, http.StatusOK, http.MethodGet, path, nil, &ps)
	if ps.Mode != "link" || !ps.OnAutoClose || ps.ResponseTimeout != "72h0m0s" || ps.Question != "How did we do? Tell us here: {link}" {
		t.Errorf("GET link survey = %+v", ps)
	}
	s, raw = e.Do(http.MethodPut, path, map[string]any{"mode": "in_chat", "question": "Rate us 1 to 5"})
	wantError(t, "in_chat with a 72h time-out", s, raw, http.StatusBadRequest, "response_timeout")

	// A survey sent as a link.
	now := time.Now().UTC()
	expires, expired := now.Add(time.Hour), now.Add(-time.Minute)
	for _, sv := range []store.Survey{
		{ConversationID: "c1", WorkstreamID: w.ID, QueueID: "q1", AgentID: "a1", Token: "tok-answer-me", ExpiresAt: &expires},
		{ConversationID: "c2", WorkstreamID: w.ID, QueueID: "q1", AgentID: "a1", Token: "tok-too-late", ExpiresAt: &expired},
	} {
		sv.Mode, sv.Status, sv.SentAt, sv.CreatedAt = store.SurveyModeLink, store.SurveySent, &now, now
		if err := e.App.Store.SaveSurvey(t.Context(), sv); err != nil {
			t.Fatal(err)
		}
	}
	status, h, body := surveyPageDo(t, e, http.MethodGet, "tok-answer-me", nil)
	if status != http.StatusOK || !strings.Contains(body, "How would you rate the help you received?") ||
		!strings.Contains(body, `<form method="post">`) || strings.Count(body, `type="radio" name="rating"`) != 5 ||
		!strings.Contains(body, `name="comment"`) || !strings.Contains(body, `name="viewport"`) {
		t.Errorf("GET the page: %d %s", status, body)
	}
	for k, v := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex",
		"Content-Type": "text/html; charset=UTF-8"} {
		if h.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, h.Get(k), v)
		}
	}
	if status, _, _ := surveyPageDo(t, e, http.MethodHead, "tok-answer-me", nil); status != http.StatusOK {
		t.Errorf("HEAD the page: %d", status)
	}
	for _, bad := range []url.Values{{}, {"rating": {"0"}}, {"rating": {"six"}}, {"rating": {"6"}, "comment": {"<b>hi</b>"}}} {
		status, _, body := surveyPageDo(t, e, http.MethodPost, "tok-answer-me", bad)
		if status != http.StatusBadRequest || !strings.Contains(body, "Please choose a rating from 1 to 5.") || !strings.Contains(body, "<form") ||
			strings.Contains(body, "<b>hi</b>") {
			t.Errorf("POST %v: %d %s; want 400 with the form again", bad, status, body)
		}
	}
	status, _, body = surveyPageDo(t, e, http.MethodPost, "tok-answer-me", url.Values{"rating": {"4"}, "comment": {"  quick and kind  "}})
	if status != http.StatusOK || !strings.Contains(body, "Thank you for your feedback") {
		t.Errorf("POST rating 4: %d %s", status, body)
	}
	got, err := e.App.Store.GetSurvey(t.Context(), "c1")
	if err != nil || got.Status != store.SurveyAnswered || got.Rating != 4 || got.Comment != "quick and kind" {
		t.Errorf("answered survey = %+v, %v", got, err)
	}
	q := url.Values{"from": {now.Add(-time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}, "workstream_id": {w.ID}}
	var r csatReport
	doJSON(t, e, http.StatusOK, http.MethodGet, "/api/v1/reports/csat?"+q.Encode(), nil, &r)
	if r.Answered != 1 || r.Distribution["4"] != 1 || r.Sent != 2 || r.TimedOut != 1 {
		t.Errorf("CSAT report = %+v; want c1 answered 4, c2 timed out", r)
	}
	status, _, body = surveyPageDo(t, e, http.MethodPost, "tok-answer-me", url.Values{"rating": {"5"}})
	if status != http.StatusConflict || !strings.Contains(body, "You have already answered this survey. Thank you!") {
		t.Errorf("POST again: %d %s; want 409", status, body)
	}
	status, _, body = surveyPageDo(t, e, http.MethodGet, "tok-answer-me", nil)
	if status != http.StatusOK || strings.Contains(body, "<form") || !strings.Contains(body, "already answered") {
		t.Errorf("GET once answered: %d %s; want the thank-you page", status, body)
	}

	for _, m := range []string{http.MethodGet, http.MethodPost} {
		status, _, body = surveyPageDo(t, e, m, "tok-too-late", url.Values{"rating": {"3"}})
		if status != http.StatusGone || !strings.Contains(body, "This survey has expired.") {
			t.Errorf("%s an expired link: %d %s; want 410", m, status, body)
		}
		status, _, body = surveyPageDo(t, e, m, "tok-unknown", url.Values{"rating": {"3"}})
		if status != http.StatusNotFound || !strings.Contains(body, "This survey link is not valid.") {
			t.Errorf("%s an unknown link: %d %s; want 404", m, status, body)
		}
	}
	if got, err := e.App.Store.GetSurvey(t.Context(), "c2"); err != nil || got.Status != store.SurveySent || got.Rating != 0 {
		t.Errorf("expired survey = %+v, %v; want unanswered", got, err)
	}
	status, _, _ = surveyPageDo(t, e, http.MethodPost, "tok-answer-me", url.Values{"rating": {"4"}, "comment": {strings.Repeat("x", 20<<10)}})
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("POST a 20 KiB form: %d, want 413", status)
	}
}
