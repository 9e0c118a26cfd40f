package bench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"parley/config"
	"parley/fakemeta"
	"parley/testenv"
	"parley/workflows"
)

// Targets of the open conversations issue, printed next to the figures.
const (
	targetOpenRSS     = 1 << 30 // resident memory of the worker, 100,000 open
	targetEvictedP99  = 100 * time.Millisecond
	openPerPost       = 50  // new customers per webhook POST
	openSenders       = 4   // POSTs under way at once
	openInFlight      = 500 // customers sent that the worker has not opened yet, at most
	evictedProbes     = 200 // messages to evicted conversations, per checkpoint
	openProbePoll     = 2 * time.Millisecond
	openStallAfter    = 3 * time.Minute // no conversation opened for that long: fail
	openSettleMaxWait = 2 * time.Minute
	// The Go runtime collects at least every 2 minutes.
	openGCWait = 130 * time.Second
)

// BenchmarkOpenConversations opens many conversations (new customers, one
// message each) on one worker, a separate `parley worker` process so that
// its resident memory is its own, and reports that memory at two
// checkpoints: 10,000 and PARLEY_BENCH_OPEN (default 100,000) open
// conversations (min(10,000, half of it) when it is smaller, e.g.
// PARLEY_BENCH_OPEN=3000 for a quick check). At each checkpoint it also
// times messages to conversations evicted from the worker's cache (the
// first customers, opened long before the last PARLEY_WORKFLOW_CACHE_SIZE
// ones): from the webhook's POST until the message is in the database,
// which includes the worker's replay of the conversation's history.
//
// `make bench` runs it with the dev server on its SQLite file, as `make
// dev` does (PARLEY_BENCH_TEMPORAL=memory: in memory). In memory, the
// server's SQLite page cache is the whole database: its memory grows with
// every conversation (1 GB at 10,000, 6.4 GB at 100,000), and so does the
// work of its commits up to 1 GiB (README, "What is left").
//
// Customers are sent as fast as the worker opens them (at most
// openInFlight ahead of it), so the run takes about N divided by the
// worker's opening rate, plus up to 3 minutes per checkpoint (the worker
// settles, the probes, its next GC): on the shared 2-core VM (16 to 31
// opened a second), 3,000 with a cache of 500 took 3 to 6 minutes, and
// 100,000 should take 1 to 2 hours. Run it with -benchtime 1x: b.N is not
// used.
func BenchmarkOpenConversations(b *testing.B) {
	total := 100000
	if v := os.Getenv("PARLEY_BENCH_OPEN"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			b.Fatalf("PARLEY_BENCH_OPEN=%q: want a whole number of conversations, at least 100", v)
		}
		total = n
	}
	first := min(10000, total/2)
	cacheSize := config.DefaultWorkflowCacheSize
	vars := map[string]string{}
	if v := os.Getenv("PARLEY_WORKFLOW_CACHE_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("PARLEY_WORKFLOW_CACHE_SIZE=%q: want a positive whole number", v)
		}
		cacheSize = n
		vars["PARLEY_WORKFLOW_CACHE_SIZE"] = v
	}
	// The probes of each checkpoint are customers of their own among the
	// first ones: evicted only if the cache's most recent ones come after.
	if 2*evictedProbes+cacheSize > first {
		b.Fatalf("%d open conversations at the first checkpoint leave fewer than %d evicted from a cache of %d: raise PARLEY_BENCH_OPEN or lower PARLEY_WORKFLOW_CACHE_SIZE",
			first, 2*evictedProbes, cacheSize)
	}
	began := time.Now()

	bin, err := testenv.BuildParley(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	dbPath := filepath.Join(b.TempDir(), "parley.db")
	e := testenv.Start(b, testenv.Options{NoWorker: true, SignalTimeout: 30 * time.Second, DatabaseURL: "sqlite:" + dbPath,
		TemporalInMemory: os.Getenv("PARLEY_BENCH_TEMPORAL") == "memory", Config: vars})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Bench Page", token)
	e.ConnectWebhook(appID, page)

	// The bench reads the database on connections of its own (read only):
	// the in-process store's single writer connection serves the gateway.
	db, err := sql.Open("sqlite", dbPath+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Errorf("close the database: %v", err)
		}
	})
	db.SetMaxOpenConns(2)

	metricsAddr, err := openFreeAddr()
	if err != nil {
		b.Fatal(err)
	}
	w := startOpenWorker(b, bin, append(append(os.Environ(), e.ProcessEnv()...),
		"TEMPORAL_CONFIG_FILE="+filepath.Join(b.TempDir(), "none.toml"),
		"PARLEY_METRICS_ADDR="+metricsAddr,
		// Each GC's line gives the live heap, which RSS and the heap in
		// use (garbage included) do not tell apart.
		"GODEBUG=gctrace=1"))
	metricsURL := "http://" + metricsAddr + "/metrics"

	httpc := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
	ctx := context.Background()
	o := &opener{httpc: httpc, url: page.CallbackURL, db: db, worker: w, tc: e.Temporal()}

	type checkpoint struct {
		open            int
		rss, peak, heap int64 // bytes
		live            int64 // bytes, after the worker's next GC (-1: none seen)
		opened          time.Duration
		rate            float64
		probes          openProbes
	}
	var cps []checkpoint
	b.ResetTimer()
	start := time.Now()
	for k, target := range []int{first, total} {
		t0, from := time.Now(), o.sent.Load()
		if err := o.openUpTo(ctx, target); err != nil {
			b.Fatalf("open %d conversations: %v\nworker output (end):\n%s", target, err, w.tail())
		}
		took := time.Since(t0)
		rate := float64(int64(target)-from) / took.Seconds()
		// The figures of a worker at rest: the conversations' first
		// activities and timers are done.
		if err := w.settle(openSettleMaxWait); err != nil {
			b.Fatal(err)
		}
		cp := checkpoint{open: target, opened: took, rate: rate}
		if cp.rss, cp.peak, err = w.memory(); err != nil {
			b.Fatal(err)
		}
		m, err := openScrape(httpc, metricsURL)
		if err != nil {
			b.Fatalf("worker metrics: %v", err)
		}
		_, heap := m.value("go_memstats_heap_inuse_bytes")
		cp.heap = int64(heap)
		_, cached := m.value("temporal_sticky_cache_size")
		if cp.probes, err = o.probeEvicted(ctx, k, httpc, metricsURL); err != nil {
			b.Fatalf("messages to evicted conversations at %d open: %v\nworker output (end):\n%s", target, err, w.tail())
		}
		if cp.live, err = w.liveHeapAfterNextGC(openGCWait); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("%d open conversations after %v (%.0f opened/s): worker RSS %d MB (peak %d MB, Go heap in use %d MB, live %s, %v cached workflows; Temporal dev server %s); "+
			"message to an evicted conversation: p50 %v, p99 %v (acknowledged p50 %v, p99 %v; %v sticky cache misses for %d messages; "+
			"workflow tasks meanwhile: mean schedule-to-start %v, replay %v)\n",
			target, time.Since(start).Round(time.Second), rate, openMB(cp.rss), openMB(cp.peak), openMB(cp.heap), openLiveMB(cp.live), cached, openTemporalRSS(),
			cp.probes.p50, cp.probes.p99, cp.probes.ackP50, cp.probes.ackP99, cp.probes.misses, evictedProbes,
			cp.probes.scheduleToStart, cp.probes.replay)
		fmt.Printf("  by history: %s\n", cp.probes.stages)
		fmt.Printf("  the worker's workflow tasks (SDK): execution %s; replay %s\n  its requests (SDK): %s\n", cp.probes.execution, cp.probes.replayQ, cp.probes.requests)
		cps = append(cps, cp)
	}
	b.StopTimer()

	last := cps[len(cps)-1]
	b.ReportMetric(float64(openMB(last.rss)), "rss-MB")
	b.ReportMetric(float64(openMB(last.peak)), "peak-rss-MB")
	b.ReportMetric(float64(last.probes.p99.Microseconds())/1000, "evicted-p99-ms")
	b.ReportMetric(last.rate, "opened/s")
	memVerdict, latVerdict := "met", "met"
	if last.rss >= targetOpenRSS {
		memVerdict = "NOT met"
	}
	var mem, lat []string
	for _, cp := range cps {
		mem = append(mem, fmt.Sprintf("%d: RSS %d MB (peak %d MB)", cp.open, openMB(cp.rss), openMB(cp.peak)))
		lat = append(lat, fmt.Sprintf("at %d open p50 %v, p99 %v", cp.open, cp.probes.p50, cp.probes.p99))
		if cp.probes.p99 >= targetEvictedP99 {
			latVerdict = "NOT met"
		}
	}
	fmt.Printf("\nopen conversations on one worker (workflow cache %d): %s (target < 1 GB at %d: %s)\n", cacheSize, strings.Join(mem, "; "), last.open, memVerdict)
	if len(cps) == 2 && cps[1].open > cps[0].open {
		// What each open conversation beyond the cache costs the worker:
		// with it, the memory at another count.
		per := func(at1, at2 int64) string {
			if at1 < 0 || at2 < 0 {
				return "?"
			}
			return fmt.Sprintf("%.1f KB", float64(at2-at1)/1024/float64(cps[1].open-cps[0].open))
		}
		fmt.Printf("worker memory per conversation opened between the checkpoints: RSS %s, live Go heap %s\n",
			per(cps[0].rss, cps[1].rss), per(cps[0].live, cps[1].live))
	}
	fmt.Printf("message to an evicted conversation recorded (%d each, one at a time): %s (target p99 < %v: %s)\n",
		evictedProbes, strings.Join(lat, "; "), targetEvictedP99, latVerdict)
	fmt.Printf("(%d conversations opened, %d per webhook, in %v; %d webhooks answered other than 200 and sent again; the whole benchmark took %v)\n\n",
		total, openPerPost, time.Since(start).Round(time.Second), o.retried.Load(), time.Since(began).Round(time.Second))
}

