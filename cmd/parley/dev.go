//go:build !prod

package main

import (
	"context"
	"log/slog"
	"os"

	"parley/config"
	"parley/devenv"
	"parley/simulator"
)

// A development build (no prod tag, e.g. make build and make dev) has the
// local stack and the simulated customer; the Dockerfile builds with
// -tags prod, which leaves them (and the packages they bring: the fake
// Meta, Temporal's test suite) out of the production binary.
func init() {
	devCommands["dev"] = devenv.Run
	devCommands["sim"] = func(ctx context.Context, cfg config.Config, _ *slog.Logger, args []string) error {
		return simulator.Main(ctx, cfg, args, os.Stdout)
	}
}
