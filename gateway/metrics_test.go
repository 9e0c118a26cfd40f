package gateway_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"parley/testenv"
)

// metricValue is the value of the series whose line starts with series in a
// Prometheus text exposition (-1: absent).
func metricValue(body, series string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}

// TestMetricsOverHTTP posts webhooks over real HTTP and reads GET /metrics
// from its own listener: the gateway's counters, the store's gauges and the
// Temporal SDK's own metrics are there.
func TestMetricsOverHTTP(t *testing.T) {
	e := testenv.Start(t, testenv.Options{Metrics: true})
	if e.MetricsURL == "" {
		t.Fatal("no metrics URL")
	}
	if strings.HasPrefix(e.MetricsURL, e.URL) {
		t.Fatalf("metrics %s are on the API's address %s", e.MetricsURL, e.URL)
	}
	// Not on the API's listener.
	if status, _ := get(t, e.URL+"/metrics"); status == http.StatusOK {
		t.Errorf("GET /metrics on the API's address: 200, want it served only on PARLEY_METRICS_ADDR")
	}
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme Support", token)

	now := time.Now().UnixMilli()
	msg := envelope(pageID, event{"psid-m1", "m_m1", "hello", now})
	if status, body := post(t, page.CallbackURL, msg, sign(msg, appSecret)); status != http.StatusOK {
		t.Fatalf("signed webhook: %d %s", status, body)
	}
	forged := envelope(pageID, event{"psid-m2", "m_m2", "forged", now + 1})
	if status, _ := post(t, page.CallbackURL, forged, sign(forged, "not-the-secret")); status != http.StatusUnauthorized {
		t.Fatalf("forged webhook: %d, want 401", status)
	}
	if status, _ := post(t, page.CallbackURL, forged, ""); status != http.StatusUnauthorized {
		t.Fatalf("unsigned webhook: %d, want 401", status)
	}
	unknown := strings.TrimSuffix(page.CallbackURL, "/"+lastSegment(page.CallbackURL)) + "/no-such-key"
	if status, _ := post(t, unknown, msg, sign(msg, appSecret)); status != http.StatusNotFound {
		t.Fatalf("unknown callback key: %d, want 404", status)
	}

	want := map[string]float64{
		`parley_webhooks_total{outcome="accepted",reason="delivered"}`:        1,
		`parley_webhooks_total{outcome="refused",reason="bad_signature"}`:     2,
		`parley_webhooks_total{outcome="refused",reason="unknown_page"}`:      1,
		`parley_webhooks_total{outcome="refused",reason="malformed_webhook"}`: 0,
		`parley_webhook_ack_seconds_count{outcome="accepted"}`:                1,
		`parley_webhook_ack_seconds_count{outcome="refused"}`:                 3,
		`parley_pages{provisioning_state="awaiting_verification"}`:            1,
		`parley_pages{provisioning_state="running"}`:                          0,
		`parley_store_scrape_success`:                                         1,
	}
	sdk := regexp.MustCompile(`(?m)^temporal_request_total\{[^}]*operation="SignalWithStartWorkflowExecution"[^}]*\} [1-9]`)
	worker := regexp.MustCompile(`(?m)^temporal_workflow_task_execution_latency_seconds_count\{[^}]*workflow_type="Conversation[^"]*"[^}]*\} [1-9]`)
	eventually(t, "GET /metrics shows the webhooks and the Temporal SDK's metrics", func() (bool, string) {
		status, body := get(t, e.MetricsURL)
		if status != http.StatusOK {
			return false, fmt.Sprintf("GET /metrics: %d %s", status, body)
		}
		for series, v := range want {
			if got := metricValue(body, series); got != v {
				return false, fmt.Sprintf("%s = %v, want %v", series, got, v)
			}
		}
		if !sdk.MatchString(body) {
			return false, "no temporal_request_total for SignalWithStartWorkflowExecution (the SDK's client metrics)"
		}
		if !worker.MatchString(body) {
			return false, "no temporal_workflow_task_execution_latency_seconds for the conversation (the SDK's worker metrics)"
		}
		for _, bounded := range []string{"psid-m1", "m_m1", pageID} {
			if strings.Contains(body, bounded) {
				return false, "a label carries " + bounded + ": unbounded cardinality"
			}
		}
		return true, ""
	})
	if status, _ := get(t, strings.TrimSuffix(e.MetricsURL, "/metrics")+"/api/v1/pages"); status != http.StatusNotFound {
		t.Errorf("the metrics listener serves the API: %d, want 404", status)
	}

	// Temporal down: the 503 is counted as such.
	e.StopTemporal()
	outage := envelope(pageID, event{"psid-m3", "m_m3", "anyone?", now + 2})
	if status, body := post(t, page.CallbackURL, outage, sign(outage, appSecret)); status != http.StatusServiceUnavailable {
		t.Fatalf("with Temporal stopped: %d %s, want 503", status, body)
	}
	status, body := get(t, e.MetricsURL)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics with Temporal stopped: %d", status)
	}
	if got := metricValue(body, `parley_webhooks_total{outcome="refused",reason="temporal_unavailable"}`); got != 1 {
		t.Errorf("refused/temporal_unavailable = %v, want 1", got)
	}
	if got := metricValue(body, `parley_webhooks_total{outcome="accepted",reason="delivered"}`); got != 1 {
		t.Errorf("accepted/delivered = %v after the outage, want still 1", got)
	}
}

func lastSegment(u string) string { return u[strings.LastIndex(u, "/")+1:] }
