package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"parley/store"
)

// DefaultStoreTimeout bounds the store reads of one scrape.
const DefaultStoreTimeout = 3 * time.Second

// Reader is what the scrape-time gauges read (a *store.Store).
type Reader interface {
	ListQueues(ctx context.Context) ([]store.Queue, error)
	QueuedConversations(ctx context.Context, queueID string) ([]store.QueuedConversation, error)
	ListPages(ctx context.Context, accountID string) ([]store.Page, error)
}

var _ Reader = (*store.Store)(nil)

// ProvisioningStates are the label values of parley_pages, each reported
// (0 when no page is in it).
var ProvisioningStates = []string{store.ProvisioningRunning, store.ProvisioningAwaitingVerification, store.ProvisioningError,
	store.ProvisioningFlagged, store.ProvisioningTokenInvalid, store.ProvisioningDuplicate,
	store.ProvisioningUnsubscribed, store.ProvisioningExpiring, store.ProvisioningSilent}

var (
	queueWaitingDesc = prometheus.NewDesc(Namespace+"_queue_waiting",
		"Conversations waiting in each live queue (an offered one included until accepted), read from the database when scraped.",
		[]string{"queue"}, nil)
	queueLongestDesc = prometheus.NewDesc(Namespace+"_queue_longest_wait_seconds",
		"How long the conversation that has waited longest in each live queue has waited (since the customer's wait began), 0 when none waits.",
		[]string{"queue"}, nil)
	pagesDesc = prometheus.NewDesc(Namespace+"_pages",
		"Live pages by provisioning state (running, awaiting_verification, error, flagged, token_invalid, duplicate, unsubscribed, expiring, silent).",
		[]string{"provisioning_state"}, nil)
	storeUpDesc = prometheus.NewDesc(Namespace+"_store_scrape_success",
		"1 when the database reads behind parley_queue_* and parley_pages succeeded in this scrape, else 0 (those gauges are then left out).",
		nil, nil)
)

// WatchStore adds the gauges read from st at each scrape:
// parley_queue_waiting, parley_queue_longest_wait_seconds and parley_pages.
// timeout (0: DefaultStoreTimeout) bounds each scrape's reads.
func (m *Metrics) WatchStore(st Reader, timeout time.Duration) {
	if m == nil || st == nil {
		return
	}
	if timeout <= 0 {
		timeout = DefaultStoreTimeout
	}
	m.mu.Lock()
	m.store = &storeCollector{st: st, timeout: timeout, now: time.Now, log: m.log}
	m.mu.Unlock()
}

// storeCollector reads the gauges from the store. A Collector's Collect has
// no context: bound gives one that uses the scrape's.
type storeCollector struct {
	st      Reader
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
}

// bound is the collector for one scrape, reading with ctx.
func (c *storeCollector) bound(ctx context.Context) prometheus.Collector {
	return boundCollector{c: c, ctx: ctx}
}

type boundCollector struct {
	c   *storeCollector
	ctx context.Context
}

func (b boundCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueWaitingDesc
	ch <- queueLongestDesc
	ch <- pagesDesc
	ch <- storeUpDesc
}

func (b boundCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(b.ctx, b.c.timeout)
	defer cancel()
	ms, err := b.c.read(ctx)
	up := 1.0
	if err != nil {
		up = 0
		b.c.log.WarnContext(ctx, "metrics: store gauges not read", "err", err)
	} else {
		for _, m := range ms {
			ch <- m
		}
	}
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, up)
}

// read gathers every gauge first, so that a failure reports none of them
// rather than a part.
func (c *storeCollector) read(ctx context.Context) ([]prometheus.Metric, error) {
	var out []prometheus.Metric
	queues, err := c.st.ListQueues(ctx)
	if err != nil {
		return nil, fmt.Errorf("queues: %w", err)
	}
	now := c.now()
	for _, q := range queues {
		waiting, err := c.st.QueuedConversations(ctx, q.ID)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", q.ID, err)
		}
		var longest time.Duration
		for _, w := range waiting {
			if d := now.Sub(w.WaitingSince); d > longest {
				longest = d
			}
		}
		out = append(out,
			prometheus.MustNewConstMetric(queueWaitingDesc, prometheus.GaugeValue, float64(len(waiting)), q.Name),
			prometheus.MustNewConstMetric(queueLongestDesc, prometheus.GaugeValue, longest.Seconds(), q.Name))
	}
	pages, err := c.st.ListPages(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("pages: %w", err)
	}
	count := make(map[string]int, len(ProvisioningStates))
	for _, p := range pages {
		state, _ := p.Provisioning()
		count[state]++
	}
	for _, s := range ProvisioningStates {
		out = append(out, prometheus.MustNewConstMetric(pagesDesc, prometheus.GaugeValue, float64(count[s]), s))
		delete(count, s)
	}
	for s, n := range count { // a state added to store after this list
		out = append(out, prometheus.MustNewConstMetric(pagesDesc, prometheus.GaugeValue, float64(n), s))
	}
	return out, nil
}
