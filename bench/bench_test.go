// Package bench measures Parley against a real Temporal dev server.
//
// BenchmarkGateway compares, in one run on one server, the rate of
// SignalWithStart from a plain Temporal client with the rate at which the
// gateway acknowledges signed webhooks over HTTP (each one message from a
// new customer), and reports acknowledgement latency percentiles. The worker
// is left out of both so that they measure the same thing: durable acceptance.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"parley/fakemeta"
	"parley/messenger"
	"parley/testenv"
	"parley/workflows"
)

const (
	concurrency = 16
	appID       = "100000000000777"
	appSecret   = "bench-app-secret-0123456789abcdef"
	pageID      = "200000000000777"
	token       = "EAAbench-token-0123456789abcdefghij"
)

type result struct {
	perSecond float64
	latencies []time.Duration
}

// run calls op b.N times from `concurrency` goroutines and measures it.
func run(b *testing.B, op func(i int) error) result {
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr error
	var once sync.Once
	b.ResetTimer()
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if firstErr != nil {
		b.Fatalf("%d of %d operations failed; first: %v", failed.Load(), b.N, firstErr)
	}
	return result{perSecond: float64(b.N) / elapsed.Seconds(), latencies: lat}
}

func percentile(l []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

func report(b *testing.B, r result, unit string) {
	b.ReportMetric(r.perSecond, unit+"/s")
	b.ReportMetric(float64(percentile(r.latencies, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(r.latencies, 0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkGateway runs against a dev server persisting to its SQLite file,
// as `make dev` does; PARLEY_BENCH_TEMPORAL=memory runs it in memory.
func BenchmarkGateway(b *testing.B) {
	e := testenv.Start(b, testenv.Options{NoWorker: true, SignalTimeout: 30 * time.Second, TemporalInMemory: os.Getenv("PARLEY_BENCH_TEMPORAL") == "memory"})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Bench Page", token)
	e.ConnectWebhook(appID, page)
	tc := e.Temporal()
	ctx := context.Background()
	var raw, gw result
	round := 0

	b.Run("raw-SignalWithStart", func(b *testing.B) {
		round++
		raw = run(b, func(i int) error {
			psid := fmt.Sprintf("raw-%d-%d", round, i)
			id := workflows.ConversationWorkflowID(pageID, psid)
			_, err := tc.SignalWithStartWorkflow(ctx, id, workflows.SignalMessengerEvents,
				workflows.MessengerEventsSignal{Events: []messenger.Event{{Kind: messenger.KindMessage, PageID: pageID, PSID: psid, MID: "m_" + psid, Text: "hello", Timestamp: time.Now().UnixMilli()}}},
				client.StartWorkflowOptions{ID: id, TaskQueue: "parley-bench-raw", WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING},
				workflows.ConversationWorkflowName, workflows.ConversationInput{FacebookPageID: pageID, PSID: psid})
			return err
		})
		report(b, raw, "signals")
	})

	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	b.Run("gateway-webhook", func(b *testing.B) {
		round++
		gw = run(b, func(i int) error {
			psid := fmt.Sprintf("gw-%d-%d", round, i)
			now := time.Now().UnixMilli()
			body, err := fakemeta.BuildEnvelope(fakemeta.Entry{PageID: pageID, Time: now, Messaging: []json.RawMessage{
				[]byte(fmt.Sprintf(`{"sender":{"id":"%s"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"m_%s","text":"hello"}}`, psid, pageID, now, psid)),
			}})
			if err != nil {
				return err
			}
			sig, _ := fakemeta.Sign(body, appSecret)
			req, err := http.NewRequest(http.MethodPost, page.CallbackURL, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Hub-Signature-256", sig)
			resp, err := httpc.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("gateway answered %d", resp.StatusCode)
			}
			return nil
		})
		report(b, gw, "webhooks")
	})

	if raw.perSecond > 0 && gw.perSecond > 0 {
		fmt.Printf("\nraw SignalWithStart: %.0f/s (p50 %v, p99 %v)\ngateway webhooks:    %.0f/s (p50 %v, p99 %v)\nratio gateway/raw:   %.2f\n\n",
			raw.perSecond, percentile(raw.latencies, 0.5), percentile(raw.latencies, 0.99),
			gw.perSecond, percentile(gw.latencies, 0.5), percentile(gw.latencies, 0.99), gw.perSecond/raw.perSecond)
	}
}
