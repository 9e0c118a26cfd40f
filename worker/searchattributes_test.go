package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"parley/app"
	"parley/config"
	"parley/testenv"
	"parley/worker"
)

func TestClassifyTemporalErrors(t *testing.T) {
	tlsErr := status.Error(codes.Unavailable, `connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"`)
	for _, c := range []struct {
		name      string
		err       error
		permanent bool
		hint      string
	}{
		{"permission denied", serviceerror.NewPermissionDenied("Request unauthorized.", ""), true, "no access to namespace"},
		{"unauthenticated (status)", status.Error(codes.Unauthenticated, "invalid API key"), true, "TEMPORAL_API_KEY"},
		{"namespace not found", serviceerror.NewNamespaceNotFound("nope"), true, "does not exist"},
		{"not found", serviceerror.NewNotFound("namespace nope is not found"), true, "does not exist"},
		{"invalid argument", serviceerror.NewInvalidArgument("bad"), true, "invalid"},
		{"unimplemented", serviceerror.NewUnimplemented("no operator service"), true, "PARLEY_REGISTER_SEARCH_ATTRIBUTES=false"},
		{"tls handshake", tlsErr, true, "TLS handshake"},
		{"tls to a plaintext server", status.Error(codes.Unavailable, `connection error: desc = "transport: authentication handshake failed: tls: first record does not look like a TLS handshake"`), true, "TEMPORAL_TLS"},
		{"wrapped permission denied", fmt.Errorf("failed reaching server: %w", serviceerror.NewPermissionDenied("no", "")), true, "no access"},
		{"wrapped tls", fmt.Errorf("list search attributes: %w", tlsErr), true, "TLS"},
		{"unavailable", serviceerror.NewUnavailable("connection refused"), false, ""},
		{"connection refused (status)", status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:7233: connect: connection refused"`), false, ""},
		{"deadline (status)", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), false, ""},
		{"deadline (context)", fmt.Errorf("failed reaching server: %w", context.DeadlineExceeded), false, ""},
		{"resource exhausted", serviceerror.NewResourceExhausted(0, "busy"), false, ""},
		{"canceled", context.Canceled, false, ""},
		{"plain", errors.New("something"), false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, hint := worker.Classify(c.err, "parley")
			if p != c.permanent || !strings.Contains(hint, c.hint) {
				t.Errorf("Classify(%v) = %t, %q; want %t with %q", c.err, p, hint, c.permanent, c.hint)
			}
			if worker.IsPermanent(c.err) != c.permanent {
				t.Errorf("IsPermanent(%v) != %t", c.err, c.permanent)
			}
		})
	}
	if !worker.IsPermanent(fmt.Errorf("x: %w", &worker.PermanentError{Err: errors.New("missing")})) {
		t.Error("a wrapped PermanentError is not permanent")
	}
}

func TestSearchAttributesHelpListsEveryAttribute(t *testing.T) {
	h := worker.SearchAttributesHelp("parley.acme")
	for _, s := range []string{"ParleyPageID Keyword", "ParleyReplyWindowDeadline Datetime", "tcld namespace search-attributes add --namespace parley.acme",
		`--search-attribute "ParleyState=Keyword"`, "temporal operator search-attribute create --namespace parley.acme --type Keyword --name ParleyPageID --name ParleyPSID", "--type Datetime --name ParleyReplyWindowDeadline"} {
		if !strings.Contains(h, s) {
			t.Errorf("help lacks %q:\n%s", s, h)
		}
	}
}

