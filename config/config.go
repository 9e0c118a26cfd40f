// Package config reads Parley's configuration from the environment.
//
// Every variable has a default that runs Parley on one machine with nothing
// installed (embedded SQLite in the data folder, a local Temporal dev server).
package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
)

// Var documents one environment variable; Vars is the table the README shows.
type Var struct {
	Name, Default, Help string
}

// Vars lists every environment variable Parley reads, with its default.
var Vars = []Var{
	{"PARLEY_DATA_DIR", "./data", "Folder for the embedded database, the dev encryption key and the dev admin API key."},
	{"PARLEY_DATABASE_URL", "sqlite:<data dir>/parley.db", "postgres://user:pass@host:5432/db (pgx) or sqlite:<path> (embedded)."},
	{"PARLEY_TEMPORAL_ADDRESS", "127.0.0.1:7233", "Temporal frontend host:port. When unset, TEMPORAL_ADDRESS (or the TEMPORAL_PROFILE profile's address) applies, else the default."},
	{"PARLEY_TEMPORAL_NAMESPACE", "default", "Temporal namespace. When unset, TEMPORAL_NAMESPACE (or the profile's namespace) applies, else the default. TLS, mTLS and API keys come from Temporal's own variables and profiles: TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE (see README, Production)."},
	{"PARLEY_REGISTER_SEARCH_ATTRIBUTES", "true", "The worker registers Parley's search attributes in the namespace at start. false: it only checks that they exist and stops with the list to create (Temporal Cloud: tcld namespace search-attributes add)."},
	{"PARLEY_TASK_QUEUE", "parley", "Temporal task queue of the conversation workflows."},
	{"PARLEY_HTTP_ADDR", "127.0.0.1:8080", "Listen address of the gateway and REST API."},
	{"PARLEY_METRICS_ADDR", "127.0.0.1:9464", "Listen address of GET /metrics (Prometheus format), apart from the API: loopback only by default; 0.0.0.0:9464 for a scraper on another host or container (keep that port private), off to serve no metrics."},
	{"PARLEY_PUBLIC_URL", "http://127.0.0.1:8080", "Public base URL (HTTPS in production): callback URLs are built from it."},
	{"PARLEY_ENCRYPTION_KEY", "(generated into <data dir>/encryption.key, with a warning)", "32-byte key, base64 or hex, for secrets at rest (AES-256-GCM)."},
	{"PARLEY_ADMIN_API_KEY", "(generated into <data dir>/admin-api-key)", "Bootstrap API key with the admin role."},
	{"PARLEY_GRAPH_API_URL", "https://graph.facebook.com", "Graph API base URL (make dev points it at the simulated Messenger)."},
	{"PARLEY_GRAPH_API_VERSION", "v25.0", "Graph API version."},
	{"PARLEY_REPLY_WINDOW", "24h", "Meta's standard messaging window. Demos and tests shorten it; production never changes it."},
	{"PARLEY_HUMAN_AGENT_WINDOW", "168h", "Meta's HUMAN_AGENT window (7 days). Demos and tests shorten it; production never changes it."},
	{"PARLEY_WINDOW_EDGE_MARGIN", "2s", "Allowance for latency and clock skew at a window's end: a reply that would reach Meta within it after the 24-hour window closed goes as HUMAN_AGENT (tag on) or is not sent."},
	{"PARLEY_ECHO_WAIT", "15s", "After a send with no clear answer from Meta, how long to wait for its echo before looking for it on Meta's side."},
	{"PARLEY_BLIND_ECHO_WAIT", "10m", "The same wait when Meta's side cannot be read (the page token lacks pages_read_engagement and pages_manage_metadata): then resent."},
	{"PARLEY_SEND_TIMEOUT", "30s", "How long one Send API attempt may take before its outcome counts as unknown (a worker that died mid-call included)."},
	{"PARLEY_MAX_SIGNALS_PER_RUN", "1000", "A conversation continues as new after this many signals (Temporal's limit is 10,000)."},
	{"PARLEY_MAX_EVENTS_PER_RUN", "3000", "A conversation continues as new after this many history events (Temporal suggests ~4,096)."},
	{"PARLEY_WORKFLOW_CACHE_SIZE", "2000", "How many conversations a worker process keeps in memory (Temporal's sticky workflow cache; with 10,000, the SDK's default, a worker took about 750 MB): a message to one that is not cached replays its history first (a few milliseconds for most). Open conversations beyond it cost database rows and Temporal's storage, not the worker's memory."},
	{"PARLEY_API_UPDATE_WAIT", "60s", "How long an agent's request waits for its conversation (a reply's send included): past it the API answers 202 in_progress and the reply goes on (a throttled page). Tests shorten it."},
	{"PARLEY_MAX_THROTTLE_PAUSE", "24h", "The longest a throttled page's sends pause (Meta's estimated_time_to_regain_access, else a minute). Demos and tests shorten it; production leaves it."},
	{"PARLEY_SIGNAL_TIMEOUT", "5s", "How long the gateway waits for Temporal to accept a webhook's events before answering 503."},
	{"PARLEY_EVENTS_POLL_INTERVAL", "250ms", "Live events (GET /api/v1/events): how often each API process reads new events when nothing wakes it (on PostgreSQL, LISTEN/NOTIFY wakes it at once)."},
	{"PARLEY_EVENTS_RETENTION", "24h", "Live events are kept this long: a client may resume with Last-Event-ID within it; older ones are pruned."},
	{"PARLEY_EVENTS_HEARTBEAT", "15s", "Live events: how often an idle stream sends a heartbeat comment, so that proxies keep it open."},
	{"PARLEY_BLOB_URL", "file://<data dir>/blobs", "Where files are kept (what customers send, what agents upload): a gocloud.dev bucket URL, e.g. s3://bucket?region=eu-west-1 (S3-compatible: add &endpoint=https://...&use_path_style=true) or gs://bucket when several replicas share them."},
	{"PARLEY_CODEC_KEY_TTL", "1m", "How long a process caches a customer's data key (what Temporal keeps is encrypted with it): after an erasure, other processes forget the key within this time."},
	{"PARLEY_CODEC_ORIGINS", "(any)", "Comma-separated browser origins allowed to call the Temporal codec endpoint (/api/v1/temporal-codec), e.g. https://temporal.example.com: Temporal Web's."},
	{"PARLEY_PAGE_HEALTH_EVERY", "1h", "How often the page health schedule (parley-page-health, in Temporal Web) checks every page: token, subscription, silence."},
	{"PARLEY_PAGE_EXPIRING_WITHIN", "168h", "A page whose token or token data access ends sooner is expiring."},
	{"PARLEY_PAGE_SILENCE_AFTER", "24h", "A page that used to be busy and had no webhook for longer is silent (a page may set its own threshold)."},
	{"PARLEY_ALERT_URL", "(none)", "Receives a signed POST (JSON) when a page changes state (expiring, unsubscribed, silent, token_invalid, back to running...), once per change."},
	{"PARLEY_ALERT_SECRET", "(none)", "Signs the alerts: X-Parley-Signature-256: sha256=<hex HMAC-SHA256 of the body>. Never logged."},
	{"PARLEY_LOG_LEVEL", "info", "debug, info, warn or error."},
	{"PARLEY_LOG_FORMAT", "text", "text or json."},
	{"PARLEY_TEMPORAL_CLI", "./bin/temporal", "make dev and the tests: the Temporal CLI that runs the dev server."},
	{"PARLEY_SIM_URL", "http://127.0.0.1:8090", "parley sim: the simulated Messenger's control API."},
}