func openMB(n int64) int64 { return n / (1 << 20) }

func openLiveMB(n int64) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprintf("%d MB", openMB(n))
}

func openPSID(i int) string { return fmt.Sprintf("open-%07d", i) }

// opener sends new customers through the gateway and follows the worker.
type opener struct {
	httpc  *http.Client
	url    string
	db     *sql.DB
	worker *openWorker
	// tc reads the probes' histories (openStages).
	tc   client.Client
	sent atomic.Int64 // customers 0..sent-1 were acknowledged
	// retried counts the POSTs answered other than 200 and sent again.
	retried atomic.Int64
}

// openUpTo sends customers up to target (at most openInFlight ahead of
// the worker) and waits until the worker has opened all of them.
func (o *opener) openUpTo(ctx context.Context, target int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var opened atomic.Int64
	count := func() error {
		var n int64
		if err := o.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM conversations`).Scan(&n); err != nil {
			return fmt.Errorf("count conversations: %w", err)
		}
		opened.Store(n)
		return nil
	}
	if err := count(); err != nil {
		return err
	}
	next := o.sent.Load()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed atomic.Pointer[error] // the first sender's error
	for range openSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				from := next
				if from >= int64(target) {
					mu.Unlock()
					return
				}
				if from-opened.Load() >= openInFlight {
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
					continue
				}
				to := min(from+openPerPost, int64(target))
				next = to
				mu.Unlock()
				msgs := make([]openMessage, 0, to-from)
				for i := from; i < to; i++ {
					psid := openPSID(int(i))
					msgs = append(msgs, openMessage{psid: psid, mid: "m_" + psid, text: "hello"})
				}
				if err := o.post(ctx, msgs); err != nil {
					failed.CompareAndSwap(nil, &err)
					cancel()
					return
				}
			}
		}()
	}
	// The worker's progress, for the senders and for the stall check.
	last, lastAt := opened.Load(), time.Now()
	var err error
	for {
		if err = count(); err != nil {
			break
		}
		n := opened.Load()
		if n >= int64(target) {
			break
		}
		if n > last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > openStallAfter {
			err = fmt.Errorf("the worker has opened %d of %d conversations, none for %v", n, target, openStallAfter)
			break
		}
		if !o.worker.running() {
			err = errors.New("the worker process exited")
			break
		}
		if f := failed.Load(); f != nil {
			err = *f
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if err != nil {
		return err
	}
	if f := failed.Load(); f != nil {
		return *f
	}
	o.sent.Store(int64(target))
	return nil
}

type openMessage struct{ psid, mid, text string }

// post sends msgs in one signed webhook, again while the gateway answers
// other than 200 (as Meta retries; its deduplication keeps one of each).
func (o *opener) post(ctx context.Context, msgs []openMessage) error {
	now := time.Now().UnixMilli()
	items := make([]json.RawMessage, 0, len(msgs))
	for _, m := range msgs {
		item, err := json.Marshal(map[string]any{
			"sender": map[string]string{"id": m.psid}, "recipient": map[string]string{"id": pageID}, "timestamp": now,
			"message": map[string]string{"mid": m.mid, "text": m.text},
		})
		if err != nil {
			return fmt.Errorf("encode a message: %w", err)
		}
		items = append(items, item)
	}
	body, err := fakemeta.BuildEnvelope(fakemeta.Entry{PageID: pageID, Time: now, Messaging: items})
	if err != nil {
		return fmt.Errorf("build the webhook: %w", err)
	}
	sig, _ := fakemeta.Sign(body, appSecret)
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("webhook request: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := o.httpc.Do(req)
		if err != nil {
			return fmt.Errorf("post the webhook: %w", err)
		}
		// Read to the end, so that the connection is reused.
		_, rerr := io.Copy(io.Discard, resp.Body)
		if err := errors.Join(rerr, resp.Body.Close()); err != nil {
			return fmt.Errorf("webhook answer: %w", err)
		}
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		if attempt == 5 {
			return fmt.Errorf("gateway answered %d, %d times", resp.StatusCode, attempt)
		}
		o.retried.Add(1)
		time.Sleep(time.Duration(attempt) * time.Second)
	}
}

type openProbes struct {
	p50, p99, ackP50, ackP99 time.Duration
	// misses are the worker's sticky cache misses meanwhile: a task with
	// a partial history for a workflow no longer cached (a task the server
	// sends to the normal queue, with the whole history, is replayed too
	// but not counted).
	misses float64
	// The means of the worker's workflow tasks meanwhile (the probes'):
	// waiting in the queue, replaying. (Their execution's mean is left
	// out: one task that waits long on a local activity swamps it.)
	scheduleToStart, replay time.Duration
	// stages splits the probes' time by their histories (openStages).
	stages string
	// The worker's own time in the probes' workflow tasks (the SDK's
	// histograms, p50 and p99 by their buckets): processing a task, and
	// the replay part of it. Against the history's workflow task, they
	// tell the worker's part of its tail from the server's.
	execution, replayQ string
	// The worker's requests to Temporal meanwhile (the SDK's histograms).
	requests string
}

// openStages splits each probe's time, from its POST to its message's
// record, by the events of its conversation's history: where the tail is.
func openStages(ctx context.Context, tc client.Client, sentAt map[string]time.Time) (string, error) {
	names := []string{"POST to signal", "signal to task start", "workflow task", "task to record start", "record activity"}
	stages := make([][]time.Duration, len(names))
	var sizes, lengths []int
	for psid, t0 := range sentAt {
		it := tc.GetWorkflowHistory(ctx, workflows.ConversationWorkflowID(pageID, psid), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var events []*historypb.HistoryEvent
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return "", fmt.Errorf("history of %s: %w", psid, err)
			}
			events = append(events, ev)
		}
		size := 0
		for _, ev := range events {
			size += proto.Size(ev)
		}
		sizes, lengths = append(sizes, size), append(lengths, len(events))
		// The probe's signal is the last one; then its task, its record.
		var at [6]time.Time
		for _, ev := range events {
			ts := ev.GetEventTime().AsTime()
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
				at = [6]time.Time{t0, ts}
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
				if !at[1].IsZero() && at[2].IsZero() {
					at[2] = ts
				}
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				if !at[2].IsZero() && at[3].IsZero() {
					at[3] = ts
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				if !at[3].IsZero() && at[4].IsZero() {
					at[4] = ts
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				if !at[4].IsZero() && at[5].IsZero() {
					at[5] = ts
				}
			}
		}
		for i := range names {
			if !at[i].IsZero() && !at[i+1].IsZero() {
				stages[i] = append(stages[i], at[i+1].Sub(at[i]))
			}
		}
	}
	var out []string
	for i, n := range names {
		if len(stages[i]) == 0 {
			out = append(out, n+" -")
			continue
		}
		out = append(out, fmt.Sprintf("%s p50 %v p99 %v", n, percentile(stages[i], 0.5).Round(100*time.Microsecond), percentile(stages[i], 0.99).Round(100*time.Microsecond)))
	}
	sort.Ints(sizes)
	sort.Ints(lengths)
	if len(sizes) > 0 {
		out = append(out, fmt.Sprintf("(a probe's history: median %d events, %.1f KB)", lengths[len(lengths)/2], float64(sizes[len(sizes)/2])/1024))
	}
	return strings.Join(out, "; "), nil
}

// probeEvicted sends, one at a time, a new message from each of the
// customers of checkpoint k's probes (among the first ones: evicted), and
// times each until it is in the database.
func (o *opener) probeEvicted(ctx context.Context, k int, httpc *http.Client, metricsURL string) (openProbes, error) {
	before, err := openScrape(httpc, metricsURL)
	if err != nil {
		return openProbes{}, fmt.Errorf("worker metrics: %w", err)
	}
	lat := make([]time.Duration, 0, evictedProbes)
	ack := make([]time.Duration, 0, evictedProbes)
	sentAt := map[string]time.Time{}
	for i := k * evictedProbes; i < (k+1)*evictedProbes; i++ {
		psid := openPSID(i)
		mid := fmt.Sprintf("m_%s_again_%d", psid, k)
		t0 := time.Now()
		sentAt[psid] = t0
		if err := o.post(ctx, []openMessage{{psid: psid, mid: mid, text: "still there?"}}); err != nil {
			return openProbes{}, err
		}
		ack = append(ack, time.Since(t0))
		// The index on (facebook_page_id, psid, ...) finds the customer's
		// few messages: a poll costs tens of microseconds.
		deadline := t0.Add(30 * time.Second)
		for {
			var n int
			if err := o.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE facebook_page_id = ? AND psid = ? AND mid = ?`,
				pageID, psid, mid).Scan(&n); err != nil {
				return openProbes{}, fmt.Errorf("find message %s: %w", mid, err)
			}
			if n > 0 {
				lat = append(lat, time.Since(t0))
				break
			}
			if time.Now().After(deadline) {
				return openProbes{}, fmt.Errorf("message %s not recorded after 30s", mid)
			}
			time.Sleep(openProbePoll)
		}
	}
	// The SDK's metrics reach /metrics once a second.
	time.Sleep(1500 * time.Millisecond)
	after, err := openScrape(httpc, metricsURL)
	if err != nil {
		return openProbes{}, fmt.Errorf("worker metrics: %w", err)
	}
	r := openProbes{p50: percentile(lat, 0.5).Round(100 * time.Microsecond), p99: percentile(lat, 0.99).Round(100 * time.Microsecond),
		ackP50: percentile(ack, 0.5).Round(100 * time.Microsecond), ackP99: percentile(ack, 0.99).Round(100 * time.Microsecond),
		misses:          openCounterDelta(before, after, "temporal_sticky_cache_miss_total"),
		scheduleToStart: openMean(before, after, "temporal_workflow_task_schedule_to_start_latency_seconds"),
		replay:          openMean(before, after, "temporal_workflow_task_replay_latency_seconds"),
		execution:       openQuantiles(before, after, "temporal_workflow_task_execution_latency_seconds"),
		replayQ:         openQuantiles(before, after, "temporal_workflow_task_replay_latency_seconds"),
		requests: fmt.Sprintf("history page %s; task completed %s; activity completed %s",
			openOperationQuantiles(before, after, "temporal_request_latency_seconds", "GetWorkflowExecutionHistory"),
			openOperationQuantiles(before, after, "temporal_request_latency_seconds", "RespondWorkflowTaskCompleted"),
			openOperationQuantiles(before, after, "temporal_request_latency_seconds", "RespondActivityTaskCompleted"))}
	if r.stages, err = openStages(ctx, o.tc, sentAt); err != nil {
		return openProbes{}, err
	}
	return r, nil
}

