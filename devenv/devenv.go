// Package devenv is `parley dev`: the whole of Parley on one machine with
// nothing installed but the Temporal CLI that `make dev` builds. It runs a
// Temporal dev server with Temporal Web, the simulated Messenger (fake Graph
// API that also delivers signed webhooks), the gateway, REST API and worker on
// embedded SQLite, seeds a demo page on first run, and stops everything on
// Ctrl-C. Data survives restarts in the data folder.
package devenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"golang.org/x/sync/errgroup"

	"parley/api"
	"parley/app"
	"parley/config"
	"parley/fakemeta"
	"parley/store"
	"parley/worker"
)

// The demo page seeded on first run.
const (
	DemoAppID  = "100000000000001"
	DemoPageID = "200000000000001"
	DemoPSID   = "300000000000001"
)

// Run runs the local stack until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("parley dev takes no arguments (configure it with PARLEY_* variables), got %q", args)
	}
	cli, err := filepath.Abs(cfg.TemporalCLI)
	if err != nil {
		return fmt.Errorf("temporal CLI path: %w", err)
	}
	if _, err := os.Stat(cli); err != nil {
		return fmt.Errorf("the Temporal CLI is not at %s: run `make dev`, which builds it into ./bin (or set PARLEY_TEMPORAL_CLI)", cli)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	// In dev, Meta is the simulated Messenger.
	cfg.GraphAPIURL = cfg.SimURL

	temporalLog, err := os.OpenFile(filepath.Join(cfg.DataDir, "temporal.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("temporal log file: %w", err)
	}
	defer temporalLog.Close()
	_, port, err := net.SplitHostPort(cfg.TemporalAddress)
	if err != nil {
		return fmt.Errorf("PARLEY_TEMPORAL_ADDRESS %q: %w", cfg.TemporalAddress, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("PARLEY_TEMPORAL_ADDRESS %q: bad port", cfg.TemporalAddress)
	}
	uiPort := strconv.Itoa(p + 1000)

	// Opened before Temporal (its client connects on first use): Temporal
	// Web's codec endpoint carries the admin key.
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	// Temporal Web decodes the encrypted histories through Parley's codec.
	// The dev admin key is in the URL (Temporal Web cannot send a header):
	// fine on a laptop; in production give Temporal Web a supervisor's key.
	devArgs := append(worker.DevServerFlags(), "--ui-codec-endpoint", api.CodecEndpoint(cfg.PublicURL, a.AdminAPIKey))
	log.Info("starting the Temporal dev server", "cli", cli, "address", cfg.TemporalAddress, "log", temporalLog.Name())
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ts, err := testsuite.StartDevServer(startCtx, testsuite.DevServerOptions{
		ExistingPath: cli,
		ClientOptions: &client.Options{
			HostPort:  cfg.TemporalAddress,
			Namespace: cfg.TemporalNamespace,
			Logger:    tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		},
		DBFilename: filepath.Join(cfg.DataDir, "temporal.db"),
		EnableUI:   true,
		UIPort:     uiPort,
		LogLevel:   "warn",
		ExtraArgs:  devArgs,
		Stdout:     temporalLog,
		Stderr:     temporalLog,
	})
	if err != nil {
		return fmt.Errorf("start the Temporal dev server (see %s): %w", temporalLog.Name(), err)
	}
	defer func() {
		if err := ts.Stop(); err != nil {
			log.Warn("stop the Temporal dev server", "err", err)
		}
		log.Info("Temporal dev server stopped")
	}()

	sim := fakemeta.New(fakemeta.Options{Logger: log, ReplyWindow: cfg.ReplyWindow, HumanAgentWindow: cfg.HumanAgentWindow})
	simURL, err := url.Parse(cfg.SimURL)
	if err != nil {
		return fmt.Errorf("PARLEY_SIM_URL: %w", err)
	}
	simLn, err := net.Listen("tcp", simURL.Host)
	if err != nil {
		return fmt.Errorf("simulated Messenger on %s: %w", simURL.Host, err)
	}
	simSrv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}

	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	metricsURL := "off (PARLEY_METRICS_ADDR=off)"
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("metrics: listen on %s (PARLEY_METRICS_ADDR; off disables it): %w", cfg.MetricsAddr, err)
		}
		metricsURL = "http://" + metricsLn.Addr().String() + "/metrics"
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := simSrv.Serve(simLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("simulated Messenger: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shut, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer cancel()
		return simSrv.Shutdown(shut)
	})
	g.Go(func() error { return a.ServeHTTP(gctx, httpLn) })
	g.Go(func() error { return a.RunWorker(gctx) })
	if metricsLn != nil {
		g.Go(func() error { return a.ServeMetrics(gctx, metricsLn) })
	}
	g.Go(func() error {
		pages, err := seed(gctx, a, sim, "http://"+httpLn.Addr().String())
		if err != nil {
			return fmt.Errorf("seed the demo: %w", err)
		}
		printBanner(os.Stdout, cfg, a, uiPort, metricsURL, pages)
		return nil
	})
	err = g.Wait()
	log.Info("parley dev stopped")
	return err
}

