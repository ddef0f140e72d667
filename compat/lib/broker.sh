# Shared by the compat suites: start and stop the release `strom` binary on
# a free loopback port with a fresh data dir.
#
#   source compat/lib/broker.sh
#   start_broker [extra strom flags...]   # sets STROM_BOOTSTRAP, STROM_PID, STROM_DATA
#   ...                                   # run clients against $STROM_BOOTSTRAP
#   stop_broker                           # SIGTERM, wait, remove the data dir
#
# STROM_EXTERNAL_BOOTSTRAP=host:port makes start_broker start nothing and
# point the suite at that broker instead (e.g. a real Apache Kafka, to check
# that a scenario is right before blaming strom); STROM_PID stays empty,
# STROM_DATA is an empty scratch dir (so the on-disk checks of strom's
# segment files find nothing: suites skip them when STROM_EXTERNAL is set),
# and stop_broker only removes that dir.
#
# Scenario results are reported as lines
#   RESULT <client> <scenario> PASS|FAIL [detail]
# which scripts/test.sh gathers into its summary table.

STROM_ROOT=${STROM_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
STROM_BIN=${STROM_BIN:-$STROM_ROOT/target/release/strom}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_broker() {
    STROM_DATA=$(mktemp -d)
    if [ -n "${STROM_EXTERNAL_BOOTSTRAP:-}" ]; then
        STROM_BOOTSTRAP=$STROM_EXTERNAL_BOOTSTRAP
        STROM_PID=
        STROM_EXTERNAL=1
        : >"$STROM_DATA/strom.log"
        export STROM_BOOTSTRAP STROM_PID STROM_DATA STROM_EXTERNAL
        return 0
    fi
    local port
    port=$(free_port)
    STROM_BOOTSTRAP=127.0.0.1:$port
    "$STROM_BIN" --listen "$STROM_BOOTSTRAP" --data-dir "$STROM_DATA/data" "$@" >"$STROM_DATA/strom.log" 2>&1 &
    STROM_PID=$!
    local deadline=$((SECONDS + 30))
    until grep -q "strom started" "$STROM_DATA/strom.log" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ] || ! kill -0 "$STROM_PID" 2>/dev/null; then
            echo "broker did not start:"; cat "$STROM_DATA/strom.log"; return 1
        fi
        sleep 0.05
    done
    export STROM_BOOTSTRAP STROM_PID STROM_DATA
}

stop_broker() {
    if [ -n "${STROM_EXTERNAL:-}" ]; then
        rm -rf "$STROM_DATA"
        STROM_EXTERNAL=
        return 0
    fi
    [ -n "${STROM_PID:-}" ] || return 0
    kill -TERM "$STROM_PID" 2>/dev/null || true
    wait "$STROM_PID" 2>/dev/null || true
    rm -rf "$STROM_DATA"
    STROM_PID=
}

# result CLIENT SCENARIO STATUS [DETAIL]: one RESULT line.
result() {
    echo "RESULT $1 $2 $3${4:+ $4}"
}