// openMetrics are the worker's metric families, as its /metrics page
// gives them.
type openMetrics map[string]*dto.MetricFamily

// value is a counter's or a gauge's values over its label sets: their sum
// (a counter's total) and the largest (a gauge the SDK sets once per
// workflow type, such as the cache's size).
func (m openMetrics) value(name string) (sum, largest float64) {
	for _, x := range m[name].GetMetric() {
		v := x.GetCounter().GetValue() + x.GetGauge().GetValue() + x.GetUntyped().GetValue()
		sum += v
		largest = max(largest, v)
	}
	return sum, largest
}

// openHistogram is a histogram summed over label sets: its count, its sum
// and its cumulative counts by upper bound.
type openHistogram struct {
	count, sum float64
	buckets    map[float64]float64
}

// histogram sums a histogram over its label sets, or over those of one
// operation when it is set (an SDK request's, such as
// RespondWorkflowTaskCompleted).
func (m openMetrics) histogram(name, operation string) openHistogram {
	h := openHistogram{buckets: map[float64]float64{}}
	for _, x := range m[name].GetMetric() {
		if operation != "" && !openHasLabel(x, "operation", operation) {
			continue
		}
		hg := x.GetHistogram()
		h.count += float64(hg.GetSampleCount())
		h.sum += hg.GetSampleSum()
		for _, b := range hg.GetBucket() {
			h.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	return h
}

func openHasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// openCounterDelta is how much a counter grew between two scrapes.
func openCounterDelta(before, after openMetrics, name string) float64 {
	a, _ := after.value(name)
	b, _ := before.value(name)
	return a - b
}

// openMean is the mean of a histogram's observations between two scrapes.
func openMean(before, after openMetrics, histogram string) time.Duration {
	a, b := after.histogram(histogram, ""), before.histogram(histogram, "")
	n := a.count - b.count
	if n <= 0 {
		return 0
	}
	return time.Duration((a.sum - b.sum) / n * float64(time.Second)).Round(100 * time.Microsecond)
}

// openQuantiles gives a histogram's p50 and p99 between two scrapes, as
// the upper bounds of the buckets they fall in.
func openQuantiles(before, after openMetrics, histogram string) string {
	return openOperationQuantiles(before, after, histogram, "")
}

// openOperationQuantiles is openQuantiles of one operation's observations
// (an SDK request's, such as RespondWorkflowTaskCompleted).
func openOperationQuantiles(before, after openMetrics, histogram, operation string) string {
	type bucket struct {
		le float64
		n  float64
	}
	var bs []bucket
	a, b := after.histogram(histogram, operation), before.histogram(histogram, operation)
	for le, n := range a.buckets {
		bs = append(bs, bucket{le: le, n: n - b.buckets[le]})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if len(bs) == 0 || bs[len(bs)-1].n <= 0 {
		return "-"
	}
	total := bs[len(bs)-1].n
	q := func(p float64) string {
		for _, b := range bs {
			if b.n >= p*total {
				if math.IsInf(b.le, 1) {
					return "> largest bucket"
				}
				return "<= " + time.Duration(b.le*float64(time.Second)).String()
			}
		}
		return "?"
	}
	return fmt.Sprintf("p50 %s, p99 %s (%.0f tasks)", q(0.5), q(0.99), total)
}

// openScrape reads the worker's Prometheus page.
func openScrape(httpc *http.Client, url string) (_ openMetrics, err error) {
	resp, err := httpc.Get(url)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer func() { err = errors.Join(err, resp.Body.Close()) }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	return families, nil
}

func openFreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}

// openGCLine is a gctrace line's heap sizes: at the start, at the end, live
// (in MB).
var openGCLine = regexp.MustCompile(`^gc \d+ @.* (\d+)->(\d+)->(\d+) MB`)

// liveHeaps are the live heaps of the worker's GCs so far, in MB.
func (w *openWorker) liveHeaps() ([]int64, error) {
	data, err := os.ReadFile(w.log)
	if err != nil {
		return nil, fmt.Errorf("worker output: %w", err)
	}
	var out []int64
	for _, line := range strings.Split(string(data), "\n") {
		if m := openGCLine.FindStringSubmatch(line); m != nil {
			n, err := strconv.ParseInt(m[3], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("gctrace %q: %w", line, err)
			}
			out = append(out, n)
		}
	}
	return out, nil
}

// liveHeapAfterNextGC waits (at most limit) for the worker's next GC and
// returns the live heap it found, in bytes (-1 when none came).
func (w *openWorker) liveHeapAfterNextGC(limit time.Duration) (int64, error) {
	seen, err := w.liveHeaps()
	if err != nil {
		return 0, err
	}
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		now, err := w.liveHeaps()
		if err != nil {
			return 0, err
		}
		if len(now) > len(seen) {
			return now[len(now)-1] << 20, nil
		}
	}
	return -1, nil
}

// openTemporalRSS is the resident memory of the Temporal dev server (a child
// of this process), to tell whether a larger run fits the machine.
func openTemporalRSS() string {
	pid, err := openTemporalPID()
	if err != nil {
		return err.Error()
	}
	rss, _, err := openMemoryOf(pid)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("RSS %d MB, %s", openMB(rss), temporalMode())
}

// openTemporalPID finds the dev server this process started.
func openTemporalPID() (int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) < 2 || s[open+1:end] != "temporal" || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(dir)); err == nil {
			return pid, nil
		}
	}
	return 0, errors.New("the Temporal dev server's process: not found")
}

