// Package testenv starts a whole Parley for integration tests: a real
// Temporal dev server (the CLI in ./bin, through testsuite.StartDevServer),
// a real database, the real HTTP server (REST API and gateway) on loopback,
// the worker, and the fake Meta.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"parley/app"
	"parley/config"
	"parley/fakemeta"
	"parley/worker"
)

// Options tune an Env.
type Options struct {
	// DatabaseURL defaults to a SQLite file in a temp folder.
	DatabaseURL string
	// SignalTimeout is the gateway's wait for Temporal (default 2s).
	SignalTimeout time.Duration
	// NoWorker leaves the worker out (benchmarks of the gateway alone).
	NoWorker bool
	// TemporalInMemory runs the dev server without its database file
	// (faster; RestartParley still works, StopTemporal loses everything).
	TemporalInMemory bool
	// ReplyWindow and HumanAgentWindow shorten Meta's windows, for Parley
	// and the fake Meta alike (zero: 24 h and 7 d).
	ReplyWindow, HumanAgentWindow time.Duration
	// Config sets more PARLEY_* variables (e.g. PARLEY_ECHO_WAIT).
	Config map[string]string
	// Metrics serves GET /metrics on a loopback port of its own
	// (Env.MetricsURL); without it no metrics listener runs, here or in
	// ProcessEnv's processes (PARLEY_METRICS_ADDR=off).
	Metrics bool
}

// Env is a running Parley.
type Env struct {
	t        testing.TB
	Dir      string
	URL      string // Parley's base URL (REST API and gateway)
	AdminKey string
	App      *app.App
	Meta     *fakemeta.Server
	MetaURL  string
	// TemporalAddress is the dev server's frontend; it survives RestartTemporal.
	TemporalAddress string
	// MetricsURL is GET /metrics (Options.Metrics); it survives RestartParley.
	MetricsURL string

	cli      string
	cfg      config.Config
	vars     map[string]string
	noWorker bool
	inMemory bool
	temporal *testsuite.DevServer
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex

	// metricsAddr is the metrics listener's address ("" none).
	metricsAddr string
}

// TemporalCLI finds the Temporal CLI: $PARLEY_TEMPORAL_CLI, else bin/temporal
// in the nearest folder up that has it.
func TemporalCLI() (string, error) {
	if p := os.Getenv("PARLEY_TEMPORAL_CLI"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("PARLEY_TEMPORAL_CLI=%s: %w", p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "bin", "temporal")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no Temporal CLI: run `make test` (it builds ./bin/temporal) or set PARLEY_TEMPORAL_CLI")
		}
		dir = parent
	}
}

// Start brings everything up; t.Cleanup tears it down.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	cli, err := TemporalCLI()
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{t: t, Dir: t.TempDir(), cli: cli, inMemory: opts.TemporalInMemory}
	e.TemporalAddress = freeAddr(t)
	e.startTemporal()

	if opts.ReplyWindow == 0 {
		opts.ReplyWindow = 24 * time.Hour
	}
	if opts.HumanAgentWindow == 0 {
		opts.HumanAgentWindow = 7 * 24 * time.Hour
	}
	e.Meta = fakemeta.New(fakemeta.Options{Logger: quietLogger(), ReplyWindow: opts.ReplyWindow, HumanAgentWindow: opts.HumanAgentWindow})
	metaSrv := httptest.NewServer(e.Meta.Handler())
	t.Cleanup(metaSrv.Close)
	e.MetaURL = metaSrv.URL

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.URL = "http://" + ln.Addr().String()
	e.AdminKey = "pk_admin_test_key_0123456789abcdef"
	dbURL := opts.DatabaseURL
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(e.Dir, "parley.db")
	}
	if opts.SignalTimeout == 0 {
		opts.SignalTimeout = 2 * time.Second
	}
	vars := map[string]string{
		"PARLEY_DATA_DIR":           e.Dir,
		"PARLEY_DATABASE_URL":       dbURL,
		"PARLEY_TEMPORAL_ADDRESS":   e.TemporalAddress,
		"PARLEY_TASK_QUEUE":         "parley-test",
		"PARLEY_HTTP_ADDR":          ln.Addr().String(),
		"PARLEY_PUBLIC_URL":         e.URL,
		"PARLEY_ENCRYPTION_KEY":     "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"PARLEY_ADMIN_API_KEY":      e.AdminKey,
		"PARLEY_GRAPH_API_URL":      e.MetaURL,
		"PARLEY_SIGNAL_TIMEOUT":     opts.SignalTimeout.String(),
		"PARLEY_REPLY_WINDOW":       opts.ReplyWindow.String(),
		"PARLEY_HUMAN_AGENT_WINDOW": opts.HumanAgentWindow.String(),
		"PARLEY_LOG_LEVEL":          "warn",
		"PARLEY_TEMPORAL_NAMESPACE": "default",
		// Parallel tests (and their parley processes) must not all take
		// the default port; Options.Metrics serves on a free one.
		"PARLEY_METRICS_ADDR": "off",
	}
	for k, v := range opts.Config {
		vars[k] = v
	}
	e.vars = vars
	cfg, err := config.FromEnv(func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	e.cfg, e.noWorker = cfg, opts.NoWorker
	if opts.Metrics {
		e.metricsAddr = freeAddr(t)
		e.MetricsURL = "http://" + e.metricsAddr + "/metrics"
	}
	e.startParley(ln)
	t.Cleanup(e.stop)
	return e
}

