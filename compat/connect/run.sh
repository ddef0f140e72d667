#!/usr/bin/env bash
# Kafka Connect (Apache Kafka 4.1.0's distributed worker) against the release
# strom binary.
#
#   bash compat/connect/run.sh
#
# The distribution comes from $REPO/../shared/kafka/kafka_2.13-4.1.0.tgz and is
# unpacked once into ${STROM_CACHE:-$HOME/.cache/strom}/kafka (never into the
# repo); without it every scenario reports `PASS n/a`. strom starts with a
# busy cleaner (log.cleaner.backoff.ms=100); the worker (heap 512 MB, REST on
# a free loopback port, offset.flush.interval.ms=20) creates its config,
# offset and status topics itself (compacted; the offset topic with 500 ms
# segments and min.cleanable.dirty.ratio=0.01 through `offset.storage.*`), and
# runs $CONNECTORS FileStreamSource connectors (plugin.path:
# libs/connect-file-4.1.0.jar), each on its own file this script keeps
# appending numbered lines to, all into one target topic. (A FileStreamSource
# task that finds no new line waits a second, so each connector commits its
# offset about once a second: several connectors make the commits many.)
# Scenarios:
#
#   lines-arrive               lines reach the target topic
#   internal-topics-compacted  while the worker commits source offsets (at
#                              least $OFFSET_RECORDS records into its offset
#                              topic, ~140 B each), that topic's files on disk
#                              stay within $OFFSET_BOUND bytes and
#                              $OFFSET_MAX_FILES files (without cleaning they
#                              would hold every record, one segment per 500 ms)
#   resume-after-restart       after a clean stop and a restart of the worker
#                              and more lines, the target topic holds every
#                              line of every file exactly once, in the file's
#                              order (the connectors resumed at their stored
#                              offsets)
#
# Every wait is a condition with a deadline. The worker, the line writer and
# the broker are stopped on every exit path. STROM_KEEP_LOG=DIR keeps the
# broker and worker logs.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
source "$HERE/../lib/broker.sh"

SCENARIOS="lines-arrive internal-topics-compacted resume-after-restart"
TGZ=$REPO/../shared/kafka/kafka_2.13-4.1.0.tgz
if [ ! -f "$TGZ" ]; then
    for s in $SCENARIOS; do result connect "$s" PASS "n/a: no Kafka distribution at $TGZ"; done
    exit 0
fi
[ -x "$STROM_BIN" ] || { echo "no $STROM_BIN: run cargo build --release first"; exit 1; }

CACHE=${STROM_CACHE:-$HOME/.cache/strom}/kafka
K=$CACHE/kafka_2.13-4.1.0
if [ ! -x "$K/bin/connect-distributed.sh" ]; then
    mkdir -p "$CACHE"
    unpack=$(mktemp -d "$CACHE/.unpack.XXXXXX")
    tar xzf "$TGZ" -C "$unpack" && rm -rf "$K" && mv "$unpack/kafka_2.13-4.1.0" "$K"
    rm -rf "$unpack"
    [ -x "$K/bin/connect-distributed.sh" ] || { echo "cannot unpack $TGZ into $CACHE"; exit 1; }
fi

CONNECTORS=10
OFFSET_RECORDS=400
OFFSET_BOUND=16384
OFFSET_MAX_FILES=8
TARGET=connect-lines
export KAFKA_HEAP_OPTS=-Xmx512m

