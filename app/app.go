// Package app wires Parley's parts from the configuration: the store, the
// Temporal client, the Graph API client, the HTTP server (REST API and webhook
// gateway) and the worker. The binary's subcommands and the tests share it.
package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"parley/activities"
	"parley/api"
	"parley/blobs"
	"parley/config"
	"parley/events"
	"parley/gateway"
	"parley/messenger"
	"parley/metrics"
	"parley/payloadcodec"
	"parley/secrets"
	"parley/store"
	"parley/worker"
	"parley/workflows"
)

// App holds Parley's long-lived dependencies.
type App struct {
	Config   config.Config
	Log      *slog.Logger
	Store    *store.Store
	Temporal client.Client
	Graph    *messenger.Client
	// Blobs keeps files (attachments) in the configured bucket.
	Blobs *blobs.Store
	// AdminAPIKey is the bootstrap admin key (configured or generated).
	AdminAPIKey string
	// Codec encrypts what Temporal keeps, one data key per customer; the
	// customer erasure uses Codec.EraseCustomer (or Store.EraseCustomerKey
	// then Codec.Forget).
	Codec *payloadcodec.Codec
	// Metrics is what GET /metrics serves (ServeMetrics): the gateway,
	// Graph API client, offers and Temporal client record into it.
	Metrics *metrics.Metrics

	hubsMu sync.Mutex
	hubs   []*events.Hub // live event hubs of the handlers; Close stops them
}

// Open prepares the data folder, secrets, database (migrated) and a lazy
// Temporal client, which connects on first use so that the API can start,
// and report 503, while Temporal is down.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	a := &App{Config: cfg, Log: log}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder %s: %w", cfg.DataDir, err)
	}
	box, err := a.secretBox()
	if err != nil {
		return nil, err
	}
	if a.AdminAPIKey, err = a.adminKey(); err != nil {
		return nil, err
	}
	if a.Store, err = store.Open(ctx, cfg.DatabaseURL, box); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// From here, Close stops the metrics' Temporal bridge.
	a.Metrics = metrics.New(metrics.Options{Logger: log})
	a.Metrics.WatchStore(a.Store, 0)
	if err := a.Store.Migrate(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	a.Codec = payloadcodec.New(a.Store, payloadcodec.Options{TTL: cfg.CodecKeyTTL, Logger: log})
	// The worker shares this client, and so the codec.
	// The connection (address, namespace, TLS, mTLS, API key, gRPC
	// metadata) comes from envconfig: TEMPORAL_* variables and profiles,
	// with PARLEY_TEMPORAL_ADDRESS and PARLEY_TEMPORAL_NAMESPACE on top.
	// Parley's own logger, converters and metrics go on top of that.
	opts, err := cfg.TemporalClientOptions()
	if err != nil {
		a.Close()
		return nil, err
	}
	opts.Logger = tlog.NewStructuredLogger(log.With("component", "temporal-sdk"))
	opts.DataConverter = a.Codec.DataConverter()
	opts.FailureConverter = a.Codec.FailureConverter()
	// The SDK's client and worker metrics (temporal_*), on /metrics.
	opts.MetricsHandler = a.Metrics.TemporalHandler()
	// Every payload is ciphertext (the codec): gzip cannot shrink it and
	// costs CPU on both ends of every call.
	opts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	a.Temporal, err = client.NewLazyClient(opts)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("temporal client: %w", err)
	}
	bucket := cfg.BlobURL
	if bucket == "" {
		bucket = blobs.DefaultURL(cfg.DataDir)
	}
	if a.Blobs, err = blobs.Open(ctx, bucket); err != nil {
		a.Close()
		return nil, err
	}
	a.Graph = messenger.NewClient(cfg.GraphAPIURL, cfg.GraphAPIVersion, nil)
	a.Graph.Observe = a.Metrics.GraphCall
	return a, nil
}

// Close releases what Open acquired.
func (a *App) Close() {
	a.hubsMu.Lock()
	hubs := a.hubs
	a.hubs = nil
	a.hubsMu.Unlock()
	for _, h := range hubs {
		h.Close()
	}
	if a.Temporal != nil {
		a.Temporal.Close()
	}
	if err := a.Metrics.Close(); err != nil {
		a.Log.Warn("close the Temporal metrics bridge", "err", err)
	}
	if a.Blobs != nil {
		if err := a.Blobs.Close(); err != nil {
			a.Log.Warn("close blob bucket", "err", err)
		}
	}
	if a.Store != nil {
		if err := a.Store.Close(); err != nil {
			a.Log.Warn("close database", "err", err)
		}
	}
}