// openWorker is a `parley worker` whose output goes to a file.
type openWorker struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startOpenWorker(b *testing.B, bin string, env []string) *openWorker {
	b.Helper()
	w := &openWorker{log: filepath.Join(b.TempDir(), "worker.log"), done: make(chan struct{})}
	out, err := os.Create(w.log)
	if err != nil {
		b.Fatal(err)
	}
	w.cmd = exec.Command(bin, "worker")
	w.cmd.Env = env
	w.cmd.Stdout, w.cmd.Stderr = out, out
	if err := w.cmd.Start(); err != nil {
		b.Fatalf("start parley worker: %v", err)
	}
	go func() {
		if err := w.cmd.Wait(); err != nil {
			fmt.Fprintf(out, "bench: parley worker: %v\n", err)
		}
		close(w.done)
	}()
	// Registered after testenv's: the worker stops before Temporal.
	b.Cleanup(func() {
		if err := w.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
			b.Errorf("stop parley worker: %v", err)
		}
		select {
		case <-w.done:
		case <-time.After(20 * time.Second):
			if err := w.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				b.Errorf("kill parley worker: %v", err)
			}
			<-w.done
		}
		if err := out.Close(); err != nil {
			b.Errorf("worker log: %v", err)
		}
	})
	return w
}

