package api_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"parley/testenv"
)

// Issue 10 on the real dev server: one conversation queued, offered to
// the agent, accepted, replied to and ended; the queue's metrics count it
// (offered 1, answered 1, a first-response and a handle time, nobody
// waiting). An agent's key is refused; a bad from is a 400 naming it.
func TestQueueMetricsAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server")
	}
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	var q struct {
		ID                    string `json:"id"`
		ServiceLevelThreshold string `json:"service_level_threshold"`
	}
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/queues", map[string]any{"name": "General", "priority": 1, "service_level_threshold": "30s"}, &q)
	if q.ServiceLevelThreshold != "30s" {
		t.Errorf("service_level_threshold = %q, want 30s", q.ServiceLevelThreshold)
	}
	st, raw := e.Do(http.MethodPatch, "/api/v1/queues/"+q.ID, map[string]any{"service_level_threshold": "25h"})
	wantError(t, "service level of 25h", st, raw, http.StatusBadRequest, "service_level_threshold")
	e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/queues/"+q.ID, map[string]any{"service_level_threshold": "2m"}, &q)
	if q.ServiceLevelThreshold != "2m0s" {
		t.Errorf("service_level_threshold = %q, want 2m0s", q.ServiceLevelThreshold)
	}
	agent := e.CreateAgent("Ada", "ada@example.com")
	if st, raw := e.Do(http.MethodPut, "/api/v1/queues/"+q.ID+"/agents/"+agent.ID, nil); st >= 300 {
		t.Fatalf("membership: %d %s", st, raw)
	}
	if st, raw := e.DoWithKey(agent.Key, http.MethodPut, "/api/v1/agents/"+agent.ID+"/presence", map[string]string{"presence": "available"}); st != http.StatusOK {
		t.Fatalf("presence: %d %s", st, raw)
	}
	var ws struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{
		"name": "Acme", "page": page.ID, "wrap_up_duration": "1h",
		"distribution": map[string]any{"mode": "push", "fallback_queue": q.ID},
	}, &ws)
	from := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)

	const psid = "psid-metrics"
	convID := waitForConversation(t, e, psid)
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
	time.Sleep(100 * time.Millisecond)
	if st, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+convID+"/messages", map[string]string{"text": "Hello, how can I help?"}); st != http.StatusCreated {
		t.Fatalf("reply: %d %s", st, raw)
	}
	sentTexts(t, e, psid, 1)
	time.Sleep(100 * time.Millisecond)
	if st, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+convID+"/end", nil); st != http.StatusOK {
		t.Fatalf("end: %d %s", st, raw)
	}

	type period struct {
		Offered                     int      `json:"offered"`
		Offers                      int      `json:"offers"`
		Answered                    int      `json:"answered"`
		Abandoned                   int      `json:"abandoned"`
		ServiceLevel                *float64 `json:"service_level"`
		AverageSpeedOfAnswerSeconds *float64 `json:"average_speed_of_answer_seconds"`
		AverageHandleTimeSeconds    *float64 `json:"average_handle_time_seconds"`
		AverageFirstResponseSeconds *float64 `json:"average_first_response_seconds"`
	}
	type metrics struct {
		Data []struct {
			QueueID string    `json:"queue_id"`
			From    time.Time `json:"from"`
			Live    struct {
				Waiting      int            `json:"waiting"`
				Agents       map[string]int `json:"agents"`
				FreeCapacity int            `json:"free_capacity"`
			} `json:"live"`
			Period      period `json:"period"`
			Workstreams []struct {
				WorkstreamID string `json:"workstream_id"`
				Period       period `json:"period"`
			} `json:"workstreams"`
		} `json:"data"`
	}
	var m metrics
	path := "/api/v1/metrics/queues?" + url.Values{"from": {from}, "queue_id": {q.ID}}.Encode()
	deadline = time.Now().Add(30 * time.Second)
	for {
		e.MustDo(http.StatusOK, http.MethodGet, path, nil, &m)
		if len(m.Data) == 1 && m.Data[0].Period.AverageHandleTimeSeconds != nil && m.Data[0].Period.AverageFirstResponseSeconds != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics = %+v: no handle or first-response time within 30 s", m)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := m.Data[0]
	p := r.Period
	if p.Offered != 1 || p.Offers != 1 || p.Answered != 1 || p.Abandoned != 0 || r.Live.Waiting != 0 {
		t.Errorf("metrics = %+v, want offered 1, one offer, answered 1, none abandoned or waiting", r)
	}
	if p.ServiceLevel == nil || *p.ServiceLevel != 1 || p.AverageSpeedOfAnswerSeconds == nil {
		t.Fatalf("service level %v, ASA %v: want 1 (answered within 2m) and a speed of answer", p.ServiceLevel, p.AverageSpeedOfAnswerSeconds)
	}
	t.Logf("metrics: ASA %vs, first response %vs, handle time %vs", *p.AverageSpeedOfAnswerSeconds, *p.AverageFirstResponseSeconds, *p.AverageHandleTimeSeconds)
	if *p.AverageFirstResponseSeconds <= 0 || *p.AverageHandleTimeSeconds <= 0 || *p.AverageHandleTimeSeconds < *p.AverageFirstResponseSeconds {
		t.Errorf("first response %vs, handle time %vs: want both > 0, handle time the longer", *p.AverageFirstResponseSeconds, *p.AverageHandleTimeSeconds)
	}
	if len(r.Workstreams) != 1 || r.Workstreams[0].WorkstreamID != ws.ID || r.Workstreams[0].Period.Answered != 1 {
		t.Errorf("by workstream = %+v, want Acme's answered 1", r.Workstreams)
	}
	// In wrap-up the agent still holds the conversation's unit.
	if r.Live.Agents["busy"] != 1 {
		t.Errorf("agents by presence = %v, want Ada busy (wrap-up hold)", r.Live.Agents)
	}

	// Default period: today (UTC for a queue without a time zone).
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/metrics/queues", nil, &m)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if len(m.Data) != 1 || !(m.Data[0].From.Equal(today) || m.Data[0].From.Equal(today.Add(-24*time.Hour))) {
		t.Errorf("default period from = %+v, want midnight UTC today", m.Data)
	}

	st, raw = e.DoWithKey(agent.Key, http.MethodGet, "/api/v1/metrics/queues", nil)
	wantError(t, "metrics with an agent's key", st, raw, http.StatusForbidden, "")
	st, raw = e.Do(http.MethodGet, "/api/v1/metrics/queues?from=yesterday", nil)
	wantError(t, "metrics from yesterday", st, raw, http.StatusBadRequest, "from")
	st, raw = e.Do(http.MethodGet, "/api/v1/metrics/queues?queue_id=nope", nil)
	wantError(t, "metrics of a missing queue", st, raw, http.StatusNotFound, "")
}