func (a *App) secretBox() (*secrets.Box, error) {
	if a.Config.EncryptionKey != "" {
		key, err := secrets.ParseKey(a.Config.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("PARLEY_ENCRYPTION_KEY: %w", err)
		}
		return secrets.NewBox(key)
	}
	path := filepath.Join(a.Config.DataDir, "encryption.key")
	key, created, err := secrets.LoadOrCreateKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	a.Log.Warn("PARLEY_ENCRYPTION_KEY is not set: using the key file in the data folder; set the variable in production",
		"path", path, "created", created)
	return secrets.NewBox(key)
}

func (a *App) adminKey() (string, error) {
	if a.Config.AdminAPIKey != "" {
		return a.Config.AdminAPIKey, nil
	}
	path := filepath.Join(a.Config.DataDir, "admin-api-key")
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate admin API key: %w", err)
	}
	key := "pk_admin_" + base64.RawURLEncoding.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	a.Log.Warn("PARLEY_ADMIN_API_KEY is not set: generated a dev admin API key into the data folder", "path", path)
	return key, nil
}

// Handler is the HTTP surface: REST API plus webhook gateway.
// Each handler is one API process: it has its own live event hub (one
// poller of the event log), stopped by Close.
func (a *App) Handler() http.Handler {
	h, _ := a.handler()
	return h
}

func (a *App) handler() (http.Handler, *events.Hub) {
	hub := a.eventHub()
	srv := api.New(api.Options{
		Store:       a.Store,
		Temporal:    a.Temporal,
		Graph:       a.Graph,
		PublicURL:   a.Config.PublicURL,
		UpdateWait:  a.Config.UpdateWait,
		AdminAPIKey: a.AdminAPIKey,
		Windows:     a.windows(),
		Logger:      a.Log,
		OnAgentChanged: func(ctx context.Context, agentID string) error {
			return a.Waker().Wake(ctx, "agent "+agentID+" changed")
		},
		Events:       hub,
		Codec:        a.Codec,
		CodecOrigins: a.Config.CodecOrigins,
		Blobs:        a.Blobs,
	})
	gateway.New(gateway.Options{
		Store:         a.Store,
		Temporal:      a.Temporal,
		TaskQueue:     a.Config.TaskQueue,
		SignalTimeout: a.Config.SignalTimeout,
		Windows:       a.windows(),
		Limits:        a.limits(),
		Logger:        a.Log,
		Metrics:       a.Metrics,
	}).Register(srv.Echo())
	return srv, hub
}

// eventHub starts a live event hub on the store.
func (a *App) eventHub() *events.Hub {
	hub := events.New(a.Store, events.Options{
		PollInterval: a.Config.EventsPollInterval,
		Retention:    a.Config.EventsRetention,
		Heartbeat:    a.Config.EventsHeartbeat,
		Logger:       a.Log,
	})
	hub.Start()
	a.hubsMu.Lock()
	a.hubs = append(a.hubs, hub)
	a.hubsMu.Unlock()
	return hub
}

func (a *App) windows() workflows.Windows {
	return workflows.Windows{Reply: a.Config.ReplyWindow, HumanAgent: a.Config.HumanAgentWindow, EdgeMargin: a.Config.WindowEdgeMargin}
}

// limits bound each conversation's runs and sends.
func (a *App) limits() workflows.Limits {
	return workflows.Limits{
		MaxSignalsPerRun: a.Config.MaxSignalsPerRun, MaxEventsPerRun: a.Config.MaxEventsPerRun,
		EchoWait: a.Config.EchoWait, BlindEchoWait: a.Config.BlindEchoWait, SendTimeout: a.Config.SendTimeout,
	}
}

// ServeHTTP listens on ln until ctx ends, then drains in-flight requests.
func (a *App) ServeHTTP(ctx context.Context, ln net.Listener) error {
	handler, hub := a.handler()
	// No WriteTimeout: it would cut the live event streams (each write of
	// a stream has its own deadline).
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	// Shutdown waits for open requests: end the event streams (clients
	// reconnect to another replica with Last-Event-ID).
	hs.RegisterOnShutdown(hub.Close)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// ListenAndServe opens the configured address and serves until ctx ends.
func (a *App) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.Config.HTTPAddr, err)
	}
	a.Log.Info("gateway and REST API listening", "addr", ln.Addr().String(), "public_url", a.Config.PublicURL)
	return a.ServeHTTP(ctx, ln)
}

// MetricsHandler serves GET /metrics (and nothing else: 404).
func (a *App) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.Metrics.Handler())
	return mux
}

