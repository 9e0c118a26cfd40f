// Package bench measures Parley against a real Temporal dev server.
//
// BenchmarkGateway compares, in one run on one server, the rate of
// SignalWithStart from a plain Temporal client with the rate at which the
// gateway acknowledges signed webhooks over HTTP (each one message from a
// new customer), and reports acknowledgement latency percentiles. The worker
// is left out of both so that they measure the same thing: durable acceptance.
// BenchmarkAckLatency measures acknowledgement latency at half the maximum
// rate with the worker running; BenchmarkMessageToOffer, the time from a
// customer's message to an agent's offer. `make bench` runs all three and
// prints each figure on a line of its own, next to its target.
package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"parley/messenger"
	"parley/testenv"
	"parley/workflows"
)

const (
	concurrency = 16
	// rounds of BenchmarkGateway (b.N operations of each kind per round).
	rounds    = 4
	appID     = "100000000000777"
	appSecret = "bench-app-secret-0123456789abcdef"
	pageID    = "200000000000777"
	token     = "EAAbench-token-0123456789abcdefghij"
)

type result struct {
	perSecond float64
	latencies []time.Duration
	elapsed   time.Duration
}

// add sums the runs of several rounds.
func (r *result) add(o result) {
	r.latencies = append(r.latencies, o.latencies...)
	r.elapsed += o.elapsed
	r.perSecond = float64(len(r.latencies)) / r.elapsed.Seconds()
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
	return result{perSecond: float64(b.N) / elapsed.Seconds(), latencies: lat, elapsed: elapsed}
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
// as `make dev` does; PARLEY_BENCH_TEMPORAL=memory (as `make bench` runs
// it) in memory. PARLEY_BENCH_KEYS=existing leaves the creation of the
// customers' data keys out of both figures (keysMode).
func BenchmarkGateway(b *testing.B) {
	e := testenv.Start(b, testenv.Options{NoWorker: true, SignalTimeout: 30 * time.Second, TemporalInMemory: os.Getenv("PARLEY_BENCH_TEMPORAL") == "memory"})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Bench Page", token)
	e.ConnectWebhook(appID, page)
	tc := e.Temporal()
	ctx := context.Background()
	var raw, gw result
	round := 0

	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	// Rounds alternate the two, b.N each, so that a change of the
	// machine's load (other processes on a shared machine) weighs on both.
	for range rounds {
		b.Run("raw-SignalWithStart", func(b *testing.B) {
			round++
			psids := warm(b, e, func(i int) string { return fmt.Sprintf("raw-%d-%d", round, i) })
			r := run(b, func(i int) error {
				psid := psids[i]
				id := workflows.ConversationWorkflowID(pageID, psid)
				_, err := tc.SignalWithStartWorkflow(ctx, id, workflows.SignalMessengerEvents,
					workflows.MessengerEventsSignal{Events: []messenger.Event{{Kind: messenger.KindMessage, PageID: pageID, PSID: psid, MID: "m_" + psid, Text: "hello", Timestamp: time.Now().UnixMilli()}}},
					rawOptions(id, psid),
					workflows.ConversationWorkflowName, workflows.ConversationInput{FacebookPageID: pageID, PSID: psid})
				return err
			})
			report(b, r, "signals")
			if b.N > 1 { // not the single op the framework runs first
				raw.add(r)
			}
		})

		b.Run("gateway-webhook", func(b *testing.B) {
			round++
			psids := warm(b, e, func(i int) string { return fmt.Sprintf("gw-%d-%d", round, i) })
			r := run(b, func(i int) error { return postWebhook(httpc, page.CallbackURL, psids[i]) })
			report(b, r, "webhooks")
			if b.N > 1 {
				gw.add(r)
			}
		})
	}

	if raw.perSecond > 0 && gw.perSecond > 0 {
		ratio := gw.perSecond / raw.perSecond
		verdict := "met"
		if ratio < targetRatio {
			verdict = "NOT met"
		}
		fmt.Printf("\nraw SignalWithStart: %.0f/s (p50 %v, p99 %v)\ngateway webhooks:    %.0f/s (p50 %v, p99 %v)\nratio gateway/raw:   %.2f (target >= %.1f: %s; %d new customers each in %d alternating rounds, %s keys, %s raw options, Temporal %s)\n\n",
			raw.perSecond, percentile(raw.latencies, 0.5).Round(100*time.Microsecond), percentile(raw.latencies, 0.99).Round(100*time.Microsecond),
			gw.perSecond, percentile(gw.latencies, 0.5).Round(100*time.Microsecond), percentile(gw.latencies, 0.99).Round(100*time.Microsecond),
			ratio, targetRatio, verdict, len(raw.latencies), rounds, keysMode(), rawMode(), temporalMode())
	}
}

func temporalMode() string {
	if os.Getenv("PARLEY_BENCH_TEMPORAL") == "memory" {
		return "in memory"
	}
	return "on its SQLite file"
}

// keysMode is PARLEY_BENCH_KEYS: "new" (default), each customer's data
// key is created by its first message (payloadcodec: a read, an insert and
// a read, on the acknowledgement path); "existing", the keys are created
// and cached before the timer starts, which leaves their cost out of both
// figures (to measure it).
func keysMode() string {
	if os.Getenv("PARLEY_BENCH_KEYS") == "existing" {
		return "existing"
	}
	return "new"
}

// warm returns the b.N customers of a run and, with PARLEY_BENCH_KEYS=existing,
// creates and caches their data keys.
func warm(b *testing.B, e *testenv.Env, psid func(i int) string) []string {
	psids := make([]string, b.N)
	for i := range psids {
		psids[i] = psid(i)
	}
	if keysMode() != "existing" {
		return psids
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(psids) {
					return
				}
				c := e.App.Codec.WithSerializationContext(converter.WorkflowSerializationContext{WorkflowID: workflows.ConversationWorkflowID(pageID, psids[i])})
				if _, err := c.Encode([]*commonpb.Payload{{Data: []byte("warm")}}); err != nil {
					failed.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatalf("create the customers' keys: %v", err)
	}
	return psids
}

// rawOptions are the raw SignalWithStart's options: bare, or with
// PARLEY_BENCH_RAW=gateway the gateway's own (its summary, which costs
// Temporal more), to tell the gateway's overhead from Temporal's.
func rawOptions(id, psid string) client.StartWorkflowOptions {
	o := client.StartWorkflowOptions{ID: id, TaskQueue: "parley-bench-raw", WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}
	if os.Getenv("PARLEY_BENCH_RAW") == "gateway" {
		o.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
		o.StaticSummary = workflows.ConversationSummary("Bench Page", pageID, psid)
	}
	return o
}

func rawMode() string {
	if os.Getenv("PARLEY_BENCH_RAW") == "gateway" {
		return "the gateway's"
	}
	return "bare"
}
