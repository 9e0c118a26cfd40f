#!/bin/sh
# Creates Parley's namespace once the Temporal server answers (the server
# image, unlike auto-setup, creates none). Safe to run again.
set -eu
NS=${NAMESPACE:-default}
ADDR=${TEMPORAL_ADDRESS:-temporal:7233}
RETENTION=${RETENTION:-720h}
i=0
until temporal operator cluster health --address "$ADDR" >/dev/null 2>&1; do
  i=$((i + 1))
  [ "$i" -ge 60 ] && { echo "Temporal at $ADDR is not healthy"; exit 1; }
  sleep 2
done
if temporal operator namespace describe --address "$ADDR" -n "$NS" >/dev/null 2>&1; then
  echo "namespace $NS exists"
else
  temporal operator namespace create --address "$ADDR" -n "$NS" --retention "$RETENTION"
  echo "namespace $NS created"
fi
