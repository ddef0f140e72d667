#!/usr/bin/env bash
# Kafka Streams (Apache Kafka 4.1.0's kafka-streams) under exactly_once_v2
# against the release strom binary, with the Streams app SIGKILLed mid-run
# and restarted.
#
#   bash compat/streams/run.sh                       # against strom
#   STREAMS_TARGET=kafka bash compat/streams/run.sh  # the same against a real Kafka 4.1
#                                                    # (the expectations are Kafka's)
#   STREAMS_TARGET=cluster bash compat/streams/run.sh  # against three strom nodes
#                                                    # (replication factor 3; RESULT streams-3-nodes)
#   STREAMS_KEEP=DIR ...       keeps every JVM's output and log and the broker log in DIR
#   JAVA_LOG=debug|info|warn   client log level (default info; logs go to files)
#   STROM_LOG_LEVEL=...        strom's --log-level (default info), e.g. strom=debug
#   STREAMS_GUARANTEE=at_least_once  the negative control: exactly-once-output must FAIL
#
# The distribution comes from ../shared/kafka/kafka_2.13-4.1.0.tgz beside the
# repo, unpacked once into ${STROM_CACHE:-~/.cache/strom}/kafka
# (compat/lib/kafka.sh); without it every scenario prints
# "PASS n/a: no Kafka distribution". StreamsEos.java is compiled against its
# libs/ (kafka-streams-4.1.0.jar; no rocksdbjni there, so the store is
# in-memory: Stores.inMemoryKeyValueStore).
#
# The app (StreamsEos app: processing.guarantee=exactly_once_v2,
# commit.interval.ms=100, 2 stream threads, no record cache) reads
# $N records (key u<i % 1000>, value i) from streams-input (4 partitions),
# groups them by the derived key g<u % 50> (repartition topic
# strom-streams-eos-by-group-repartition), aggregates "count,sum" into the
# in-memory store agg (changelog strom-streams-eos-agg-changelog) and writes
# every update to streams-output. One run, each wait a condition with a
# deadline:
#   1. prefill the input (idempotent producer);
#   2. start the app; SIGKILL it once the output topic's end offsets (high
#      watermarks, aborted data included) pass N/4, restart it, SIGKILL it
#      again past 3N/5, restart it (same application.id; a killed instance's
#      member leaves after session.timeout.ms=6000, its open transaction is
#      aborted after transaction.timeout.ms=5000);
#   3. wait until the committed output (read_committed) holds N records and
#      the app group's committed offsets (OffsetFetch with require_stable)
#      are the input's end offsets; SIGTERM the app;
#   4. start the app once more and dump its store (restored from the
#      changelog) through interactive queries;
#   5. verify with read_committed consumers.
# Scenarios (RESULT streams <scenario> PASS|FAIL detail):
#   kill-restart          both kills hit while the app was mid-run (the output's
#                         last stable offsets below N: not all output committed),
#                         and the restarted app finished
#   exactly-once-output   the committed output holds, for each of the 50 keys, the
#                         counts 1..n in order, each once (no double counting after
#                         the kills), and the final count,sum is the expected one
#   changelog             the latest committed changelog record of each key is the
#                         expected aggregate
#   changelog-restore     a restarted instance's store (restored from the
#                         changelog) holds exactly the expected aggregates
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../lib/cluster.sh"
source "$HERE/../lib/kafka.sh"

TARGET=${STREAMS_TARGET:-strom}
SCENARIOS="kill-restart exactly-once-output changelog changelog-restore"
case $TARGET in strom | kafka | cluster) ;; *) echo "STREAMS_TARGET must be strom, kafka or cluster, not $TARGET"; exit 2 ;; esac
LABEL=streams
[ "$TARGET" = cluster ] && LABEL=streams-3-nodes

if ! kafka_dist; then
    for s in $SCENARIOS; do result "$LABEL" "$s" PASS "n/a: no Kafka distribution"; done
    exit 0
fi

