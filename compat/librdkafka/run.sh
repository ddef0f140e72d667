#!/usr/bin/env bash
# librdkafka's own integration test suite (tests/ of the Debian source
# package, librdkafka 2.0.2) against strom.
#
#   compat/librdkafka/run.sh            # setup if needed, run allowlist.txt
#   compat/librdkafka/run.sh 0012 0081  # run only these allowlist entries
#
# Environment:
#   STROM_CACHE   cache root (default ~/.cache/strom); the suite is built in
#                 $STROM_CACHE/librdkafka, logs go to .../librdkafka/logs
#   LRK_JOBS      test-runner processes run at once (default 2: more makes
#                 the suite's timing-sensitive tests flaky on 2 cores)
#   LRK_TIMEOUT   seconds per entry before it is killed (default 240)
#   LRK_ALLOWLIST another allowlist file
#   LRK_DEBUG     librdkafka debug contexts for test.conf (e.g. protocol,broker,cgrp)
#   LRK_BROKER_EXTRA extra strom flags (e.g. "--log-level debug")
# setup.sh (run first, idempotent) enables deb-src from the machine's apt
# sources, installs librdkafka's build-deps, fetches its source package and
# builds the library, tests/test-runner and the kafka-topics.sh stand-in.
#
# Each allowlist entry runs in its own `test-runner -L -p1 <NNNN>` process
# (-L: skip the broker-less local/mock tests; one process per entry so a
# hang or abort only fails that entry), against one of three strom brokers:
#   default       --num-partitions 4 --set group.initial.rebalance.delay.ms=0
#   @noautocreate the same with --auto-create-topics false (test scenario
#                 "noautocreate", test-runner -s noautocreate)
#   @delay        --num-partitions 4 with Kafka's default
#                 group.initial.rebalance.delay.ms (3000)
#   @cluster      three nodes (compat/lib/cluster.sh) with the default
#                 flags and default.replication.factor=3
# Allowlist line: NNNN [@phase] [KEY=VALUE (env, e.g. SUBTESTS=...)] [-flag] # comment
# Output: one `RESULT librdkafka <NNNN_name>[<subtests>] PASS|FAIL [detail]`
# per entry; exit status 1 if any entry failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${STROM_CACHE:-$HOME/.cache/strom}/librdkafka
JOBS=${LRK_JOBS:-2}
TIMEOUT=${LRK_TIMEOUT:-240}
ALLOWLIST=${LRK_ALLOWLIST:-$HERE/allowlist.txt}
# The suite compares against the broker version for a few feature gates;
# strom serves Kafka 4.1's API ranges.
export TEST_KAFKA_VERSION=${TEST_KAFKA_VERSION:-4.1.0}

t_setup=$SECONDS
mkdir -p "$CACHE"
if ! "$HERE/setup.sh" >"$CACHE/setup.log" 2>&1; then
    tail -20 "$CACHE/setup.log"
    echo "setup failed (full log: $CACHE/setup.log)"
    exit 1
fi
SRC=$(tail -1 "$CACHE/setup.log")
TESTS_DIR=$SRC/tests
[ -x "$TESTS_DIR/test-runner" ] || { echo "no test-runner in $TESTS_DIR"; exit 1; }
echo "librdkafka suite ready in $TESTS_DIR ($((SECONDS - t_setup))s)"

if [ ! -x "${STROM_BIN:-$HERE/../../target/release/strom}" ]; then
    (cd "$HERE/../.." && cargo build --release 2>&1 | tail -1)
fi
# shellcheck source=../lib/cluster.sh
source "$HERE/../lib/cluster.sh"

LOGS=$CACHE/logs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$LOGS"
ln -sfn "$LOGS" "$CACHE/logs/latest"

# --- brokers -----------------------------------------------------------
declare -A BOOT PID DATA
BROKER_FLAGS_default="--num-partitions 4 --set group.initial.rebalance.delay.ms=0"
BROKER_FLAGS_noautocreate="$BROKER_FLAGS_default --auto-create-topics false"
BROKER_FLAGS_delay="--num-partitions 4"
BROKER_FLAGS_cluster="$BROKER_FLAGS_default --set default.replication.factor=3"

start_phase_broker() {
    local phase=$1 flags_var="BROKER_FLAGS_$1"
    if [ "$phase" = cluster ]; then
        # shellcheck disable=SC2086
        start_cluster ${!flags_var} ${LRK_BROKER_EXTRA:-} || return 1
        BOOT[$phase]=$STROM_CLUSTER_BOOTSTRAP PID[$phase]=cluster DATA[$phase]=$STROM_CLUSTER_DIR
    else
        # shellcheck disable=SC2086
        start_broker ${!flags_var} ${LRK_BROKER_EXTRA:-} || return 1
        BOOT[$phase]=$STROM_BOOTSTRAP PID[$phase]=$STROM_PID DATA[$phase]=$STROM_DATA
    fi
    printf 'bootstrap.servers=%s\n' "${BOOT[$phase]}" >"$LOGS/test-$phase.conf"
    if [ -n "${LRK_DEBUG:-}" ]; then
        printf 'debug=%s\n' "$LRK_DEBUG" >>"$LOGS/test-$phase.conf"
    fi
}