// startParley runs the HTTP server (and the worker) on ln.
func (e *Env) startParley(ln net.Listener) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	var err error
	e.App, err = app.Open(ctx, e.cfg, quietLogger())
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	e.goRun(func() error { return e.App.ServeHTTP(ctx, ln) })
	if e.metricsAddr != "" {
		mln, err := net.Listen("tcp", e.metricsAddr)
		if err != nil {
			e.t.Fatalf("metrics listener on %s: %v", e.metricsAddr, err)
		}
		e.goRun(func() error { return e.App.ServeMetrics(ctx, mln) })
	}
	if !e.noWorker {
		e.goRun(func() error { return e.App.RunWorker(ctx) })
	}
}

func (e *Env) stopParley() {
	e.cancel()
	e.wg.Wait()
	e.App.Close()
}

// RestartParley stops the gateway, REST API and worker and starts them
// again on the same address, database and Temporal: a process restart.
func (e *Env) RestartParley() {
	e.t.Helper()
	e.stopParley()
	ln, err := net.Listen("tcp", e.cfg.HTTPAddr)
	if err != nil {
		e.t.Fatalf("listen again on %s: %v", e.cfg.HTTPAddr, err)
	}
	e.startParley(ln)
}

func (e *Env) goRun(f func() error) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := f(); err != nil {
			e.t.Errorf("testenv: %v", err)
		}
	}()
}

func (e *Env) stop() {
	e.stopParley()
	e.StopTemporal()
}

func (e *Env) startTemporal() {
	e.t.Helper()
	logPath := filepath.Join(e.Dir, "temporal.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { log.Close() })
	db := filepath.Join(e.Dir, "temporal.db")
	if e.inMemory {
		db = ""
	}
	// The dev server picks free ports for its internal services when it
	// starts; on a busy machine another process can take one first and the
	// server exits. A second attempt picks other ports.
	const attempts = 3
	for i := 1; ; i++ {
		// It is up in seconds; a server that died never answers.
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
			ExistingPath:  e.cli,
			ClientOptions: &client.Options{HostPort: e.TemporalAddress, Namespace: "default", Logger: tlog.NewStructuredLogger(quietLogger())},
			DBFilename:    db,
			LogLevel:      "error",
			ExtraArgs:     worker.DevServerFlags(),
			Stdout:        log,
			Stderr:        log,
		})
		cancel()
		if err == nil {
			e.mu.Lock()
			e.temporal = srv
			e.mu.Unlock()
			return
		}
		if i == attempts {
			e.t.Fatalf("start the Temporal dev server (%d attempts): %v\nend of %s:\n%s", attempts, err, logPath, tail(logPath, 2000))
		}
		e.t.Logf("start the Temporal dev server, attempt %d: %v\nend of %s:\n%s", i, err, logPath, tail(logPath, 2000))
	}
}

// tail is the last n bytes of a file, for failure messages.
func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// StopTemporal stops the dev server (its data stays on disk).
func (e *Env) StopTemporal() {
	e.mu.Lock()
	srv := e.temporal
	e.temporal = nil
	e.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Client().Close()
	if err := srv.Stop(); err != nil && !strings.Contains(err.Error(), "signal: interrupt") {
		e.t.Logf("stop temporal: %v", err)
	}
}

// StartTemporal starts the dev server again on the same address and data.
func (e *Env) StartTemporal() { e.startTemporal() }

