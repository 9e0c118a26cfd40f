package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The figures BenchmarkOpenConversations prints from two scrapes of the
// worker's page (shaped as the SDK's tally bridge writes it): a request's
// quantiles over one operation, a histogram's mean, a counter's growth and
// a gauge's largest value, each over several label sets.
func TestOpenScrapeReadsTheWorkersFigures(t *testing.T) {
	page := func(history [4]int, historySum float64, misses int) string {
		return fmt.Sprintf(`# HELP temporal_sticky_cache_miss_total temporal_sticky_cache_miss_total counter
# TYPE temporal_sticky_cache_miss_total counter
temporal_sticky_cache_miss_total{namespace="default",workflow_type="Conversation"} %d
temporal_sticky_cache_miss_total{namespace="default",workflow_type="Distributor"} 3
# TYPE temporal_sticky_cache_size gauge
temporal_sticky_cache_size{namespace="default",workflow_type="Conversation"} 1999
temporal_sticky_cache_size{namespace="default",workflow_type="Distributor"} 1999
# TYPE temporal_request_latency_seconds histogram
temporal_request_latency_seconds_bucket{operation="GetWorkflowExecutionHistory",le="0.005"} %d
temporal_request_latency_seconds_bucket{operation="GetWorkflowExecutionHistory",le="0.01"} %d
temporal_request_latency_seconds_bucket{operation="GetWorkflowExecutionHistory",le="0.05"} %d
temporal_request_latency_seconds_bucket{operation="GetWorkflowExecutionHistory",le="+Inf"} %d
temporal_request_latency_seconds_sum{operation="GetWorkflowExecutionHistory"} %g
temporal_request_latency_seconds_count{operation="GetWorkflowExecutionHistory"} %d
temporal_request_latency_seconds_bucket{operation="RespondWorkflowTaskCompleted",le="0.005"} 0
temporal_request_latency_seconds_bucket{operation="RespondWorkflowTaskCompleted",le="0.01"} 0
temporal_request_latency_seconds_bucket{operation="RespondWorkflowTaskCompleted",le="0.05"} 0
temporal_request_latency_seconds_bucket{operation="RespondWorkflowTaskCompleted",le="+Inf"} 5000
temporal_request_latency_seconds_sum{operation="RespondWorkflowTaskCompleted"} 500
temporal_request_latency_seconds_count{operation="RespondWorkflowTaskCompleted"} 5000
`, misses, history[0], history[1], history[2], history[3], historySum, history[3])
	}
	pages := []string{
		page([4]int{10, 10, 10, 10}, 0.05, 40),
		// 200 more: 76 within 5 ms, 93 more within 10 ms, 30 more within
		// 50 ms, one slower; 1.5 s in all.
		page([4]int{86, 179, 209, 210}, 1.55, 240),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, pages[0])
		pages = pages[1:]
	}))
	defer srv.Close()
	before, err := openScrape(srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	after, err := openScrape(srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}

	if got, want := openOperationQuantiles(before, after, "temporal_request_latency_seconds", "GetWorkflowExecutionHistory"),
		"p50 <= 10ms, p99 <= 50ms (200 tasks)"; got != want {
		t.Errorf("history page: %q, want %q", got, want)
	}
	if got, want := openOperationQuantiles(before, after, "temporal_request_latency_seconds", "RespondWorkflowTaskCompleted"), "-"; got != want {
		t.Errorf("task completed (none between the scrapes): %q, want %q", got, want)
	}
	// 1.5 s over 200 requests.
	if got, want := openMean(before, after, "temporal_request_latency_seconds"), 7500*time.Microsecond; got != want {
		t.Errorf("mean request: %v, want %v", got, want)
	}
	if got, want := openCounterDelta(before, after, "temporal_sticky_cache_miss_total"), 200.0; got != want {
		t.Errorf("cache misses: %v, want %v", got, want)
	}
	if _, got := after.value("temporal_sticky_cache_size"); got != 1999 {
		t.Errorf("cached workflows: %v, want the largest workflow type's, 1999", got)
	}
}
