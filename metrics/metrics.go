// Package metrics is what Parley exposes on GET /metrics, in Prometheus'
// format: its own counters (webhooks, Graph API calls, offers), gauges read
// from the database at scrape time (queues, pages), the Go runtime and the
// process, and the Temporal SDK's worker and client metrics through the
// SDK's tally bridge. Everything lives in one registry owned by a Metrics,
// never in Prometheus' global one, so that several Parleys (tests, API
// replicas) can run in one process.
//
// A nil *Metrics is valid and records nothing: code that is built without
// metrics (tests) needs no checks.
package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"

	"parley/messenger"
	"parley/store"
)

// Namespace prefixes every metric of Parley's own.
const Namespace = "parley"

// Webhook outcomes and reasons: the label values of parley_webhooks_total.
// Accepted webhooks were answered 200 (Meta will not send them again);
// refused ones were answered with an error (Meta retries the 5xx).
const (
	WebhookAccepted = "accepted"
	WebhookRefused  = "refused"

	// ReasonDelivered: every event was durably accepted (or dropped on
	// purpose, e.g. events of a page Parley does not manage).
	ReasonDelivered = "delivered"
	// ReasonUnhandledObject: not a Messenger page event (e.g. Instagram);
	// acknowledged so that Meta stops sending it.
	ReasonUnhandledObject = "unhandled_object"

	ReasonUnknownPage         = "unknown_page"         // 404: no page has this callback key
	ReasonPayloadTooLarge     = "payload_too_large"    // 413
	ReasonUnreadableBody      = "unreadable_body"      // 400: the body could not be read
	ReasonBadSignature        = "bad_signature"        // 401: X-Hub-Signature-256 missing or wrong
	ReasonMalformedWebhook    = "malformed_webhook"    // 400: not a webhook notification
	ReasonTemporalUnavailable = "temporal_unavailable" // 503: Temporal did not accept every event in time
	ReasonInternal            = "internal"             // 500: the database failed
)

// webhookReasons are the label pairs initialised at 0.
var webhookReasons = map[string][]string{
	WebhookAccepted: {ReasonDelivered, ReasonUnhandledObject},
	WebhookRefused: {ReasonUnknownPage, ReasonPayloadTooLarge, ReasonUnreadableBody, ReasonBadSignature,
		ReasonMalformedWebhook, ReasonTemporalUnavailable, ReasonInternal},
}

// Offer outcomes: the label values of parley_offers_total. created counts
// the offers made; the others how offers ended (store.Decline* and an
// accept).
const (
	OfferCreated   = "created"
	OfferAccepted  = "accepted"
	OfferRejected  = store.DeclineRejected
	OfferTimedOut  = store.DeclineTimedOut
	OfferWithdrawn = store.DeclineWithdrawn
)

var offerOutcomes = []string{OfferCreated, OfferAccepted, OfferRejected, OfferTimedOut, OfferWithdrawn}

// Graph call outcomes, and the error classes of failures that are not a
// Graph API error (those have messenger's ErrorClass names).
const (
	GraphOK    = "ok"
	GraphError = "error"

	ClassTimeout            = "timeout"             // the call's deadline passed
	ClassCanceled           = "canceled"            // the caller gave up (shutdown)
	ClassTransport          = "transport"           // no answer: connection refused, reset, DNS…
	ClassUnexpectedResponse = "unexpected_response" // a 2xx whose body is not what the endpoint documents
	ClassInvalidRequest     = "invalid_request"     // refused before it was sent
)

var graphOps = []string{messenger.OpSend, messenger.OpUploadAttachment, messenger.OpUserProfile, messenger.OpThreadMessages,
	messenger.OpDebugToken, messenger.OpSubscribeApp, messenger.OpSubscribedApps, messenger.OpUnsubscribeApp,
	messenger.OpPassThreadControl, messenger.OpTakeThreadControl}