// ProcessEnv is the environment of a separate Parley process (`parley
// worker`) that shares this Env's database, Temporal and fake Meta.
func (e *Env) ProcessEnv() []string {
	var env []string
	for k, v := range e.vars {
		if k != "PARLEY_HTTP_ADDR" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Temporal is a client of the dev server.
func (e *Env) Temporal() client.Client { return e.App.Temporal }

// Do calls Parley's HTTP API with the admin key; body is JSON-encoded unless
// it is []byte.
func (e *Env) Do(method, path string, body any) (int, []byte) {
	e.t.Helper()
	return e.DoWithKey(e.AdminKey, method, path, body)
}

// Observer, when set (by a test binary's TestMain), sees every request
// Do and DoWithKey make with its answer: the api tests validate them all
// against the OpenAPI document.
var Observer func(t testing.TB, req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte)

// DoWithKey is Do with another API key ("" sends none).
func (e *Env) DoWithKey(key, method, path string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	var sent []byte
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				e.t.Fatal(err)
			}
		}
		sent = b
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if Observer != nil {
		Observer(e.t, req, sent, resp.StatusCode, resp.Header, raw)
	}
	return resp.StatusCode, raw
}

// MustDo is Do that fails the test unless the status is want, and decodes
// the answer into out (when non-nil).
func (e *Env) MustDo(want int, method, path string, body, out any) {
	e.t.Helper()
	status, raw := e.Do(method, path, body)
	if status != want {
		e.t.Fatalf("%s %s: got %d, want %d: %s", method, path, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

// Agent is an agent with its API key.
type Agent struct {
	ID  string
	Key string
}

// CreateAgent creates an agent through the API.
func (e *Env) CreateAgent(name, email string) Agent {
	e.t.Helper()
	var out struct {
		Agent struct {
			ID string `json:"id"`
		} `json:"agent"`
		Secret string `json:"secret"`
	}
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/agents", map[string]string{"name": name, "email": email}, &out)
	return Agent{ID: out.Agent.ID, Key: out.Secret}
}

// Page is what the API returns for a page.
type Page struct {
	ID                 string `json:"id"`
	AccountID          string `json:"account_id"`
	PageID             string `json:"page_id"`
	Name               string `json:"name"`
	CallbackURL        string `json:"callback_url"`
	VerifyToken        string `json:"verify_token"`
	ProvisioningState  string `json:"provisioning_state"`
	ProvisioningReason string `json:"provisioning_reason"`
	AccessTokenHint    string `json:"access_token_hint"`
}

// Account is what the API returns for an account.
type Account struct {
	ID    string `json:"id"`
	AppID string `json:"app_id"`
}

// CreateAccount creates an account through the API and its app in the fake Meta.
func (e *Env) CreateAccount(appID, appSecret string) Account {
	e.t.Helper()
	e.Meta.AddApp(appID, appSecret)
	var a Account
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/accounts", map[string]string{"name": "Acme " + appID, "app_id": appID, "app_secret": appSecret}, &a)
	return a
}

// CreatePage creates a page through the API (known to the fake Meta with token).
func (e *Env) CreatePage(acct Account, pageID, name, token string) Page {
	e.t.Helper()
	e.Meta.AddPage(acct.AppID, pageID, name, token)
	var p Page
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/accounts/"+acct.ID+"/pages", map[string]string{"name": name, "page_id": pageID, "access_token": token}, &p)
	return p
}

// ConnectWebhook saves the page's callback in the fake app settings, which
// runs Meta's verification handshake against Parley.
func (e *Env) ConnectWebhook(appID string, p Page) {
	e.t.Helper()
	if err := e.Meta.SetWebhook(context.Background(), appID, p.CallbackURL, p.VerifyToken, nil); err != nil {
		e.t.Fatalf("webhook handshake: %v", err)
	}
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func quietLogger() *slog.Logger {
	level := slog.LevelError
	if os.Getenv("PARLEY_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// StartAPIReplica runs a second Parley HTTP process (REST API, gateway and
// event stream, no worker) on its own address, sharing this Env's database
// and Temporal: two replicas behind a load balancer. It returns its base
// URL; it stops when the test ends.
func (e *Env) StartAPIReplica() string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := e.cfg
	cfg.HTTPAddr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, cfg, quietLogger())
	if err != nil {
		cancel()
		ln.Close()
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.ServeHTTP(ctx, ln) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("testenv: API replica: %v", err)
		}
		a.Close()
	})
	return "http://" + ln.Addr().String()
}
