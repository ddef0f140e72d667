#!/usr/bin/env bash
# The transaction scenarios of every client suite against a real Apache
# Kafka 4.1.0 (one KRaft node from ../shared/kafka, compat/lib/kafka.sh),
# to check the scenarios themselves: a scenario that fails here is a wrong
# test, not a strom bug.
#
#   bash compat/txn-on-kafka.sh
#
# Runs python (-k txn), java, kafkajs and kcat (their txn-* scenarios) and
# cargo test --test compat_rdkafka transactions, each with
# STROM_EXTERNAL_BOOTSTRAP pointing at the Kafka; then the Java scenarios
# again after downgrading the cluster's transaction.version to 1 (kafka-
# clients 4.1 speaks transaction protocol 2 where it is finalized, as on a
# fresh 4.1 cluster and on strom; version 1 is what older Java clients and
# librdkafka speak), reported as client "java-tv1". Also runs the protocol
# test transactions_v2 against the Kafka.
# Prints the txn RESULT lines and "N passed, M failed"; exits non-zero when
# one failed or Kafka is not available. Not part of scripts/test.sh (Kafka
# takes ~1 GB and 10 s to start).
set -uo pipefail
cd "$(dirname "$0")/.."
source compat/lib/broker.sh
source compat/lib/kafka.sh

kafka_dist || { echo "no Apache Kafka distribution at $KAFKA_TARBALL"; exit 1; }
trap stop_kafka EXIT
start_kafka || exit 1
echo "== Apache Kafka at $KAFKA_BOOTSTRAP (pid $KAFKA_PID)"
export STROM_EXTERNAL_BOOTSTRAP=$KAFKA_BOOTSTRAP
TXN="txn-commit txn-abort txn-consume-transform-produce txn-fencing"
results=$(mktemp)
trap 'rm -f "$results"; stop_kafka' EXIT

suite() { # suite NAME COMMAND...: runs it, keeps its txn RESULT lines
    echo "== $1"
    local log
    log=$(mktemp)
    "${@:2}" >"$log" 2>&1
    grep '^RESULT [^ ]* txn-' "$log" | tee -a "$results"
    grep -q '^RESULT [^ ]* txn-' "$log" || { echo "RESULT $1 txn-suite FAIL no results:"; tail -n 30 "$log"; } | tee -a "$results"
    rm -f "$log"
}

suite python timeout 900 bash compat/python/run.sh -k txn
suite java timeout 600 bash compat/java/run.sh $TXN
suite kafkajs timeout 600 bash compat/kafkajs/run.sh $TXN
suite kcat timeout 300 bash compat/kcat/run.sh

cargo_suite() { # cargo_suite CLIENT SCENARIO TARGET FILTER: one RESULT line
    echo "== $1 (cargo test --test $3 $4)"
    if cargo test --quiet --test "$3" "$4" >"$results.cargo" 2>&1; then
        echo "RESULT $1 $2 PASS $(grep 'test result' "$results.cargo")" | tee -a "$results"
    else
        grep -E '^test |panicked|left|right|test result' "$results.cargo" | tail -n 20
        echo "RESULT $1 $2 FAIL see above" | tee -a "$results"
    fi
    rm -f "$results.cargo"
}
cargo_suite rdkafka transactions compat_rdkafka transactions
cargo_suite protocol txn-version-2 protocol transaction_version_2

echo "== java, transaction.version=1"
if "$KAFKA_HOME/bin/kafka-features.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" downgrade --feature transaction.version=1 >/dev/null 2>&1; then
    timeout 600 bash compat/java/run.sh $TXN 2>&1 | grep '^RESULT java txn-' | sed 's/^RESULT java /RESULT java-tv1 /' | tee -a "$results"
else
    echo "RESULT java-tv1 txn-suite FAIL kafka-features.sh downgrade failed" | tee -a "$results"
fi

pass=$(grep -c ' PASS' "$results")
fail=$(grep -c ' FAIL' "$results")
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