// Buckets of the latency histograms, in seconds.
var (
	// WebhookAckBuckets span 1 ms to 5 s: the answer to Meta waits for
	// Temporal, bounded by PARLEY_SIGNAL_TIMEOUT (5 s).
	WebhookAckBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	// GraphCallBuckets span 10 ms to 30 s (an attachment upload).
	GraphCallBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// TemporalBuckets are those of the Temporal SDK's timers (workflow
	// tasks, requests, activities): tally's default, 1 ms to 10 s, with
	// more steps between 10 ms and 1 s, where a message's workflow task and
	// its requests fall (the default jumps from 50 to 100 ms).
	TemporalBuckets = []float64{.001, .002, .005, .01, .015, .02, .03, .04, .05, .075, .1, .15, .2, .3, .5, .75, 1, 2, 5, 10}
)

// Options configure New.
type Options struct {
	Logger *slog.Logger
	// TemporalFlushInterval is how often the Temporal SDK's metrics are
	// copied into the registry (tally reports in batches); default 1s.
	TemporalFlushInterval time.Duration
}

// Metrics records Parley's metrics into its own registry.
type Metrics struct {
	registry *prometheus.Registry
	log      *slog.Logger

	webhooks   *prometheus.CounterVec
	webhookAck *prometheus.HistogramVec
	graphCalls *prometheus.CounterVec
	graphTime  *prometheus.HistogramVec
	offers     *prometheus.CounterVec
	pageAlerts *prometheus.CounterVec

	temporal      client.MetricsHandler
	temporalScope io.Closer

	mu    sync.Mutex
	store *storeCollector
}

// New builds the registry with the Go and process collectors, Parley's
// metrics and the Temporal SDK's bridge. Close stops the bridge.
func New(opts Options) *Metrics {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TemporalFlushInterval <= 0 {
		opts.TemporalFlushInterval = time.Second
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{
		registry: reg,
		log:      opts.Logger.With("component", "metrics"),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "webhooks_total",
			Help: "Webhook POSTs from Meta, by outcome (accepted: answered 200; refused: answered with an error) and reason.",
		}, []string{"outcome", "reason"}),
		webhookAck: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "webhook_ack_seconds",
			Help:    "Time from a webhook POST's arrival to Parley's answer to Meta, by outcome.",
			Buckets: WebhookAckBuckets,
		}, []string{"outcome"}),
		graphCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "graph_calls_total",
			Help: "Graph API calls (op send is the Send API), by operation, outcome (ok, error) and error class (messenger's classification by code and subcode, or timeout, canceled, transport, unexpected_response).",
		}, []string{"op", "outcome", "error_class"}),
		graphTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "graph_call_seconds",
			Help:    "Duration of Graph API calls, by operation.",
			Buckets: GraphCallBuckets,
		}, []string{"op"}),
		offers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "offers_total",
			Help: "Offers of conversations to agents: created, then how they ended (accepted, rejected, timed_out, withdrawn).",
		}, []string{"outcome"}),
		pageAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "page_alerts_total",
			Help: "Alerts of pages changing state (the page health check), by the state entered.",
		}, []string{"state"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.webhooks, m.webhookAck, m.graphCalls, m.graphTime, m.offers, m.pageAlerts,
	)
	for outcome, reasons := range webhookReasons {
		m.webhookAck.WithLabelValues(outcome)
		for _, r := range reasons {
			m.webhooks.WithLabelValues(outcome, r)
		}
	}
	for _, op := range graphOps {
		m.graphCalls.WithLabelValues(op, GraphOK, "")
	}
	for _, o := range offerOutcomes {
		m.offers.WithLabelValues(o)
	}
	for _, st := range ProvisioningStates {
		m.pageAlerts.WithLabelValues(st)
	}
	m.temporal, m.temporalScope = m.temporalBridge(opts.TemporalFlushInterval)
	return m
}