stop_all() {
    local phase
    for phase in "${!PID[@]}"; do
        if [ "$phase" = cluster ]; then
            for id in 1 2 3; do
                cp "${DATA[$phase]}/node-$id.log" "$LOGS/strom-cluster-node-$id.log" 2>/dev/null || true
            done
            stop_cluster
            continue
        fi
        STROM_PID=${PID[$phase]} STROM_DATA=${DATA[$phase]}
        cp "$STROM_DATA/strom.log" "$LOGS/strom-$phase.log" 2>/dev/null || true
        stop_broker
    done
    PID=()
    # test-runner leaves one stats file per test in its working directory.
    rm -f "$TESTS_DIR"/stats_*.json
}
trap stop_all EXIT
# offset.store.method=file tests (0014) keep offsets in <topic>-<partition>.offset
# files there too. Their "random" topic names do repeat across runs, and a
# stale file makes a consumer start at an old stored offset: start clean.
rm -f "$TESTS_DIR"/*.offset

# --- entries -------------------------------------------------------------
# entries.txt: one line per entry: phase<TAB>number<TAB>env...<TAB>flags...
ENTRIES=$LOGS/entries.txt
: >"$ENTRIES"
while IFS= read -r line; do
    line=${line%%#*}
    read -r -a tok <<<"$line"
    [ ${#tok[@]} -gt 0 ] || continue
    num=${tok[0]} phase=default envs="" flags=""
    for t in "${tok[@]:1}"; do
        case $t in
            @*) phase=${t#@} ;;
            -*) flags="$flags $t" ;;
            *=*) envs="$envs $t" ;;
        esac
    done
    if [ $# -gt 0 ] && [[ " $* " != *" $num "* ]]; then continue; fi
    printf '%s\t%s\t%s\t%s\n' "$phase" "$num" "${envs# }" "${flags# }" >>"$ENTRIES"
done <"$ALLOWLIST"

for phase in $(cut -f1 "$ENTRIES" | sort -u); do
    start_phase_broker "$phase" || exit 1
    echo "broker $phase on ${BOOT[$phase]}"
done

# run_entry PHASE NUM ENVS FLAGS: one test-runner process, one RESULT line.
run_entry() {
    local phase=$1 num=$2 envs=$3 flags=$4
    local tag=$num
    [ -n "$envs" ] && tag="$num[${envs//SUBTESTS=/}]"
    local log=$LOGS/$num${envs:+-${envs//[^A-Za-z0-9_]/_}}.log
    local scen=default
    [ "$phase" = noautocreate ] && scen=noautocreate
    local start=$SECONDS rc
    # (the outer braces catch bash's "Aborted"/"Killed" job notices)
    { (
        cd "$TESTS_DIR" || exit 99
        # shellcheck disable=SC2086
        env LD_LIBRARY_PATH="../src:../src-cpp" \
            RDKAFKA_TEST_CONF="$LOGS/test-$phase.conf" \
            KAFKA_PATH="$KAFKA_SHIM" \
            BROKERS="$(sed -n 's/^bootstrap.servers=//p' "$LOGS/test-$phase.conf")" \
            $envs \
            timeout -k 10 "$TIMEOUT" ./test-runner -L -p1 -s "$scen" $flags "$num"
    ) >"$log" 2>&1; rc=$?; } 2>>"$log"
    # The summary table lists every test of this number: name | state | time.
    local table name ran passed failed
    table=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | awk -F'|' '/^\|/ && NF >= 4 {
        gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $3); gsub(/^ +|s? *$/, "", $4);
        print $2 "\t" $3 "\t" $4 }' | grep -v '^<MAIN>')
    # Named after the test of this number that ran longest (a number can
    # hold several tests; SUBTESTS= leaves the others running empty).
    ran=$(printf '%s\n' "$table" | awk -F'\t' '$2 == "PASSED" || $2 == "FAILED" { print $3 "\t" $1 }' |
        sort -t$'\t' -k1,1gr | head -1 | cut -f2)
    passed=$(printf '%s\n' "$table" | grep -c $'\tPASSED\t')
    failed=$(printf '%s\n' "$table" | grep -c $'\tFAILED\t')
    name=${ran:-$(sed -n 's/.*Running test \([0-9][0-9][0-9][0-9]_[A-Za-z0-9_]*\).*/\1/p' "$log" | head -1)}
    name=${name:-$num}
    tag=${tag/$num/$name}
    local secs=$((SECONDS - start)) detail
    if [ $rc -eq 0 ] && [ "$passed" -gt 0 ] && [ "$failed" -eq 0 ]; then
        result librdkafka "$tag" PASS "(${secs}s)"
    else
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            detail="timed out after ${secs}s"
        elif [ $rc -eq 0 ] && [ "$passed" -eq 0 ]; then
            detail="nothing ran: $(printf '%s\n' "$table" | cut -f2 | sort -u | tr '\n' ' ')"
        else
            detail=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -a -A1 '^### Test' | grep -av '^###\|^--' | head -1 | cut -c1-200)
            detail="rc=$rc ${secs}s: ${detail:-see log}"
        fi
        result librdkafka "$tag" FAIL "$detail (log: $log)"
    fi
}
export -f run_entry result
# KAFKA_PATH/bin/kafka-topics.sh is setup.sh's stand-in (kafka-topics.c).
KAFKA_SHIM=$CACHE/kafka-shim
export LOGS TESTS_DIR TIMEOUT TEST_KAFKA_VERSION KAFKA_SHIM

t_run=$SECONDS
tr '\t' '\037' <"$ENTRIES" |
    xargs -d '\n' -P "$JOBS" -I{} bash -c 'IFS=$'"'"'\037'"'"' read -r p n e f <<<"$1"; run_entry "$p" "$n" "$e" "$f"' _ {} |
    tee "$LOGS/results.txt"

total=$(grep -c '^RESULT' "$LOGS/results.txt")
fails=$(grep -c '^RESULT .* FAIL' "$LOGS/results.txt")
echo "librdkafka suite: $((total - fails))/$total entries passed in $((SECONDS - t_run))s (logs: $LOGS)"
[ "$fails" -eq 0 ]