// Against a real dev server (started without Parley's search attributes):
// a wrong namespace, TLS to a plaintext server and check-only mode with
// missing attributes fail at once; an unreachable server does not.
func TestSearchAttributesOnDevServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
	cli, err := testenv.TemporalCLI()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  cli,
		ClientOptions: &client.Options{HostPort: addr, Namespace: "default", Logger: tlog.NewStructuredLogger(quiet)},
		LogLevel:      "error",
		Stdout:        io.Discard,
		Stderr:        io.Discard,
	})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Client().Close(); _ = srv.Stop() })
	c := srv.Client()

	timed := func(f func(ctx context.Context) error) (error, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		err := f(ctx)
		return err, time.Since(start)
	}

	// A namespace that does not exist.
	err, took := timed(func(ctx context.Context) error {
		return worker.EnsureSearchAttributes(ctx, c, worker.SearchAttributeOptions{Namespace: "no-such-namespace", Register: true, Logger: quiet})
	})
	if err == nil || !worker.IsPermanent(err) || !strings.Contains(err.Error(), "no-such-namespace") || took > 5*time.Second {
		t.Errorf("wrong namespace: err %v (permanent %t) after %v; want a permanent error naming the namespace, at once", err, worker.IsPermanent(err), took)
	}
	t.Logf("wrong namespace: %v (%v)", err, took.Round(time.Millisecond))
	// The API process's check: the same answer, and nil for a namespace
	// that exists.
	err, took = timed(func(ctx context.Context) error { return worker.CheckNamespace(ctx, c, "no-such-namespace") })
	if err == nil || !worker.IsPermanent(err) || !strings.Contains(err.Error(), "temporal operator namespace create") || took > 5*time.Second {
		t.Errorf("API check, wrong namespace: err %v (permanent %t) after %v; want a permanent error saying what to do, at once", err, worker.IsPermanent(err), took)
	}
	if err, _ := timed(func(ctx context.Context) error { return worker.CheckNamespace(ctx, c, "default") }); err != nil {
		t.Errorf("API check, namespace default: %v", err)
	}

	// Check only, attributes missing: the list of what to create.
	err, _ = timed(func(ctx context.Context) error {
		return worker.EnsureSearchAttributes(ctx, c, worker.SearchAttributeOptions{Namespace: "default", Register: false, Logger: quiet})
	})
	if err == nil || !worker.IsPermanent(err) || !strings.Contains(err.Error(), "ParleyReplyWindowDeadline Datetime") || !strings.Contains(err.Error(), "tcld") {
		t.Errorf("check only, attributes missing: %v", err)
	}
	// Register, then check only: fine.
	for _, register := range []bool{true, false} {
		if err, _ := timed(func(ctx context.Context) error {
			return worker.EnsureSearchAttributes(ctx, c, worker.SearchAttributeOptions{Namespace: "default", Register: register, Logger: quiet})
		}); err != nil {
			t.Errorf("register %t: %v", register, err)
		}
	}

	// The whole worker, as `parley worker` runs it.
	for name, vars := range map[string]map[string]string{
		"wrong namespace":                      {"PARLEY_TEMPORAL_ADDRESS": addr, "PARLEY_TEMPORAL_NAMESPACE": "no-such-namespace"},
		"TEMPORAL_NAMESPACE":                   {"TEMPORAL_ADDRESS": addr, "TEMPORAL_NAMESPACE": "no-such-namespace"},
		"TLS to a plaintext port":              {"PARLEY_TEMPORAL_ADDRESS": addr, "TEMPORAL_TLS": "true"},
		"API key (TLS on) to a plaintext port": {"PARLEY_TEMPORAL_ADDRESS": addr, "TEMPORAL_API_KEY": "k"},
	} {
		t.Run(name, func(t *testing.T) {
			err, took := runWorker(t, vars, 20*time.Second)
			if err == nil || took > 10*time.Second {
				t.Fatalf("RunWorker: %v after %v; want a clear error at once", err, took)
			}
			t.Logf("%v (%v)", err, took.Round(time.Millisecond))
		})
	}

	// Nobody listening: it keeps retrying until stopped.
	err, took = runWorker(t, map[string]string{"PARLEY_TEMPORAL_ADDRESS": freeAddr(t)}, 5*time.Second)
	if err != nil || took < 4*time.Second {
		t.Errorf("unreachable Temporal: RunWorker returned %v after %v; want it to retry until stopped", err, took)
	}
}

// runWorker runs App.RunWorker with vars (on a SQLite database) for at
// most d.
func runWorker(t *testing.T, vars map[string]string, d time.Duration) (error, time.Duration) {
	dir := t.TempDir()
	all := map[string]string{"PARLEY_DATA_DIR": dir, "PARLEY_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"PARLEY_ADMIN_API_KEY": "pk_admin_test", "PARLEY_METRICS_ADDR": "off", "PARLEY_TASK_QUEUE": "sa-test",
		"TEMPORAL_CONFIG_FILE": filepath.Join(dir, "none.toml")}
	for k, v := range vars {
		all[k] = v
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := all[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	a, err := app.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	start := time.Now()
	err = a.RunWorker(ctx)
	return err, time.Since(start)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