// Config is Parley's runtime configuration.
type Config struct {
	DataDir           string
	DatabaseURL       string
	BlobURL           string
	TemporalAddress   string
	TemporalNamespace string
	// Temporal is the Temporal client profile (envconfig: the TOML
	// profile, then TEMPORAL_* variables): TLS, mTLS, API key, gRPC
	// metadata. Its Address and Namespace are replaced by TemporalAddress
	// and TemporalNamespace (TemporalClientOptions).
	Temporal envconfig.ClientConfigProfile
	// RegisterSearchAttributes: the worker adds missing search attributes
	// (false: it only checks them).
	RegisterSearchAttributes bool
	TaskQueue                string
	HTTPAddr                 string
	PublicURL                string
	// Page health (issue 10): the schedule's interval, the thresholds, and
	// where alerts go (AlertSecret signs them; never logged).
	PageHealthEvery    time.Duration
	PageExpiringWithin time.Duration
	PageSilenceAfter   time.Duration
	AlertURL           string
	AlertSecret        string
	EncryptionKey      string
	AdminAPIKey        string
	GraphAPIURL        string
	GraphAPIVersion    string
	SignalTimeout      time.Duration
	ReplyWindow        time.Duration
	HumanAgentWindow   time.Duration
	WindowEdgeMargin   time.Duration
	EchoWait           time.Duration
	BlindEchoWait      time.Duration
	SendTimeout        time.Duration
	MaxThrottlePause   time.Duration
	// UpdateWait is PARLEY_API_UPDATE_WAIT.
	UpdateWait       time.Duration
	MaxSignalsPerRun int
	MaxEventsPerRun  int
	LogLevel         string
	LogFormat        string
	level            slog.Level
	TemporalCLI      string
	SimURL           string

	// EventsPollInterval, EventsRetention and EventsHeartbeat tune the
	// live event stream (GET /api/v1/events).
	EventsPollInterval time.Duration
	EventsRetention    time.Duration
	EventsHeartbeat    time.Duration

	// MetricsAddr is where GET /metrics listens; "" when off.
	MetricsAddr string

	// CodecKeyTTL is how long data keys stay cached (payloadcodec);
	// CodecOrigins the origins allowed to call the codec (empty: any).
	CodecKeyTTL  time.Duration
	CodecOrigins []string

	// WorkflowCacheSize is the Temporal SDK's sticky workflow cache, in
	// workflows, for the whole process (DefaultWorkflowCacheSize).
	WorkflowCacheSize int
}

