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
