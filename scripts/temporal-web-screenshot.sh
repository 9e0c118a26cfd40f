#!/usr/bin/env bash
# temporal-web-screenshot.sh — a headless Chromium screenshot of a
# conversation's event history in Temporal Web as `make dev` shows it: the
# histories are encrypted, and Temporal Web decrypts them through Parley's
# codec endpoint (--ui-codec-endpoint), so the customer's newest message
# (expanded) reads in clear. Fails if it does not.
#
#   make dev                                   # in another terminal
#   ./bin/parley sim send --page 200000000000001 --psid 300000000000001 "hello"
#   scripts/temporal-web-screenshot.sh [--page ID] [--psid ID] [--out FILE.png]
#
# Needs Node.js with the playwright-core package (npm install -g
# playwright-core, or NODE_PATH=<a node_modules holding it>), Chromium
# (chromium, chromium-browser or google-chrome on PATH, or $CHROMIUM), and
# the Temporal CLI that `make dev` builds (./bin/temporal, or
# $PARLEY_TEMPORAL_CLI) to find the workflow's latest run.
# Environment: PARLEY_TEMPORAL_ADDRESS (127.0.0.1:7233), TEMPORAL_WEB
# (http://127.0.0.1:8233), PARLEY_TEMPORAL_NAMESPACE (default).
set -euo pipefail

page=200000000000001
psid=300000000000001
out=temporal-web-conversation.png
while [[ $# -gt 0 ]]; do
	case $1 in
	--page) page=$2; shift 2 ;;
	--psid) psid=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h | --help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "temporal-web-screenshot: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

die() { echo "temporal-web-screenshot: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
cli=${PARLEY_TEMPORAL_CLI:-$here/../bin/temporal}
[[ -x $cli ]] || die "no Temporal CLI at $cli: run make temporal-cli (or set PARLEY_TEMPORAL_CLI)"
address=${PARLEY_TEMPORAL_ADDRESS:-127.0.0.1:7233}
namespace=${PARLEY_TEMPORAL_NAMESPACE:-default}
web=${TEMPORAL_WEB:-http://127.0.0.1:8233}
browser=${CHROMIUM:-}
if [[ -z $browser ]]; then
	for b in chromium chromium-browser google-chrome google-chrome-stable; do
		if command -v "$b" >/dev/null; then browser=$(command -v "$b"); break; fi
	done
fi
[[ -n $browser ]] || die "no Chromium found: install it or set CHROMIUM"
command -v node >/dev/null || die "no node: install Node.js (and playwright-core)"
# Global installs are not on node's require path by default.
NODE_PATH=${NODE_PATH:-$(npm root -g 2>/dev/null || true)}
export NODE_PATH
node -e "require.resolve('playwright-core')" 2>/dev/null ||
	die "node cannot find playwright-core: npm install -g playwright-core, or set NODE_PATH to a node_modules that has it"

workflow_id="conversation/$page/$psid"
describe=$("$cli" workflow describe --address "$address" --namespace "$namespace" --workflow-id "$workflow_id" --output json 2>&1) ||
	die "no workflow $workflow_id on $address (is make dev running, and did the customer write?): $describe"
run_id=$(grep -o '"runId": *"[^"]*"' <<<"$describe" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
[[ -n $run_id ]] || die "could not read the run id of $workflow_id"

# The workflow id holds slashes: encode them for the path.
url="$web/namespaces/$namespace/workflows/${workflow_id//\//%2F}/$run_id/history"
node "$here/temporal-web-screenshot.js" "$url" "$out" "$browser"
echo "$out: $url"