// FromEnv reads the configuration; lookup is os.LookupEnv in production.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(name, def string) string {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	c := Config{
		DataDir:         get("PARLEY_DATA_DIR", "./data"),
		TaskQueue:       get("PARLEY_TASK_QUEUE", "parley"),
		HTTPAddr:        get("PARLEY_HTTP_ADDR", "127.0.0.1:8080"),
		EncryptionKey:   get("PARLEY_ENCRYPTION_KEY", ""),
		AdminAPIKey:     get("PARLEY_ADMIN_API_KEY", ""),
		GraphAPIURL:     strings.TrimRight(get("PARLEY_GRAPH_API_URL", "https://graph.facebook.com"), "/"),
		GraphAPIVersion: get("PARLEY_GRAPH_API_VERSION", "v25.0"),
		LogLevel:        get("PARLEY_LOG_LEVEL", "info"),
		LogFormat:       get("PARLEY_LOG_FORMAT", "text"),
		TemporalCLI:     get("PARLEY_TEMPORAL_CLI", "./bin/temporal"),
		SimURL:          strings.TrimRight(get("PARLEY_SIM_URL", "http://127.0.0.1:8090"), "/"),
	}
	if err := c.loadTemporal(lookup, get); err != nil {
		return Config{}, err
	}
	switch v := strings.ToLower(get("PARLEY_REGISTER_SEARCH_ATTRIBUTES", "true")); v {
	case "true", "1", "yes":
		c.RegisterSearchAttributes = true
	case "false", "0", "no":
	default:
		return Config{}, fmt.Errorf("PARLEY_REGISTER_SEARCH_ATTRIBUTES: want true or false, got %q", v)
	}
	c.MetricsAddr = get("PARLEY_METRICS_ADDR", "127.0.0.1:9464")
	if strings.EqualFold(c.MetricsAddr, "off") {
		c.MetricsAddr = ""
	} else if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
		return Config{}, fmt.Errorf("PARLEY_METRICS_ADDR: want host:port such as 127.0.0.1:9464, or off, got %q", c.MetricsAddr)
	}
	c.DatabaseURL = get("PARLEY_DATABASE_URL", "sqlite:"+filepath.Join(c.DataDir, "parley.db"))
	c.BlobURL = get("PARLEY_BLOB_URL", "")
	if c.BlobURL != "" {
		if u, err := url.Parse(c.BlobURL); err != nil || u.Scheme == "" {
			return Config{}, fmt.Errorf("PARLEY_BLOB_URL: want a bucket URL such as file:///var/lib/parley/blobs, s3://bucket or gs://bucket, got %q", c.BlobURL)
		}
	}
	c.PublicURL = strings.TrimRight(get("PARLEY_PUBLIC_URL", "http://"+c.HTTPAddr), "/")
	c.AlertURL, c.AlertSecret = get("PARLEY_ALERT_URL", ""), get("PARLEY_ALERT_SECRET", "")
	if c.AlertURL != "" {
		if u, err := url.Parse(c.AlertURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return Config{}, fmt.Errorf("PARLEY_ALERT_URL: want an absolute http(s) URL, got %q", c.AlertURL)
		}
	}
	for _, o := range strings.Split(get("PARLEY_CODEC_ORIGINS", ""), ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			c.CodecOrigins = append(c.CodecOrigins, o)
		}
	}

	var err error
	if c.SignalTimeout, err = time.ParseDuration(get("PARLEY_SIGNAL_TIMEOUT", "5s")); err != nil || c.SignalTimeout <= 0 {
		return Config{}, fmt.Errorf("PARLEY_SIGNAL_TIMEOUT: want a positive duration such as 5s, got %q", get("PARLEY_SIGNAL_TIMEOUT", ""))
	}
	for name, raw := range map[string]string{"PARLEY_PUBLIC_URL": c.PublicURL, "PARLEY_GRAPH_API_URL": c.GraphAPIURL, "PARLEY_SIM_URL": c.SimURL} {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Config{}, fmt.Errorf("%s: want an absolute http(s) URL, got %q", name, raw)
		}
	}
	for _, d := range []struct {
		name, def string
		dst       *time.Duration
	}{{"PARLEY_REPLY_WINDOW", "24h", &c.ReplyWindow}, {"PARLEY_HUMAN_AGENT_WINDOW", "168h", &c.HumanAgentWindow}} {
		v, err := time.ParseDuration(get(d.name, d.def))
		if err != nil || v <= 0 {
			return Config{}, fmt.Errorf("%s: want a positive duration such as %s, got %q", d.name, d.def, get(d.name, d.def))
		}
		*d.dst = v
	}
	for _, d := range []struct {
		name, def string
		dst       *time.Duration
	}{{"PARLEY_WINDOW_EDGE_MARGIN", "2s", &c.WindowEdgeMargin}, {"PARLEY_ECHO_WAIT", "15s", &c.EchoWait}, {"PARLEY_BLIND_ECHO_WAIT", "10m", &c.BlindEchoWait}, {"PARLEY_SEND_TIMEOUT", "30s", &c.SendTimeout}, {"PARLEY_MAX_THROTTLE_PAUSE", "24h", &c.MaxThrottlePause}, {"PARLEY_API_UPDATE_WAIT", "60s", &c.UpdateWait},
		{"PARLEY_EVENTS_POLL_INTERVAL", "250ms", &c.EventsPollInterval}, {"PARLEY_EVENTS_RETENTION", "24h", &c.EventsRetention},
		{"PARLEY_EVENTS_HEARTBEAT", "15s", &c.EventsHeartbeat}, {"PARLEY_CODEC_KEY_TTL", "1m", &c.CodecKeyTTL},
		{"PARLEY_PAGE_HEALTH_EVERY", "1h", &c.PageHealthEvery}, {"PARLEY_PAGE_EXPIRING_WITHIN", "168h", &c.PageExpiringWithin},
		{"PARLEY_PAGE_SILENCE_AFTER", "24h", &c.PageSilenceAfter}} {
		v, err := time.ParseDuration(get(d.name, d.def))
		if err != nil || v <= 0 {
			return Config{}, fmt.Errorf("%s: want a positive duration such as %s, got %q", d.name, d.def, get(d.name, d.def))
		}
		*d.dst = v
	}
	for _, n := range []struct {
		name, def string
		min, max  int
		dst       *int
	}{{"PARLEY_MAX_SIGNALS_PER_RUN", "1000", 10, 9000, &c.MaxSignalsPerRun}, {"PARLEY_MAX_EVENTS_PER_RUN", "3000", 200, 40000, &c.MaxEventsPerRun}} {
		v, err := strconv.Atoi(get(n.name, n.def))
		if err != nil || v < n.min || v > n.max {
			return Config{}, fmt.Errorf("%s: want a whole number from %d to %d, got %q", n.name, n.min, n.max, get(n.name, n.def))
		}
		*n.dst = v
	}
	cacheSize := get("PARLEY_WORKFLOW_CACHE_SIZE", strconv.Itoa(DefaultWorkflowCacheSize))
	if c.WorkflowCacheSize, err = strconv.Atoi(cacheSize); err != nil || c.WorkflowCacheSize <= 0 {
		return Config{}, fmt.Errorf("PARLEY_WORKFLOW_CACHE_SIZE: want a positive whole number of conversations such as %d, got %q", DefaultWorkflowCacheSize, cacheSize)
	}
	if c.HumanAgentWindow < c.ReplyWindow {
		return Config{}, fmt.Errorf("PARLEY_HUMAN_AGENT_WINDOW (%s) must not be shorter than PARLEY_REPLY_WINDOW (%s)", c.HumanAgentWindow, c.ReplyWindow)
	}
	if !strings.HasPrefix(c.GraphAPIVersion, "v") {
		return Config{}, fmt.Errorf("PARLEY_GRAPH_API_VERSION: want a version such as v25.0, got %q", c.GraphAPIVersion)
	}
	if c.level, err = ParseLogLevel(c.LogLevel); err != nil {
		return Config{}, err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return Config{}, fmt.Errorf("PARLEY_LOG_FORMAT: want text or json, got %q", c.LogFormat)
	}
	return c, nil
}

