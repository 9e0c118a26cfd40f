# Parley: `make dev` runs everything locally; `make test` runs every test.
SHELL := /bin/bash
GO ?= go
TEMPORAL_CLI_VERSION := v1.5.1
BIN := $(CURDIR)/bin
TEMPORAL := $(BIN)/temporal
export PARLEY_TEMPORAL_CLI ?= $(TEMPORAL)

.PHONY: dev build test test-faults test-unit bench vet fmt clean temporal-cli

build: $(BIN)/parley

$(BIN)/parley: $(shell find . -name '*.go' -not -path './bin/*') $(shell find api migrations -name '*.yaml' -o -name '*.sql') go.mod go.sum
	$(GO) build -o $@ ./cmd/parley

# The Temporal CLI (dev server + Temporal Web), built from the Go module proxy
# the first time (a few minutes); newer CLIs cannot be built that way.
temporal-cli: $(TEMPORAL)
$(TEMPORAL):
	@echo "Building the Temporal CLI $(TEMPORAL_CLI_VERSION) into ./bin (first run only; takes a few minutes)..."
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

dev: $(TEMPORAL) $(BIN)/parley
	$(BIN)/parley dev

# Every test, unit and integration. Integration tests start a real Temporal
# dev server; the store tests also run on PostgreSQL when the machine has it
# (scripts/testpg.sh starts a throwaway cluster).
test: $(TEMPORAL)
	@set -o pipefail; \
	if [ -z "$$PARLEY_TEST_POSTGRES_URL" ]; then \
	  if out=$$(scripts/testpg.sh start); then export "$$out"; else echo "PostgreSQL not available: its store tests will be skipped"; fi; \
	fi; \
	$(GO) vet ./... && $(GO) test -count=1 -timeout 15m ./... 2>&1 | tee .test.out; status=$$?; \
	passed=$$(grep -c '^ok ' .test.out || true); failed=$$(grep -cE '^FAIL[[:space:]]+parley' .test.out || true); \
	rm -f .test.out; echo "packages: $$passed passed, $$failed failed"; exit $$status

# The fault-injection suite alone, with its figures (it also runs in `make test`).
test-faults: $(TEMPORAL)
	@set -o pipefail; $(GO) test -count=1 -v ./faults/ 2>&1 | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|_test\.go:[0-9]+:'

test-unit:
	$(GO) test -count=1 -short ./...

# Gateway acknowledgements per second next to raw SignalWithStart (ratio),
# acknowledgement latency at half the sustained maximum rate with the worker
# running, message-to-offer latency, one 20,000-message conversation (last
# 100 against first 100) and a worker's memory with 100,000 open
# conversations (and messages to those evicted from its cache), against real
# dev servers, in memory except the last (on its SQLite file, as `make dev`:
# an in-memory server's memory and commits grow with every conversation it
# holds); each figure on a line of its own with its target.
# About 20 minutes on 2 cores, then 1 to 2 hours for the open conversations
# (PARLEY_BENCH_OPEN=10000 for a shorter run).
bench: $(TEMPORAL)
	PARLEY_BENCH_TEMPORAL=memory $(GO) test -run '^$$' -bench 'Gateway$$' -benchtime 500x -timeout 20m ./bench/
	PARLEY_BENCH_TEMPORAL=memory $(GO) test -run '^$$' -bench AckLatency -benchtime 1x -timeout 20m ./bench/
	PARLEY_BENCH_TEMPORAL=memory $(GO) test -run '^$$' -bench MessageToOffer -benchtime 600x -timeout 20m ./bench/
	PARLEY_BENCH_TEMPORAL=memory $(GO) test -run '^$$' -bench LongConversation -benchtime 1x -timeout 60m ./bench/
	$(GO) test -run '^$$' -bench OpenConversations -benchtime 1x -timeout 3h ./bench/

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) data
