#!/usr/bin/env bash
# kafkajs 2.2.4 against the release strom binary.
#
#   bash compat/kafkajs/run.sh [scenario...]
#
# Installs the npm packages into compat/kafkajs/node_modules (npm ci, only
# when package-lock.json changed since the last install), starts strom on a
# free loopback port, runs scenarios.js, prints RESULT lines, exits non-zero
# when a scenario failed. KAFKAJS_LOG=debug for client logs; STROM_LOG_LEVEL
# (default info) for the broker, whose log is printed when a scenario fails
# (STROM_KEEP_LOG=FILE keeps a copy).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE"

# npm ci only when node_modules is missing or came from another lock file.
stamp=node_modules/.strom-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
    echo "$want" >"$stamp"
fi

source ../lib/broker.sh
[ -n "${STROM_EXTERNAL_BOOTSTRAP:-}" ] || [ -x "$STROM_BIN" ] || { echo "no $STROM_BIN: run cargo build --release first"; exit 1; }
start_broker --num-partitions 1 --set group.initial.rebalance.delay.ms=0 --log-level "${STROM_LOG_LEVEL:-info}"
trap stop_broker EXIT

status=0
# No on-disk checks against an external broker (STROM_EXTERNAL_BOOTSTRAP).
log_dirs=$STROM_DATA/data/logs
[ -z "${STROM_EXTERNAL:-}" ] || log_dirs=
STROM_LOG_DIRS=$log_dirs node scenarios.js "$STROM_BOOTSTRAP" "$@" || status=$?
if [ -n "${STROM_KEEP_LOG:-}" ]; then cp "$STROM_DATA/strom.log" "$STROM_KEEP_LOG"; fi
if [ "$status" -ne 0 ]; then
    echo "--- strom log (last 200 lines) ---"
    tail -n 200 "$STROM_DATA/strom.log"
fi
exit "$status"