// DefaultWorkflowCacheSize is how many workflows a worker process keeps in
// memory by default. With the SDK's default, 10,000, `parley serve` was at
// 748 MB with 10,000 open conversations: about 75 KB of resident memory
// each (the workflow's state and goroutines, and the garbage the GC lets
// the process keep beside them). Most open conversations are idle, waiting
// for a customer or an agent; a message to one that is not cached costs a
// replay of its history: one history fetch, then a few milliseconds of CPU
// for a conversation of a few dozen events (BenchmarkOpenConversations:
// about 3 ms), at most PARLEY_MAX_EVENTS_PER_RUN events. 2,000 (about
// 150 MB) holds every conversation agents are working on at once on one
// worker with room to spare (hundreds of agents at a few conversations
// each), so that replays are for the idle ones only.
const DefaultWorkflowCacheSize = 2000

// Default Temporal frontend and namespace, when neither PARLEY_* nor
// TEMPORAL_* (nor a profile) names them.
const (
	DefaultTemporalAddress   = "127.0.0.1:7233"
	DefaultTemporalNamespace = "default"
)

// loadTemporal reads the Temporal client profile through envconfig (the
// TOML file of TEMPORAL_CONFIG_FILE or ~/.config/temporalio/temporal.toml,
// its TEMPORAL_PROFILE profile, then the TEMPORAL_* variables), then lets
// PARLEY_TEMPORAL_ADDRESS and PARLEY_TEMPORAL_NAMESPACE, when set, override
// its address and namespace. With nothing set: 127.0.0.1:7233, default.
func (c *Config) loadTemporal(lookup func(string) (string, bool), get func(name, def string) string) error {
	prof, err := envconfig.LoadClientConfigProfile(envconfig.LoadClientConfigProfileOptions{EnvLookup: envLookup(lookup)})
	if err != nil {
		return fmt.Errorf("temporal client configuration (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE, TEMPORAL_* variables): %w", err)
	}
	c.Temporal = prof
	c.TemporalAddress = get("PARLEY_TEMPORAL_ADDRESS", firstNonEmpty(strings.TrimSpace(prof.Address), DefaultTemporalAddress))
	c.TemporalNamespace = get("PARLEY_TEMPORAL_NAMESPACE", firstNonEmpty(strings.TrimSpace(prof.Namespace), DefaultTemporalNamespace))
	if _, _, err := net.SplitHostPort(c.TemporalAddress); err != nil {
		return fmt.Errorf("PARLEY_TEMPORAL_ADDRESS (or TEMPORAL_ADDRESS): want host:port such as 127.0.0.1:7233, got %q", c.TemporalAddress)
	}
	// TLS files are read now: a wrong path stops the process at start.
	if _, err := c.TemporalClientOptions(); err != nil {
		return err
	}
	return nil
}

