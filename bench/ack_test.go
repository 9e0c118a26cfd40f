package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"parley/fakemeta"
	"parley/store"
	"parley/testenv"
)

// Targets of issue 10, printed next to the figures.
const (
	targetRatio    = 0.9
	targetAckP99   = 50 * time.Millisecond
	ackMaxRequests = 1000             // closed-loop phase of BenchmarkAckLatency
	ackLoadFor     = 15 * time.Second // open-loop phase of BenchmarkAckLatency
)

// postWebhook posts one signed webhook holding one message from psid, as
// Meta would, and fails unless the gateway answers 200.
func postWebhook(httpc *http.Client, callbackURL, psid string) error {
	now := time.Now().UnixMilli()
	body, err := fakemeta.BuildEnvelope(fakemeta.Entry{PageID: pageID, Time: now, Messaging: []json.RawMessage{
		[]byte(fmt.Sprintf(`{"sender":{"id":"%s"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"m_%s","text":"hello"}}`, psid, pageID, now, psid)),
	}})
	if err != nil {
		return err
	}
	sig, _ := fakemeta.Sign(body, appSecret)
	req, err := http.NewRequest(http.MethodPost, callbackURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := httpc.Do(req)
	if err != nil {
		return err
	}
	// Read to the end, or the connection is not reused: a new TCP
	// connection per webhook would be the benchmark's cost, not the gateway's.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("gateway answered %d", resp.StatusCode)
	}
	return nil
}

// BenchmarkAckLatency measures the gateway's acknowledgement latency under
// a steady load, with the worker running (every webhook is a new customer,
// so every one starts a conversation the worker then runs).
//
// First the maximum: webhooks as fast as `concurrency` senders get answers
// (closed loop, ackMaxRequests of them). The gateway answers faster than
// the worker opens the conversations, so that rate is not one the system
// can keep up: the sustained maximum counts until the worker has opened
// them all. Then, once the worker has caught up, half of the sustained
// maximum for ackLoadFor, open loop: each webhook leaves at its scheduled
// time whatever the answers before it, and its latency counts from that
// time, so a stall shows in the figures instead of slowing the sender (no
// coordinated omission). The same at half the acknowledgement-only
// maximum follows, for comparison: there the machine is saturated. Run it
// with -benchtime 1x: b.N is not used.
func BenchmarkAckLatency(b *testing.B) {
	e := testenv.Start(b, testenv.Options{SignalTimeout: 30 * time.Second, TemporalInMemory: os.Getenv("PARLEY_BENCH_TEMPORAL") == "memory", DatabaseURL: benchDatabaseURL(b)})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Bench Page", token)
	e.ConnectWebhook(appID, page)
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
	ctx := context.Background()

	// Warm up (connections, the page, the code paths).
	for i := range concurrency {
		if err := postWebhook(httpc, page.CallbackURL, fmt.Sprintf("ack-warm-%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	opened := concurrency
	// caughtUp waits until the worker has opened every conversation.
	caughtUp := func() time.Time {
		deadline := time.Now().Add(3 * time.Minute)
		for {
			n, err := countConversations(ctx, e.App.Store, page.ID, opened)
			if err != nil {
				b.Fatal(err)
			}
			if n >= opened {
				return time.Now()
			}
			if time.Now().After(deadline) {
				b.Fatalf("the worker has %d of %d conversations after 3 minutes", n, opened)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	caughtUp()

	// The maximum, closed loop.
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= ackMaxRequests {
					return
				}
				if err := postWebhook(httpc, page.CallbackURL, fmt.Sprintf("ack-max-%d", i)); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	maxRate := float64(ackMaxRequests) / time.Since(start).Seconds()
	if n := failed.Load(); n > 0 {
		b.Fatalf("maximum phase: %d of %d webhooks refused", n, ackMaxRequests)
	}
	opened += ackMaxRequests
	sustained := float64(ackMaxRequests) / caughtUp().Sub(start).Seconds()

	// Half a maximum, open loop.
	load := func(name string, rate float64) (achieved float64, lat []time.Duration) {
		interval := time.Duration(float64(time.Second) / rate)
		total := int(ackLoadFor / interval)
		lat = make([]time.Duration, total)
		failed.Store(0)
		var firstErr atomic.Value
		start := time.Now()
		for i := range total {
			at := start.Add(time.Duration(i) * interval)
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := postWebhook(httpc, page.CallbackURL, fmt.Sprintf("ack-%s-%d", name, i)); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				lat[i] = time.Since(at)
			}()
		}
		wg.Wait()
		achieved = float64(total) / time.Since(start).Seconds()
		if n := failed.Load(); n > 0 {
			b.Fatalf("open-loop phase %s: %d of %d webhooks refused; first: %v", name, n, total, firstErr.Load())
		}
		opened += total
		caughtUp()
		return achieved, lat
	}
	b.ResetTimer()
	achieved, lat := load("sustained", sustained/2)
	b.StopTimer()
	achievedAck, latAck := load("ack", maxRate/2)
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	b.ReportMetric(maxRate, "max-webhooks/s")
	b.ReportMetric(sustained, "sustained-webhooks/s")
	b.ReportMetric(achieved, "load-webhooks/s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	verdict := "met"
	if p99 >= targetAckP99 {
		verdict = "NOT met"
	}
	fmt.Printf("\nmaximum acknowledgement rate, worker running: %.0f webhooks/s (closed loop, %d senders); sustained with the worker opening every conversation: %.0f/s\n", maxRate, concurrency, sustained)
	fmt.Printf("acknowledgement latency at half the sustained maximum (%.0f/s open loop, %d webhooks, worker running): p50 %v, p99 %v (target p99 < %v: %s)\n",
		achieved, len(lat), p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond), targetAckP99, verdict)
	fmt.Printf("acknowledgement latency at half the acknowledgement-only maximum (%.0f/s open loop, %d webhooks; the worker falls behind): p50 %v, p99 %v\n\n",
		achievedAck, len(latAck), percentile(latAck, 0.5).Round(100*time.Microsecond), percentile(latAck, 0.99).Round(100*time.Microsecond))
}

// benchDatabaseURL is Parley's database: testenv's SQLite file by default;
// PARLEY_BENCH_SQLITE_SYNCHRONOUS=normal opens it with
// synchronous(NORMAL) (no fsync per commit: durable across a crash of
// Parley, not of the machine), to measure what the commits' fsyncs cost.
func benchDatabaseURL(b *testing.B) string {
	switch v := os.Getenv("PARLEY_BENCH_SQLITE_SYNCHRONOUS"); v {
	case "", "full":
		return ""
	case "normal":
		return "sqlite:" + filepath.Join(b.TempDir(), "parley.db") + "?_pragma=synchronous(NORMAL)"
	default:
		b.Fatalf("PARLEY_BENCH_SQLITE_SYNCHRONOUS=%q: want full or normal", v)
		return ""
	}
}

// countConversations counts the page's conversations, up to about limit.
func countConversations(ctx context.Context, s *store.Store, pageRef string, limit int) (int, error) {
	n, cursor := 0, ""
	for n < limit {
		list, next, err := s.ListConversations(ctx, store.ConversationFilter{PageRef: pageRef, Limit: 200, Cursor: cursor})
		if err != nil {
			return 0, err
		}
		n += len(list)
		if next == "" {
			break
		}
		cursor = next
	}
	return n, nil
}
