// Command parley runs Parley: the webhook gateway and REST API, the Temporal
// worker, database migrations, a whole local stack (dev) and a simulated
// Messenger customer (sim).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"parley/app"
	"parley/config"
)

// devCommands are the subcommands of a development build (dev.go: dev,
// sim); a production build (go build -tags prod, the Dockerfile's) leaves
// them, and the simulated Messenger and dev server they bring, out.
var devCommands = map[string]func(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error{}

const usage = `parley: a contact-center channel for Facebook Messenger, on Temporal.

Usage:
  parley dev                      run everything locally: Temporal dev server + Web UI, gateway,
                                  REST API, worker, embedded SQLite and a simulated Messenger
  parley serve                    run the gateway, REST API and worker in one process
  parley api                      run the gateway and REST API
  parley worker                   run the Temporal worker
  parley migrate                  apply database migrations and exit
  parley sim send --page ID --psid PSID TEXT
                                  a customer writes to a page, through the simulated Messenger
  parley sim postback --page ID --psid PSID --payload P [--title T]
  parley config                   print every environment variable with its default
  parley healthcheck URL          GET URL; exit 0 on a 2xx answer, 1 otherwise (container health
                                  checks: e.g. http://127.0.0.1:8080/readyz, or the worker's
                                  http://127.0.0.1:9464/metrics)

Configuration comes from the environment: see "parley config" and README.md.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "parley:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(usage)
		return nil
	}
	// Before the configuration: a health check reads no variable.
	if args[0] == "healthcheck" {
		return healthcheck(args[1:])
	}
	cfg, err := config.FromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := cfg.Logger()
	// Libraries that log through the default logger (migrations) stay structured.
	slog.SetDefault(log)

	switch cmd, rest := args[0], args[1:]; cmd {
	case "dev", "sim":
		f, ok := devCommands[cmd]
		if !ok {
			return fmt.Errorf("parley %s is not in this production build (built with -tags prod): use a development build (make build)", cmd)
		}
		if cmd == "dev" {
			// The dev server is local: TEMPORAL_* variables and profiles
			// (a developer's Temporal Cloud profile) do not apply.
			cfg = cfg.LocalTemporal(os.LookupEnv)
		}
		return f(ctx, cfg, log, rest)
	case "config":
		for _, v := range config.Vars {
			fmt.Printf("%-28s %s\n%-28s %s\n", v.Name, v.Default, "", v.Help)
		}
		return nil
	case "migrate":
		a, err := app.Open(ctx, cfg, log)
		if err != nil {
			return err
		}
		a.Close()
		log.Info("database migrated")
		return nil
	case "api", "worker", "serve":
		a, err := app.Open(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer a.Close()
		g, gctx := errgroup.WithContext(ctx)
		// Every process serves its own metrics (the worker's Temporal
		// SDK metrics included): give each its own PARLEY_METRICS_ADDR.
		g.Go(func() error { return a.ListenAndServeMetrics(gctx) })
		if cmd != "worker" {
			g.Go(func() error { return a.ListenAndServe(gctx) })
		}
		if cmd != "api" {
			g.Go(func() error { return a.RunWorker(gctx) })
		} else {
			g.Go(func() error { return a.CheckTemporal(gctx) })
		}
		return g.Wait()
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// healthcheck GETs the URL (default: the API's readiness) and fails unless
// the answer is 2xx: the runtime image has no shell, curl or wget.
func healthcheck(args []string) error {
	url := "http://127.0.0.1:8080/readyz"
	if len(args) > 1 {
		return errors.New("usage: parley healthcheck [URL]")
	}
	if len(args) == 1 {
		url = args[0]
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("healthcheck: GET %s: %s", url, resp.Status)
	}
	return nil
}
