package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/testenv"
)

// BenchmarkMessageToOffer measures, with the whole stack (gateway, worker,
// distributor, live events), the time from a new customer's message to the
// offer an agent receives on its event stream, with new conversations
// arriving at a steady rate (PARLEY_BENCH_RATE per second, default 20).
// Agents never answer: each offer holds its unit for the whole run, so the
// agents' capacity covers b.N conversations.
func BenchmarkMessageToOffer(b *testing.B) {
	rate := 20.0
	if v := os.Getenv("PARLEY_BENCH_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 {
			b.Fatalf("PARLEY_BENCH_RATE=%q: want a positive number", v)
		}
		rate = r
	}
	e := testenv.Start(b, testenv.Options{TemporalInMemory: os.Getenv("PARLEY_BENCH_TEMPORAL") == "memory"})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Bench Page", token)
	e.ConnectWebhook(appID, page)
	var q struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/queues", map[string]any{"name": "Bench", "priority": 1, "assignment_method": "highest_capacity"}, &q)
	const agents = 20
	perAgent := b.N/agents + 1
	for i := range agents {
		a := e.CreateAgent(fmt.Sprintf("Bench %d", i), fmt.Sprintf("bench%d@example.com", i))
		e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/agents/"+a.ID, map[string]any{"capacity_units": min(perAgent, 100)}, nil)
		if st, raw := e.Do(http.MethodPut, "/api/v1/queues/"+q.ID+"/agents/"+a.ID, nil); st >= 300 {
			b.Fatalf("queue membership: %d %s", st, raw)
		}
		if st, raw := e.DoWithKey(a.Key, http.MethodPut, "/api/v1/agents/"+a.ID+"/presence", map[string]string{"presence": "available"}); st != http.StatusOK {
			b.Fatalf("presence: %d %s", st, raw)
		}
	}
	if perAgent > 100 {
		b.Fatalf("b.N=%d needs more than 100 units per agent: lower -benchtime", b.N)
	}
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{
		"name": "Bench", "page": page.ID,
		"distribution": map[string]any{"mode": "push", "capacity_units": 1, "offer_timeout": "1h", "fallback_queue": q.ID},
	}, nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	offered := map[string]time.Time{} // conversation -> when its offer arrived
	ready := make(chan struct{})
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/api/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+e.AdminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			close(ready)
			return
		}
		defer resp.Body.Close()
		close(ready)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "data:") {
				continue
			}
			var ev struct {
				Type           string `json:"type"`
				ConversationID string `json:"conversation_id"`
			}
			if json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, "data:"))), &ev) == nil && ev.Type == "offer.created" {
				mu.Lock()
				if _, ok := offered[ev.ConversationID]; !ok {
					offered[ev.ConversationID] = time.Now()
				}
				mu.Unlock()
			}
		}
	}()
	<-ready

	sent := make([]time.Time, b.N)
	interval := time.Duration(float64(time.Second) / rate)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sent[i] = time.Now()
		if _, err := e.Meta.CustomerSends(ctx, pageID, fmt.Sprintf("bench-%d", i), "hello"); err != nil {
			b.Fatalf("customer %d: %v", i, err)
		}
	}
	achieved := float64(b.N) / time.Since(start).Seconds()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		n := len(offered)
		mu.Unlock()
		if n >= b.N || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	psids := map[string]int{}
	for i := range b.N {
		psids[fmt.Sprintf("bench-%d", i)] = i
	}
	var lat []time.Duration
	cursor := ""
	for {
		var list struct {
			Data []struct {
				ID   string `json:"id"`
				PSID string `json:"psid"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?limit=200&cursor="+cursor, nil, &list)
		mu.Lock()
		for _, c := range list.Data {
			if at, ok := offered[c.ID]; ok {
				lat = append(lat, at.Sub(sent[psids[c.PSID]]))
			}
		}
		mu.Unlock()
		if list.NextCursor == "" {
			break
		}
		cursor = list.NextCursor
	}
	if len(lat) < b.N {
		b.Fatalf("%d of %d conversations got an offer within 2 minutes", len(lat), b.N)
	}
	sentBy := map[string]time.Time{}
	for i := range b.N {
		sentBy[fmt.Sprintf("bench-%d", i)] = sent[i]
	}
	breakdown(e, sentBy)
	r := result{perSecond: achieved, latencies: lat}
	report(b, r, "conversations")
	fmt.Printf("\nmessage to offer, %d new conversations at %.1f/s (asked %.1f/s): p50 %v, p99 %v\n\n",
		b.N, achieved, rate, percentile(lat, 0.5).Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond))
}