// temporalBridge is the Temporal SDK's recommended tally setup, reporting
// into the registry: Prometheus-safe names (SanitizeOptions, "_"), the
// naming scope that adds _total and _seconds, and histograms for timers.
func (m *Metrics) temporalBridge(interval time.Duration) (client.MetricsHandler, io.Closer) {
	var logged sync.Map
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:              m.registry,
		DefaultTimerType:        tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: TemporalBuckets,
		// The default panics. A metric the SDK emits with two different
		// label sets is dropped instead, and said once.
		OnRegisterError: func(err error) {
			if _, seen := logged.LoadOrStore(err.Error(), true); !seen {
				m.log.Warn("a Temporal SDK metric could not be registered; it is left out", "err", err)
			}
		},
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
		// tally's own tally_internal_* gauges say nothing about Parley.
		OmitCardinalityMetrics: true,
	}, interval)
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), closer
}

// Registry is the registry of everything but the scrape-time store
// gauges (see Gather).
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.registry
}

// TemporalHandler is the MetricsHandler for client.Options: the SDK's
// client and worker metrics (temporal_*) end up in the registry. Nil for
// a nil Metrics, which the SDK takes as no metrics.
func (m *Metrics) TemporalHandler() client.MetricsHandler {
	if m == nil {
		return nil
	}
	return m.temporal
}

// Close flushes and stops the Temporal SDK's bridge.
func (m *Metrics) Close() error {
	if m == nil || m.temporalScope == nil {
		return nil
	}
	return m.temporalScope.Close()
}

// WebhookAccepted counts a webhook POST answered 200.
func (m *Metrics) WebhookAccepted(reason string, took time.Duration) {
	m.webhook(WebhookAccepted, reason, took)
}

// WebhookRefused counts a webhook POST answered with an error.
func (m *Metrics) WebhookRefused(reason string, took time.Duration) {
	m.webhook(WebhookRefused, reason, took)
}

func (m *Metrics) webhook(outcome, reason string, took time.Duration) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(outcome, reason).Inc()
	m.webhookAck.WithLabelValues(outcome).Observe(took.Seconds())
}

// GraphCall counts one Graph API call; its signature is
// messenger.Client.Observe's.
func (m *Metrics) GraphCall(op string, took time.Duration, err error) {
	if m == nil {
		return
	}
	outcome := GraphOK
	if err != nil {
		outcome = GraphError
	}
	m.graphCalls.WithLabelValues(op, outcome, GraphErrorClass(err)).Inc()
	m.graphTime.WithLabelValues(op).Observe(took.Seconds())
}

// GraphErrorClass names what kind of failure err is: a Graph API error's
// messenger.ErrorClass (from its code and subcode, never its message), else
// one of the Class* constants; "" for nil.
func GraphErrorClass(err error) string {
	if err == nil {
		return ""
	}
	if ge, ok := messenger.AsGraphError(err); ok {
		return string(ge.Class())
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return ClassTimeout
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.Is(err, messenger.ErrUnexpectedResponse):
		return ClassUnexpectedResponse
	case errors.Is(err, messenger.ErrInvalidRequest):
		return ClassInvalidRequest
	}
	return ClassTransport
}

// Offers counts n offers with an outcome (Offer* constants).
func (m *Metrics) Offers(outcome string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.offers.WithLabelValues(outcome).Add(float64(n))
}

// PageAlert counts an alert of a page entering state.
func (m *Metrics) PageAlert(state string) {
	if m == nil {
		return
	}
	m.pageAlerts.WithLabelValues(state).Inc()
}

// Handler serves the metrics in Prometheus' text (or protobuf) format. The
// store gauges are read when scraped, with the request's context.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		promhttp.HandlerFor(m.Gatherer(r.Context()), promhttp.HandlerOpts{
			// A failed store read leaves its gauges out, not the rest.
			ErrorHandling: promhttp.ContinueOnError,
			ErrorLog:      promLogger{m.log},
		}).ServeHTTP(w, r)
	})
}

// Gatherer gathers the registry and, when WatchStore was called, the store
// gauges read with ctx (bounded by the store timeout).
func (m *Metrics) Gatherer(ctx context.Context) prometheus.Gatherer {
	m.mu.Lock()
	sc := m.store
	m.mu.Unlock()
	if sc == nil {
		return m.registry
	}
	scrape := prometheus.NewRegistry()
	scrape.MustRegister(sc.bound(ctx))
	return prometheus.Gatherers{m.registry, scrape}
}

type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn("metrics scrape", "err", v)
}