// seed mirrors every configured page into the simulated Messenger (it keeps
// nothing across restarts), creates a demo page on first run, and saves each
// page's callback URL in the simulated app settings, which runs Meta's
// verification handshake, then has Parley check the token.
func seed(ctx context.Context, a *app.App, sim *fakemeta.Server, localURL string) ([]store.Page, error) {
	accounts, err := a.Store.ListAccounts(ctx)
	if err != nil {
		return nil, err
	}
	api := &adminClient{base: localURL, key: a.AdminAPIKey}
	if len(accounts) == 0 {
		secret, token := randomString("demo-secret-", 24), randomString("EAADEMO", 48)
		var acct struct{ ID string }
		if err := api.do(ctx, http.MethodPost, "/api/v1/accounts", map[string]string{"name": "Demo", "app_id": DemoAppID, "app_secret": secret}, &acct); err != nil {
			return nil, err
		}
		sim.AddApp(DemoAppID, secret)
		sim.AddPage(DemoAppID, DemoPageID, "Demo Store", token)
		if err := api.do(ctx, http.MethodPost, "/api/v1/accounts/"+acct.ID+"/pages", map[string]string{"name": "Demo Store", "page_id": DemoPageID, "access_token": token}, nil); err != nil {
			return nil, err
		}
		if accounts, err = a.Store.ListAccounts(ctx); err != nil {
			return nil, err
		}
	}
	var out []store.Page
	for _, acct := range accounts {
		secret, err := a.Store.AccountAppSecret(ctx, acct.ID)
		if err != nil {
			return nil, err
		}
		sim.AddApp(acct.AppID, secret)
		pages, err := a.Store.ListPages(ctx, acct.ID)
		if err != nil {
			return nil, err
		}
		for _, p := range pages {
			token, err := a.Store.PageAccessToken(ctx, p.ID)
			if err != nil {
				return nil, err
			}
			sim.AddPage(acct.AppID, p.PageID, p.Name, token)
			if p.CallbackKey == "" {
				continue
			}
			callback := a.Config.PublicURL + "/webhooks/facebook/" + p.CallbackKey
			if err := sim.SetWebhook(ctx, acct.AppID, callback, p.VerifyToken, nil); err != nil {
				return nil, fmt.Errorf("webhook handshake for page %s: %w", p.PageID, err)
			}
			var checked store.Page
			if err := api.do(ctx, http.MethodPost, "/api/v1/pages/"+p.ID+"/check", nil, nil); err != nil {
				return nil, err
			}
			if checked, err = a.Store.GetPage(ctx, p.ID); err != nil {
				return nil, err
			}
			out = append(out, checked)
		}
	}
	return out, nil
}

func printBanner(w io.Writer, cfg config.Config, a *app.App, uiPort, metricsURL string, pages []store.Page) {
	host, _, _ := net.SplitHostPort(cfg.TemporalAddress)
	fmt.Fprintf(w, `
Parley is running. Ctrl-C stops everything.

  Temporal Web          http://%s:%s/namespaces/%s/workflows
  Temporal Web codec    %s/k/<admin API key> (decrypts the histories)
  Temporal server       %s (namespace %s)
  REST API              %s/api/v1
  OpenAPI document      %s/api/openapi.yaml
  Metrics               %s
  Simulated Messenger   %s (fake Graph API %s)
  Database              %s
  Admin API key         %s

Pages:
`, host, uiPort, cfg.TemporalNamespace, cfg.PublicURL+api.CodecPath, cfg.TemporalAddress, cfg.TemporalNamespace, cfg.PublicURL, cfg.PublicURL,
		metricsURL, cfg.SimURL, cfg.GraphAPIVersion, cfg.DatabaseURL, a.AdminAPIKey)
	for _, p := range pages {
		state, reason := p.Provisioning()
		fmt.Fprintf(w, "  %-20s page %s  %s %s\n", p.Name, p.PageID, state, reason)
	}
	fmt.Fprintf(w, `
Try it:
  ./bin/parley sim send --page %s --psid %s "hello"
  curl -H "Authorization: Bearer %s" %s/api/v1/conversations

`, DemoPageID, DemoPSID, a.AdminAPIKey, cfg.PublicURL)
}

type adminClient struct {
	base, key string
}

func (c *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// The listener is open before the server runs: early requests just queue.
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func randomString(prefix string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)[:n]
}