N=${STREAMS_RECORDS:-50000}
USERS=1000
GROUPS_K=50
PARTITIONS=4
MARKS="$((N / 4)) $((N * 3 / 5))"

CACHE=${STROM_CACHE:-$HOME/.cache/strom}/streams
mkdir -p "$CACHE/classes"
CP="$KAFKA_HOME/libs/*"
if [ ! -f "$CACHE/classes/StreamsEos.class" ] || [ "$HERE/StreamsEos.java" -nt "$CACHE/classes/StreamsEos.class" ]; then
    javac -Xlint:all -Xlint:-options -Werror -d "$CACHE/classes" -cp "$CP" "$HERE/StreamsEos.java" || exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strom-streams.XXXXXX")
APP_PID=
TOOL_PID=
cleanup() {
    [ -n "$TOOL_PID" ] && kill -KILL "$TOOL_PID" 2>/dev/null && wait "$TOOL_PID" 2>/dev/null
    [ -n "$APP_PID" ] && kill -KILL "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null
    if [ -n "${STREAMS_KEEP:-}" ]; then
        mkdir -p "$STREAMS_KEEP"
        cp "$WORK"/*.out "$WORK"/*.log "$STREAMS_KEEP"/ 2>/dev/null
        [ -n "${TARGET_LOG:-}" ] && cp "$TARGET_LOG" "$STREAMS_KEEP/$TARGET.log" 2>/dev/null
    fi
    case $TARGET in kafka) stop_kafka ;; cluster) stop_cluster ;; *) stop_broker ;; esac
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$TARGET" = kafka ]; then
    # Timed-out transactions are looked for every second (Kafka's default: 10 s).
    start_kafka transaction.abort.timed.out.transaction.cleanup.interval.ms=1000 || exit 1
    BOOT=$KAFKA_BOOTSTRAP
    TARGET_LOG=$KAFKA_STATE/kafka.out
elif [ "$TARGET" = cluster ]; then
    [ -x "$STROM_BIN" ] || { echo "no $STROM_BIN: run cargo build --release first"; exit 1; }
    start_cluster --num-partitions 1 --set group.initial.rebalance.delay.ms=0 \
        --set default.replication.factor=3 --log-level "${STROM_LOG_LEVEL:-info}" || exit 1
    BOOT=$STROM_CLUSTER_BOOTSTRAP
    TARGET_LOG=$STROM_CLUSTER_DIR/node-1.log
else
    [ -x "$STROM_BIN" ] || { echo "no $STROM_BIN: run cargo build --release first"; exit 1; }
    start_broker --num-partitions 1 --set group.initial.rebalance.delay.ms=0 \
        --log-level "${STROM_LOG_LEVEL:-info}" || exit 1
    BOOT=$STROM_BOOTSTRAP
    TARGET_LOG=$STROM_DATA/strom.log
fi
echo "streams: $TARGET on $BOOT, $N records"

REPLICAS=1
[ "$TARGET" = cluster ] && REPLICAS=3
JAVA_OPTS=(-Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dstrom.java.log="${JAVA_LOG:-info}"
    -Dstreams.replicas=$REPLICAS
    -Dstreams.groups=$GROUPS_K -Dstreams.guarantee="${STREAMS_GUARANTEE:-exactly_once_v2}" -cp "$CACHE/classes:$CP")
# Short-lived tools start faster with the client compiler and the serial GC.
TOOL_OPTS=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx256m "${JAVA_OPTS[@]}")

# tool NAME ARGS...: one StreamsEos tool JVM (killed by cleanup on any exit);
# stdout to NAME.out, its log to NAME.log. Returns its status.
tool() {
    local name=$1; shift
    java "${TOOL_OPTS[@]}" StreamsEos "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
    TOOL_PID=$!
    wait "$TOOL_PID"
    local rc=$?
    TOOL_PID=
    return $rc
}

fail_rest() { # fail_rest FIRST-SCENARIO DETAIL: FAIL it and every later one, exit
    local s skip=1
    for s in $SCENARIOS; do
        [ "$s" = "$1" ] && skip=0
        [ $skip -eq 0 ] && result "$LABEL" "$s" FAIL "$2"
    done
    echo "--- $TARGET log (last 60 lines) ---"; tail -n 60 "$TARGET_LOG"
    exit 1
}

show() { # show NAME: a JVM's stdout and the end of its log
    echo "--- $1.out ---"; tail -n 30 "$WORK/$1.out" 2>/dev/null
    echo "--- $1.log (last 40 lines) ---"; tail -n 40 "$WORK/$1.log" 2>/dev/null
}

tool prefill prefill "$BOOT" "$N" "$USERS" "$PARTITIONS" ||
    { show prefill; fail_rest kill-restart "prefilling $N records failed"; }

runs=0
start_app() {
    runs=$((runs + 1))
    java -Xmx512m "${JAVA_OPTS[@]}" StreamsEos app "$BOOT" "$WORK/state-$runs" \
        >"$WORK/app-$runs.out" 2>"$WORK/app-$runs.log" &
    APP_PID=$!
}

start_app
kills=()
for mark in $MARKS; do
    if ! tool "wait-$mark" wait-output "$BOOT" "$mark" 90; then
        show "wait-$mark"; show "app-$runs"
        fail_rest kill-restart "the output did not reach $mark records within 90 s (app run $runs)"
    fi
    kill -0 "$APP_PID" 2>/dev/null || { show "app-$runs"; fail_rest kill-restart "app run $runs exited by itself"; }
    kill -KILL "$APP_PID"
    wait "$APP_PID" 2>/dev/null
    APP_PID=
    # OUTPUT <end offsets> STABLE <last stable offsets>: below N, some output
    # was not committed yet (N committed records take at least N offsets).
    read -r _ hw _ stable <"$WORK/wait-$mark.out"
    kills+=("output end offsets $hw, last stable $stable")
    [ "$stable" -lt "$N" ] ||
        fail_rest kill-restart "the kill past $mark came too late: the output's last stable offsets were already $stable"
    start_app
done

if ! tool wait-done wait-done "$BOOT" "$N" 120; then
    show wait-done; show "app-$runs"
    fail_rest kill-restart "after ${#kills[@]} kills the app did not finish within 120 s: $(cat "$WORK/wait-done.out")"
fi
result "$LABEL" kill-restart PASS "SIGKILLed at ${kills[0]}; at ${kills[1]}; the third run finished: $(cat "$WORK/wait-done.out")"

# A clean stop (SIGTERM: the app closes), then a fresh instance restores the store.
kill -TERM "$APP_PID"
deadline=$((SECONDS + 30))
while kill -0 "$APP_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
kill -KILL "$APP_PID" 2>/dev/null && echo "the app did not stop within 30 s of SIGTERM; killed"
wait "$APP_PID" 2>/dev/null
APP_PID=

runs=$((runs + 1))
java -Xmx512m "${JAVA_OPTS[@]}" StreamsEos dump "$BOOT" "$WORK/state-$runs" 90 >"$WORK/dump.out" 2>"$WORK/dump.log" &
APP_PID=$!
wait "$APP_PID"
rc=$?
APP_PID=
[ $rc -eq 0 ] || show dump

status=0
tool verify verify "$BOOT" "$N" "$USERS" "$GROUPS_K" "$WORK/dump.out" || status=$?
grep '^RESULT ' "$WORK/verify.out" | sed "s/^RESULT streams /RESULT $LABEL /"
if ! grep -q '^RESULT ' "$WORK/verify.out"; then
    show verify
    fail_rest exactly-once-output "the verifying consumer failed"
fi
if [ $status -ne 0 ]; then
    echo "--- verify.log (last 40 lines) ---"; tail -n 40 "$WORK/verify.log"
    echo "--- $TARGET log (last 60 lines) ---"; tail -n 60 "$TARGET_LOG"
fi
exit $status