WORK=$(mktemp -d)
WORKER_PID=
WRITER_PID=
cleanup() {
    [ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null && wait "$WRITER_PID" 2>/dev/null
    stop_worker
    if [ -n "${STROM_KEEP_LOG:-}" ]; then
        mkdir -p "$STROM_KEEP_LOG"
        cp "$STROM_DATA/strom.log" "$WORK"/worker-*.log "$STROM_KEEP_LOG"/ 2>/dev/null
    fi
    stop_broker
    rm -rf "$WORK"
}
trap cleanup EXIT

start_broker --num-partitions 1 --log-level "${STROM_LOG_LEVEL:-info}" \
    --set log.cleaner.backoff.ms=100 || exit 1

REST_PORT=$(free_port)
REST=http://127.0.0.1:$REST_PORT
for c in $(seq 1 $CONNECTORS); do : >"$WORK/lines-$c.txt"; done
cat >"$WORK/worker.properties" <<PROPS
bootstrap.servers=$STROM_BOOTSTRAP
group.id=strom-connect
key.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter=org.apache.kafka.connect.storage.StringConverter
config.storage.topic=connect-configs
config.storage.replication.factor=1
offset.storage.topic=connect-offsets
offset.storage.replication.factor=1
offset.storage.partitions=1
offset.storage.segment.ms=500
offset.storage.min.cleanable.dirty.ratio=0.01
status.storage.topic=connect-status
status.storage.replication.factor=1
status.storage.partitions=1
offset.flush.interval.ms=20
listeners=http://127.0.0.1:$REST_PORT
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$REST_PORT
plugin.path=$K/libs/connect-file-4.1.0.jar
PROPS

starts=0
start_worker() {
    starts=$((starts + 1))
    LOG_DIR=$WORK/worker-logs "$K/bin/connect-distributed.sh" "$WORK/worker.properties" \
        >"$WORK/worker-$starts.log" 2>&1 &
    WORKER_PID=$!   # kafka-run-class.sh execs java: this is the JVM
    wait_until 90 "the worker's REST API answers" \
        bash -c "curl -sf '$REST/' >/dev/null"
}

stop_worker() { # SIGTERM (a clean stop commits offsets), SIGKILL after 30 s
    [ -n "$WORKER_PID" ] || return 0
    kill -TERM "$WORKER_PID" 2>/dev/null
    local deadline=$((SECONDS + 30))
    while kill -0 "$WORKER_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL "$WORKER_PID" 2>/dev/null
    wait "$WORKER_PID" 2>/dev/null
    WORKER_PID=
}

# wait_until SECONDS WHAT COMMAND...: polls COMMAND until it succeeds.
wait_until() {
    local seconds=$1 what=$2
    local deadline=$((SECONDS + seconds))
    shift 2
    until "$@"; do
        if [ $SECONDS -ge $deadline ]; then
            echo "timed out after $seconds s waiting for $what"
            return 1
        fi
        if [ -n "$WORKER_PID" ] && ! kill -0 "$WORKER_PID" 2>/dev/null; then
            echo "the worker exited while waiting for $what:"; tail -n 30 "$WORK/worker-$starts.log"
            return 1
        fi
        sleep 0.5
    done
}

# end_offset TOPIC: the high watermark of partition 0.
end_offset() {
    "$K/bin/kafka-get-offsets.sh" --bootstrap-server "$STROM_BOOTSTRAP" --topic "$1" 2>/dev/null |
        awk -F: '$2 == 0 { print $3 }'
}

target_holds() { # target_holds N: the target topic has at least N records
    local end
    end=$(end_offset "$TARGET")
    [ -n "$end" ] && [ "$end" -ge "$1" ]
}

dir_bytes() { find "$1" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
dir_files() { find "$1" -type f 2>/dev/null | wc -l; }

start_writer() { # appends line c<c>-<n> to each file c, 50 a second, from n = $1
    (
        i=$1
        while :; do
            for c in $(seq 1 $CONNECTORS); do
                printf 'c%d-%06d\n' "$c" "$i" >>"$WORK/lines-$c.txt"
            done
            i=$((i + 1))
            sleep 0.02 # the pace of the writes, not a wait
        done
    ) &
    WRITER_PID=$!
}

lines_written() { cat "$WORK"/lines-*.txt | wc -l; }

stop_writer() {
    kill "$WRITER_PID" 2>/dev/null
    wait "$WRITER_PID" 2>/dev/null
    WRITER_PID=
}

fail_all_from() { # the remaining scenarios cannot run
    local skip=1
    for s in $SCENARIOS; do
        [ "$s" = "$1" ] && skip=0
        [ $skip -eq 0 ] && result connect "$s" FAIL "$2"
    done
    exit 1
}

start_writer 1
start_worker || fail_all_from lines-arrive "the worker did not start (log: worker-1.log)"
for c in $(seq 1 $CONNECTORS); do
    connector='{"name": "lines-'$c'", "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
        "tasks.max": "1", "file": "'"$WORK/lines-$c.txt"'", "topic": "'"$TARGET"'",
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": "1"}}'
    # 409 while the worker joins its group or rebalances: retried until created.
    wait_until 60 "connector lines-$c to be created" bash -c \
        "curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' --data '$connector' '$REST/connectors'" ||
        fail_all_from lines-arrive "cannot create connector lines-$c"
done
tasks_running() { # every connector's task is RUNNING
    local c
    for c in $(seq 1 $CONNECTORS); do
        curl -sf "$REST/connectors/lines-$c/status" |
            grep -q '"tasks":\[{"id":0,"state":"RUNNING"' || return 1
    done
}
wait_until 60 "every connector's task to run" tasks_running ||
    fail_all_from lines-arrive "not every task runs: $(curl -s "$REST/connectors?expand=status")"

# (a) lines arrive.
if wait_until 60 "100 lines in $TARGET" target_holds 100; then
    result connect lines-arrive PASS "$(end_offset "$TARGET") lines in $TARGET"
else
    result connect lines-arrive FAIL "fewer than 100 lines in $TARGET after 60 s"
fi

# (b) the offset topic stays small while offsets are committed.
OFFSETS_DIR=$STROM_DATA/data/logs/connect-offsets-0
max_bytes=0
max_files=0
offsets_compacted() {
    local bytes files written
    bytes=$(dir_bytes "$OFFSETS_DIR")
    files=$(dir_files "$OFFSETS_DIR")
    [ "$bytes" -gt "$max_bytes" ] && max_bytes=$bytes
    [ "$files" -gt "$max_files" ] && max_files=$files
    written=$(end_offset connect-offsets)
    echo "connect-offsets: ${written:-?} records written, $bytes bytes in $files files"
    [ -n "$written" ] && [ "$written" -ge "$OFFSET_RECORDS" ] &&
        [ "$bytes" -le "$OFFSET_BOUND" ] && [ "$files" -le "$OFFSET_MAX_FILES" ]
}
if wait_until 90 "$OFFSET_RECORDS offset commits with the offset topic small" offsets_compacted; then
    written=$(end_offset connect-offsets)
    result connect internal-topics-compacted PASS "$written offset records written; the partition \
holds $(dir_bytes "$OFFSETS_DIR") bytes in $(dir_files "$OFFSETS_DIR") files (at most $max_bytes \
bytes and $max_files files seen); configs: $(dir_bytes "$STROM_DATA/data/logs/connect-configs-0") \
bytes, status: $(dir_bytes "$STROM_DATA/data/logs/connect-status-0") bytes"
else
    result connect internal-topics-compacted FAIL "the offset topic did not stay below \
$OFFSET_BOUND bytes and $OFFSET_MAX_FILES files: $(ls -l "$OFFSETS_DIR" | tr '\n' ' ')"
fi

# (c) a clean stop, a restart, more lines: each line exactly once.
stop_writer
written=$(lines_written)
wait_until 60 "all $written lines in $TARGET before the stop" target_holds "$written"
stop_worker
start_writer $((written / CONNECTORS + 1))
more=$((written + 100 * CONNECTORS))
start_worker || fail_all_from resume-after-restart "the worker did not restart (log: worker-2.log)"
wait_until 60 "100 more lines per file" bash -c "[ \$(cat '$WORK'/lines-*.txt | wc -l) -ge $more ]"
stop_writer
total=$(lines_written)
if wait_until 90 "all $total lines in $TARGET" target_holds "$total"; then
    end=$(end_offset "$TARGET")
    "$K/bin/kafka-console-consumer.sh" --bootstrap-server "$STROM_BOOTSTRAP" --topic "$TARGET" \
        --from-beginning --max-messages "$end" --timeout-ms 30000 >"$WORK/target.txt" 2>"$WORK/consumer.log"
    differences=
    for c in $(seq 1 $CONNECTORS); do
        grep "^c$c-" "$WORK/target.txt" >"$WORK/target-$c.txt"
        if ! cmp -s "$WORK/lines-$c.txt" "$WORK/target-$c.txt"; then
            differences="$differences lines-$c: $(diff "$WORK/lines-$c.txt" "$WORK/target-$c.txt" |
                head -n 4 | tr '\n' ' ')"
        fi
    done
    if [ "$end" -eq "$total" ] && [ -z "$differences" ]; then
        result connect resume-after-restart PASS "$total lines over $CONNECTORS files \
($written before the restart), each once and in its file's order"
    else
        result connect resume-after-restart FAIL "$total lines written, $end records in $TARGET; \
differences:$differences"
    fi
else
    result connect resume-after-restart FAIL "only $(end_offset "$TARGET") of $total lines in \
$TARGET after the restart"
fi