func (w *openWorker) running() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// tail is the end of the worker's output, for failure messages.
func (w *openWorker) tail() string {
	data, err := os.ReadFile(w.log)
	if err != nil {
		return err.Error()
	}
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// memory is the worker's resident memory now and at its peak
// (/proc/<pid>/status: VmRSS, VmHWM).
func (w *openWorker) memory() (rss, peak int64, err error) { return openMemoryOf(w.cmd.Process.Pid) }

func openMemoryOf(pid int) (rss, peak int64, err error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("memory of process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %s: %w", path, line, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		return 0, 0, fmt.Errorf("%s has no VmRSS or VmHWM", path)
	}
	return rss, peak, nil
}

// cpuTicks is the worker's CPU time so far, in clock ticks (/proc/<pid>/stat:
// utime and stime, the 14th and 15th fields).
func (w *openWorker) cpuTicks() (int64, error) { return openCPUTicks(w.cmd.Process.Pid) }

// openCPUTicks is a process's CPU time (user and system), in clock ticks.
func openCPUTicks(pid int) (int64, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("CPU time of process %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: count after it.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("%s: too few fields", path)
	}
	var sum int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		sum += n
	}
	return sum, nil
}

// settle waits (at most limit) until the worker and the dev server each use
// less than a tenth of a core over a second.
func (w *openWorker) settle(limit time.Duration) error {
	// The dev server too: after the opening, it still works through what
	// the conversations left it (visibility, timers) for a while, and
	// probes sent meanwhile would time that, not a message at rest.
	server, err := openTemporalPID()
	if err != nil {
		return err
	}
	ticks := func() (worker, temporal int64, err error) {
		if worker, err = w.cpuTicks(); err != nil {
			return 0, 0, err
		}
		temporal, err = openCPUTicks(server)
		return worker, temporal, err
	}
	prevW, prevT, err := ticks()
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		nW, nT, err := ticks()
		if err != nil {
			return err
		}
		// Clock ticks are 1/100 s on Linux: under 10 % of a core each.
		if nW-prevW < 10 && nT-prevT < 10 {
			return nil
		}
		prevW, prevT = nW, nT
	}
	return nil // still busy: the figures are taken anyway
}
