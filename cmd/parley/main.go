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
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"parley/app"
	"parley/config"
	"parley/devenv"
	"parley/simulator"
)

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
	case "dev":
		return devenv.Run(ctx, cfg, log, rest)
	case "sim":
		return simulator.Main(ctx, cfg, rest, os.Stdout)
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
		}
		return g.Wait()
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
