#!/usr/bin/env bash
# The Python client compatibility suite: confluent-kafka, kafka-python and
# aiokafka against the release strom binary.
#
#   compat/python/run.sh [pytest args...]      # e.g. -k aiokafka, -x
#
# Uses a venv at ${STROM_VENV:-$HOME/.cache/strom/venv}, (re)installing
# requirements.txt only when it changed since the last install. Starts one
# broker (compat/lib/broker.sh) for the whole run, prints one line
#   RESULT <client> <scenario> PASS|FAIL [detail]
# per client and scenario, then "N passed, M failed"; exits non-zero if
# anything failed. The broker log of the run is kept at
# ${STROM_PY_BROKER_LOG:-${TMPDIR:-/tmp}/strom-python-compat.log}.
# STROM_LOG_LEVEL=debug gives per-request lines in that log.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${STROM_VENV:-$HOME/.cache/strom/venv}
broker_log=${STROM_PY_BROKER_LOG:-${TMPDIR:-/tmp}/strom-python-compat.log}
started=$SECONDS

# ---- the venv -------------------------------------------------------------
# shellcheck source=../lib/venv.sh
source "$root/compat/lib/venv.sh"
strom_venv "$venv" || { echo "could not install the Python clients into $venv"; exit 1; }

# ---- the broker -----------------------------------------------------------
if [ -z "${STROM_EXTERNAL_BOOTSTRAP:-}" ] && [ ! -x "${STROM_BIN:-$root/target/release/strom}" ]; then
    echo "== cargo build --release"
    (cd "$root" && cargo build --release --quiet) || { echo "build failed"; exit 1; }
fi
# shellcheck source=../lib/broker.sh
source "$root/compat/lib/broker.sh"
start_broker --num-partitions 1 --set group.initial.rebalance.delay.ms=0 || exit 1
trap 'cp "$STROM_DATA/strom.log" "$broker_log" 2>/dev/null; stop_broker' EXIT
echo "== broker $STROM_BOOTSTRAP (pid $STROM_PID)"

# ---- the tests ------------------------------------------------------------
results=$(mktemp)
rm -f "$results.expected"
export STROM_RESULTS_FILE=$results PYTHONDONTWRITEBYTECODE=1
# A bound on the whole run (STROM_PY_TIMEOUT seconds), past pytest-timeout's per-test one.
(cd "$here" && timeout -k 10 "${STROM_PY_TIMEOUT:-600}" "$venv/bin/python" -m pytest -q "$@")
status=$?

echo
echo "== results"
cat "$results"
# A pair pytest collected but never finished (killed run) is a failure too.
if [ -f "$results.expected" ]; then
    while read -r client scenario; do
        grep -q "^RESULT $client $scenario " "$results" ||
            echo "RESULT $client $scenario FAIL did not finish (pytest exit $status)" | tee -a "$results"
    done <"$results.expected"
fi
pass=$(grep -c '^RESULT .* PASS' "$results")
fail=$(grep -c '^RESULT .* FAIL' "$results")
rm -f "$results" "$results.expected"
echo "python clients: $((SECONDS - started))s, broker log: $broker_log"
echo "$pass passed, $fail failed"
[ "$status" -eq 0 ] && [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