// TemporalClientOptions are the Temporal client options of the profile
// (TLS, mTLS, API key, gRPC metadata, authority) on TemporalAddress and
// TemporalNamespace. The caller adds the logger, converters and metrics.
func (c Config) TemporalClientOptions() (client.Options, error) {
	prof := c.Temporal
	prof.Address, prof.Namespace = c.TemporalAddress, c.TemporalNamespace
	opts, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal client configuration (TEMPORAL_TLS_*, TEMPORAL_API_KEY or the profile): %w", err)
	}
	return opts, nil
}

// TemporalTLS says whether the Temporal client uses TLS (for logs).
func (c Config) TemporalTLS() bool {
	if c.Temporal.TLS != nil {
		return !c.Temporal.TLS.Disabled
	}
	return c.Temporal.APIKey != ""
}

// LocalTemporal is the configuration for a local dev server (parley dev):
// the profile and TEMPORAL_* variables are ignored; PARLEY_TEMPORAL_ADDRESS
// and PARLEY_TEMPORAL_NAMESPACE (or their defaults) apply.
func (c Config) LocalTemporal(lookup func(string) (string, bool)) Config {
	get := func(name, def string) string {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	c.Temporal = envconfig.ClientConfigProfile{}
	c.TemporalAddress = get("PARLEY_TEMPORAL_ADDRESS", DefaultTemporalAddress)
	c.TemporalNamespace = get("PARLEY_TEMPORAL_NAMESPACE", DefaultTemporalNamespace)
	return c
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// envLookup adapts a lookup function to envconfig: its Environ (for the
// TEMPORAL_GRPC_META_* variables) lists the process's variables that lookup
// also knows, with lookup's values.
type envLookup func(string) (string, bool)

func (l envLookup) LookupEnv(k string) (string, bool) { return l(k) }

func (l envLookup) Environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if v, ok := l(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// ParseLogLevel maps PARLEY_LOG_LEVEL to a slog level.
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("PARLEY_LOG_LEVEL: want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// Logger builds the process logger.
func (c Config) Logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
