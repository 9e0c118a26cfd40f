package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"parley/config"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultsRunWithNothingInstalled(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "sqlite:data/parley.db" || c.TemporalAddress != "127.0.0.1:7233" || c.GraphAPIVersion != "v25.0" ||
		c.PublicURL != "http://127.0.0.1:8080" || c.SignalTimeout != 5*time.Second {
		t.Errorf("defaults = %+v", c)
	}
}

func TestBadValuesAreRefusedByName(t *testing.T) {
	for name, value := range map[string]string{
		"PARLEY_SIGNAL_TIMEOUT":    "soon",
		"PARLEY_PUBLIC_URL":        "parley.example.com",
		"PARLEY_GRAPH_API_VERSION": "25.0",
		"PARLEY_LOG_LEVEL":         "loud",
		"PARLEY_LOG_FORMAT":        "xml",
	} {
		_, err := config.FromEnv(env(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: error %v, want one naming the variable", name, value, err)
		}
	}
}

// The README's configuration table lists every variable Parley reads.
func TestREADMEListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Vars {
		if !strings.Contains(string(readme), "| `"+v.Name+"` |") {
			t.Errorf("README.md's configuration table lacks %s", v.Name)
		}
	}
}

func TestLiveEventSettings(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.EventsPollInterval != 250*time.Millisecond || c.EventsRetention != 24*time.Hour || c.EventsHeartbeat != 15*time.Second {
		t.Errorf("live event defaults: poll %v, retention %v, heartbeat %v; want 250ms, 24h, 15s",
			c.EventsPollInterval, c.EventsRetention, c.EventsHeartbeat)
	}
	c, err = config.FromEnv(env(map[string]string{"PARLEY_EVENTS_POLL_INTERVAL": "1s", "PARLEY_EVENTS_RETENTION": "2h", "PARLEY_EVENTS_HEARTBEAT": "5s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.EventsPollInterval != time.Second || c.EventsRetention != 2*time.Hour || c.EventsHeartbeat != 5*time.Second {
		t.Errorf("live event settings not read: %v, %v, %v", c.EventsPollInterval, c.EventsRetention, c.EventsHeartbeat)
	}
	for _, name := range []string{"PARLEY_EVENTS_POLL_INTERVAL", "PARLEY_EVENTS_RETENTION", "PARLEY_EVENTS_HEARTBEAT"} {
		for _, bad := range []string{"often", "0s", "-1m"} {
			if _, err := config.FromEnv(env(map[string]string{name: bad})); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: error %v, want one naming the variable", name, bad, err)
			}
		}
	}
}

func TestMetricsAddr(t *testing.T) {
	for value, want := range map[string]string{"": "127.0.0.1:9464", "0.0.0.0:9100": "0.0.0.0:9100", ":9464": ":9464", "off": "", "OFF": ""} {
		vars := map[string]string{}
		if value != "" {
			vars["PARLEY_METRICS_ADDR"] = value
		}
		c, err := config.FromEnv(env(vars))
		if err != nil {
			t.Fatalf("PARLEY_METRICS_ADDR=%q: %v", value, err)
		}
		if c.MetricsAddr != want {
			t.Errorf("PARLEY_METRICS_ADDR=%q: MetricsAddr %q, want %q", value, c.MetricsAddr, want)
		}
	}
	if _, err := config.FromEnv(env(map[string]string{"PARLEY_METRICS_ADDR": "9464"})); err == nil || !strings.Contains(err.Error(), "PARLEY_METRICS_ADDR") {
		t.Errorf("PARLEY_METRICS_ADDR=9464: error %v, want one naming the variable", err)
	}
}

// The Temporal connection comes from envconfig (TEMPORAL_* variables and
// profiles); PARLEY_TEMPORAL_ADDRESS and PARLEY_TEMPORAL_NAMESPACE, when
// set, win; with nothing set, the local defaults.
func TestTemporalClientConfiguration(t *testing.T) {
	dir := t.TempDir()
	none := dir + "/none.toml"
	profile := dir + "/temporal.toml"
	if err := os.WriteFile(profile, []byte("[profile.cloud]\naddress = \"acme.tmprl.cloud:7233\"\nnamespace = \"parley.acme\"\napi_key = \"secret\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		vars       map[string]string
		addr, ns   string
		tls, creds bool
	}{
		{"nothing set", map[string]string{"TEMPORAL_CONFIG_FILE": none}, "127.0.0.1:7233", "default", false, false},
		{"TEMPORAL_*", map[string]string{"TEMPORAL_CONFIG_FILE": none, "TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_NAMESPACE": "prod"}, "temporal:7233", "prod", false, false},
		{"PARLEY_* win", map[string]string{"TEMPORAL_CONFIG_FILE": none, "TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_NAMESPACE": "prod",
			"PARLEY_TEMPORAL_ADDRESS": "other:7233", "PARLEY_TEMPORAL_NAMESPACE": "mine"}, "other:7233", "mine", false, false},
		{"API key turns TLS on", map[string]string{"TEMPORAL_CONFIG_FILE": none, "TEMPORAL_ADDRESS": "eu-west-1.aws.api.temporal.io:7233",
			"TEMPORAL_NAMESPACE": "parley.acme", "TEMPORAL_API_KEY": "k"}, "eu-west-1.aws.api.temporal.io:7233", "parley.acme", true, true},
		{"TLS explicitly", map[string]string{"TEMPORAL_CONFIG_FILE": none, "TEMPORAL_TLS": "true"}, "127.0.0.1:7233", "default", true, false},
		{"profile", map[string]string{"TEMPORAL_CONFIG_FILE": profile, "TEMPORAL_PROFILE": "cloud"}, "acme.tmprl.cloud:7233", "parley.acme", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := config.FromEnv(env(c.vars))
			if err != nil {
				t.Fatal(err)
			}
			opts, err := cfg.TemporalClientOptions()
			if err != nil {
				t.Fatal(err)
			}
			if opts.HostPort != c.addr || opts.Namespace != c.ns || cfg.TemporalAddress != c.addr || cfg.TemporalNamespace != c.ns {
				t.Errorf("address %s, namespace %s (config %s, %s); want %s, %s", opts.HostPort, opts.Namespace, cfg.TemporalAddress, cfg.TemporalNamespace, c.addr, c.ns)
			}
			if (opts.ConnectionOptions.TLS != nil) != c.tls || cfg.TemporalTLS() != c.tls || (opts.Credentials != nil) != c.creds {
				t.Errorf("TLS %v (%t), credentials %v; want TLS %t, credentials %t", opts.ConnectionOptions.TLS, cfg.TemporalTLS(), opts.Credentials, c.tls, c.creds)
			}
			local := cfg.LocalTemporal(env(c.vars))
			if lo, _ := local.TemporalClientOptions(); lo.ConnectionOptions.TLS != nil || lo.Credentials != nil {
				t.Errorf("parley dev keeps the profile's TLS or credentials")
			}
		})
	}
	for name, vars := range map[string]map[string]string{
		"TEMPORAL_TLS_CLIENT_CERT_PATH": {"TEMPORAL_CONFIG_FILE": none, "TEMPORAL_TLS_CLIENT_CERT_PATH": dir + "/missing.pem", "TEMPORAL_TLS_CLIENT_KEY_PATH": dir + "/missing.key"},
		"TEMPORAL_PROFILE":              {"TEMPORAL_CONFIG_FILE": profile, "TEMPORAL_PROFILE": "missing"},
		"PARLEY_TEMPORAL_ADDRESS":       {"TEMPORAL_CONFIG_FILE": none, "PARLEY_TEMPORAL_ADDRESS": "temporal"},
	} {
		if _, err := config.FromEnv(env(vars)); err == nil || !strings.Contains(err.Error(), strings.Split(name, "_")[0]) {
			t.Errorf("%s: error %v, want one at start", name, err)
		}
	}
}

func TestRegisterSearchAttributes(t *testing.T) {
	for v, want := range map[string]bool{"": true, "true": true, "false": false, "0": false} {
		c, err := config.FromEnv(env(map[string]string{"PARLEY_REGISTER_SEARCH_ATTRIBUTES": v}))
		if err != nil || c.RegisterSearchAttributes != want {
			t.Errorf("%q: %t, %v; want %t", v, c.RegisterSearchAttributes, err, want)
		}
	}
	if _, err := config.FromEnv(env(map[string]string{"PARLEY_REGISTER_SEARCH_ATTRIBUTES": "maybe"})); err == nil || !strings.Contains(err.Error(), "PARLEY_REGISTER_SEARCH_ATTRIBUTES") {
		t.Errorf("bad value: %v", err)
	}
}

func TestWorkflowCacheSize(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.WorkflowCacheSize != config.DefaultWorkflowCacheSize {
		t.Errorf("default WorkflowCacheSize %d, want %d", c.WorkflowCacheSize, config.DefaultWorkflowCacheSize)
	}
	if c, err = config.FromEnv(env(map[string]string{"PARLEY_WORKFLOW_CACHE_SIZE": "500"})); err != nil || c.WorkflowCacheSize != 500 {
		t.Errorf("PARLEY_WORKFLOW_CACHE_SIZE=500: %d, %v", c.WorkflowCacheSize, err)
	}
	for _, bad := range []string{"0", "-5", "many", "2k", "1.5"} {
		if _, err := config.FromEnv(env(map[string]string{"PARLEY_WORKFLOW_CACHE_SIZE": bad})); err == nil || !strings.Contains(err.Error(), "PARLEY_WORKFLOW_CACHE_SIZE") {
			t.Errorf("PARLEY_WORKFLOW_CACHE_SIZE=%q: error %v, want one naming the variable", bad, err)
		}
	}
}