// ServeMetrics serves GET /metrics on ln until ctx ends. It is apart from
// the API's listener so that it can stay private (loopback by default).
func (a *App) ServeMetrics(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: a.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics server: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return fmt.Errorf("metrics shutdown: %w", err)
	}
	return nil
}

// ListenAndServeMetrics opens PARLEY_METRICS_ADDR and serves GET /metrics
// until ctx ends; with PARLEY_METRICS_ADDR=off it returns at once.
func (a *App) ListenAndServeMetrics(ctx context.Context) error {
	if a.Config.MetricsAddr == "" {
		a.Log.Info("metrics off (PARLEY_METRICS_ADDR=off)")
		return nil
	}
	ln, err := net.Listen("tcp", a.Config.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s (PARLEY_METRICS_ADDR; off disables it): %w", a.Config.MetricsAddr, err)
	}
	a.Log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return a.ServeMetrics(ctx, ln)
}

// CheckTemporal asks Temporal for the namespace until it answers, for a
// process that runs no worker (`parley api`): while Temporal is
// unreachable the API serves and answers 503 where it needs it, but a
// permanent error (refused credentials, unknown namespace, TLS) stops the
// process at once with what to fix, as RunWorker does.
func (a *App) CheckTemporal(ctx context.Context) error {
	ok, err := a.awaitTemporal(ctx, func(ctx context.Context) error {
		return worker.CheckNamespace(ctx, a.Temporal, a.Config.TemporalNamespace)
	})
	if ok {
		a.Log.Info("temporal reachable", "address", a.Config.TemporalAddress, "namespace", a.Config.TemporalNamespace)
	}
	return err
}

// awaitTemporal runs check until it passes (true), ctx ends (false, nil) or
// it fails for good (false and the error, with Temporal's address): an
// unreachable Temporal is logged and asked again every two seconds.
func (a *App) awaitTemporal(ctx context.Context, check func(context.Context) error) (bool, error) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := check(actx)
		cancel()
		switch {
		case err == nil:
			return true, nil
		case ctx.Err() != nil:
			return false, nil
		case worker.IsPermanent(err):
			return false, fmt.Errorf("temporal at %s, namespace %s (tls %t): %w", a.Config.TemporalAddress, a.Config.TemporalNamespace, a.Config.TemporalTLS(), err)
		}
		a.Log.Warn("temporal not ready; retrying", "address", a.Config.TemporalAddress, "namespace", a.Config.TemporalNamespace,
			"attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(2 * time.Second):
		}
	}
}

// RunWorker registers (or checks) the search attributes, waiting for
// Temporal while it is unreachable, and runs the worker until ctx ends. A
// permanent error (refused credentials, unknown namespace, TLS) stops it at
// once with what to fix.
func (a *App) RunWorker(ctx context.Context) error {
	ok, err := a.awaitTemporal(ctx, func(ctx context.Context) error {
		return worker.EnsureSearchAttributes(ctx, a.Temporal, worker.SearchAttributeOptions{
			Namespace: a.Config.TemporalNamespace, Register: a.Config.RegisterSearchAttributes, Logger: a.Log})
	})
	if !ok {
		return err // nil when ctx ended
	}
	health := activities.HealthSettings{ExpiringWithin: a.Config.PageExpiringWithin, SilenceAfter: a.Config.PageSilenceAfter,
		AlertURL: a.Config.AlertURL, AlertSecret: a.Config.AlertSecret}
	worker.SetCacheSize(a.Config.WorkflowCacheSize)
	w := worker.New(a.Temporal, a.Config.TaskQueue, worker.Deps{Store: a.Store, Graph: a.Graph, Blobs: a.Blobs, Log: a.Log, Waker: a.Waker(),
		PublicURL: a.Config.PublicURL, Metrics: a.Metrics, Health: health, MaxThrottlePause: a.Config.MaxThrottlePause})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	if err := a.Waker().Start(ctx); err != nil {
		w.Stop()
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	// Every worker brings the page health schedule to this configuration.
	if err := worker.EnsurePageHealthSchedule(ctx, a.Temporal, a.Config.TaskQueue, a.Config.PageHealthEvery); err != nil {
		w.Stop()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.Log.Info("worker running", "task_queue", a.Config.TaskQueue, "namespace", a.Config.TemporalNamespace,
		"page_health_every", a.Config.PageHealthEvery.String(), "workflow_cache_size", a.Config.WorkflowCacheSize)
	<-ctx.Done()
	w.Stop()
	return nil
}

// Waker wakes (and starts) the distributor workflow.
func (a *App) Waker() *worker.Waker {
	return &worker.Waker{Client: a.Temporal, TaskQueue: a.Config.TaskQueue}
}
